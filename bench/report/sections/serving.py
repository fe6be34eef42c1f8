"""Serving modes: energy per text, speed and accuracy of a model served sequentially (prompts one at a time, as the
paper's runtimes imply) against batched, for every model and data set where a run has both (``_serving.html.j2``);
and every serving configuration of an LLM (``smollm2-135m[serving=batched,batch_size=4]``) with its latency and
throughput (``Cell.serving``), energy per text against median latency with the Pareto front, and how many times less
energy per text it took than the sequential configuration (the paper's serving). How a cell was served is read by
``bench.report.format.serving_mode``."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from bench.analysis import ModelRow, pareto_front
from bench.report import svg
from bench.report.format import SERVING_KEYS, Column, Table, Td, fixed, get, model_info, num, pct, serving_mode
from bench.report.sections.datasets import limit_columns, limit_note, limit_references


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


#: Said beside the accuracy of a ``scoring`` configuration: it is not the paper's method.
SCORING_NOTE = "label scoring: the label of highest likelihood, not the paper's generated answer"


def scoring_note(doc: Any, model: str) -> str:
    """``SCORING_NOTE`` with the rule the model's record names (``info.scoring_rule``, e.g. the summed
    log-likelihood of label and end marker, lm-evaluation-harness's acc), or, for a record of label-likelihood
    decoding without one, the mean log-probability per token that earlier kits used; as is where nothing is
    recorded."""
    info = model_info(doc, model).get("info") or {} if doc is not None else {}
    rule = info.get("scoring_rule") if isinstance(info, dict) else None
    if isinstance(rule, dict) and rule.get("what"):
        return f"label scoring by the {rule['what']} ({rule.get('source', '')}), not the paper's generated answer"
    if isinstance(info, dict) and info.get("decoding") == "label-likelihood":
        return "label scoring by the mean log-probability per token (an earlier kit's rule), not the paper's answer"
    return SCORING_NOTE


@dataclass
class ConfigurationView:
    """Every serving configuration of one LLM on one data set: a table and energy per text against median latency."""

    title: str
    plot: Markup
    table: Table
    #: where the rows show reference ratios (``sections.datasets.limit_note``), else ""
    note: str = ""


def _configurations(rows: list[ModelRow]) -> dict[tuple[str, str], list[ModelRow]]:
    """LLM rows with latency figures, grouped by (data set, model without its serving configuration)."""
    from bench.catalog.models import base_model_name

    groups: dict[tuple[str, str], list[ModelRow]] = defaultdict(list)
    for r in rows:
        if r.latency_median_s is None or not r.j_per_text:
            continue
        try:
            base = base_model_name(r.model)
        except Exception:  # a name this kit no longer parses: a model of its own
            base = r.model
        groups[(r.dataset, base)].append(r)
    return groups


def configuration_views(rows: list[ModelRow], doc: Any = None) -> list[ConfigurationView]:
    """Per LLM and data set where any configuration recorded its latency: one row per configuration (serving, batch
    size, accuracy, J per text, texts per second, latency median and p95, time per batch, the Pareto front of energy
    per text and median latency, and "x less energy per text than sequential" where the sequential one ran)."""
    from bench.catalog.models import serving_label

    views = []
    for (dataset, base), group in _configurations(rows).items():
        front = set(pareto_front([(r.latency_median_s, -r.j_per_text) for r in group]))  # type: ignore[misc, operator]
        sequential = [r for r in group if r.serving == "sequential"]
        reference = sequential[0].j_per_text if len(sequential) == 1 else None
        points, table_rows = [], []
        for i, r in enumerate(group):
            label = serving_label(r.model)
            accuracy = r.accuracy.mean if r.accuracy else None
            less = reference / r.j_per_text if reference and r.j_per_text else None  # type: ignore[operator]
            points.append(
                svg.Point(
                    r.latency_median_s,  # type: ignore[arg-type]
                    r.j_per_text,  # type: ignore[arg-type]
                    label=f"{label} acc {fixed(accuracy)}",
                    tip=f"{label}: median latency {num(r.latency_median_s)} s, {num(r.j_per_text)} J per text, "
                    f"accuracy {fixed(accuracy)}" + (" (Pareto front)" if i in front else ""),
                    highlight=i in front,
                )
            )
            table_rows.append(
                [
                    Td(label, cls="name"),
                    Td(r.serving or "—", cls="name"),
                    Td(fixed(accuracy), sub=scoring_note(doc, r.model) if r.serving == "scoring" else ""),
                    Td(num(r.j_per_text)),
                    Td(num(less, 2) if less is not None else "—"),
                    Td(num(r.texts_per_s)),
                    Td(num(r.latency_median_s)),
                    Td(num(r.latency_p95_s)),
                    Td(num(r.batch_median_s)),
                    Td("yes" if i in front else ""),
                ]
            )
        title = f"{base} on {dataset}: energy per text against median latency"
        # Lower-left is better on both axes: the front is the staircase of configurations no other beats on both.
        plot = svg.scatter(
            [svg.Series("configurations (filled: Pareto front)", points, color=svg.PALETTE[0], front=True)],
            title=title,
            x_label="median latency per request, s (log scale)",
            y_label="energy per text, J (gross, log scale)",
            x_log=True,
            y_log=True,
        )
        columns = [
            Column("configuration", numeric=False),
            Column("serving", numeric=False),
            Column("accuracy"),
            Column("energy", "J / text"),
            Column("less energy than sequential", "×", title="J per text of the sequential configuration / this"),
            Column("throughput", "texts / s"),
            Column("latency median", "s", title="per request: its own call (sequential) or its batch's"),
            Column("latency p95", "s"),
            Column("per batch", "s", title="median seconds per engine call (batched and scoring)"),
            Column("Pareto front", numeric=False, title="no other configuration has both less energy and latency"),
        ]
        limit, limit_cells = limit_columns(group, limit_references(doc) if doc is not None else {})
        columns += limit
        for line, extra in zip(table_rows, limit_cells, strict=True):
            line += extra
        note = limit_note(doc, group) if doc is not None else ""
        views.append(ConfigurationView(title, plot, Table(columns, table_rows), note))
    return views
