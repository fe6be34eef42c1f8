"""Fakes of PyTorch's device APIs for hardware these machines lack: Apple's ``mps`` and AMD's ROCm build.

Shaped like the real API where the kit calls it, and installed over the real (CPU) torch by ``monkeypatch``:

- ``fake_mps``: ``torch.backends.mps.is_available()`` / ``is_built()`` true, ``torch.mps.synchronize()`` and
  ``torch.mps.empty_cache()`` counted (``MpsCalls``). Tensors cannot really go to ``mps`` here, so ``on_cpu``
  redirects the two places the backends hand their device to a library (the HF pipeline's ``transformers.pipeline``,
  the sentence embedder's ``SentenceTransformer``) to the CPU: the backends keep ``device="mps"``, synchronize and
  free ``mps`` as on a Mac, and their tensors live on the CPU.
- ``fake_hip``: ``torch.version.hip`` set and ``torch.version.cuda`` None, as PyTorch's ROCm build reports itself
  (its device is still called ``cuda``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

#: What PyTorch's ROCm 7.0 build reports as ``torch.version.hip``.
HIP_VERSION = "7.0.51831-a3e329ad8"


@dataclass
class MpsCalls:
    """How often the kit called ``torch.mps.synchronize`` and ``torch.mps.empty_cache``, and the classes of the
    objects whose ``synchronize`` asked (``callers``: a backend's, via ``bench.backends.base.device_synchronize``)."""

    synchronize: int = 0
    empty_cache: int = 0
    callers: list[str] = field(default_factory=list)


def fake_mps(monkeypatch: pytest.MonkeyPatch, *, available: bool = True) -> MpsCalls:
    """Make torch report Apple's GPU (``available``) and count the mps calls the kit makes."""
    import torch

    calls = MpsCalls()

    def synchronize() -> None:
        calls.synchronize += 1
        asking = sys._getframe(2).f_locals.get("self")  # synchronize <- device_synchronize <- Backend.synchronize
        calls.callers.append(type(asking).__name__ if asking is not None else "")

    def empty_cache() -> None:
        calls.empty_cache += 1

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: available)
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: available)
    monkeypatch.setattr(torch.mps, "synchronize", synchronize)
    monkeypatch.setattr(torch.mps, "empty_cache", empty_cache)
    return calls


def on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run what the backends place on ``mps`` on the CPU: ``transformers.pipeline(device="mps")`` and the sentence
    embedder's ``SentenceTransformer(device="mps")`` get ``"cpu"`` (the backends' own ``device`` stays ``mps``)."""
    import transformers

    import bench.backends.traditional as traditional

    pipeline = transformers.pipeline
    # transformers' lazy module puts another module object into sys.modules on its first attribute access: patch the
    # one `import transformers` gives the backend from now on
    transformers = sys.modules["transformers"]

    def pipeline_on_cpu(*args: Any, device: Any = None, **kwargs: Any) -> Any:
        return pipeline(*args, device="cpu" if str(device).startswith("mps") else device, **kwargs)

    get_encoder = traditional._get_encoder

    def encoder_on_cpu(folder: str, device: str) -> tuple[Any, bool]:
        return get_encoder(folder, "cpu" if device.startswith("mps") else device)

    monkeypatch.setattr(transformers, "pipeline", pipeline_on_cpu)
    monkeypatch.setattr(traditional, "_get_encoder", encoder_on_cpu)


def fake_hip(monkeypatch: pytest.MonkeyPatch, hip: str | None = HIP_VERSION) -> None:
    """Make torch report itself as PyTorch's ROCm build (``torch.version.hip``; ``torch.version.cuda`` None)."""
    import torch

    monkeypatch.setattr(torch.version, "hip", hip)
    monkeypatch.setattr(torch.version, "cuda", None)
