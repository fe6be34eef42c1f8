"""The backend protocol: one small interface for every way of classifying texts.

Lifecycle per (model, dataset, repetition) cell, driven only by the runner (``bench.run.models`` loads,
``bench.run.cell`` fits and predicts): ``load()`` (timed, not metered) -> ``fit(train_texts, train_labels,
label_names)`` (traditional models train here; zero-shot LLMs only record the label set) -> ``predict(texts)`` (the
metered window; may be called several times when the window is extended to the profile's minimum) -> ``close()``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    """A text classifier behind the kit's one protocol."""

    def load(self) -> None:
        """Load weights / build the pipeline. Not part of the inference measurement."""
        ...

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Train (traditional models) or remember the label set and the prompt language (zero-shot models)."""
        ...

    def predict(self, texts: Sequence[str]) -> list[int]:
        """Return one label index per text; -1 for an answer that matches no label (counted as wrong)."""
        ...

    def synchronize(self) -> None:
        """Block until the device finished queued work (no-op on CPU); called at both window edges."""
        ...

    def info(self) -> dict[str, Any]:
        """Provenance of what actually ran: library versions, model pin, device, parameters."""
        ...

    def close(self) -> None:
        """Free memory. Idempotent."""
        ...


def device_synchronize(device: str) -> None:
    """Block until the work queued on ``device`` is done, as both edges of a metered window need: on ``cuda``,
    ``cuda:1`` (NVIDIA, and AMD through PyTorch's ROCm build, whose device is called ``cuda`` too)
    ``torch.cuda.synchronize``; on ``mps`` (Apple's GPU) ``torch.mps.synchronize``. A no-op on the CPU, and where
    the device was never used in this process (nothing can be queued, and the call would raise on a machine without
    it, e.g. a forced GPU profile). Never imports torch itself."""
    if "torch" not in sys.modules:
        return
    import torch

    if device.startswith("cuda"):
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize(device)
    elif device.startswith("mps") and torch.backends.mps.is_available():
        torch.mps.synchronize()


def device_empty_cache(device: str) -> None:
    """Give the memory PyTorch's allocator caches on ``device`` back (``torch.cuda.empty_cache``,
    ``torch.mps.empty_cache``) when a model is closed; a no-op on the CPU and where torch was never imported."""
    if "torch" not in sys.modules:
        return
    import torch

    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    elif device.startswith("mps") and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def library_versions(*modules: str) -> dict[str, str | None]:
    """Versions of the imported modules (what actually ran); None for one that was never imported."""
    names = {"sklearn": "scikit-learn", "sentence_transformers": "sentence-transformers"}
    out: dict[str, str | None] = {}
    for module in modules:
        loaded = sys.modules.get(module)
        out[names.get(module, module)] = getattr(loaded, "__version__", None) if loaded else None
    return out
