"""Serving modes: energy per text, speed and accuracy of a model served sequentially (prompts one at a time, as the
paper's runtimes imply) against batched, for every model and data set where a run has both (``_serving.html.j2``).
How a cell was served is read by ``bench.report.format.serving_mode``."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from bench.analysis import ModelRow
from bench.report import svg
from bench.report.format import SERVING_KEYS, Column, Table, Td, fixed, get, model_info, num, pct, serving_mode


@dataclass
class ServingView:
    """Sequential against batched serving, where a run has both for a model."""

    plot: Markup
    table: Table


def serving_base(doc: Any, model: str) -> str:
    """What a sequential and a batched variant of one model share: the paper label, or the params without the
    serving key, or the name with a -sequential/-batched suffix removed."""
    info = model_info(doc, model)
    if info.get("paper_label"):
        return str(info["paper_label"])
    params = {k: v for k, v in (info.get("params") or {}).items() if k not in SERVING_KEYS}
    if params:
        return repr(sorted(params.items()))
    return re.sub(r"[-_:](sequential|batched|seq|batch)$", "", model)


def serving_view(doc: Any, rows: list[ModelRow]) -> ServingView | None:
    """Sequential against batched serving, for every model and data set where both ran; None where none did."""
    pairs: dict[tuple[str, str], dict[str, ModelRow]] = defaultdict(dict)
    cells_by = defaultdict(list)
    for c in get(doc, "cells") or []:
        cells_by[(c.dataset, c.model)].append(c)
    for r in rows:
        cells = cells_by.get((r.dataset, r.model), [])
        modes = {serving_mode(doc, r.model, c) for c in cells} or {serving_mode(doc, r.model)}
        if len(modes) != 1 or None in modes:
            continue
        pairs[(r.dataset, serving_base(doc, r.model))][modes.pop()] = r
    both = {k: v for k, v in pairs.items() if {"sequential", "batched"} <= v.keys()}
    if not both:
        return None
    labels, seq, bat, table_rows = [], [], [], []
    for (dataset, base), modes in both.items():
        s, b = modes["sequential"], modes["batched"]
        labels.append(f"{base} · {dataset}" if len({d for d, _ in both}) > 1 else base)
        seq.append(s.j_per_text)
        bat.append(b.j_per_text)
        saving = 1 - b.j_per_text / s.j_per_text if s.j_per_text and b.j_per_text is not None else None
        speed = s.duration_s.mean / b.duration_s.mean if s.duration_s and b.duration_s and b.duration_s.mean else None
        table_rows.append(
            [
                Td(base, cls="name"),
                Td(dataset, cls="name"),
                Td(num(s.j_per_text)),
                Td(num(b.j_per_text)),
                Td(pct(saving, 0)),
                Td(num(speed, 2)),
                Td(fixed(s.accuracy.mean if s.accuracy else None)),
                Td(fixed(b.accuracy.mean if b.accuracy else None)),
            ]
        )
    plot = svg.grouped_bars(
        labels,
        {"sequential": seq, "batched": bat},
        title="Energy per text by serving mode",
        x_label=svg.ENERGY_PER_TEXT_LABEL,
    )
    columns = [
        Column("model", numeric=False),
        Column("data set", numeric=False),
        Column("sequential", "J / text"),
        Column("batched", "J / text"),
        Column("saved by batching", "%"),
        Column("speed-up", "×"),
        Column("accuracy sequential"),
        Column("accuracy batched"),
    ]
    return ServingView(plot, Table(columns, table_rows))
