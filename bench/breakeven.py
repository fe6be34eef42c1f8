"""Break-even between a trained model and a zero-shot LLM: after how many classified texts the trained model's
training plus inference energy falls below the LLM's inference energy alone (issue 15).

For a trained model M and an LLM L on one data set, with T the energy of one training (J, ``Cell.training``) and
m, l the inference energy per text (J, a cell's energy per pass / its test texts), both summed over every measured
or estimated component, gross (as the report's energy figures):

    T + m n < l n   <=>   n > T / (l - m)

so the break-even is ``T / (l - m)`` texts, and "never" where ``l <= m`` (the trained model is not cheaper per text).
T and m are means over M's repetitions, l over L's. The 95% CI is a percentile bootstrap (``BOOTSTRAP_RESAMPLES``
resamples with a fixed seed, numpy): M's repetitions (each a (T, m) pair, from one cell) and L's repetitions are
resampled independently, since their repetitions need not pair up (an LLM may run fewer). A resample where
``l <= m`` counts as never (infinite): when more than 2.5 % of them do, the CI's upper end is unbounded (None).
With one repetition on a side its spread is not in the CI (``n_model``/``n_llm`` say so).
Only sound cells (ok, passed the plausibility checks: ``bench.analysis.sound_cells``) count.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.analysis import sound_cells, total_energy_j

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class BreakEven:
    """One (data set, trained model, LLM) pair. ``texts``: the break-even point estimate, None for never;
    ``ci95_low``/``ci95_high``: its bootstrap interval (``ci95_high`` None: unbounded, never within the interval)."""

    dataset: str
    model: str
    llm: str
    training_j: float
    model_j_per_text: float
    llm_j_per_text: float
    texts: float | None
    ci95_low: float | None
    ci95_high: float | None
    n_model: int
    n_llm: int

    @property
    def never(self) -> bool:
        return self.texts is None


def _per_text(cell: Any) -> float | None:
    total = total_energy_j(cell.energy)
    return total / cell.n_test if total is not None and cell.n_test else None


def break_even_texts(training_j: float, model_j_per_text: float, llm_j_per_text: float) -> float | None:
    """``training_j / (llm_j_per_text - model_j_per_text)`` texts; None (never) when the difference is not positive.

    Raises ValueError for a negative training energy."""
    if training_j < 0:
        raise ValueError(f"training energy must be >= 0 J, not {training_j}")
    saving = llm_j_per_text - model_j_per_text
    return training_j / saving if saving > 0 else None


def bootstrap_ci(
    model: Sequence[tuple[float, float]],
    llm: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float | None, float | None]:
    """95% percentile bootstrap interval of the break-even from M's (training J, J per text) repetitions and L's
    J per text repetitions; (low, None) when the upper end is never, (None, None) when the lower end is never too.
    Raises ValueError for an empty side."""
    if not model or not llm:
        raise ValueError("bootstrap_ci needs at least one repetition of each model")
    rng = np.random.default_rng(seed)
    m = np.asarray(model, dtype=float)
    lv = np.asarray(llm, dtype=float)
    mi = rng.integers(0, len(m), size=(resamples, len(m)))
    li = rng.integers(0, len(lv), size=(resamples, len(lv)))
    training = m[mi, 0].mean(axis=1)
    saving = lv[li].mean(axis=1) - m[mi, 1].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        texts = np.where(saving > 0, training / saving, np.inf)
    # Order statistics, no interpolation (interpolating towards an infinite resample would give nan).
    ordered = np.sort(texts)
    low, high = ordered[int(0.025 * (resamples - 1))], ordered[math.ceil(0.975 * (resamples - 1))]
    return (float(low) if math.isfinite(low) else None, float(high) if math.isfinite(high) else None)


def break_evens(doc: Any) -> list[BreakEven]:
    """Every (data set, trained model, LLM) pair of a results document with sound cells on both sides, in the
    document's model order. Trained: cells with a ``training`` window; LLM: ``models[name].kind == "llm"``."""
    models = getattr(doc, "models", None) or {}
    llms = {name for name, record in models.items() if (record or {}).get("kind") == "llm"}
    trained: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    zero_shot: dict[tuple[str, str], list[float]] = defaultdict(list)
    order: list[str] = []
    for cell in sound_cells(getattr(doc, "cells", None) or []):
        per_text = _per_text(cell)
        if per_text is None:
            continue
        if cell.model not in order:
            order.append(cell.model)
        training = getattr(cell, "training", None)
        if training is not None and cell.model not in llms:
            training_j = total_energy_j(training.energy)
            if training_j is not None:
                trained[(cell.dataset, cell.model)].append((training_j, per_text))
        elif cell.model in llms:
            zero_shot[(cell.dataset, cell.model)].append(per_text)
    out = []
    for (dataset, model), reps in sorted(trained.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        for (llm_dataset, llm), llm_reps in sorted(zero_shot.items(), key=lambda kv: order.index(kv[0][1])):
            if llm_dataset != dataset:
                continue
            training_j = float(np.mean([t for t, _ in reps]))
            model_j = float(np.mean([e for _, e in reps]))
            llm_j = float(np.mean(llm_reps))
            low, high = bootstrap_ci(reps, llm_reps)
            out.append(
                BreakEven(
                    dataset=dataset,
                    model=model,
                    llm=llm,
                    training_j=training_j,
                    model_j_per_text=model_j,
                    llm_j_per_text=llm_j,
                    texts=break_even_texts(training_j, model_j, llm_j),
                    ci95_low=low,
                    ci95_high=high,
                    n_model=len(reps),
                    n_llm=len(llm_reps),
                )
            )
    return out


def cumulative_energy(training_j: float, j_per_text: float, texts: Iterable[float]) -> list[tuple[float, float]]:
    """(texts, J) points of ``training_j + j_per_text * texts``: a line of the cumulative-energy plot."""
    return [(float(n), training_j + j_per_text * float(n)) for n in texts]
