"""Backends: one file per way of classifying texts, all behind ``bench.backends.base.Backend``.

``create_backend(spec)`` imports the backend named by the spec's lazy ``"module:Class"`` path only when called, so
``import bench.backends`` stays light (no sklearn, torch or vLLM). Backends import their heavy libraries through
``import_optional`` so a missing library becomes a ConfigError (:class:`~bench.errors.MissingExtraError` for a module
of an extra, :mod:`bench.extras`) that names the ``pip install`` to run.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bench.backends.base import Backend
from bench.errors import ConfigError
from bench.extras import missing_module_error

if TYPE_CHECKING:
    from bench.catalog.models import ModelSpec

__all__ = ["Backend", "create_backend", "import_optional", "load_backend_class"]


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module``; if it (or one of its dependencies) is missing, raise ConfigError naming the extra to install.

    ``purpose`` says what needs it, e.g. ``"the XGBoost classifier"``. Raises MissingExtraError (a ConfigError) for a
    module of one of the kit's extras, ConfigError asking for the package otherwise.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module
        raise missing_module_error(missing, needed_by=purpose) from exc


def load_backend_class(path: str) -> type:
    """Import the class named by a lazy ``"module:Class"`` path; ConfigError if the module or class is missing."""
    module_name, sep, class_name = path.partition(":")
    if not (module_name and sep and class_name):
        raise ConfigError(f"backend path {path!r} must have the form 'module:Class'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module_name
        if missing == module_name or module_name.startswith(f"{missing}."):
            raise ConfigError(f"backend module {module_name!r} does not exist (backend path {path!r}).") from exc
        raise missing_module_error(missing, needed_by=f"backend {path!r}") from exc
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise ConfigError(
            f"backend module {module_name!r} has no class {class_name!r} (backend path {path!r})."
        ) from None
    if not inspect.isclass(cls):
        raise ConfigError(f"backend path {path!r} names {type(cls).__name__} {class_name!r}, not a class.")
    return cls


def create_backend(spec: ModelSpec, **overrides: Any) -> Backend:
    """Instantiate the backend of ``spec`` with ``spec.params`` merged with ``overrides`` (overrides win).

    Overrides whose value is ``None`` are dropped, so a caller can pass optional settings (embedder, device, seed)
    unconditionally and let the spec or the backend's defaults apply. Nothing is loaded yet: call ``load()``.
    Raises ConfigError when the backend cannot be imported or does not accept a parameter.
    """
    cls = load_backend_class(spec.backend)
    kwargs = {**dict(spec.params), **{key: value for key, value in overrides.items() if value is not None}}
    try:
        # Bind first, so a wrong parameter name is reported as such and a TypeError raised inside __init__ is not.
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        accepted = [name for name in inspect.signature(cls).parameters if name != "self"]
        raise ConfigError(
            f"model {spec.name!r}: backend {spec.backend} rejects parameters {sorted(kwargs)}: {exc}. "
            f"It accepts: {', '.join(accepted)}."
        ) from None
    backend = cls(**kwargs)
    if not isinstance(backend, Backend):
        raise ConfigError(f"model {spec.name!r}: {spec.backend} does not implement the Backend protocol.")
    return backend
