"""Option values shared by several subcommands of ``bench`` (``run``, ``slurm``), parsed once, with errors that name
the option and the expected form. The options themselves are declared once in ``bench.run.options``."""

from __future__ import annotations

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
