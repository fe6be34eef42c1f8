"""A test class absent from the training split (issue 24, item 4): ``bench.data.classes.absent_class_warnings``
names the data set, the class and the repetitions, from what preflight has at hand (the labels and the splits);
its messages are run warnings, which `bench summary`, the report and `bench validate` show (exit unchanged)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.data.classes import (
    ABSENT_CLASS_START,
    absent_class_prefix,
    absent_class_warnings,
    is_absent_class_warning,
    repetition_ranges,
)
from bench.data.splits import Split, make_splits
from bench.report import render_report
from bench.results import SplitRecord, write_results
from tests import factories

REPS = 10


def test_a_test_class_absent_from_training_is_named_with_its_repetitions() -> None:
    labels = [0, 0, 1, 1, 2, 0, 1, 2]
    splits = [
        SplitRecord(repetition=0, seed=0, train_idx=[0, 1, 2, 3], test_idx=[4, 5, 6, 7]),  # 2 only in test
        SplitRecord(repetition=1, seed=1, train_idx=[0, 2, 4, 7], test_idx=[1, 3, 5, 6]),  # all test classes trained
        Split(repetition=2, seed=2, train_idx=(0, 1, 2, 3), test_idx=(4, 7)),  # 2 only in test, twice
    ]
    (warning,) = absent_class_warnings("reviews", labels, splits, ["neg", "pos", "mixed"])
    assert warning.startswith(f"{ABSENT_CLASS_START}: data set 'reviews', class 'mixed' (id 2)")
    assert (
        "in repetition(s) 0, 2 (2 of 3) it is in the test split (4 text(s) in all) and not in the training" in warning
    )
    assert is_absent_class_warning(warning) and is_absent_class_warning(warning, "reviews")
    assert not is_absent_class_warning(warning, "other") and warning.startswith(absent_class_prefix("reviews"))
    # One warning per class; none when every test class was trained on.
    two = absent_class_warnings("d", [0, 1, 2, 3], [Split(0, 0, (0, 1), (2, 3))], ["a", "b", "c", "d"])
    assert [w.split(":")[1] for w in two] == [" data set 'd', class 'c' (id 2)", " data set 'd', class 'd' (id 3)"]
    assert absent_class_warnings("d", labels, splits[1:2], ["neg", "pos", "mixed"]) == []


def test_absent_class_warnings_on_real_splits() -> None:
    """What preflight has at hand: the data's labels and ``make_splits``' records. A class of three rows in 103 is
    missing from the 20 training texts of some repetitions and present in their test texts."""
    labels = [0] * 50 + [1] * 50 + [2] * 3
    splits = make_splits(len(labels), labels, n_train=20, n_test=20, repetitions=REPS, seed=0)
    expected = [
        s.repetition
        for s in splits
        if 2 in {labels[i] for i in s.test_idx} and 2 not in {labels[i] for i in s.train_idx}
    ]
    assert expected, "the seed should give such a repetition"
    (warning,) = absent_class_warnings("mine", labels, splits, ["neg", "pos", "rare"])
    assert f"in repetition(s) {repetition_ranges(expected)} ({len(expected)} of {REPS})" in warning


def test_a_run_warning_of_an_absent_class_shows_in_summary_report_and_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warning = absent_class_warnings("toy", [0, 0, 1, 1, 2], [Split(0, 0, (0, 2), (1, 4))], ["neg", "pos", "x"])[0]
    path = tmp_path / "run" / "results.json"
    write_results(factories.document(status="complete", warnings=[warning]), path)
    assert main(["summary", str(path)]) == 0
    assert f"warning: {warning}" in " ".join(capsys.readouterr().out.split())
    assert main(["validate", str(path)]) == 0
    assert f"  warning: {warning}" in capsys.readouterr().out
    assert "test class absent from training: data set &#39;toy&#39;, class &#39;x&#39;" in render_report(
        factories.document(warnings=[warning])
    )


def test_repetition_ranges() -> None:
    assert repetition_ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert repetition_ranges([3, 3]) == "3" and repetition_ranges([]) == ""
