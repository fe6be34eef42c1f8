"""Reports and the leaderboard read results; they never import the run path (``bench.run``, ``bench.runner``).

Every import statement is read from the source (``ast``): at module level and inside functions, ``import x`` and
``from x import y`` (relative ones resolved). Directly: no module under ``bench/report`` or ``bench/leaderboard``
names the run path. Transitively: following every such import into the other ``bench`` modules (a function-level
import counts as if it ran: an over-approximation, so the check is conservative), the run path is never reached.
Imports built from strings at run time (``importlib.import_module``, lazy ``"module:Class"`` names) are not seen.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bench"
#: The layers that read results, and the run path they must not reach.
READERS = ("bench.report", "bench.leaderboard")
RUN_PATH = ("bench.run", "bench.runner")


def module_name(path: Path) -> str:
    """``bench/report/page.py`` -> ``bench.report.page``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def named_imports(module: str) -> list[tuple[int, str]]:
    """Every name an import statement of ``module`` refers to, with its line: ``import a.b`` gives ``a.b``;
    ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (c may be a submodule); relative imports resolved."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            out.append((node.lineno, source))
            out.extend((node.lineno, f"{source}.{alias.name}") for alias in node.names)
    return out


def in_run_path(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in RUN_PATH)


@cache
def bench_dependencies(module: str) -> frozenset[str]:
    """The ``bench`` modules importing ``module`` executes (any import statement in it, and every package above)."""
    found: set[str] = set()
    for _, name in named_imports(module):
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES)
    found.discard(module)
    return frozenset(found)


def reader_modules() -> list[str]:
    return [m for m in MODULES if any(m == r or m.startswith(r + ".") for r in READERS)]


def test_the_scan_sees_the_modules_and_their_function_level_imports() -> None:
    """The scan is not blind: it finds the readers, a function-level import and a relative one."""
    readers = reader_modules()
    assert "bench.report.sections.timeline" in readers and "bench.leaderboard.validate" in readers
    # leaderboard.validate imports bench.validation inside a function (so `bench submit` needs no SQLAlchemy)
    assert "bench.validation" in bench_dependencies("bench.leaderboard.validate")
    assert "bench.run.cell" in bench_dependencies("bench.run.session")  # a run module: the walk would see it


@pytest.mark.parametrize("module", reader_modules())
def test_no_reader_names_the_run_path(module: str) -> None:
    named = [f"line {line}: {name}" for line, name in named_imports(module) if in_run_path(name)]
    assert named == [], f"{module} imports the run path: {named}; what it needs belongs with the results or meters"


def test_no_reader_reaches_the_run_path_through_other_modules() -> None:
    """Breadth first from every reader through ``bench``; a module of the run path reached is named with the chain
    of imports that leads to it."""
    came_from: dict[str, str | None] = {m: None for m in reader_modules()}
    queue = list(came_from)
    while queue:
        module = queue.pop(0)
        for dependency in sorted(bench_dependencies(module)):
            if dependency not in came_from:
                came_from[dependency] = module
                queue.append(dependency)
    chains = []
    for reached in sorted(m for m in came_from if in_run_path(m)):
        chain, at = [reached], came_from[reached]
        while at is not None:
            chain.append(at)
            at = came_from[at]
        chains.append(" <- ".join(chain))
    assert chains == [], "the run path is reached from reports or the leaderboard:\n" + "\n".join(chains)
