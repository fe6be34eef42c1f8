"""Small file and clock helpers shared across the package: atomic writes for state other processes read (results,
the model lock, the Slurm manifest), and the one function that hashes a file's bytes (data files, model weights, the
model lock), so every such file is written, and every file digest computed, the same way."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path

#: Bytes read per block when hashing a file: model weights are gigabytes and must not be read into memory whole.
HASH_BLOCK_BYTES = 1 << 20


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


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, as 64 lowercase hex digits; the file is streamed in 1 MiB blocks.

    The package's one file hash: data files (``pin['file_sha256']``), model weights and folders, the model lock.
    Raises OSError (FileNotFoundError, IsADirectoryError, PermissionError) when the file cannot be read.
    """
    return file_digest(path)


def file_digest(path: Path | str, *, algorithm: str = "sha256", prefix: bytes = b"") -> str:
    """Hex digest of ``prefix`` followed by a file's bytes, read in blocks of :data:`HASH_BLOCK_BYTES`.

    The one place the package reads a file to hash it. ``algorithm`` is a ``hashlib`` name (not used for security:
    these digests identify content); ``prefix`` serves digests with a header of their own (git's blob id hashes
    ``blob <size in bytes> NUL`` first). Raises OSError (FileNotFoundError, IsADirectoryError, PermissionError) when
    the file cannot be read, ValueError for an unknown algorithm.
    """
    digest = hashlib.new(algorithm, prefix, usedforsecurity=False)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """sha256 over a folder's files (recursively), as 64 lowercase hex digits.

    Bytes hashed: per file, sorted by path relative to ``folder``, ``relpath NUL file_sha256 LF`` (relpath with ``/``
    separators). Empty folder: the sha256 of no bytes. Raises OSError when a file cannot be read.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(folder).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()
