"""The options of a run, declared once (``RUN_OPTIONS``): adding an option to ``bench run`` is one ``RunOption`` here.

Each record says what the option is (flag, argparse type, help), which ``RunRequest`` field it sets and how
(``request``), and where it travels. From this one list are built:

- the ``bench run`` parser (``add_run_options``) and the ``RunRequest`` of its parsed arguments (``request_from_args``);
- the ``bench slurm`` parser (options with ``slurm``) and the run fields of a ``SlurmRequest`` (``run_fields``);
- the arguments a run inside a container is given unchanged (``container_args``; files, models and folders are
  mounted by ``bench.containers.launch.container_run``, which names them by their place inside);
- every Slurm task's ``bench run`` line (``task_args``, from the manifest's ``overrides``);
- the command that resumes an interrupted run (``resume_command``: ``--run-id X`` restores what run X recorded,
  ``stored``; the options with ``resume`` are given again, as they are part of the profile it recorded).

Importing this module stays light (argparse-level only); profiles are loaded when a request is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bench.catalog.models import SERVING_BOOLEANS, SERVING_DTYPES, SERVING_MODES, SERVING_QUANTIZATIONS
from bench.cliargs import parse_data_paths, parse_pairs
from bench.errors import ConfigError

if TYPE_CHECKING:
    from bench.config import HardwareProfile
    from bench.results import ResultDocument
    from bench.run.request import RunRequest

#: Where an option's value goes: the ``bench run`` parser, the ``bench slurm`` parser, a container's run, a Slurm
#: task's line, the resume command.
Place = Literal["run", "slurm", "container", "task", "resume"]


@dataclass(frozen=True)
class RunOption:
    """One option of a run.

    ``flag``/``help``/``action``/``type``/``metavar``/``choices``/``default``: what argparse is given (``dest`` is
    the flag's name with ``_``; a callable ``default`` is called when the parser is built). ``field``: the
    ``RunRequest`` field it sets (``serving.KEY``: a key of the request's ``serving`` configuration; None: how or
    where the command runs, not part of the request). ``request``: the parsed value -> the request fields it sets
    (default: ``{field: value}``). ``words``: the field's value -> the words that give it again (default: by the
    value's type; nothing for None, False, empty or the default). ``stored``: what ``bench run --run-id X`` alone
    takes when the option is not given: the value run X recorded. ``profile_key``: the profile setting it overrides
    (``measurement.FIELD``, ``llm.truncate``), applied by ``run_profile``; ``meaning``: what such a value must be
    (named in errors). Where it travels: ``slurm`` (``bench slurm`` takes it; a string: its help there),
    ``container`` (passed unchanged to a container's run), ``task`` (on every Slurm task's line), ``resume`` (given
    again by the resume command)."""

    flag: str
    help: str
    field: str | None = None
    action: Literal["store", "store_true", "append"] = "store"
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    default: Any = None
    request: Callable[[Any], dict[str, Any]] | None = None
    words: Callable[[Any], list[str]] | None = None
    stored: Callable[[ResultDocument], Any] | None = None
    profile_key: str | None = None
    meaning: str | None = None
    slurm: bool | str = False
    container: bool = False
    task: bool = False
    resume: bool = False

    @property
    def dest(self) -> str:
        """The argparse destination: ``--min-window-s`` -> ``min_window_s``."""
        return self.flag.lstrip("-").replace("-", "_")

    def places(self) -> set[str]:
        """Where the option goes (``Place`` values)."""
        flags = {"slurm": self.slurm, "container": self.container, "task": self.task, "resume": self.resume}
        return {"run"} | {place for place, on in flags.items() if on}

    def add_to(self, parser: argparse.ArgumentParser, *, slurm: bool = False) -> None:
        """Add the option to ``parser`` (``slurm``: as ``bench slurm`` takes it)."""
        kwargs: dict[str, Any] = {"help": self.slurm if slurm and isinstance(self.slurm, str) else self.help}
        if self.action != "store":
            kwargs["action"] = self.action
        for key in ("type", "metavar"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        if self.default is not None:
            kwargs["default"] = self.default() if callable(self.default) else self.default
        if self.choices is not None:
            kwargs["choices"] = list(self.choices)
        parser.add_argument(self.flag, **kwargs)

    def fields(self, value: Any) -> dict[str, Any]:
        """The request fields a parsed value sets (empty for an option outside the request)."""
        if self.request is not None:
            return self.request(value)
        if self.field is None:
            return {}
        return {self.field: value}

    def value_of(self, source: RunRequest | Mapping[str, Any]) -> Any:
        """The option's field in a request, or in a mapping of request fields (a manifest's ``overrides``); None
        when absent."""
        if self.field is None:
            return None
        name, _, key = self.field.partition(".")
        value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
        return (value or {}).get(key) if key else value

    def words_of(self, value: Any) -> list[str]:
        """The words that give the field's ``value`` again (``--repetitions 3``; a mapping as ``--data K=V`` per
        item; a switch alone); none for None, False, an empty value or the parser's default."""
        if self.words is not None:
            return self.words(value)
        if value is None or value is False or (isinstance(value, dict | list | tuple) and not value):
            return []
        if self.default is not None and _text(value) == _text(self.default):
            return []
        if self.action == "store_true":
            return [self.flag]
        if isinstance(value, Mapping):
            return [w for k, v in value.items() for w in (self.flag, f"{k}={v}")]
        if isinstance(value, list | tuple):
            return [w for v in value for w in (self.flag, _text(v))]
        return [self.flag, _text(value)]

    def raw_words(self, value: Any) -> list[str]:
        """The words that give a parsed value again exactly as typed (a container's run): a switch alone, a
        repeatable option once per value; none for None, False or the parser's default."""
        if value is None or value is False or (self.default is not None and value == self.default):
            return []
        if self.action == "store_true":
            return [self.flag]
        if isinstance(value, list):
            return [w for v in value for w in (self.flag, str(v))]
        return [self.flag, str(value)]


def _text(value: Any) -> str:
    """A value as a command-line word: a float as short as it reads back exactly (``120``, ``0.3``)."""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _pairs_words(flag: str) -> Callable[[Any], list[str]]:
    """``--label-names 0=neg,1=pos``: a mapping as one comma-separated word."""
    return lambda value: [flag, ",".join(f"{k}={v}" for k, v in value.items())] if value else []


def _load_profile(value: str) -> dict[str, Any]:
    return {"profile": load_profile_or_auto(value)}


def load_profile_or_auto(value: str) -> Any:
    """``--profile`` as a profile: ``auto`` is this machine's (``bench.machine_profile.auto_profile``: the matching
    profile of the profiles folder, else one made from the machine), anything else a name or a TOML path."""
    from bench.config import load_profile

    if value != "auto":
        return load_profile(value)
    from bench.environment import detect_machine
    from bench.machine_profile import auto_profile

    return auto_profile(detect_machine())[0]


def _profile_words(profile: Any) -> list[str]:
    """``--profile`` as a resume command gives it: the name, ``auto`` for a profile made from the machine and not
    written (its name is no file), nothing for the default cpu."""
    from bench.config import list_profiles
    from bench.machine_profile import LOCAL_PREFIX

    if profile.name == "cpu":
        return []
    if profile.name.startswith(LOCAL_PREFIX) and profile.name not in list_profiles():
        return ["--profile", "auto"]
    return ["--profile", profile.name]


def _suite_fields(value: str | None) -> dict[str, Any]:
    return {"suite_name": value or "default", "suite_given": value is not None}


def _settings(key: str) -> Callable[[ResultDocument], Any]:
    """The value run X recorded in its settings under ``key``."""
    return lambda doc: doc.settings.get(key)


def _suite(key: str) -> Callable[[ResultDocument], Any]:
    """The value run X recorded in its suite under ``key``."""
    return lambda doc: doc.suite.get(key)


_SUITE_HELP = (
    "suite of the profile (default: default; with a --dataset file or a clf:/hf: --model and no --suite, an ad-hoc "
    "suite of what you name; adhoc: that suite of catalog names too, e.g. --suite adhoc --dataset tomatoes-offline "
    "--model smollm2-135m-gguf)"
)

#: Every option of ``bench run``, in the order ``bench run --help`` lists them.
RUN_OPTIONS: list[RunOption] = [
    RunOption(
        "--profile",
        "hardware profile name or TOML path, or auto: the profile that matches this machine, else one made from it "
        "(`bench profiles init` writes it) (default: $BENCH_PROFILE, which the images set, else cpu)",
        field="profile",
        default=lambda: os.environ.get("BENCH_PROFILE", "cpu"),  # when the parser is built: tests set it
        request=_load_profile,
        words=_profile_words,
        resume=True,
    ),
    RunOption("--suite", _SUITE_HELP, field="suite_name", request=_suite_fields, slurm=True, container=True),
    RunOption(
        "--run-id", "run folder name under --reports-dir; an existing one is resumed", field="run_id", container=True
    ),
    RunOption(
        "--new",
        "start a fresh run even if an unfinished one could resume",
        field="new",
        action="store_true",
        container=True,
    ),
    RunOption(
        "--redo-flagged",
        "with --run-id: run again, in place and in a new session (its own idle baseline and calibration), only the "
        "cells that failed, were flagged (other processes, throttling, temperature) or are invalid; every other cell "
        "stays as it was, and the results record the repair",
        field="redo_flagged",
        action="store_true",
        container=True,
    ),
    RunOption(
        "--force",
        "run even if the machine does not match the profile",
        field="force",
        action="store_true",
        slurm="tasks run even if a node does not match the profile",
        container=True,
        task=True,
    ),
    RunOption(
        "--data",
        "local file for a data set (e.g. fktg)",
        field="data_paths",
        action="append",
        metavar="NAME=PATH",
        request=lambda values: {"data_paths": parse_data_paths(values)},
        stored=lambda doc: dict(doc.settings.get("data_paths") or {}),
        slurm=True,
        task=True,
    ),
    RunOption(
        "--repetitions",
        "repetitions of every model of the run (default: the suite's, with its per-model ones, e.g. setfit's 1 in the "
        "cpu profile's default suite)",
        field="repetitions",
        type=int,
        stored=_suite("repetitions"),
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--min-window-s",
        "override the profile's minimum window",
        field="min_window_s",
        type=float,
        stored=_settings("min_window_s"),
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--idle-s",
        "override the idle-baseline length (0: skip)",
        field="idle_baseline_s",
        type=float,
        stored=_settings("idle_baseline_s"),
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--max-other-cpu-share",
        "accept windows where other processes used up to SHARE (0-1) of the machine's CPU time (default: the "
        "profile's, 0.10); above it a cell's energy is flagged and left out of the means",
        field="max_other_cpu_share",
        type=float,
        metavar="SHARE",
        profile_key="measurement.max_other_cpu_share",
        meaning="a fraction of the machine's CPU time from 0 to 1: 0.2 accepts windows where other processes used up "
        "to 20% of it",
        container=True,
        resume=True,
    ),
    RunOption(
        "--grid-intensity",
        "the grid's carbon intensity in gCO2e/kWh for the derived CO2e (default: the profile's, else "
        "CodeCarbon's table for its country); recorded in the results as 'user, --grid-intensity'",
        field="grid_intensity_gco2e_per_kwh",
        type=float,
        metavar="G",
        profile_key="measurement.grid_intensity_gco2e_per_kwh",
        meaning="the grid's carbon intensity in gCO2e per kWh, from 0 to 2000 (your supplier's or grid operator's "
        "figure)",
        container=True,
        resume=True,
    ),
    RunOption(
        "--price-per-kwh",
        "electricity price per kWh in --currency for the derived cost (default: the profile's; none: no cost)",
        field="price_per_kwh",
        type=float,
        metavar="P",
        profile_key="measurement.price_per_kwh",
        meaning="the electricity price per kWh in --currency, 0 or more",
        container=True,
        resume=True,
    ),
    RunOption(
        "--currency",
        "ISO 4217 code of --price-per-kwh (default: the profile's measurement.currency, EUR)",
        field="currency",
        metavar="XXX",
        request=lambda value: {"currency": value.upper() if value else None},
        profile_key="measurement.currency",
        meaning="the price's currency as a three-letter ISO 4217 code, e.g. EUR or USD",
        container=True,
        resume=True,
    ),
    RunOption(
        "--no-codecarbon",
        "do not run CodeCarbon side by side",
        field="codecarbon",
        action="store_true",
        request=lambda value: {"codecarbon": False if value else None},
        words=lambda value: ["--no-codecarbon"] if value is False else [],
        stored=_settings("codecarbon"),
        slurm=True,
        container=True,
        task=True,
    ),
    # The options that name a run's models and data sets, own files and folders included, and how files are read.
    RunOption(
        "--model",
        "a catalog model (narrows the suite), or your own: clf:ORG/NAME[@REV] or clf:/folder (a fine-tuned "
        "sequence classifier), hf:ORG/NAME[@REV] or hf:/folder (a zero-shot LLM) (repeatable)",
        field="models",
        action="append",
        metavar="SPEC",
        slurm=True,
    ),
    RunOption(
        "--dataset",
        "a data set of the suite (narrows it), or a local file (.csv, .tsv, .jsonl, .json, .parquet) run as a "
        "data set named after the file unless NAME= (repeatable)",
        field="datasets",
        action="append",
        metavar="[NAME=]PATH|NAME",
        slurm=True,
        task=True,
    ),
    RunOption(
        "--text-column",
        "the text column of --dataset files (default: text)",
        field="text_column",
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--label-column",
        "the label column of --dataset files (default: label)",
        field="label_column",
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--label-names",
        "names for the labels of --dataset files, e.g. 0=negative,1=positive (the LLM prompt lists the names)",
        field="label_names",
        action="append",
        metavar="VALUE=NAME,...",
        request=lambda values: {"label_names": parse_pairs("--label-names", values, "0=negative,1=positive")},
        words=_pairs_words("--label-names"),
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--language",
        "language of --dataset files' texts for the LLM prompt, e.g. en, de",
        field="language",
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--encoding",
        "text encoding of --dataset files when not UTF-8, e.g. cp1252",
        field="encoding",
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--n-train",
        "training texts per split (default: the data set's; files: 200)",
        field="n_train",
        type=int,
        stored=_suite("n_train"),
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--n-test",
        "test texts per split (default: the data set's; files: 200)",
        field="n_test",
        type=int,
        stored=_suite("n_test"),
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--label-map",
        "a clf: model's labels -> the data's label names, for those that do not match by name",
        field="label_map",
        action="append",
        metavar="MODEL_LABEL=DATA_LABEL,...",
        request=lambda values: {"label_map": parse_pairs("--label-map", values, "LABEL_0=negative,LABEL_1=positive")},
        words=_pairs_words("--label-map"),
        stored=lambda doc: dict(doc.settings.get("label_map") or {}),
        slurm=True,
        container=True,
        task=True,
    ),
    RunOption(
        "--truncate",
        "cut texts whose LLM prompt exceeds the model's context window, keeping the instruction and labels "
        "(recorded per text in the cell); without it such prompts stop the run before the grid",
        field="truncate",
        action="store_true",
        profile_key="llm.truncate",
        slurm=True,
        container=True,
        task=True,
        resume=True,
    ),
    RunOption(
        "--reports-dir",
        "where run folders go (default: reports)",
        field="reports_dir",
        default="reports",
        request=lambda value: {"reports_dir": Path(value)},
        resume=True,
    ),
    RunOption(
        "--no-progress",
        "no progress bar",
        field="progress",
        action="store_true",
        request=lambda value: {"progress": not value},
        words=lambda value: ["--no-progress"] if value is False else [],
        container=True,
    ),
    RunOption("--no-report", "do not render report.html at the end", action="store_true", container=True),
    RunOption(
        "--json", "print results.json to stdout (human output goes to stderr)", action="store_true", container=True
    ),
    RunOption(
        "--strict",
        "exit 1 when cells were flagged (for CI); without it a run whose cells all ran exits 0, saying how many were "
        "flagged, why, and the command that redoes them",
        action="store_true",
        container=True,
    ),
    RunOption(
        "--engine",
        "where to run: host (default), container (the profile's image; needs Docker or Podman's service), "
        "auto (container when an engine answers, else host; what `make bench` uses)",
        choices=("host", "container", "auto"),
        default="host",
    ),
    RunOption(
        "--gpus",
        "GPUs per node this run was given (a Slurm task's allocation)",
        field="gpus",
        type=int,
        stored=_settings("gpus"),
        container=True,
    ),
    RunOption(
        "--nodes",
        "nodes of the allocation (> 1: pipeline parallel over Ray)",
        field="nodes",
        type=int,
        default=1,
        stored=lambda doc: int(doc.settings.get("nodes", 1)),
        container=True,
    ),
    RunOption(
        "--model-store",
        "load Hub LLMs from this model store (`bench models fetch --store DIR`), each file checked against the "
        "model lock's sha256 before a cell loads it; with --engine container it is mounted read-only",
        metavar="DIR",
        slurm="every task's `bench run --model-store DIR`: Hub LLMs load from this model store (`bench models fetch "
        "--store DIR`), each file checked against the model lock; Apptainer tasks see it read-only; recorded in the "
        "manifest",
    ),
    RunOption(
        "--serving",
        "how the run's LLMs are served: sequential (one request at a time, the paper's), batched, or scoring "
        "(label likelihood, no generation; HF pipeline, vLLM and llama.cpp, whose default it is); each "
        "configuration is a row of its own",
        field="serving.serving",
        choices=tuple(SERVING_MODES),
        container=True,
    ),
    RunOption(
        "--batch-size",
        "texts per engine call of the run's LLMs (1 to the profile's [llm] max_batch_size)",
        field="serving.batch_size",
        type=int,
        metavar="N",
        container=True,
    ),
    RunOption(
        "--dtype",
        "weights' dtype of the run's LLMs (a GGUF entry's file converted to it by llama.cpp)",
        field="serving.dtype",
        choices=tuple(SERVING_DTYPES),
        container=True,
    ),
    RunOption(
        "--quantization",
        "int8: PyTorch dynamic int8 (HF pipeline, CPU); fp8: vLLM on a GPU with FP8 support; awq, gptq: a "
        "checkpoint quantized so (vLLM; its config.json is checked); q8_0: a GGUF file converted to Q8_0 by llama.cpp",
        field="serving.quantization",
        choices=tuple(SERVING_QUANTIZATIONS),
        container=True,
    ),
    RunOption(
        "--prefix-cache",
        "true: the prompt's shared beginning (everything before the text) computed once per pass and its KV cache "
        "reused for every text (HF pipeline), vLLM's automatic prefix caching on; false: every prompt whole (the "
        "paper's way, the HF default)",
        field="serving.prefix_cache",
        choices=tuple(SERVING_BOOLEANS),
        container=True,
    ),
    RunOption(
        "--length-sorted",
        "true: each pass's texts batched in the order of their token counts, so a batch's rows pad to nearly the "
        "same length (HF pipeline, batched and scoring serving); false: batches in the texts' order (the default)",
        field="serving.length_sorted",
        choices=tuple(SERVING_BOOLEANS),
        container=True,
    ),
]


def options(place: Place) -> list[RunOption]:
    """The declared options that go to ``place``, in declaration order."""
    return [option for option in RUN_OPTIONS if place in option.places()]


# --- parsers ---------------------------------------------------------------------------------------------------------


def add_run_options(parser: argparse.ArgumentParser, *, place: Literal["run", "slurm"] = "run") -> None:
    """Add the declared options of ``place`` (``bench run``'s, or ``bench slurm``'s with their help there)."""
    for option in options(place):
        option.add_to(parser, slurm=place == "slurm")


def run_fields(args: argparse.Namespace, place: Literal["run", "slurm"] = "run") -> dict[str, Any]:
    """The ``RunRequest`` fields of parsed arguments, through the declaration: each option's ``request`` (or its
    value under its field; ``serving.KEY`` options into one ``serving`` mapping, given keys only).

    Raises ConfigError naming an option whose value is malformed (``--data``, ``--label-names``, ``--label-map``)."""
    fields: dict[str, Any] = {}
    for option in options(place):
        for name, value in option.fields(getattr(args, option.dest, None)).items():
            head, _, key = name.partition(".")
            if key:
                if value is not None:
                    fields.setdefault(head, {})[key] = value
            else:
                fields[name] = value
    return fields


def request_from_args(args: argparse.Namespace) -> RunRequest:
    """The ``RunRequest`` of ``bench run``'s parsed arguments (``run_fields``), its profile loaded. Raises ConfigError
    for a profile that cannot be loaded or an option value that is malformed or outside the profile's limits
    (``run_profile``), before anything runs."""
    from bench.run.request import RunRequest

    request = RunRequest(**run_fields(args))
    run_profile(request)  # a bad --max-other-cpu-share is named now, not inside a container
    return request


# --- where options travel ------------------------------------------------------------------------------------------


def container_args(args: argparse.Namespace) -> list[str]:
    """The options of a ``bench run`` that the run inside the container takes unchanged, as typed (the files, models
    and folders it names are mounted and renamed by ``bench.containers.launch.container_run``)."""
    return [w for option in options("container") for w in option.raw_words(getattr(args, option.dest, None))]


def task_args(overrides: Mapping[str, Any]) -> list[str]:
    """The options every Slurm task's ``bench run`` line gives, from a manifest's ``overrides`` (request fields as
    ``bench slurm`` was asked; files already absolute): the task's run resolves the same run as the one planned."""
    return [w for option in options("task") for w in option.words_of(option.value_of(overrides))]


def resume_command(request: RunRequest, run_id: str, *extra: str) -> str:
    """The ``bench run`` line that resumes run ``run_id`` (its id names its suite and overrides: ``--run-id`` alone
    restores them, ``stored``), with the options that must be given again (``resume``: the profile, the reports
    folder, and what the run recorded as part of its profile) and ``extra`` words after the run id."""
    # as the user started it: `.venv/bin/bench` when that is how it ran (`bench` need not be on PATH)
    program = sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "bench" else "bench"
    words = [program, "run"]
    for option in options("resume"):
        words += option.words_of(option.value_of(request))
    return shlex.join([*words, "--run-id", run_id, *extra])


def restored_fields(request: RunRequest, doc: ResultDocument) -> dict[str, Any]:
    """For ``bench run --run-id X`` alone: the fields of the options not given now (their request field at its
    default), as run X recorded them (``stored``; for an option that overrides a profile setting, ``profile_key``,
    the value run X's recorded profile holds where it differs from the profile loaded now, so that
    ``bench run --run-id X --redo-flagged`` of a run made with ``--max-other-cpu-share 0.5`` needs no option again);
    options given now win."""
    defaults = request_defaults()
    out: dict[str, Any] = {}
    for option in RUN_OPTIONS:
        if option.field is None or getattr(request, option.field, None) != defaults.get(option.field):
            continue
        if option.stored is not None:
            value = option.stored(doc)
        elif option.profile_key is not None:
            recorded = _dotted(doc.profile, option.profile_key)
            now = _dotted(request.profile.model_dump(mode="json"), option.profile_key)
            value = recorded if recorded != now else None
        else:
            continue
        if value is not None:
            out[option.field] = value
    return out


def _dotted(data: Any, key: str) -> Any:
    """``data["a"]["b"]`` for ``key`` ``"a.b"``; None where a level is missing."""
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def request_defaults() -> dict[str, Any]:
    """Each ``RunRequest`` field's default (a factory's value for mappings)."""
    from bench.run.request import RunRequest

    out: dict[str, Any] = {}
    for f in dataclasses.fields(RunRequest):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


# --- the profile as the run sees it ----------------------------------------------------------------------------------


def run_profile(request: RunRequest) -> HardwareProfile:
    """The request's profile with the options that override profile settings (``profile_key``) applied: measurement
    settings validated with the profile's limits (``with_measurement``), ``--truncate`` as ``[llm] truncate = true``.
    The same profile when none is given. Raises ConfigError as ``with_measurement`` does."""
    measurement = {}
    profile = request.profile
    for option in RUN_OPTIONS:
        key = option.profile_key or ""
        value = option.value_of(request)
        if key.startswith("measurement.") and value is not None:
            measurement[key.split(".", 1)[1]] = value
    profile = with_measurement(profile, **measurement)
    if request.truncate and not profile.llm.truncate:
        profile = profile.model_copy(update={"llm": profile.llm.model_copy(update={"truncate": True})})
    return profile


def measurement_options(request: RunRequest) -> dict[str, str]:
    """The measurement settings given on the command line, MeasurementSpec field -> option (``--grid-intensity``): the
    results' ``grid`` names them as the source (``bench.derived.grid_record``)."""
    out = {}
    for option in RUN_OPTIONS:
        key = option.profile_key or ""
        if key.startswith("measurement.") and option.value_of(request) is not None:
            out[key.split(".", 1)[1]] = option.flag
    return out


def with_measurement(profile: HardwareProfile, **overrides: Any) -> HardwareProfile:
    """``profile`` with measurement settings overridden (MeasurementSpec field -> value; None: the profile's),
    validated with the profile's limits; they are part of the profile the results record, so the validator reads
    them there. The same profile object when nothing is overridden.

    Raises ConfigError naming each option, the value given and what it must be (``meaning``), and for ``--currency``
    without a price (neither ``--price-per-kwh`` nor the profile's ``measurement.price_per_kwh``)."""
    updates = {k: v for k, v in overrides.items() if v is not None}
    if not updates:
        return profile
    from pydantic import ValidationError

    from bench.config import MeasurementSpec

    try:
        measurement = MeasurementSpec.model_validate({**profile.measurement.model_dump(), **updates})
    except ValidationError as exc:
        named = {
            o.profile_key.split(".", 1)[1]: (o.flag, o.meaning or "")
            for o in RUN_OPTIONS
            if (o.profile_key or "").startswith("measurement.")
        }
        problems = []
        for e in exc.errors():
            field_name = str(e["loc"][-1]) if e["loc"] else "?"
            flag, meaning = named.get(field_name, ("--" + field_name.replace("_", "-"), ""))
            problems.append(f"{flag} {e['input']!r}: {e['msg']}" + (f" ({meaning})" if meaning else ""))
        raise ConfigError("; ".join(problems)) from None
    if "currency" in updates and measurement.price_per_kwh is None:
        raise ConfigError(
            f"--currency {updates['currency']} without a price: give --price-per-kwh too (or set "
            f"measurement.price_per_kwh in profile {profile.name!r})"
        )
    return profile.model_copy(update={"measurement": measurement})
