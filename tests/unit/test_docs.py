"""The documentation stays true (issue 29).

- Commands: every ``sh`` block of the site's pages (``docs/``) and of the README is read line by line. A ``bench``
  line is parsed by the kit's own parser (``bench.cli.build_parser().parse_args``: an unknown option, a bad choice
  or a missing argument fails, which ``--help`` would not show), a ``make`` line must name targets the Makefile has
  (and its ``BENCH_ARGS`` must parse as options of ``bench run``). The blocks of the Getting started pages marked
  ``<!-- docs-test: run -->`` are run as they are written, in a scratch folder, offline, on the CPU, with this
  checkout's ``bench`` and ``python``.
- The generated reference (``docs/reference/``: the CLI, the results schema and its JSON Schema, the profile keys)
  equals what ``make docs-reference`` writes from the code now, and the JSON Schema accepts a results document the
  kit writes and refuses one it would refuse.
- The README's picture equals what ``make docs-pictures`` draws from its stored run; the README stays a front door
  (at most 150 lines) whose links lead to files that exist.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
RUN_MARKER = "<!-- docs-test: run -->"
README_MAX_LINES = 150


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    run: bool


def _pages() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]


def _blocks(page: Path) -> list[Block]:
    """The ``sh`` fenced blocks of ``page``; ``run`` when the line before the fence is the run marker."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i
            body = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            marked = start > 0 and lines[start - 1].strip() == RUN_MARKER
            blocks.append(Block(page, start + 1, "\n".join(body) + "\n", marked))
        i += 1
    return blocks


def _commands(code: str) -> list[list[str]]:
    """Each simple command of a block as its words: continuation lines joined, heredoc bodies skipped, comments
    dropped, split at ``&&``, ``||``, ``;`` and ``|``, leading ``VAR=value`` assignments left out."""
    commands: list[list[str]] = []
    logical: list[str] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", line)
        if heredoc:
            line = line[: heredoc.start()]
            while i + 1 < len(lines) and lines[i + 1].strip() != heredoc.group(1):
                i += 1
            i += 1
        logical.append(line)
        i += 1
    for line in logical:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|"):
                while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                    words.pop(0)
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
    return commands


def _make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, flags=re.MULTILINE))


def _parse_bench(argv: list[str]) -> str | None:
    """None when ``bench`` accepts ``argv``, else argparse's message."""
    from bench.cli import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return err.getvalue().strip().splitlines()[-1]
    return None


def _check_command(words: list[str], targets: set[str]) -> tuple[str | None, str | None]:
    """(what was checked, the problem or None) for one command; (None, None) for a command of another tool."""
    program = words[0]
    if program == "bench" or program.endswith("/bench"):
        return "bench", _parse_bench(words[1:])
    if program == "apptainer" and any(w.endswith(".sif") for w in words):  # the image's entrypoint is `bench`
        image = next(i for i, w in enumerate(words) if w.endswith(".sif"))
        return "bench", _parse_bench(words[image + 1 :])
    if program == "make":
        assignments = dict(w.split("=", 1) for w in words[1:] if "=" in w and not w.startswith("-"))
        named = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        missing = [t for t in named if t not in targets]
        if missing:
            return "make", f"no Makefile target {missing}"
        if "BENCH_ARGS" in assignments and "bench" in named:
            return "make", _parse_bench(["run", *shlex.split(assignments["BENCH_ARGS"])])
        return "make", None
    return None, None


def test_every_bench_and_make_command_in_the_docs_parses() -> None:
    targets = _make_targets()
    problems, checked = [], {"bench": 0, "make": 0}
    for page in _pages():
        for block in _blocks(page):
            for words in _commands(block.code):
                kind, problem = _check_command(words, targets)
                if kind:
                    checked[kind] += 1
                if problem:
                    where = f"{block.page.relative_to(REPO)}:{block.line}"
                    problems.append(f"{where}: `{shlex.join(words)}`: {problem}")
    assert not problems, "commands in the docs that the kit refuses:\n" + "\n".join(problems)
    # the pages hold many commands: a parser of blocks that found none would pass vacuously
    assert checked["bench"] >= 60 and checked["make"] >= 10, checked


def test_the_command_checker_can_fail() -> None:
    targets = _make_targets()
    assert _check_command(["bench", "run", "--no-such-option"], targets)[1]
    assert _check_command(["bench", "run", "--serving", "telepathy"], targets)[1]
    assert _check_command(["bench", "validate"], targets)[1]  # a missing argument
    assert _check_command(["make", "no-such-target"], targets)[1]
    assert _check_command(["make", "bench", "BENCH_ARGS=--repetitions two"], targets)[1]
    assert _check_command(["bench", "run", "--profile", "l4", "--model", "clf:./m"], targets) == ("bench", None)
    assert _check_command(["apptainer", "run", "--nv", "b.sif", "run", "--suite"], targets)[1]
    assert _commands("HF_HUB_OFFLINE=1 bench run --suite smoke  # a comment's 'quote\n") == [
        ["bench", "run", "--suite", "smoke"]
    ]
    assert _commands("python - <<'PY'\nbench is not a command here\nPY\nbench env && make test\n") == [
        ["python", "-"],
        ["bench", "env"],
        ["make", "test"],
    ]


def _run_blocks() -> list[Block]:
    return [b for page in sorted((DOCS / "getting-started").glob("*.md")) for b in _blocks(page) if b.run]


def test_getting_started_marks_commands_to_run() -> None:
    pages = {b.page.name for b in _run_blocks()}
    assert {"laptop.md", "own-model-cpu.md", "own-model-gpu.md", "other-hardware.md"} <= pages, pages


@pytest.mark.parametrize("block", _run_blocks(), ids=lambda b: f"{b.page.name}:{b.line}")
def test_getting_started_commands_run(block: Block, tmp_path: Path) -> None:
    """The block runs as written, in a scratch folder that sees the checkout's profiles, with this checkout's
    ``bench`` and ``python`` first on the PATH; exit 0 within two minutes."""
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, line in (
        ("bench", f'exec "{sys.executable}" -m bench.cli "$@"'),
        ("python", f'exec "{sys.executable}" "$@"'),
    ):
        (shims / name).write_text(f"#!/bin/sh\n{line}\n")
        (shims / name).chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "hardware_profiles").symlink_to(REPO / "hardware_profiles")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update(PATH=f"{shims}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    script = work / "block.sh"
    script.write_text(block.code)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    where = f"{block.page.relative_to(REPO)}:{block.line}"
    assert result.returncode == 0, (
        f"{where} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


# --- generated reference -----------------------------------------------------------------------------------------


def test_generated_reference_is_current() -> None:
    from bench.docs_reference import REGENERATE, stale

    paths = stale()
    assert not paths, f"stale generated docs {[str(p) for p in paths]}: regenerate them with `{REGENERATE}`"


def test_the_reference_lists_every_command_and_option() -> None:
    from bench.cli import build_parser

    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    run = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]
    for action in run._actions:
        for option in set(action.option_strings) - {"-h", "--help"}:
            assert f"`{option}" in page or f", {option}" in page, option
    for name in ("bench slurm", "bench leaderboard token create", "bench profiles validate"):
        assert f"\n## {name}\n" in page, name


def test_results_json_schema_accepts_a_document_the_kit_writes_and_refuses_a_wrong_one() -> None:
    import jsonschema

    from bench.results import load_results

    schema = json.loads((DOCS / "reference" / "results.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = load_results(REPO / "tests" / "fixtures" / "golden" / "cpu-default.results.json")
    data = doc.model_dump(mode="json")
    jsonschema.validate(data, schema)
    data["cells"][0]["energy_joules"] = 1.0  # a field the schema does not have
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


# --- README and its picture --------------------------------------------------------------------------------------


def test_readme_is_a_front_door_whose_links_exist() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) + re.findall(r'<img src="([^"]+)"', text)
    local = [t for t in targets if "://" not in t]
    assert len(local) >= 15
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_readme_picture_is_drawn_from_its_stored_run() -> None:
    spec = importlib.util.spec_from_file_location("docs_pictures", REPO / "scripts" / "docs_pictures.py")
    assert spec and spec.loader
    pictures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pictures)
    committed = (DOCS / "assets" / "accuracy-energy.svg").read_text(encoding="utf-8")
    assert pictures.chart_svg(pictures.STORED_RUN) == committed, (
        "docs/assets/accuracy-energy.svg differs from the report's chart of its stored run: `make docs-pictures`"
    )
