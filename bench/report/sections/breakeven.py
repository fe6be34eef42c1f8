"""Break-even of trained models against zero-shot LLMs (``bench.breakeven``): a table per run and, per data set, a
plot of cumulative energy against texts classified, one line per model, training as the intercept
(``_breakeven.html.j2``). Training energy appears here only, never in an inference figure."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from bench.breakeven import BreakEven, break_evens, cumulative_energy
from bench.report import svg
from bench.report.format import Column, Table, Td, num

#: Points per plotted line (log-spaced texts): straight lines bend on log axes, so they are sampled.
LINE_POINTS = 48


@dataclass
class BreakEvenView:
    """The break-even table, and one cumulative-energy plot per data set (data set, SVG)."""

    table: Table
    plots: list[tuple[str, Markup]]


def _texts(value: float | None) -> str:
    return "never" if value is None else num(value)


def _ci(pair: BreakEven) -> str:
    if pair.never and pair.ci95_low is None:
        return "never"
    high = "never" if pair.ci95_high is None else num(pair.ci95_high)
    return f"{num(pair.ci95_low)} – {high}"


def _plot(dataset: str, pairs: list[BreakEven]) -> Markup:
    """Cumulative energy (J) against texts classified, log-log, from 1 text to 10x the largest finite break-even
    (at least 10,000 texts)."""
    finite = [p.texts for p in pairs if p.texts is not None] + [p.ci95_high for p in pairs if p.ci95_high]
    top = max([10_000.0] + [10 * t for t in finite])
    steps = [10 ** (i * math.log10(top) / (LINE_POINTS - 1)) for i in range(LINE_POINTS)]
    lines: dict[str, tuple[float, float]] = {}
    for p in pairs:
        lines.setdefault(p.model, (p.training_j, p.model_j_per_text))
        lines.setdefault(p.llm, (0.0, p.llm_j_per_text))
    series = [
        svg.Series(
            f"{name} (training {num(intercept)} J)" if intercept else f"{name} (zero-shot)",
            [],
            color=svg.PALETTE[i % len(svg.PALETTE)],
            line=cumulative_energy(intercept, per_text, steps),
        )
        for i, (name, (intercept, per_text)) in enumerate(lines.items())
    ]
    marks = [
        svg.Point(p.texts, p.training_j + p.model_j_per_text * p.texts, tip=f"{p.model} = {p.llm} at {num(p.texts)}")
        for p in pairs
        if p.texts is not None
    ]
    if marks:
        series.append(svg.Series("break-even", marks, color="#000000", marker="diamond"))
    return svg.scatter(
        series,
        title=f"Cumulative energy against texts classified · {dataset}",
        x_label="texts classified (log scale)",
        y_label="cumulative energy, J (gross, log scale)",
        x_log=True,
        y_log=True,
        label_points=False,
    )


def breakeven_view(doc: Any) -> BreakEvenView | None:
    """The break-even section of a run, or None where it has no trained model and LLM on one data set."""
    pairs = break_evens(doc)
    if not pairs:
        return None
    rows = [
        [
            Td(p.dataset, cls="name"),
            Td(p.model, cls="name"),
            Td(p.llm, cls="name"),
            Td(num(p.training_j), title=f"mean over {p.n_model} repetition(s)"),
            Td(num(p.model_j_per_text)),
            Td(num(p.llm_j_per_text), title=f"mean over {p.n_llm} repetition(s)"),
            Td(_texts(p.texts)),
            Td(_ci(p), title=f"percentile bootstrap over {p.n_model} x {p.n_llm} repetitions"),
        ]
        for p in pairs
    ]
    columns = [
        Column("data set", numeric=False),
        Column("trained model", numeric=False),
        Column("zero-shot LLM", numeric=False),
        Column("training", "J"),
        Column("model", "J / text"),
        Column("LLM", "J / text"),
        Column("break-even", "texts"),
        Column("95% CI", "texts"),
    ]
    notes = [
        "Break-even = training J / (LLM J per text - model J per text): after that many texts the trained model's "
        "training plus inference uses less energy than the LLM's inference alone; never where the model is not "
        "cheaper per text. Gross energy, all components.",
    ]
    if any(p.n_model < 2 or p.n_llm < 2 for p in pairs):
        notes.append("A side with one repetition adds no spread to the CI.")
    by_dataset: dict[str, list[BreakEven]] = defaultdict(list)
    for p in pairs:
        by_dataset[p.dataset].append(p)
    plots = [(dataset, _plot(dataset, items)) for dataset, items in by_dataset.items()]
    return BreakEvenView(Table(columns, rows, notes=notes), plots)
