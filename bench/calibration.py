"""The calibration job of a session (issue 16, part 4): a fixed, versioned reference workload metered like a cell,
whose joules and seconds per reference unit index the machine, so runs on different machines can be compared per
text both raw and divided by their machine's index.

Two references, one per kind of device the models use (``reference_for``):

- ``REFERENCE`` (``gemm-f32-512-v1``), CPU profiles: one reference unit is one product of two fixed 512 x 512 float32
  matrices (numpy, seeded; 2 x 512^3 = 268,435,456 floating-point operations), with numpy's BLAS using the threads it
  would use for the models.
- ``GPU_REFERENCE`` (``gemm-torch-f16-4096-v1``), CUDA profiles: one reference unit is one product of two fixed
  4096 x 4096 float16 matrices on the profile's CUDA device (torch, ``torch.matmul`` into a preallocated output;
  2 x 4096^3 = 137,438,953,472 floating-point operations), the dtype LLMs run in, on the tensor cores where the GPU
  has them. The matrices are drawn in float32 on the CPU from a seeded ``torch.Generator`` and then cast and moved,
  so they are the same numbers on every machine. It runs on the current CUDA device (``cuda`` is ``cuda:0`` of the
  visible ones) while the meters read every GPU the profile meters: on a multi-GPU node the index includes the others'
  idle draw, as a cell on one of them does. ``torch.cuda.synchronize`` closes the window, so it holds all the work
  it launched.

Each is repeated inside one metered window until it lasts ``min_window_s``, exactly as a cell's inference is
(``bench.window.measure_window``), after ``WARMUP_UNITS`` units outside it (threads and cuBLAS handles created,
pages touched). The record (``bench.results.Calibration``) keeps the loop count, the window, gross energy per
component with its method, and what else ran (``others``); the index is gross J per unit (all measured or estimated
components, as the cells' gross energy) and s per unit. A device with no reference (``mps``), a CUDA profile where
torch has no CUDA, or a failing window records why instead of an index.

Changing a workload means a new reference name: indices of different references are never compared
(``bench.report.compare`` divides only by indices of one reference; the leaderboard names each entry's reference and
says when they differ). ``TorchGemm`` takes its device, size and dtype, so the torch path runs on CPU tensors in tests;
any other size or dtype has a name of its own (``gemm-torch-f32-64-v1``), never the GPU reference's.
"""

from __future__ import annotations

from typing import Any

#: The name and version of the CPU reference workload; a different workload must get a different name.
REFERENCE = "gemm-f32-512-v1"
#: Matrix size of the CPU reference GEMM.
GEMM_N = 512
#: Floating-point operations of one CPU reference unit (one n x n by n x n product: n^3 multiply-adds).
UNIT_FLOP = 2 * GEMM_N**3
#: Seed of the reference matrices (both references).
SEED = 16
#: Matrix size and dtype of the GPU reference GEMM.
GPU_GEMM_N = 4096
GPU_DTYPE = "float16"
#: Version of the torch GEMM workload (part of its name).
TORCH_GEMM_VERSION = 1
#: Units run before the window opens (not metered).
WARMUP_UNITS = 3

_DTYPE_SHORT = {"float16": "f16", "bfloat16": "bf16", "float32": "f32"}


def torch_gemm_reference(n: int = GPU_GEMM_N, dtype: str = GPU_DTYPE) -> str:
    """The name of the torch GEMM reference of size ``n`` and ``dtype`` (``gemm-torch-f16-4096-v1`` for the GPU's).
    Raises ValueError for a dtype other than float16, bfloat16 and float32."""
    if dtype not in _DTYPE_SHORT:
        raise ValueError(f"torch GEMM reference: dtype {dtype!r} is not one of {', '.join(_DTYPE_SHORT)}")
    return f"gemm-torch-{_DTYPE_SHORT[dtype]}-{n}-v{TORCH_GEMM_VERSION}"


#: The name and version of the GPU reference workload.
GPU_REFERENCE = torch_gemm_reference()
#: Floating-point operations of one GPU reference unit.
GPU_UNIT_FLOP = 2 * GPU_GEMM_N**3


def reference_for(device: str) -> tuple[str, int] | None:
    """(reference name, FLOP per unit) of the workload a profile of ``device`` runs; None where there is none."""
    if device == "cpu":
        return REFERENCE, UNIT_FLOP
    if device.startswith("cuda"):
        return GPU_REFERENCE, GPU_UNIT_FLOP
    return None


def machine_index(doc: Any) -> tuple[float, str] | None:
    """A run's machine index: the mean gross J per reference unit over its sessions' calibration jobs of its first
    reference, and that reference's name; None without one (documents before schema v3, jobs that failed or could not
    run). Energy per text divided by it is per-text cost in reference units (J per text / J per unit)."""
    records = [c for c in getattr(doc, "calibration", None) or [] if getattr(c, "j_per_unit", None) is not None]
    if not records:
        return None
    reference = records[0].reference
    values = [c.j_per_unit for c in records if c.reference == reference]
    return sum(values) / len(values), reference


class NumpyGemm:
    """The CPU reference workload behind the backend interface ``measure_window`` drives (predict, synchronize)."""

    reference = REFERENCE
    unit_flop = UNIT_FLOP
    device = "cpu"

    def __init__(self) -> None:
        import numpy as np

        rng = np.random.default_rng(SEED)
        self.a = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
        self.b = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
        self.checksum: float | None = None

    def synchronize(self) -> None:
        """numpy runs synchronously: nothing is queued."""

    def predict(self, texts: Any) -> list[int]:
        """One reference unit; returns a constant so ``measure_window``'s determinism check holds."""
        product = self.a @ self.b
        self.checksum = float(product[0, 0])
        return [0]


class TorchGemm:
    """A torch GEMM reference workload on ``device`` (``cuda``, ``cuda:1``, or ``cpu`` in tests): two fixed seeded
    ``n`` x ``n`` matrices of ``dtype``, one ``torch.matmul`` into a preallocated output per unit.

    Raises ImportError without torch, ValueError for an unknown dtype, and RuntimeError for a CUDA device where torch
    has no CUDA (``torch.cuda.is_available()`` false) or the device index does not exist."""

    def __init__(self, device: str, n: int = GPU_GEMM_N, dtype: str = GPU_DTYPE) -> None:
        import torch

        self.reference = torch_gemm_reference(n, dtype)
        self.unit_flop = 2 * n**3
        self.device = device
        self._cuda = device.startswith("cuda")
        if self._cuda and not torch.cuda.is_available():
            raise RuntimeError(f"{device}: torch {torch.__version__} sees no CUDA device (torch.cuda.is_available())")
        generator = torch.Generator(device="cpu").manual_seed(SEED)
        # Drawn in float32 on the CPU, then cast and moved: the same matrices on every machine and device.
        a = torch.randn((n, n), generator=generator, dtype=torch.float32)
        b = torch.randn((n, n), generator=generator, dtype=torch.float32)
        kind = getattr(torch, dtype)
        self.a = a.to(device=device, dtype=kind)
        self.b = b.to(device=device, dtype=kind)
        self.out = torch.empty_like(self.a)
        self._torch = torch

    def synchronize(self) -> None:
        """Wait for the kernels queued on the device (``torch.cuda.synchronize``); CPU tensors run synchronously."""
        if self._cuda:
            self._torch.cuda.synchronize(self.device)

    def predict(self, texts: Any) -> list[int]:
        """One reference unit, queued (no read-back, which would synchronize every unit); returns a constant."""
        self._torch.matmul(self.a, self.b, out=self.out)
        return [0]


def workload_for(device: str) -> Any:
    """The reference workload a profile of ``device`` runs, built (``NumpyGemm`` or ``TorchGemm``). Raises
    ValueError for a device with none, and what ``TorchGemm`` raises."""
    if device == "cpu":
        return NumpyGemm()
    if device.startswith("cuda"):
        return TorchGemm(device)
    raise ValueError(f"no reference workload for device {device!r} (references: cpu, cuda)")


def calibrate(
    meter_set: Any,
    min_window_s: float,
    session: int,
    device: str,
    max_loops: int = 1_000_000,
    workload: Any = None,
) -> Any:
    """Run the reference workload in one metered window on ``meter_set`` and return its ``Calibration`` record.

    ``device``: the profile's device (``cpu``: ``REFERENCE``; ``cuda``: ``GPU_REFERENCE``). ``workload``: a workload
    built by the caller (``TorchGemm("cpu", n=64, dtype="float32")`` in tests) instead of ``workload_for(device)``;
    the record carries its reference name, FLOP per unit and device. Raises nothing the run should stop for: a workload
    that cannot be built or a failing window is recorded with its error as the reason (no index)."""
    from bench.analysis import total_energy_j
    from bench.fsutil import now_iso
    from bench.results import Calibration
    from bench.window import measure_window, other_load, per_pass

    known = reference_for(device)
    if workload is None and known is None:
        return Calibration(
            session=session,
            reference="none",
            device=device,
            unit_flop=1,
            measured_at=now_iso(),
            reason=f"no reference workload for device {device!r} (the kit has one for cpu and cuda)",
        )
    base: dict[str, Any] = {"session": session, "device": device}
    if known is not None:
        base.update(reference=known[0], unit_flop=known[1])
    try:
        gemm = workload if workload is not None else workload_for(device)
        # What runs is what the record names: its reference, its FLOP and the device its tensors are on
        base.update(reference=gemm.reference, unit_flop=gemm.unit_flop, device=gemm.device)
        for _ in range(WARMUP_UNITS):  # outside the window: BLAS threads or cuBLAS handles created, pages touched
            gemm.predict(None)
        gemm.synchronize()
        _, window, reading = measure_window(gemm, ["reference"], meter_set, min_window_s, max_loops)
    except Exception as exc:
        return Calibration(**base, measured_at=now_iso(), reason=f"{type(exc).__name__}: {exc}")
    energy = per_pass(reading.components, window.loops, window.duration_s / window.loops, None)
    gross = total_energy_j(energy)
    return Calibration(
        **base,
        measured_at=now_iso(),
        loops=window.loops,
        duration_s=window.duration_s,
        s_per_unit=window.duration_s / window.loops,
        j_per_unit=gross,
        energy=energy,
        others=other_load(reading),
    )
