"""A test class that never occurs in a training split (issue 24, item 4) is named before any energy is spent: the
warning is printed, stored in the results' warnings and shown again by `bench validate` (exit unchanged)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import load_results

RUN = ["--profile", "cpu", "--model", "linear-bow", "--min-window-s", "0.1", "--idle-s", "0.1", "--no-codecarbon"]


def test_a_rare_class_absent_from_training_is_a_run_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [(f"great lovely film number {i} wonderful", "pos") for i in range(50)]
    rows += [(f"awful boring film number {i} terrible", "neg") for i in range(50)]
    rows += [(f"mixed feelings film {i} okay", "mixed") for i in range(3)]
    data = tmp_path / "rare.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("review", "stars"), *rows])
    argv = ["run", *RUN, "--dataset", str(data), "--text-column", "review", "--label-column", "stars"]
    argv += ["--n-train", "20", "--n-test", "20", "--repetitions", "4", "--reports-dir", str(tmp_path / "r")]
    assert main([*argv, "--run-id", "rare", "--no-progress", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "test class absent from training: data set 'rare', class 'mixed'" in err
    doc = load_results(tmp_path / "r" / "rare")
    (warning,) = [w for w in doc.warnings if w.startswith("test class absent from training")]
    assert "in repetition(s) 0-1 (2 of 4)" in warning
    assert main(["validate", str(tmp_path / "r" / "rare")]) == 0
    assert "warning: test class absent from training" in capsys.readouterr().out
