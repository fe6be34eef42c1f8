"""Rules of the package's structure, checked on its source with ``ast`` (nothing of ``bench`` is imported):

- one file hash: only ``bench/fsutil.py`` reads a file and hashes it (issue 22: the same file hash was written four
  times across the package).
"""

from __future__ import annotations

import ast
import functools
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "bench"


def _package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method of ``tree`` (nested ones too), with its qualified name (``Class.method``)."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{prefix}{child.name}", child
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def _own_calls(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Call]:
    """The calls in ``function``'s own body (lambdas included; nested functions and classes are checked apart)."""
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Call):
            yield node
        stack.extend(ast.iter_child_nodes(node))


# --------------------------------------------------------------------------------------------------------------
# One file hash

#: Calls that read a file's bytes: ``open(...)``, ``io.open``/``os.open``/``Path.open``, ``Path.read_bytes()``,
#: ``os.read``, ``readinto`` and ``mmap.mmap``.
_FILE_READERS = {"open", "read_bytes", "readinto", "mmap"}


def _hashlib_names(tree: ast.Module) -> set[str]:
    """Names the module binds to ``hashlib`` itself (``import hashlib [as h]``) or to its functions."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "hashlib"}
        elif isinstance(node, ast.ImportFrom) and node.module == "hashlib":
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def _calls_hashlib(call: ast.Call, hashlib_names: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in hashlib_names  # from hashlib import sha256; sha256(...)
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in hashlib_names


def _reads_a_file(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name == "read" and isinstance(func, ast.Attribute):
        return isinstance(func.value, ast.Name) and func.value.id == "os"  # os.read(fd, n)
    return name in _FILE_READERS


def file_hashers(tree: ast.Module) -> list[str]:
    """Functions of ``tree`` that both read a file and call ``hashlib``: a file hash."""
    hashlib_names = _hashlib_names(tree)
    found = []
    for name, function in _functions(tree):
        calls = list(_own_calls(function))
        if any(_calls_hashlib(c, hashlib_names) for c in calls) and any(_reads_a_file(c) for c in calls):
            found.append(name)
    return found


@pytest.mark.parametrize(
    "source",
    [
        # the four file hashes the package had before bench.fsutil.file_sha256 (issue 22)
        """
        import hashlib
        def lock_sha256(path):
            return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        """,
        """
        import hashlib
        def file_sha256(path):
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()
        """,
        """
        import hashlib as h
        class Pin:
            def weights(self, path):
                with open(path, "rb") as handle:
                    return h.file_digest(handle, "sha256").hexdigest()
        """,
        """
        from hashlib import sha256
        def digest(path):
            return sha256(open(path, "rb").read()).hexdigest()
        """,
    ],
)
def test_the_file_hash_detector_finds_a_file_hash(source: str) -> None:
    assert len(file_hashers(ast.parse(textwrap.dedent(source)))) == 1


@pytest.mark.parametrize(
    "source",
    [
        # content hashes of data in memory, as results.content_hash and data.content_sha256 compute them
        """
        import hashlib, json
        def content_hash(data):
            return "sha256:" + hashlib.sha256(json.dumps(data).encode()).hexdigest()
        """,
        """
        import hashlib
        def content_sha256(texts):
            digest = hashlib.sha256()
            for text in texts:
                digest.update(text.encode())
            return digest.hexdigest()
        def load(path):
            return content_sha256(path.read_text().splitlines())
        """,
    ],
)
def test_the_file_hash_detector_leaves_content_hashes_alone(source: str) -> None:
    assert file_hashers(ast.parse(textwrap.dedent(source))) == []


def test_only_fsutil_reads_a_file_to_hash_it() -> None:
    """Every file digest of the package goes through ``bench.fsutil.file_digest`` (``file_sha256`` for sha256): a
    function elsewhere that reads a file and calls hashlib is a second file hash."""
    found = [f"{_relative(path)}::{name}" for path in _package_files() for name in file_hashers(_tree(path))]
    assert found == ["bench/fsutil.py::file_digest"], (
        "hash files with bench.fsutil.file_sha256 (or file_digest), not with hashlib beside a file read"
    )
