"""Every file other processes read (results, model lock, Slurm manifest) is written by one atomic, durable helper;
every file digest of the package is computed by one streaming function (``bench.fsutil.file_sha256``)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import fsutil
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


def test_file_sha256_streams_a_file_of_several_blocks_to_the_digest_of_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 4099  # not a multiple of the block size
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    monkeypatch.setattr(fsutil, "HASH_BLOCK_BYTES", 4096)
    reads: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        handle = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        real_read = handle.read
        handle.read = lambda size=-1: (reads.append(size), real_read(size))[1]  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(Path, "open", counting_open)
    assert fsutil.file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert fsutil.file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    assert set(reads) == {4096} and len(reads) > len(data) // 4096  # streamed, never read whole


def test_file_sha256_of_an_empty_file_and_its_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert fsutil.file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        fsutil.file_sha256(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        fsutil.file_sha256(tmp_path)


def test_every_file_digest_of_the_package_is_the_one_function(tmp_path: Path) -> None:
    """The lock's hash, a data file's pin, a model folder's pin and git's blob id all read files through fsutil."""
    from bench.catalog.lock import git_blob_sha1, lock_sha256
    from bench.data.loaders import load_dataset

    table = tmp_path / "data.csv"
    table.write_text("text,label\na good film,pos\na bad film,neg\n", encoding="utf-8")
    digest = hashlib.sha256(table.read_bytes()).hexdigest()
    assert fsutil.file_sha256(table) == digest
    assert lock_sha256(table) == digest
    assert load_dataset(str(table)).pin["file_sha256"] == digest
    blob = f"blob {len(table.read_bytes())}\0".encode() + table.read_bytes()
    assert git_blob_sha1(table) == hashlib.sha1(blob, usedforsecurity=False).hexdigest()  # `git hash-object FILE`
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_bytes(b"{}")
    (folder / "sub" / "w.bin").write_bytes(b"\0" * 10)
    expected = hashlib.sha256(
        f"config.json\0{hashlib.sha256(b'{}').hexdigest()}\n"
        f"sub/w.bin\0{hashlib.sha256(bytes(10)).hexdigest()}\n".encode()
    ).hexdigest()
    assert fsutil.folder_sha256(folder) == expected
