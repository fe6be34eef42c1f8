"""Option values shared by several subcommands of ``bench`` (``run``, ``slurm``), parsed once, with errors that name
the option and the expected form."""

from __future__ import annotations

import argparse
from typing import Any

from bench.errors import ConfigError


def parse_data_paths(values: list[str] | None) -> dict[str, str]:
    """``--data NAME=PATH`` (repeatable) as ``{name: path}``; ConfigError naming the value when it is not NAME=PATH."""
    out = {}
    for item in values or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--data {item!r}: expected NAME=PATH, e.g. --data fktg=/data/fktg.csv")
        out[name] = path
    return out


def parse_pairs(option: str, values: list[str] | None, example: str) -> dict[str, str]:
    """``--label-names 0=negative,1=positive`` (comma-separated, repeatable) as ``{"0": "negative", "1": "positive"}``;
    ConfigError naming the option and the item that is not KEY=VALUE, or a key given twice."""
    out: dict[str, str] = {}
    for value in values or []:
        for item in value.split(","):
            key, sep, name = (part.strip() for part in item.partition("="))
            if not sep or not key or not name:
                raise ConfigError(f"{option} {value!r}: {item!r} is not KEY=VALUE; write e.g. {option} {example}")
            if key in out and out[key] != name:
                raise ConfigError(f"{option}: {key!r} is given twice ({out[key]!r} and {name!r})")
            out[key] = name
    return out


def add_own_data_options(p: argparse.ArgumentParser) -> None:
    """The options that name a run's models and data sets, own files and folders included, and how files are read:
    ``bench run`` and ``bench slurm`` take the same ones (``own_data_fields`` turns them into RunRequest fields)."""
    p.add_argument(
        "--model",
        action="append",
        metavar="SPEC",
        help="a catalog model (narrows the suite), or your own: clf:ORG/NAME[@REV] or clf:/folder (a fine-tuned "
        "sequence classifier), hf:ORG/NAME[@REV] or hf:/folder (a zero-shot LLM) (repeatable)",
    )
    p.add_argument(
        "--dataset",
        action="append",
        metavar="[NAME=]PATH|NAME",
        help="a data set of the suite (narrows it), or a local file (.csv, .tsv, .jsonl, .json, .parquet) run as a "
        "data set named after the file unless NAME= (repeatable)",
    )
    p.add_argument("--text-column", help="the text column of --dataset files (default: text)")
    p.add_argument("--label-column", help="the label column of --dataset files (default: label)")
    p.add_argument(
        "--label-names",
        action="append",
        metavar="VALUE=NAME,...",
        help="names for the labels of --dataset files, e.g. 0=negative,1=positive (the LLM prompt lists the names)",
    )
    p.add_argument("--language", help="language of --dataset files' texts for the LLM prompt, e.g. en, de")
    p.add_argument("--encoding", help="text encoding of --dataset files when not UTF-8, e.g. cp1252")
    p.add_argument("--n-train", type=int, help="training texts per split (default: the data set's; files: 200)")
    p.add_argument("--n-test", type=int, help="test texts per split (default: the data set's; files: 200)")
    p.add_argument(
        "--label-map",
        action="append",
        metavar="MODEL_LABEL=DATA_LABEL,...",
        help="a clf: model's labels -> the data's label names, for those that do not match by name",
    )
    p.add_argument(
        "--truncate",
        action="store_true",
        help="cut texts whose LLM prompt exceeds the model's context window, keeping the instruction and labels "
        "(recorded per text in the cell); without it such prompts stop the run before the grid",
    )


def own_data_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The RunRequest fields of ``add_own_data_options``' options (``--truncate`` is a profile setting: not here)."""
    return {
        "models": args.model,
        "datasets": args.dataset,
        "text_column": args.text_column,
        "label_column": args.label_column,
        "label_names": parse_pairs("--label-names", args.label_names, "0=negative,1=positive"),
        "language": args.language,
        "encoding": args.encoding,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "label_map": parse_pairs("--label-map", args.label_map, "LABEL_0=negative,LABEL_1=positive"),
    }


def with_truncate(profile: Any, truncate: bool) -> Any:
    """``profile`` with ``[llm] truncate = true`` when ``--truncate`` was given (part of the settings hash)."""
    if not truncate:
        return profile
    return profile.model_copy(update={"llm": profile.llm.model_copy(update={"truncate": True})})
