"""A run folder held by one process at a time (bench.run.lock): the holder's record, a stale lock taken over, another
host's honoured, an unwritable folder refused in one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.errors import ConfigError
from bench.run import lock as run_lock
from bench.run.lock import HOLDER_NAME, LOCK_NAME, RunFolderBusy, check_reports_dir, hold_run_folder
from bench.run.plan import stored_runs


def dead_pid() -> int:
    """The pid of a process that has ended."""
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(out.stdout)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return pid


def write_record(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": 1, "host": socket.gethostname(), "started_at": "2025-01-01T00:00:00+00:00", **fields}
    path = folder / HOLDER_NAME
    path.write_text(json.dumps(record))
    return path


def test_a_held_folder_names_its_holder_and_is_free_again_once_released(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "r1"
    held = hold_run_folder(folder)  # the folder is made
    record = json.loads((folder / HOLDER_NAME).read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname() and record["started_at"]
    assert held.took_over is None
    with pytest.raises(RunFolderBusy) as refused:
        hold_run_folder(folder)  # this host's flock: a second holder, even in the same process, is refused at once
    message = str(refused.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}, started {record['started_at']}" in message
    assert str(folder) in message and "\n" not in message
    held.release()
    held.release()  # idempotent
    assert not (folder / HOLDER_NAME).exists() and (folder / LOCK_NAME).exists()
    hold_run_folder(folder).release()


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path: Path) -> None:
    pid = dead_pid()
    write_record(tmp_path / "r", pid=pid)
    held = hold_run_folder(tmp_path / "r")
    assert held.took_over is not None and held.took_over.pid == pid
    assert json.loads((tmp_path / "r" / HOLDER_NAME).read_text())["pid"] == os.getpid()
    held.release()
    assert not (tmp_path / "r" / HOLDER_NAME).exists()


def test_a_pid_reused_by_another_process_is_not_taken_for_the_holder(tmp_path: Path) -> None:
    parent = psutil.Process(os.getppid())
    write_record(tmp_path / "reused", pid=parent.pid, process_started=parent.create_time() - 3600)
    held = hold_run_folder(tmp_path / "reused")
    assert held.took_over is not None and held.took_over.pid == parent.pid
    held.release()
    # the same pid with its own start time: that process holds it still (its lock file was deleted under it)
    write_record(tmp_path / "live", pid=parent.pid, process_started=parent.create_time())
    with pytest.raises(RunFolderBusy, match=f"pid {parent.pid} on host"):
        hold_run_folder(tmp_path / "live")
    assert json.loads((tmp_path / "live" / HOLDER_NAME).read_text())["pid"] == parent.pid, "left as it was"


def test_another_hosts_lock_is_honoured_and_the_message_says_how_to_clear_it(tmp_path: Path) -> None:
    record = write_record(tmp_path / "r", pid=dead_pid(), host="node-elsewhere-7")
    before = record.read_bytes()
    with pytest.raises(RunFolderBusy) as refused:
        hold_run_folder(tmp_path / "r")
    message = str(refused.value)
    assert "on another host" in message and "host node-elsewhere-7" in message
    assert f"delete {record} and run again" in message
    assert record.read_bytes() == before
    record.unlink()  # what the message says to do once that host's run is gone
    hold_run_folder(tmp_path / "r").release()


def test_an_unreadable_record_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / HOLDER_NAME).write_text("{not json")
    with pytest.raises(RunFolderBusy, match=f"delete {tmp_path / 'r' / HOLDER_NAME}"):
        hold_run_folder(tmp_path / "r")


def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as refused:
        hold_run_folder(blocker / "reports" / "r1")
    assert "cannot write the run folder" in str(refused.value) and "\n" not in str(refused.value)
    assert not isinstance(refused.value, RunFolderBusy)


def test_the_reports_folder_is_checked_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"a-file is a file, not a folder"):
        check_reports_dir(blocker / "reports")
    with pytest.raises(ConfigError, match=r"is a file, not a folder"):
        check_reports_dir(blocker)
    check_reports_dir(tmp_path / "new" / "deeper")  # made when the run starts: fine
    # tests run as root, whom chmod does not stop: the check asks os.access, as for any user
    real = os.access
    monkeypatch.setattr(run_lock.os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(ConfigError, match=r"not writable by this user") as refused:
        check_reports_dir(tmp_path / "reports")
    assert "(the folder it would be made in)" in str(refused.value) and "\n" not in str(refused.value)


def test_lock_files_are_not_taken_for_runs(tmp_path: Path) -> None:
    """A run that has taken its folder but not written its results yet, and a finished run's lock file, list as no
    run and as the one run."""
    held = hold_run_folder(tmp_path / "starting")
    assert list(stored_runs(tmp_path)) == []
    held.release()
    assert (tmp_path / "starting" / LOCK_NAME).exists() and list(stored_runs(tmp_path)) == []
