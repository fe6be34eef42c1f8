"""A run interrupted early says how many cells it has of how many planned, not '0/0'."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.report.sections.facts import head_facts
from bench.results import planned_cells, write_results
from tests.factories import cell, document


def test_planned_cells_follow_the_suite_and_per_model_repetitions() -> None:
    suite = {"models": ["a", "llm"], "datasets": ["x", "y"], "repetitions": 3, "model_repetitions": {"llm": 1}}
    assert planned_cells(suite) == 2 * (3 + 1)
    assert planned_cells({**suite, "repetitions": 1, "model_repetitions": {"llm": 5}}) == 2 * (1 + 1)  # capped
    assert planned_cells({"models": ["a"]}) is None  # an older or partial record: unknown, not zero


def test_an_interrupted_run_counts_against_its_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = {"datasets": ["toy"], "models": ["linear-bow", "xgboost-bow"], "repetitions": 2}
    doc = document([cell(0)], suite=suite, status="interrupted")
    assert ("cells", "1 ok, 0 failed, of 4") in head_facts(doc)
    write_results(doc, tmp_path / "run" / "results.json")
    main(["validate", str(tmp_path / "run")])
    assert "1/4 cells ok" in capsys.readouterr().out
