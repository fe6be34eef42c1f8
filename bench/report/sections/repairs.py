"""Repairs (``_repairs.html.j2``): the redo sessions of a run (``ResultDocument.repairs``, written by
``bench run --run-id X --redo-flagged``): which cells each ran again in place, in which session, when, what they were
before and why, and what they are now. Only shown for documents with a repair; other reports are unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.format import Column, Table, Td, get


@dataclass
class RepairView:
    """One redo session: its heading line and the table of the cells it ran again."""

    session: int
    text: str
    table: Table


def cell_state(cell: Any) -> str:
    """What a cell is now: ``failed``, ``invalid`` (an implausible reading), ``flagged`` (a condition of the machine)
    or ``ok``; ``missing`` when the document has no such cell."""
    if cell is None:
        return "missing"
    if get(cell, "status") != "ok":
        return "failed"
    if get(cell, "validity"):
        return "invalid"
    return "flagged" if get(cell, "flags") else "ok"


def repairs_view(doc: Any) -> list[RepairView] | None:
    """One view per repair, in the order they ran; None for a document without one (no section)."""
    repairs = list(get(doc, "repairs") or [])
    if not repairs:
        return None
    cells = {(get(c, "dataset"), get(c, "model"), get(c, "repetition")): c for c in get(doc, "cells") or []}
    columns = [
        Column("cell", "data set · model · rep", numeric=False),
        Column("before", numeric=False),
        Column("why", numeric=False),
        Column("now", numeric=False),
    ]
    out = []
    for repair in repairs:
        rows = []
        for redone in get(repair, "cells") or []:
            now = cells.get((redone.dataset, redone.model, redone.repetition))
            state = cell_state(now)
            reasons = [str(r) for r in (get(now, "validity") or []) + (get(now, "flags") or [])] if now else []
            rows.append(
                [
                    Td(f"{redone.dataset} · {redone.model} · {redone.repetition}", cls="name"),
                    Td(str(redone.before), cls="bad"),
                    Td("; ".join(str(r) for r in redone.reasons) or "—"),
                    Td(state, title="; ".join(reasons), cls="" if state == "ok" else "bad"),
                ]
            )
        finished = get(repair, "finished_at")
        text = (
            f"Session {repair.session}, started {repair.started_at}"
            + (f", finished {finished}" if finished else ", not finished (interrupted)")
            + f": {len(rows)} cell(s) run again in place, with the session's own idle baseline and calibration; "
            "every other cell is as the earlier sessions wrote it."
        )
        out.append(RepairView(session=repair.session, text=text, table=Table(columns, rows, css_class="repairs")))
    return out
