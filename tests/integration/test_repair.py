"""Repair, not redo (issue 22): a run whose cells all ran exits 0 when some were flagged, saying how many, why, and the
exact command that redoes them; `bench run --run-id X --redo-flagged` runs, in place and in a new session, only the
cells that failed, were flagged or are invalid, keeps every other cell byte for byte, and records the repair.

The flags are injected (two cells get another process's CPU share over their window), so the test does not depend
on this machine's load; windows are short as in ``test_runner`` (0.2 s: never judged by the real observer).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.cli import main
from bench.results import OtherLoad, canonical_json, load_results
from bench.run import cell as cells
from bench.validation import cell_flags, check_document

SMOKE = ["--profile", "cpu", "--suite", "smoke", "--min-window-s", "0.2", "--idle-s", "0.1", "--no-codecarbon"]
QUIET = ["--no-progress", "--no-report"]
FLAGGED = {("tomatoes-offline", "linear-bow", 1), ("tomatoes-offline", "xgboost-tfidf", 0)}


def _with_cells(monkeypatch: pytest.MonkeyPatch, change: Callable[[Any, dict[str, Any]], Any]) -> None:
    """Every cell the loop runs goes through ``change(cell, run_cell's keyword arguments)``."""
    real = cells.run_cell

    def run_cell(backend: Any, data: Any, dataset: str, model: str, rep: int, meters: Any, **kw: Any) -> Any:
        return change(real(backend, data, dataset, model, rep, meters, **kw), kw)

    monkeypatch.setattr(cells, "run_cell", run_cell)


def _others_beside(cell: Any, kw: dict[str, Any]) -> Any:
    """The two cells of ``FLAGGED`` ran beside another process using half the machine's CPU time."""
    if cell.key in FLAGGED and cell.status == "ok":
        wall_s = cell.window.duration_s
        cell.others = OtherLoad(
            wall_s=wall_s,
            logical_cpus=2,
            machine_busy_cpu_s=1.6 * wall_s,
            own_cpu_s=0.6 * wall_s,
            other_cpu_share=0.5,
            resolution_share=0.01,
            judged=True,
        )
        cell.flags = cell_flags(cell, kw["expectations"])
    return cell


def _cells_json(path: Path) -> dict[tuple[str, str, int], bytes]:
    """Each cell of a stored results.json as canonical JSON bytes, by key, read from the file as written."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {(c["dataset"], c["model"], c["repetition"]): canonical_json(c) for c in data["cells"]}


def test_flagged_cells_exit_0_and_are_repaired_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    argv = ["run", *SMOKE, "--reports-dir", str(reports), "--run-id", "r1", *QUIET]
    with monkeypatch.context() as patch:
        _with_cells(patch, _others_beside)
        assert main(argv) == 0  # every cell ran: flagged cells are not a failure
    out = capsys.readouterr().out
    redo = f"bench run --reports-dir {reports} --run-id r1 --redo-flagged"
    assert "2 cell(s) flagged (their energy is kept out of the means): other processes on the CPU (2)" in out
    assert f"redo them in place: {redo}\n" in out
    assert "--max-other-cpu-share" in out  # the alternative, for a machine that is never quiet
    assert "rerun those cells in a fresh run" not in out
    path = reports / "r1" / "results.json"
    before = load_results(path)
    assert {c.key for c in before.cells if c.flags} == FLAGGED and before.repairs == []
    problems = check_document(before)
    assert problems and all(p.flag for p in problems)  # valid, with warnings
    stored, written = _cells_json(path), path.read_bytes()

    assert main([*argv, "--strict"]) == 1  # for CI: flagged cells fail the command (nothing ran again)
    assert path.read_bytes() == written
    capsys.readouterr()

    assert main([*shlex.split(redo)[1:], *QUIET]) == 0  # exactly the command printed, on a quiet machine
    out = capsys.readouterr().out
    assert "cell(s) flagged" not in out and "redo them" not in out
    after = load_results(path)
    assert check_document(after) == []  # no problems, no flags
    assert after.status == "complete" and len(after.cells) == 4 and not any(c.flags for c in after.cells)
    now = _cells_json(path)
    for key, cell in stored.items():  # every other cell byte for byte as it was
        assert (now[key] == cell) == (key not in FLAGGED), key
    old = before.cell_map()
    for key in FLAGGED:  # the two redone in the new session
        assert after.cell_map()[key].started_at >= after.repairs[0].started_at > old[key].started_at
    (repair,) = after.repairs
    assert repair.session == 1 and len(after.environment["sessions"]) == 2
    assert repair.finished_at is not None and repair.finished_at >= repair.started_at
    assert {(c.dataset, c.model, c.repetition) for c in repair.cells} == FLAGGED
    for repaired in repair.cells:
        assert (
            repaired.before == "flagged"
            and repaired.reasons == old[repaired.dataset, repaired.model, repaired.repetition].flags
        )
    # its own idle baseline and calibration
    assert [(i.session, i.phase) for i in after.idle] == [(0, "start"), (0, "end"), (1, "start"), (1, "end")]
    assert [c.session for c in after.calibration] == [0, 1]

    unchanged = path.read_bytes()
    assert main([*shlex.split(redo)[1:], *QUIET]) == 0  # nothing left to redo: said, and the file stays
    assert "nothing to redo" in capsys.readouterr().err
    assert path.read_bytes() == unchanged
    _submit_before_and_after(tmp_path, written, unchanged, capsys)


def _submit_before_and_after(
    tmp_path: Path, flagged: bytes, repaired: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """The leaderboard (a real server over SQLite) takes the flagged run, its flagged cells out of the rankings, and
    then the repaired run, which replaces it instead of counting twice."""
    from bench.leaderboard import storage
    from tests.leaderboard.server import running

    db = tmp_path / "leaderboard.db"
    engine = storage.make_engine(db)
    storage.upgrade(engine)
    token = storage.create_token(engine, "tester")
    folder = tmp_path / "submit" / "r1"
    folder.mkdir(parents=True)
    with running(str(db), tmp_path / "server.log") as server:

        def rows() -> list[dict[str, Any]]:
            return httpx.get(f"{server.url}/datasets/tomatoes-offline.json", timeout=30).json()["rows"]

        (folder / "results.json").write_bytes(flagged)
        assert main(["submit", str(folder), "--to", server.url, "--token", token]) == 0
        assert "2 cell(s) flagged" in capsys.readouterr().out
        before = {r["model"]: r for r in rows()}
        assert {m: r["n_flagged"] for m, r in before.items()} == {"linear-bow": 1, "xgboost-tfidf": 1}
        (folder / "results.json").write_bytes(repaired)
        assert main(["submit", str(folder), "--to", server.url, "--token", token]) == 0
        assert "replaces submission(s)" in capsys.readouterr().out
        after = {r["model"]: r for r in rows()}
        assert {m: r["n_flagged"] for m, r in after.items()} == {"linear-bow": 0, "xgboost-tfidf": 0}
        assert storage.count_submissions(engine) == 1
    engine.dispose()


def test_a_failed_cell_exits_1_and_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Raising:
        """The loaded backend, whose fit raises (a cell that runs out of memory)."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def fit(self, *args: Any, **kwargs: Any) -> None:
            raise MemoryError("CUDA out of memory (simulated)")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    real = cells.run_cell

    def run_cell(backend: Any, data: Any, dataset: str, model: str, rep: int, meters: Any, **kw: Any) -> Any:
        if model == "xgboost-tfidf":
            backend = Raising(backend)
        return real(backend, data, dataset, model, rep, meters, **kw)

    reports = tmp_path / "reports"
    argv = ["run", *SMOKE, "--repetitions", "1", "--reports-dir", str(reports), "--run-id", "f1", *QUIET]
    with monkeypatch.context() as patch:
        patch.setattr(cells, "run_cell", run_cell)
        assert main(argv) == 1  # a cell failed with an error
    out = capsys.readouterr().out
    redo = f"bench run --reports-dir {reports} --run-id f1 --redo-flagged"
    assert f"redo them in place: {redo}\n" in out
    path = reports / "f1" / "results.json"
    stored = _cells_json(path)
    failed = ("tomatoes-offline", "xgboost-tfidf", 0)
    assert load_results(path).cell_map()[failed].status == "failed"

    assert main([*shlex.split(redo)[1:], *QUIET]) == 0
    after = load_results(path)
    assert check_document(after) == [] and all(c.status == "ok" for c in after.cells)
    assert _cells_json(path)[("tomatoes-offline", "linear-bow", 0)] == stored[("tomatoes-offline", "linear-bow", 0)]
    (repair,) = after.repairs
    ((repaired),) = repair.cells
    assert (repaired.dataset, repaired.model, repaired.repetition, repaired.before) == (*failed, "failed")
    assert repaired.reasons and "MemoryError" in repaired.reasons[0]


def test_redo_flagged_needs_a_stored_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *SMOKE, "--reports-dir", str(tmp_path), "--redo-flagged", *QUIET]) == 2
    assert "--redo-flagged repairs a stored run: name it with --run-id" in capsys.readouterr().err
    assert main(["run", *SMOKE, "--reports-dir", str(tmp_path), "--run-id", "nope", "--redo-flagged", *QUIET]) == 2
    assert "no stored run nope under" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_run_made_with_measurement_options_is_repaired_by_the_command_validate_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--run-id X` alone restores what run X recorded in its profile (here --max-other-cpu-share and
    --grid-intensity), so the redo command `bench validate`, `bench summary` and the report print works as printed."""
    reports = tmp_path / "reports"
    options = ["--max-other-cpu-share", "0.4", "--grid-intensity", "300"]
    argv = ["run", *SMOKE, *options, "--repetitions", "1", "--reports-dir", str(reports), "--run-id", "m1", *QUIET]
    with monkeypatch.context() as patch:
        _with_cells(patch, _others_beside)
        assert main(argv) == 0
    capsys.readouterr()
    folder = reports / "m1"
    assert main(["validate", str(folder)]) == 0
    printed = capsys.readouterr().out.split("redo them in place with `")[1].split("`")[0]
    assert printed == f"bench run --reports-dir {reports} --run-id m1 --redo-flagged"
    assert main(["summary", str(folder)]) == 0
    assert f"`{printed}`" in capsys.readouterr().out.replace("\n", "")
    assert main([*shlex.split(printed)[1:], *QUIET]) == 0  # the settings restored: not "made with other settings"
    after = load_results(folder)
    assert check_document(after) == [] and after.profile["measurement"]["max_other_cpu_share"] == 0.4
    assert len(after.repairs) == 1 and len(after.repairs[0].cells) == 1


def test_a_repair_stopped_before_any_cell_records_nothing_and_keeps_the_run_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    argv = ["run", *SMOKE, "--reports-dir", str(reports), "--run-id", "s1", *QUIET]
    with monkeypatch.context() as patch:
        _with_cells(patch, _others_beside)
        assert main(argv) == 0
    capsys.readouterr()

    def stop(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # Ctrl-C during the repair's calibration, before any cell

    with monkeypatch.context() as patch:
        patch.setattr("bench.calibration.calibrate", stop)
        assert main([*argv, "--redo-flagged"]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 0 of 2 cells" in err and "--redo-flagged" in err
    doc = load_results(reports / "s1")
    assert doc.status == "complete" and doc.repairs == []  # every cell of the grid is there; none was redone
    assert {c.key for c in doc.cells if c.flags} == FLAGGED

    assert main([*argv, "--redo-flagged"]) == 0  # the repair, run again, does it
    (repair,) = load_results(reports / "s1").repairs
    assert len(repair.cells) == 2 and repair.finished_at is not None


def test_redo_flagged_of_an_unfinished_run_without_flags_is_a_plain_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import build_parser
    from bench.run import loop
    from bench.run.options import request_from_args

    reports = tmp_path / "reports"
    argv = ["run", *SMOKE, "--repetitions", "1", "--reports-dir", str(reports), "--run-id", "u1", *QUIET]

    def stop_after_one(cell: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(loop.RunInterrupted):
        loop.run(request_from_args(build_parser().parse_args(argv)), on_cell=stop_after_one)
    assert load_results(reports / "u1").status == "interrupted"
    assert main([*argv, "--redo-flagged"]) == 0
    doc = load_results(reports / "u1")
    assert doc.status == "complete" and len(doc.cells) == 2 and doc.repairs == []  # nothing was repaired
