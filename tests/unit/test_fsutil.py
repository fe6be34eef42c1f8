"""Every file other processes read (results, model lock, Slurm manifest) is written by one atomic, durable helper."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.catalog.lock import write_lock
from bench.fsutil import atomic_write_bytes
from bench.hpc.slurm import write_manifest
from bench.results import write_results
from tests.factories import document

WRITERS: dict[str, Callable[[Path], Path]] = {
    "results": lambda folder: (write_results(document(), folder / "results.json"), folder / "results.json")[1],
    "lock": lambda folder: write_lock({}, folder / "models.lock.json"),
    "manifest": lambda folder: write_manifest(folder, {"kind": "x"}),
}


@pytest.mark.parametrize("what", sorted(WRITERS))
def test_shared_files_are_fsynced_renamed_and_get_umask_permissions(
    what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    old = os.umask(0o022)
    try:
        path = WRITERS[what](tmp_path / "out")
    finally:
        os.umask(old)
    assert synced, f"{what}: written without fsync (a crash after the rename could leave an empty file)"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.json"
    atomic_write_bytes(path, b"old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]
