"""Measurement conditions per cell (``_conditions.html.j2``): what else ran on the machine during each window (the
share of CPU time outside the run's process tree, other processes on the metered GPUs: ``bench.meters.others``) and
the GPUs' state at the window's edges (temperature, SM clock, power limit, clocks event reasons: ``bench.meters.gpu``),
with the validator's verdict (``flagged``: a condition of the machine, left out of the means until redone; ``invalid``:
an implausible reading). Only shown for documents that record them (schema v3 on); older reports are unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.format import Column, Table, Td, get, num, pct

#: How many cells the table lists (a paper run has thousands): flagged cells first, then in run order.
MAX_ROWS = 200


@dataclass
class ConditionsView:
    """The per-cell conditions table and what it leaves out."""

    table: Table
    #: cells with flags (conditions of the machine)
    flagged: int
    shown: int
    total: int


def _gpus(cell: Any) -> list[dict[str, Any]]:
    gpu = (get(cell, "energy") or {}).get("gpu")
    records = (get(gpu, "detail") or {}).get("gpus") if gpu is not None else None
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _has_telemetry(cell: Any) -> bool:
    return any(any(k.endswith(("_start", "_end")) and k.startswith("temperature_c") for k in r) for r in _gpus(cell))


def _edges(records: list[dict[str, Any]], key: str, unit: str = "") -> str:
    """``start → end`` per GPU (``;`` between GPUs), ``—`` where not recorded."""
    parts = []
    for r in records:
        a, b = r.get(f"{key}_start"), r.get(f"{key}_end")
        if a is None and b is None:
            continue
        parts.append(f"{_g(a)} → {_g(b)}{unit}")
    return "; ".join(parts) or "—"


def _g(value: Any) -> str:
    """Readings NVML reports as whole numbers (°C, MHz, W) as they were read."""
    return f"{value:g}" if isinstance(value, int | float) else "—"


def _reasons(records: list[dict[str, Any]]) -> str:
    names: list[str] = []
    for r in records:
        for edge in ("start", "end"):
            for n in r.get(f"clocks_event_reason_names_{edge}") or []:
                if n not in names:
                    names.append(n)
    return ", ".join(names) or "none"


def _others_td(others: Any) -> Td:
    share = get(others, "other_cpu_share")
    if others is None:
        return Td("—", title="not recorded")
    if share is None:
        return Td("—", title=str(get(others, "note") or "not measured"))
    text = pct(share)
    if not get(others, "judged"):
        return Td(f"({text})", title=str(get(others, "note") or "too short to judge"), sub="too short to judge")
    return Td(text, title=f"±{pct(get(others, 'resolution_share'))} counter resolution")


def _gpu_others(others: Any) -> str:
    procs = get(others, "gpu_processes")
    if procs is None:
        return "—"
    foreign = sorted({(p.gpu_index, p.pid) for p in procs if p.own is False})
    unknown = sorted({(p.gpu_index, p.pid) for p in procs if p.own is None})
    text = ", ".join(f"GPU {g}: pid {pid}" for g, pid in foreign) or "none"
    return text + (f" (+{len(unknown)} not attributable)" if unknown else "")


def verdict_td(cell: Any) -> Td:
    """A cell's verdict: ``invalid`` (an implausible reading, ``Cell.validity``), else ``flagged`` (a condition of the
    machine during its window, ``Cell.flags``), else ``ok``; the reasons in the title."""
    validity = [str(r) for r in get(cell, "validity") or []]
    flags = [str(r) for r in get(cell, "flags") or []]
    text = "invalid" if validity else "flagged" if flags else "ok"
    return Td(text, title="; ".join(validity + flags), cls="bad" if validity or flags else "")


def conditions_view(doc: Any) -> ConditionsView | None:
    """The conditions of every ok cell that records them; None where no cell does (documents before schema v3)."""
    cells = [c for c in get(doc, "cells") or [] if get(c, "status") == "ok" and (get(c, "others") or _has_telemetry(c))]
    if not cells:
        return None
    gpus = any(_gpus(c) or get(get(c, "others"), "gpu_processes") is not None for c in cells)
    # stable: flagged and invalid cells first, run order kept within
    cells.sort(key=lambda c: not (get(c, "flags") or get(c, "validity")))
    flagged = sum(1 for c in cells if get(c, "flags"))
    columns = [
        Column("cell", "data set · model · rep", numeric=False),
        Column("window", "s"),
        Column("others' CPU", "% of machine", title="CPU time used outside the run's process tree / (wall x CPUs)"),
    ]
    if gpus:
        columns += [
            Column("others on GPUs", numeric=False),
            Column("temperature", "°C, start → end"),
            Column("SM clock", "MHz, start → end"),
            Column("power limit", "W, start → end"),
            Column("clocks event reasons", numeric=False),
        ]
    columns.append(Column("verdict", numeric=False))
    rows = []
    for c in cells[:MAX_ROWS]:
        others = get(c, "others")
        window = get(c, "window")
        line = [
            Td(f"{c.dataset} · {c.model} · {c.repetition}", cls="name"),
            Td(num(get(window, "duration_s"))),
            _others_td(others),
        ]
        if gpus:
            records = _gpus(c)
            line += [
                Td(_gpu_others(others)),
                Td(_edges(records, "temperature_c")),
                Td(_edges(records, "sm_clock_mhz")),
                Td(_edges(records, "power_limit_w")),
                Td(_reasons(records) if records else "—"),
            ]
        line.append(verdict_td(c))
        rows.append(line)
    return ConditionsView(Table(columns, rows, css_class="conditions"), flagged, len(rows), len(cells))
