"""The layout of ``bench.run`` (issue 22): the loop runs as named phases, no function of the run path is over 100
lines, and the run options are declared once."""

from __future__ import annotations

import ast
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "bench" / "run"
#: The most lines a function of ``bench/run/`` may have (decorators and docstring included).
MAX_FUNCTION_LINES = 100


def long_functions(folder: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (N lines)`` for every function or method under ``folder`` longer than ``limit`` lines."""
    out = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - first + 1
                if lines > limit:
                    out.append(f"{path.relative_to(folder.parent)}:{first} {node.name} ({lines} lines)")
    return out


def test_no_function_in_bench_run_is_over_100_lines() -> None:
    assert long_functions(RUN) == []


def test_the_scan_sees_a_long_function(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "pkg" / "m.py").write_text(f"def long():\n{body}\n\ndef short():\n    return 1\n")
    assert long_functions(tmp_path / "pkg") == [f"pkg/m.py:1 long ({MAX_FUNCTION_LINES + 1} lines)"]


def test_the_loop_runs_as_named_phases() -> None:
    from bench.run import loop

    for phase in ("prepare", "idle_baseline", "calibration", "run_grid", "finish"):
        assert callable(getattr(loop, phase)), phase
