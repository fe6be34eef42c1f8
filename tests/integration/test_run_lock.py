"""One `bench run` per run folder (issue 24, item 5): two runs with the same --run-id both ran every cell, the last
writer won and both exited 0; a reports folder that could not be written was a PermissionError traceback, exit 1.

Real runs of the smoke suite with the short windows of ``tests/integration/test_runner.py``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import ConfigError
from bench.results import load_results
from bench.run.lock import HOLDER_NAME, RunFolderBusy, hold_run_folder
from bench.run.plan import stored_runs
from bench.runner import RunInterrupted, run
from bench.validation import check_document
from tests.integration.test_resume_stored_run import RUN_ID, STORED
from tests.integration.test_runner import request

BENCH = [sys.executable, "-m", "bench.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
QUIET = ["--no-codecarbon", "--no-progress", "--no-report"]


def test_two_runs_on_one_run_id_one_runs_and_the_other_is_refused_at_once(tmp_path: Path) -> None:
    # idle baselines of 3 s at the start and end: the first run holds the folder long enough for the second to start
    args = ["run", "--suite", "smoke", "--min-window-s", "0.5", "--idle-s", "3", *QUIET]
    args += ["--reports-dir", str(tmp_path), "--run-id", "same"]
    first = subprocess.Popen([*BENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    record = tmp_path / "same" / HOLDER_NAME
    deadline = time.monotonic() + 120
    while not record.exists():
        if first.poll() is not None or time.monotonic() > deadline:
            first.kill()
            pytest.fail(f"the first run never held its folder: {first.communicate()[1]}")
        time.sleep(0.1)
    second = subprocess.run([*BENCH, *args], capture_output=True, text=True, env=ENV, timeout=120)
    assert first.poll() is None, "the first run ended before the second started: nothing was tested"
    assert second.returncode == 2, second.stderr
    host = socket.gethostname()
    assert f"is in use by another bench run: pid {first.pid} on host {host}, started " in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    doc = load_results(tmp_path / "same")
    assert doc.status == "complete" and len(doc.cells) == 4 and all(c.status == "ok" for c in doc.cells)
    # valid; flags (other processes: the second run's start, CI's neighbours) are the machine's, not an error
    assert [p for p in check_document(doc) if not p.flag] == []
    assert len(doc.environment["sessions"]) == 1, "the refused run added no session"
    assert not record.exists(), "released when the run ended"
    # the lock file left in the folder is not run data: one run listed, and it validates
    assert [d.run_id for _, d in stored_runs(tmp_path)] == ["same"]
    assert main(["validate", str(tmp_path / "same")]) == 0


def test_a_plain_run_that_would_resume_a_held_run_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / RUN_ID
    folder.mkdir()
    shutil.copy(STORED, folder / "results.json")
    before = (folder / "results.json").read_bytes()
    held = hold_run_folder(folder)  # another run resuming it holds the folder
    try:
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
            run(request(tmp_path))  # no --run-id: it finds the same unfinished run
    finally:
        held.release()
    assert (folder / "results.json").read_bytes() == before, "nothing written by the refused run"
    outcome = run(request(tmp_path))  # once it is free, the run resumes it
    assert outcome.resumed and outcome.run_id == RUN_ID and outcome.ran == 2


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_run_lock import dead_pid, write_record

    pid = dead_pid()
    write_record(tmp_path / "r1", pid=pid)
    outcome = run(request(tmp_path, run_id="r1", models=["linear-bow"], repetitions=1))
    assert outcome.ran == 1 and load_results(outcome.results_path).status == "complete"
    err = capsys.readouterr().err
    assert f"took over the lock of run folder {tmp_path / 'r1'}: its holder, pid {pid} on host " in err
    assert "is no longer running" in err
    assert not (tmp_path / "r1" / HOLDER_NAME).exists()


def test_another_hosts_lock_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_run_lock import write_record

    record = write_record(tmp_path / "r1", pid=4242, host="node-elsewhere-7")
    argv = ["run", "--suite", "smoke", "--model", "linear-bow", "--repetitions", "1", "--min-window-s", "0.2"]
    status = main([*argv, "--idle-s", "0", *QUIET, "--reports-dir", str(tmp_path), "--run-id", "r1"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "held by a bench run on another host: pid 4242 on host node-elsewhere-7" in err
    assert f"delete {record} and run again" in err
    assert not (tmp_path / "r1" / "results.json").exists() and json.loads(record.read_text())["pid"] == 4242


def test_the_folder_is_let_go_on_an_error_and_on_ctrl_c(tmp_path: Path) -> None:
    def stop(cell: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        run(request(tmp_path, run_id="r1", models=["linear-bow"]), on_cell=stop)
    assert not (tmp_path / "r1" / HOLDER_NAME).exists()
    with pytest.raises(ConfigError, match="other settings"):  # an error after the folder was taken
        run(request(tmp_path, run_id="r1", models=["linear-bow"], min_window_s=0.3))
    assert not (tmp_path / "r1" / HOLDER_NAME).exists()
    hold_run_folder(tmp_path / "r1").release()


@pytest.mark.parametrize("case", ["file", "not-writable"])
def test_an_unwritable_reports_folder_is_refused_before_any_energy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """It was a PermissionError (or NotADirectoryError) traceback and exit 1, after the idle baseline. Tests run as
    root, whom chmod does not stop: a folder under a regular file, and os.access saying no."""
    from bench.run import lock as run_lock
    from bench.run import loop

    def no_meters(*args: object, **kwargs: object) -> None:
        raise AssertionError("meters opened for a run that cannot be written")

    monkeypatch.setattr(loop, "Session", no_meters)
    if case == "file":
        (tmp_path / "a-file").write_text("x")
        reports = tmp_path / "a-file" / "reports"
    else:
        reports = tmp_path / "reports"
        real = os.access
        monkeypatch.setattr(run_lock.os, "access", lambda p, mode: Path(p) != tmp_path and real(p, mode))
    argv = ["run", "--suite", "smoke", "--model", "linear-bow", "--repetitions", "1", *QUIET]
    status = main([*argv, "--reports-dir", str(reports)])
    err = capsys.readouterr().err
    assert status == 2, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"bench: error: --reports-dir {reports}: ")
    assert ("is a file, not a folder" if case == "file" else "is not writable by this user") in line
