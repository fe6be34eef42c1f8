"""A run interrupted by an earlier version of the kit resumes under this one: same settings hash, same splits, only
the missing cells run. The stored run (``tests/fixtures/resume``) was made by the runner before it was split into
``bench.run``; it is the smoke suite with the overrides of ``test_runner.request``, interrupted after two cells.

If a deliberate change of what the settings mean (a new hashed setting, a profile field) makes it unresumable, that
is a change users feel too: say so in the change, and store a new interrupted run here."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.results import load_results
from bench.runner import run
from bench.validation import check_document
from tests.integration.test_runner import request

STORED = Path(__file__).resolve().parents[1] / "fixtures" / "resume" / "cpu-smoke-before-split.results.json"
RUN_ID = "cpu-smoke-before-split"


def test_a_run_interrupted_before_the_split_resumes(tmp_path: Path) -> None:
    folder = tmp_path / RUN_ID
    folder.mkdir()
    shutil.copy(STORED, folder / "results.json")
    before = load_results(folder)
    assert before.status == "interrupted" and len(before.cells) == 2

    outcome = run(request(tmp_path, run_id=RUN_ID))

    assert outcome.resumed and outcome.skipped == 2 and outcome.ran == 2 and outcome.failed == 0
    after = load_results(outcome.results_path)
    assert after.status == "complete" and len(after.cells) == 4
    assert after.settings_sha256 == before.settings_sha256
    kept = {c.key: c for c in before.cells}
    assert all(after.cell_map()[key] == cell for key, cell in kept.items())  # the stored cells, untouched
    assert len(after.environment["sessions"]) == 2
    assert check_document(after) == []


def test_the_same_run_found_without_its_id(tmp_path: Path) -> None:
    """Without --run-id the newest unfinished run with the same settings is the one resumed."""
    folder = tmp_path / RUN_ID
    folder.mkdir()
    shutil.copy(STORED, folder / "results.json")
    outcome = run(request(tmp_path))
    assert outcome.resumed and outcome.run_id == RUN_ID and outcome.ran == 2
