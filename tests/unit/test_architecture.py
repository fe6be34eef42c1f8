"""Rules of the package's structure, checked on its source with ``ast`` (nothing of ``bench`` is imported):

- one file hash: only ``bench/fsutil.py`` reads a file and hashes it (issue 22: the same file hash was written four
  times across the package);
- no import cycle between the package's modules, counting lazy (function-level) imports, and rooms that do not
  import what builds on them (the catalog never imports a backend);
- no function over 100 lines in the folders listed in ``LENGTH_LIMITED_FOLDERS``.
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


# --------------------------------------------------------------------------------------------------------------
# No import cycle

#: Where an import statement sits: at module level (run on import; class bodies and module-level if/try included),
#: inside a function (the package imports lazily, so these run later, but a cycle through them is still a cycle of
#: the design), or under ``if TYPE_CHECKING:`` (never run; checked all the same).
MODULE, FUNCTION, TYPING = "module", "function", "typing"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _package_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in _package_files()}


def _imported_module(name: str) -> str | None:
    """The package module ``name`` is, or lies in (``bench.a.b.attr`` -> ``bench.a.b``); None outside ``bench``."""
    modules = _package_modules()
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            inside |= {id(child) for statement in node.body for child in ast.walk(statement)}
    return inside


def _in_functions(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for _, function in _functions(tree):
        inside |= {id(child) for statement in function.body for child in ast.walk(statement)}
    return inside


@functools.cache
def import_edges() -> dict[str, dict[str, tuple[str, int]]]:
    """importer -> {imported package module: (where, line)}, for every ``import`` / ``from ... import`` of a bench
    module anywhere in the package (the first such statement per pair, preferring module level). ``from bench.a
    import b`` is an edge to the module ``bench.a.b`` when ``b`` is one, else to ``bench.a``; relative imports are
    resolved. The parent packages an import runs first (``bench/a/__init__.py``) are not edges of their own."""
    rank = {MODULE: 0, FUNCTION: 1, TYPING: 2}
    edges: dict[str, dict[str, tuple[str, int]]] = {}
    for importer, path in _package_modules().items():
        tree = _tree(path)
        typing_only, in_function = _typing_only(tree), _in_functions(tree)
        out: dict[str, tuple[str, int]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importer's package, one level up per extra dot
                    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            where = TYPING if id(node) in typing_only else FUNCTION if id(node) in in_function else MODULE
            for name in names:
                target = _imported_module(name) if name.split(".")[0] == "bench" else None
                if target is None or target == importer:
                    continue
                if target not in out or rank[where] < rank[out[target][0]]:
                    out[target] = (where, node.lineno)
        edges[importer] = out
    return edges


def import_cycles(kinds: tuple[str, ...]) -> list[list[str]]:
    """The strongly connected groups of more than one module in the import graph of edges of ``kinds`` (Tarjan):
    each is at least one cycle."""
    graph = {m: [t for t, (where, _) in out.items() if where in kinds] for m, out in import_edges().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def _describe(groups: list[list[str]], kinds: tuple[str, ...]) -> str:
    lines = []
    for group in groups:
        lines.append(" <-> ".join(group))
        for importer in group:
            for target, (where, line) in sorted(import_edges()[importer].items()):
                if target in group and where in kinds:
                    lines.append(f"    {_relative(_package_modules()[importer])}:{line} imports {target} ({where})")
    return "\n".join(lines)


def test_the_import_graph_sees_lazy_and_type_only_imports() -> None:
    """The graph is built from the source: every module is a node, a function-level import and a type-only import
    are edges too, and ``from bench.a import b`` names the module ``b`` when it is one."""
    edges = import_edges()
    assert len(edges) == len(_package_files()) > 50
    assert edges["bench.backends.hf_pipeline"]["bench.backends.zero_shot"][0] == MODULE
    assert edges["bench.backends.zero_shot"]["bench.catalog.resolve"][0] == FUNCTION
    assert edges["bench.backends"]["bench.catalog.models"][0] == TYPING
    assert "bench.errors" in edges["bench.catalog.resolve"]


def test_module_level_imports_have_no_cycle() -> None:
    groups = import_cycles((MODULE,))
    assert groups == [], "import cycle at module level:\n" + _describe(groups, (MODULE,))


def test_no_import_cycle_at_any_level() -> None:
    """Counting function-level (lazy) and type-only imports too: two modules that import each other, at whatever
    depth, are one responsibility split in two or a responsibility in the wrong room (issue 22: model resolution
    lived in a backend, so the catalog imported the backends that import the catalog)."""
    kinds = (MODULE, FUNCTION, TYPING)
    groups = import_cycles(kinds)
    assert groups == [], "import cycle (lazy imports counted):\n" + _describe(groups, kinds)


#: Rooms of the package that must not import others, at any level: (importer prefix, forbidden prefix, why).
LAYERS = [
    ("bench.catalog", "bench.backends", "the catalog says what a model is and where its weights are; backends run it"),
    ("bench.catalog", "bench.run", "the catalog is read by the run path, not the other way round"),
    ("bench.data", "bench.backends", "data loading knows no model"),
    ("bench.data", "bench.run", "data loading is read by the run path, not the other way round"),
    ("bench.meters", "bench.backends", "meters and backends know nothing of each other (bench.window joins them)"),
    ("bench.meters", "bench.results", "a meter returns readings; the run stores them in the results schema"),
    ("bench.devices", "bench.backends", "a device reads hardware, whatever runs on it"),
    ("bench.devices", "bench.results", "a device returns readings; the run stores them in the results schema"),
    ("bench.backends", "bench.meters", "a backend runs the model, unaware of how its energy is metered"),
    ("bench.backends", "bench.devices", "a backend runs the model; the device layer is the meters'"),
]


@pytest.mark.parametrize(("importer", "forbidden", "why"), LAYERS)
def test_a_room_does_not_import_what_builds_on_it(importer: str, forbidden: str, why: str) -> None:
    found = [
        f"{_relative(_package_modules()[module])}:{line} imports {target} ({where})"
        for module, out in import_edges().items()
        if module == importer or module.startswith(f"{importer}.")
        for target, (where, line) in out.items()
        if target == forbidden or target.startswith(f"{forbidden}.")
    ]
    assert found == [], f"{importer} must not import {forbidden} ({why}):\n" + "\n".join(found)


# --------------------------------------------------------------------------------------------------------------
# Short functions

MAX_FUNCTION_LINES = 100
#: Folders (relative to the checkout) whose functions and methods must stay within MAX_FUNCTION_LINES, counted from
#: the ``def`` line to the last line of the body (docstring and nested functions included). One line per folder.
LENGTH_LIMITED_FOLDERS = [
    "bench/data",
    "bench/meters",
]


def long_functions(folder: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (N lines)`` of each function or method under ``folder`` longer than ``limit`` lines."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for name, function in _functions(_tree(path)):
            length = (function.end_lineno or function.lineno) - function.lineno + 1
            if length > limit:
                found.append(f"{_relative(path)}:{function.lineno} {name} ({length} lines)")
    return found


def test_the_length_check_counts_whole_functions() -> None:
    """Measured against the longest function of the package, wherever it is, so the check cannot pass by measuring
    nothing: a limit one below its length finds it."""
    lengths = [
        (function.end_lineno or function.lineno) - function.lineno + 1
        for path in _package_files()
        for _, function in _functions(_tree(path))
    ]
    longest = max(lengths)
    assert longest > 50
    assert long_functions(PACKAGE, limit=longest - 1) and not long_functions(PACKAGE, limit=longest)


@pytest.mark.parametrize("folder", LENGTH_LIMITED_FOLDERS)
def test_no_function_over_100_lines(folder: str) -> None:
    assert (REPO / folder).is_dir(), f"{folder}: no such folder"
    found = long_functions(REPO / folder)
    assert found == [], f"split these by responsibility (at most {MAX_FUNCTION_LINES} lines):\n" + "\n".join(found)
