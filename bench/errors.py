"""Typed errors of the kit. Every message names the file, field or value at fault and how to fix it."""

from __future__ import annotations


class BenchError(Exception):
    """Base class: an error the CLI prints as a clear message (no traceback) with exit code 2."""


class ConfigError(BenchError):
    """A profile, suite or settings file is invalid (unknown key, wrong type, unknown name)."""


class DataError(BenchError):
    """A data set cannot be loaded or is unusable (missing column, empty, a single class, offline Hub)."""


class MeterError(BenchError):
    """An energy meter cannot start or read (files not readable, library missing, counter unavailable)."""


class ResultsError(BenchError):
    """A results file is invalid: truncated JSON, schema violation, hash mismatch, unknown schema version."""


class HardwareMismatchError(BenchError):
    """The detected machine does not match the profile asked for (override with --force)."""


class ContainerError(BenchError):
    """A container engine, image or build problem, with what to do about it."""


class MissingExtraError(ConfigError):
    """A Python module of one of the kit's optional extras (pyproject.toml) is not installed.

    The message names the module, the extra and the command that installs it (see :mod:`bench.extras`). A
    ConfigError, so code that handles a missing library as a setup problem (``except ConfigError``) keeps doing so.
    """

    def __init__(self, module: str, extra: str, install: str, *, needed_by: str = "this command") -> None:
        self.module = module
        self.extra = extra
        self.install = install
        super().__init__(
            f"{needed_by} needs the Python module {module!r}, which is not installed; it comes with the kit's "
            f"optional extra {extra!r}. Install it with: {install}."
        )


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """Return ' Did you mean: a, b?' for close matches of ``name`` among ``known`` (empty string if none)."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""
