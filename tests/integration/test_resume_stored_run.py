"""A run interrupted by an earlier version of the kit resumes under this one: same settings hash, same splits, only
the missing cells run. The stored run (``tests/fixtures/resume``) was made by the runner before it was split into
``bench.run``; it is the smoke suite with the overrides of ``test_runner.request``, interrupted after two cells.

If a deliberate change of what the settings mean (a new hashed setting, a profile field) makes it unresumable, that
is a change users feel too: say so in the change, and store a new interrupted run here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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


def test_the_run_id_alone_resumes_the_run_as_it_was_started(tmp_path: Path) -> None:
    """`bench run --run-id X` (what an interrupted run prints) brings back X's suite and overrides: it ran the
    default suite under X's name before."""
    from bench.cli import main
    from bench.results import load_results as load

    folder = tmp_path / RUN_ID
    folder.mkdir()
    shutil.copy(STORED, folder / "results.json")
    assert main(["run", "--reports-dir", str(tmp_path), "--run-id", RUN_ID, "--no-progress", "--no-report"]) == 0
    after = load(folder)
    assert after.status == "complete" and len(after.cells) == 4 and after.suite_name == "smoke"
    assert after.settings_sha256 == load_results(STORED).settings_sha256


def test_a_complete_run_rerun_by_its_id_is_left_as_it_was(tmp_path: Path) -> None:
    """Nothing to run: no new session, the same file and content hash (the leaderboard keys runs by it)."""
    first = run(request(tmp_path, run_id="done"))
    before = (first.results_path).read_bytes()
    again = run(request(tmp_path, run_id="done"))
    assert again.ran == 0 and again.skipped == 4 and again.resumed
    assert first.results_path.read_bytes() == before
    assert not (tmp_path / "done" / ".bench-run.holder.json").exists(), "the folder is let go with nothing to do"


def test_an_interrupted_run_says_the_command_that_resumes_it(tmp_path: Path) -> None:
    from bench.runner import RunInterrupted

    def stop(cell: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as err:
        run(request(tmp_path / "r", run_id="half"), on_cell=stop)
    assert f"To resume it: bench run --reports-dir {tmp_path / 'r'} --run-id half" in str(err.value)


def test_an_error_outside_a_cell_keeps_the_run_resumable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A meter failing between cells (not Ctrl-C) leaves the file 'interrupted', not 'running', and closes what the
    session opened."""
    from bench.errors import MeterError
    from bench.run.session import Session

    closed: list[bool] = []
    real_close = Session.close

    def close(self: Session) -> None:
        closed.append(True)
        real_close(self)

    def broken(self: Session, *args: object, **kwargs: object) -> None:
        raise MeterError("the RAPL counter vanished")

    monkeypatch.setattr(Session, "close", close)
    monkeypatch.setattr(Session, "end_of_session_idle", broken)
    with pytest.raises(MeterError, match="vanished"):
        run(request(tmp_path, run_id="broken"))
    doc = load_results(tmp_path / "broken")
    assert doc.status == "interrupted" and len(doc.cells) == 4 and closed


def test_other_settings_are_named_when_a_run_cannot_be_resumed(tmp_path: Path) -> None:
    from bench.errors import ConfigError

    folder = tmp_path / RUN_ID
    folder.mkdir()
    shutil.copy(STORED, folder / "results.json")
    with pytest.raises(ConfigError, match=r"settings\.min_window_s: 1\.0 now, 0\.2 in the run"):
        run(request(tmp_path, run_id=RUN_ID, min_window_s=1.0))
