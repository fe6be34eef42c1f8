"""A run folder is held by one process at a time: two ``bench run`` on one folder would each run every cell, and the
last to write would drop the other's cells without a word.

``hold_run_folder`` takes the folder before its results document is opened or created, in two layers:

- on this host, an ``flock`` through the kept library ``filelock`` (``FileLock``, timeout 0) on ``LOCK_NAME`` in the
  folder: a second run is refused at once, and the kernel lets go when the holder dies, however it dies;
- for every host, ``HOLDER_NAME``, a small JSON record of the holder (pid, host, when it started), written whole and
  exclusively once the flock is won and removed on release. It names the holder in the refusal; it lets a lock whose
  holder died on this host be taken over (its process is gone); and it keeps the folder another host's run holds,
  where flock may not be honoured across hosts (a shared file system under Slurm): that is honoured until the
  record is deleted, and the refusal says which file to delete when that host's run is gone.

Neither file is run data: whatever lists runs reads ``*/results.json``. ``LOCK_NAME`` stays in the folder after the
run (filelock keeps it, so later runs lock the same file); ``HOLDER_NAME`` is there only while a run holds it.
``check_reports_dir`` refuses a reports folder that cannot be written, before anything is loaded or metered.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import ConfigError
from bench.fsutil import now_iso

if TYPE_CHECKING:
    from filelock import BaseFileLock

#: The flock's file in the run folder (this host's mutual exclusion); it stays after the run.
LOCK_NAME = ".bench-run.lock"
#: The holder's record in the run folder (pid, host, started_at), there while a run holds the folder.
HOLDER_NAME = ".bench-run.holder.json"
#: How long a refused run waits for the holder's record when the holder has the flock but has not written it yet.
HOLDER_WAIT_S = 2.0


class RunFolderBusy(ConfigError):
    """The run folder is held by another ``bench run`` (a ConfigError: exit 2, before any energy is spent)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a run folder: its process id and start time (so a reused pid is not taken for it), host and when
    it took the folder (ISO 8601, UTC)."""

    pid: int
    host: str
    started_at: str
    process_started: float | None = None

    @classmethod
    def me(cls) -> Holder:
        """This process, now."""
        return cls(pid=os.getpid(), host=socket.gethostname(), started_at=now_iso(), process_started=_started(None))

    def describe(self) -> str:
        """``pid 1234 on host node7, started 2025-01-01T10:00:00+00:00``."""
        return f"pid {self.pid} on host {self.host}, started {self.started_at}"

    def here(self) -> bool:
        """Whether it is on this host."""
        return self.host == socket.gethostname()

    def running(self) -> bool:
        """Whether its process still runs on this host (the same process: a pid reused since is another one). Only
        meaningful for a holder ``here``; this process's own record is a leftover, as it has won the flock anew."""
        if self.pid == os.getpid():
            return False
        import psutil

        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            started = process.create_time()
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:  # another user's live process
            return True
        return self.process_started is None or abs(started - self.process_started) < 1.0


def _started(pid: int | None) -> float | None:
    """When process ``pid`` (None: this one) started, as psutil tells it; None when it cannot."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


class RunFolderLock:
    """A run folder held by this process (``hold_run_folder``); ``release`` lets it go (idempotent).

    ``took_over``: the holder whose lock was taken over (its process had died on this host), None when the folder was
    free."""

    def __init__(self, folder: Path, lock: BaseFileLock, holder: Holder, took_over: Holder | None) -> None:
        self.folder = folder
        self.holder = holder
        self.took_over = took_over
        self._lock: BaseFileLock | None = lock

    @property
    def held(self) -> bool:
        """Whether the folder is still held."""
        return self._lock is not None

    def release(self) -> None:
        """Remove the holder's record (when it is still this holder's) and release the flock."""
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        try:
            path = self.folder / HOLDER_NAME
            with contextlib.suppress(OSError, ConfigError):
                if _read_holder(path) == self.holder:
                    path.unlink()
        finally:
            lock.release()


def hold_run_folder(folder: Path) -> RunFolderLock:
    """Take run folder ``folder`` (made when missing) for this process, before its results document is opened or
    created; release it with ``RunFolderLock.release`` on every way out.

    A lock whose holder's process is gone on this host is taken over (``RunFolderLock.took_over`` names it). Raises
    RunFolderBusy naming the holder's pid, host and start when another run holds the folder (on this host, or on
    another host: then also which file to delete once that run is gone), and ConfigError (one line) when the folder
    cannot be written."""
    from filelock import FileLock, Timeout

    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / LOCK_NAME), timeout=0)
        lock.acquire()
    except Timeout:
        raise _busy(folder, _wait_for_holder(folder / HOLDER_NAME)) from None
    except OSError as exc:
        raise unwritable(folder, exc) from None
    try:
        me = Holder.me()
        took_over = _claim(folder, me)
    except OSError as exc:
        lock.release()
        raise unwritable(folder, exc) from None
    except BaseException:
        lock.release()
        raise
    return RunFolderLock(folder, lock, me, took_over)


def _claim(folder: Path, me: Holder) -> Holder | None:
    """With this host's flock won: write ``me`` as the holder's record, taking over the record of a holder whose
    process is gone on this host; returns that holder (None when there was no record). Raises RunFolderBusy for a
    holder on another host, or one that still runs here (its lock file was deleted under it)."""
    path = folder / HOLDER_NAME
    for _ in range(3):
        if _publish(path, me, replace=False):
            return None
        holder = _read_holder(path)
        if holder is None:  # removed since: its holder released the folder
            continue
        if not holder.here() or holder.running():
            raise _busy(folder, holder)
        _publish(path, me, replace=True)
        return holder
    raise _busy(folder, None)


def _publish(path: Path, holder: Holder, *, replace: bool) -> bool:
    """Write ``holder``'s record to ``path`` whole: a temporary file linked into place, so it never appears half
    written, and (unless ``replace``) only where no record is: False when one is there."""
    data = (json.dumps(asdict(holder), indent=1) + "\n").encode("utf-8")
    tmp = path.with_name(f"{path.name}.{holder.pid}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # exclusive and atomic, on NFS too
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive creation, then the content
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read_holder(path: Path) -> Holder | None:
    """The holder's record at ``path``; None when there is none. Raises RunFolderBusy for a record that cannot be
    read as one (naming the file to delete when no run uses the folder)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(
            pid=int(data["pid"]),
            host=str(data["host"]),
            started_at=str(data["started_at"]),
            process_started=None if data.get("process_started") is None else float(data["process_started"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunFolderBusy(
            f"run folder {path.parent} is held by a bench run whose record {path} cannot be read ({exc}); if no "
            f"bench run uses the folder, delete {path} and run again"
        ) from None


def _wait_for_holder(path: Path) -> Holder | None:
    """The holder's record, waiting up to ``HOLDER_WAIT_S`` for a holder that has won the flock but not written it
    yet; None when it has not."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        holder = _read_holder(path)
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.1)


def _busy(folder: Path, holder: Holder | None) -> RunFolderBusy:
    """The refusal for a folder ``holder`` holds: who, and what to do."""
    record = folder / HOLDER_NAME
    if holder is None:
        return RunFolderBusy(
            f"run folder {folder} is in use by another bench run on this host (it has not written {record} yet); "
            "wait for it to finish, or stop it, and run again"
        )
    if not holder.here():
        return RunFolderBusy(
            f"run folder {folder} is held by a bench run on another host: {holder.describe()}. Two runs on one "
            f"folder would drop each other's cells. If that run is gone (its job ended, its node died), delete "
            f"{record} and run again"
        )
    return RunFolderBusy(
        f"run folder {folder} is in use by another bench run: {holder.describe()}. Two runs on one folder would "
        f"drop each other's cells: wait for it to finish (or stop it: `kill {holder.pid}` keeps its cells), then "
        "run again"
    )


def unwritable(folder: Path, exc: OSError) -> ConfigError:
    """The one-line refusal of a run folder that cannot be made or written (``exc``: why)."""
    reason = exc.strerror or type(exc).__name__
    return ConfigError(
        f"--reports-dir: cannot write the run folder {folder} ({reason}); give a --reports-dir this user can write to"
    )


def check_reports_dir(reports_dir: Path) -> None:
    """Refuse, before anything is loaded or metered, a reports folder no run folder can be made in: a file where it
    or a folder above it should be, or a folder this user cannot write (ConfigError, one line, naming it)."""
    existing = reports_dir.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"--reports-dir {reports_dir}: {existing} is a file, not a folder; give a --reports-dir that is a folder "
            "(or can be made one)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "" if existing == reports_dir.absolute() else " (the folder it would be made in)"
        raise ConfigError(
            f"--reports-dir {reports_dir}: {existing}{what} is not writable by this user; give a --reports-dir "
            "you can write to"
        )
