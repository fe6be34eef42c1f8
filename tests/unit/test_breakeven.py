"""Break-even of trained models against zero-shot LLMs (bench.breakeven) and its report section: the formula, never,
the bootstrap CI, pairing by data set, and the table and plot in a rendered report."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from bench.breakeven import bootstrap_ci, break_even_texts, break_evens, cumulative_energy
from bench.report import render_report
from bench.report.page import report_context
from bench.report.sample import sample_document
from bench.results import Cell, EnergyValue, TrainingWindow, Window


def energy(cpu: float) -> dict[str, EnergyValue]:
    return {
        "cpu": EnergyValue(energy_j=cpu, method="measured:rapl"),
        "ram": EnergyValue(energy_j=0.0, method="estimated:ram-0.375W/GB"),
        "gpu": EnergyValue(energy_j=None, method="unavailable", reason="no GPU"),
    }


def cell(model: str, rep: int, inference_j: float, training_j: float | None = None, dataset: str = "toy") -> Cell:
    training = None
    if training_j is not None:
        training = TrainingWindow(duration_s=1.0, loops=1, min_window_s=0.0, energy=energy(training_j))
    return Cell(
        dataset=dataset,
        model=model,
        repetition=rep,
        status="ok",
        started_at="t",
        finished_at="t",
        n_test=100,
        accuracy=0.8,
        duration_s=1.0,
        window=Window(duration_s=1.0, loops=1, min_window_s=0.0),
        energy=energy(inference_j),
        training=training,
    )


MODELS = {"setfit": {"kind": "finetuned"}, "linear-bow": {"kind": "traditional"}, "smollm2": {"kind": "llm"}}


def test_formula_and_never() -> None:
    assert break_even_texts(100.0, 0.1, 1.1) == pytest.approx(100.0)
    assert break_even_texts(100.0, 2.0, 1.0) is None  # not cheaper per text: never
    assert break_even_texts(0.0, 0.5, 0.5) is None
    with pytest.raises(ValueError, match="training energy"):
        break_even_texts(-1.0, 0.1, 1.0)
    assert cumulative_energy(10.0, 2.0, [0, 5]) == [(0.0, 10.0), (5.0, 20.0)]


def test_pairs_by_dataset_with_ci() -> None:
    cells = [
        # setfit: training 1000 J, inference 10 J per 100 texts (0.1 J/text), two repetitions that differ
        cell("setfit", 0, 10.0, 900.0),
        cell("setfit", 1, 10.0, 1100.0),
        # linear-bow: cheap training, cheap inference
        cell("linear-bow", 0, 1.0, 2.0),
        cell("linear-bow", 1, 1.0, 2.0),
        # the LLM: 110 J per 100 texts = 1.1 J/text
        cell("smollm2", 0, 110.0),
        # another data set without an LLM: no pair
        cell("setfit", 0, 10.0, 1000.0, dataset="other"),
    ]
    pairs = break_evens(SimpleNamespace(models=MODELS, cells=cells))
    assert [(p.dataset, p.model, p.llm) for p in pairs] == [
        ("toy", "setfit", "smollm2"),
        ("toy", "linear-bow", "smollm2"),
    ]
    setfit = pairs[0]
    assert setfit.training_j == pytest.approx(1000.0)
    assert setfit.model_j_per_text == pytest.approx(0.1) and setfit.llm_j_per_text == pytest.approx(1.1)
    assert setfit.texts == pytest.approx(1000.0)
    assert setfit.ci95_low == pytest.approx(900.0) and setfit.ci95_high == pytest.approx(1100.0)
    assert (setfit.n_model, setfit.n_llm) == (2, 1)
    assert pairs[1].texts == pytest.approx(2.0 / (1.1 - 0.01))


def test_never_when_the_model_costs_more_per_text() -> None:
    cells = [cell("setfit", 0, 500.0, 100.0), cell("smollm2", 0, 110.0)]
    (pair,) = break_evens(SimpleNamespace(models=MODELS, cells=cells))
    assert pair.never and pair.texts is None and pair.ci95_low is None and pair.ci95_high is None


def test_failed_or_flagged_cells_do_not_count() -> None:
    flagged = cell("setfit", 1, 10.0, 1e9)
    flagged.validity = ["window shorter than the minimum"]
    cells = [cell("setfit", 0, 10.0, 1000.0), flagged, cell("smollm2", 0, 110.0)]
    (pair,) = break_evens(SimpleNamespace(models=MODELS, cells=cells))
    assert pair.training_j == pytest.approx(1000.0) and pair.n_model == 1


def test_bootstrap_upper_end_unbounded_when_never_is_likely() -> None:
    low, high = bootstrap_ci([(100.0, 0.5), (100.0, 1.5)], [1.0])  # half the resamples are never
    assert high is None and low is not None and low > 0
    with pytest.raises(ValueError, match="at least one repetition"):
        bootstrap_ci([], [1.0])


def test_report_shows_table_and_plot_only_with_trained_models_and_llms() -> None:
    doc = sample_document(("tomatoes",), repetitions=2, predictions=False, serving=False)
    assert report_context(doc)["breakeven"] is None  # no training windows in this document
    cells = []
    for c in doc.cells:
        kind = doc.models[c.model]["kind"]
        if kind == "traditional" and c.status == "ok":
            c = dataclasses.replace(c) if dataclasses.is_dataclass(c) else c.model_copy()
            c.training = TrainingWindow(duration_s=0.1, loops=3, min_window_s=2.0, energy=energy(5.0))
        cells.append(c)
    doc = doc.model_copy(update={"cells": cells})
    view = report_context(doc)["breakeven"]
    assert view is not None and view.plots
    html = render_report(doc)
    assert 'id="breakeven"' in html and "Cumulative energy" in html and 'href="#breakeven"' in html
