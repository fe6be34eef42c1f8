"""Small file and clock helpers shared by the modules that write state other processes read (results, the model
lock, the Slurm manifest): one implementation, so every such file is written the same safe way."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file in the same folder, fsync, then rename over ``path``.

    A crash (or a Slurm job killed mid-write) leaves the old file or the new one, never half of one; the fsync makes
    the rename durable on shared file systems before anyone reads it. The folder is created when missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=f"{path.suffix}.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); these files are shared (a Slurm folder, a leaderboard, a checkout),
        # so give them the permissions any other file written here would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def now_iso() -> str:
    """Now in UTC, ISO 8601 to the second (every timestamp the kit writes)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
