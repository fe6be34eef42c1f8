"""Option values shared by several subcommands of ``bench`` (``run``, ``slurm``), parsed once, with errors that name
the option and the expected form."""

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
