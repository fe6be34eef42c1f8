"""Power over time (``_timeline.html.j2``): for each model, its longest cell's power per component over the metered
window (``Cell.power_series``, ``bench.meters.series``), with the session's idle power drawn as a dashed line per
component, so a reader sees what the inference added on top of idle and whether the draw was steady. Only shown for
documents whose cells record a series; older reports are unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from bench.report import svg
from bench.report.format import get, num
from bench.results import idle_power_for

COMPONENTS = ("gpu", "cpu", "ram")


@dataclass
class TimelineChart:
    """One model's chart and what it shows."""

    model: str
    heading: str
    svg: Markup
    caption: str


def _idle_for(doc: Any, cell: Any) -> dict[str, float | None]:
    """Idle power per component (W) of the session the cell ran in: the last start-of-session baseline measured
    before the cell started (ISO times compare as strings); GPU idle narrowed to the GPUs the cell was metered on."""
    starts = [i for i in get(doc, "idle") or [] if get(i, "phase", "start") == "start"]
    if not starts:
        return {}
    started = str(get(cell, "started_at") or "")
    before = [i for i in starts if str(get(i, "measured_at") or "") <= started]
    idle = (before or starts)[-1]
    power = dict(get(idle, "power_w") or {})
    gpu = (get(cell, "energy") or {}).get("gpu")
    records = (get(gpu, "detail") or {}).get("gpus") if gpu is not None else None
    indices = [r.get("index") for r in records if isinstance(r, dict)] if isinstance(records, list) else None
    if indices and power.get("gpu") is not None:
        narrowed = idle_power_for(idle, [i for i in indices if isinstance(i, int)])
        power["gpu"] = (narrowed or {}).get("gpu")
    return power


def timeline_view(doc: Any) -> list[TimelineChart] | None:
    """One chart per model: the ok cell with the longest metered window among those with a power series."""
    longest: dict[str, Any] = {}
    for cell in get(doc, "cells") or []:
        series = get(cell, "power_series")
        if get(cell, "status") != "ok" or series is None or not get(series, "components"):
            continue
        model = get(cell, "model")
        best = longest.get(model)
        if best is None or get(get(cell, "window"), "duration_s", 0.0) > get(get(best, "window"), "duration_s", 0.0):
            longest[model] = cell
    if not longest:
        return None
    charts = []
    for model, cell in longest.items():
        series = get(cell, "power_series")
        idle = _idle_for(doc, cell)
        components = get(series, "components") or {}
        lines = []
        for component in COMPONENTS:
            part = components.get(component)
            if part is None:
                continue
            watts = list(get(part, "watts") or [])
            method = get(part, "method")
            lines.append(
                svg.Timeline(
                    name=component,
                    t0_s=float(get(part, "t0_s", 0.0)),
                    interval_s=float(get(part, "interval_s")),
                    watts=watts,
                    color=svg.COMPONENT_COLORS.get(component, svg.PALETTE[0]),
                    idle_w=idle.get(component),
                    tip=f"{component} ({method}, {get(part, 'source')}): mean {num(sum(watts) / len(watts))} W, "
                    f"max {num(max(watts))} W, bins of {num(get(part, 'interval_s'))} s",
                )
            )
        window = get(cell, "window")
        who = f"{get(cell, 'dataset')} · {model} · repetition {get(cell, 'repetition')}"
        missing = get(series, "missing") or {}
        notes = [f"{c}: {why}" for c, why in missing.items() if c in COMPONENTS]
        validity = [str(r) for r in get(cell, "validity") or []]
        flags = [str(r) for r in get(cell, "flags") or []]
        caption = (
            f"{who}: the whole metered window of {num(get(window, 'duration_s'))} s ({get(window, 'loops')} "
            f"loop(s)), mean power per bin. Dashed: the session's idle power per component."
            + (f" No series for {'; '.join(notes)}." if notes else "")
            + (f" This cell is invalid: {'; '.join(validity)}." if validity else "")
            + (f" This cell is flagged: {'; '.join(flags)}." if flags else "")
        )
        charts.append(
            TimelineChart(
                model=model,
                heading=model,
                svg=svg.timeline(lines, title=f"Power over time, {who}"),
                caption=caption,
            )
        )
    return charts
