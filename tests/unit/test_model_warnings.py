"""Warnings about the model, not the machine (issue 24, item 4): a cell that predicted one class for every text of a
test split that holds several. Computed from the document (one line per model and data set, whatever the
repetitions), shown by `bench summary`, the run's summary, the report and `bench validate` (exit unchanged); neither
flags (a redo would clear them) nor validity findings. (A test class absent from training: test_absent_classes.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.analysis import model_rows, model_warnings
from bench.cli import _console, _print_summary, main
from bench.report import render_report
from bench.results import write_results
from bench.validation import check_document, split_problems
from tests import factories

REPS = 10


def one_class_run(**overrides: object) -> object:
    """Ten repetitions of a model that says 'pos' for every text (the test split holds 'neg' and 'pos'), beside a
    model that learned something."""
    cells = [factories.cell(r, model="broken-clf", predictions=[1, 1, 1, 1]) for r in range(REPS)]
    cells += [factories.cell(r) for r in range(REPS)]
    suite = {"datasets": ["toy"], "models": ["linear-bow", "broken-clf"], "repetitions": REPS}
    models = {"linear-bow": {"paper_label": "Linear BoW"}, "broken-clf": {"kind": "classifier"}}
    return factories.document(cells, repetitions=REPS, suite=suite, models=models, **overrides)


def test_a_model_that_predicts_one_class_gets_one_warning_for_its_ten_repetitions() -> None:
    doc = one_class_run()
    (warning,) = model_warnings(doc)
    assert (warning.kind, warning.dataset, warning.model) == ("one-class", "toy", "broken-clf")
    assert warning.repetitions == tuple(range(REPS)) and warning.of == REPS
    assert "predicted class 'pos' for every test text in repetition(s) 0-9 (10 of 10)" in warning.message
    assert "the test split holds 2 classes" in warning.message
    # Not a machine condition, not an implausible reading: the document stays valid, nothing is flagged, and the
    # accuracy still counts (it is what the model did).
    assert split_problems(check_document(doc)) == ([], [])
    assert not any(c.flags or c.validity for c in doc.cells)
    row = next(r for r in model_rows(doc) if r.model == "broken-clf")
    assert row.n_ok == REPS and row.accuracy is not None and row.accuracy.mean == pytest.approx(0.5)


def test_what_is_not_a_one_class_warning() -> None:
    # Invalid answers (-1) beside one class are still one class; a test split of one class is predicted right.
    cells = [
        factories.cell(0, predictions=[1, -1, 1, 1]),
        factories.cell(1, predictions=[1, 1, 1, 1], labels=[1, 1, 1, 1]),
        factories.cell(2, predictions=[0, 1, 0, 0]),
    ]
    doc = factories.document(cells, repetitions=3)
    doc.datasets["toy"].test_labels["1"] = [1, 1, 1, 1]
    (warning,) = model_warnings(doc)
    assert warning.repetitions == (0,) and warning.of == 3
    # Without test labels (an older document) or predictions, nothing is judged.
    doc.datasets["toy"].test_labels = {}
    assert model_warnings(doc) == []
    assert model_warnings(factories.document([factories.cell(0, predictions=None)], repetitions=1)) == []


def test_one_class_in_some_repetitions_names_them_and_the_classes() -> None:
    cells = [factories.cell(r, predictions=[1, 1, 1, 1] if r < 2 else [0, 0, 0, 0]) for r in range(3)]
    cells.append(factories.cell(3))
    (warning,) = model_warnings(factories.document(cells, repetitions=4))
    assert "one class each ('neg' in 2, 'pos' in 0-1)" in warning.message and "(3 of 4)" in warning.message


def test_summary_report_and_validate_show_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run" / "results.json"
    write_results(one_class_run(status="complete"), path)
    assert main(["summary", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "model warning: broken-clf on toy: predicted class 'pos' for every test text in repetition(s) 0-9" in out
    assert out.count("model warning:") == 1
    assert main(["validate", str(path)]) == 0  # a warning: the exit status is unchanged
    out = capsys.readouterr().out
    assert out.startswith("OK ") and "  warning: broken-clf on toy: predicted class 'pos'" in out
    page = render_report(one_class_run())
    assert "1 model(s) predicted one class for every text" in page
    assert "broken-clf on toy: predicted class &#39;pos&#39; for every test text" in page


def test_the_runs_own_summary_shows_it_too(capsys: pytest.CaptureFixture[str]) -> None:
    """`bench run` prints the summary with warnings=False (it printed the run's warnings as they came); the model
    warnings need the cells, so the summary prints them."""
    _print_summary(one_class_run(), _console(), warnings=False)
    assert "model warning: broken-clf on toy" in " ".join(capsys.readouterr().out.split())
