"""The calibration job of a session (issue 16, part 4): a fixed, versioned reference workload metered like a cell,
whose joules and seconds per reference unit index the machine, so runs on different machines can be compared per
text both raw and divided by their machine's index.

``REFERENCE`` (``gemm-f32-512-v1``): one reference unit is one product of two fixed 512 x 512 float32 matrices
(numpy, seeded; 2 x 512^3 = 268,435,456 floating-point operations), repeated inside one metered window until it lasts
``min_window_s``, exactly as a cell's inference is (``bench.run.cell.measure_window``), with numpy's BLAS using the
threads it would use for the models. The record (``bench.results.Calibration``) keeps the loop count, the window,
gross energy per component with its method, and what else ran (``others``); the index is gross J per unit (all
measured or estimated components, as the cells' gross energy) and s per unit.

Only CPU profiles run it: a GPU reference (a CUDA GEMM) is not implemented yet, and a GPU run records why instead
of an index taken on the wrong device. Changing the workload means a new ``REFERENCE`` name: indices of different
references are never compared (``bench.report.compare`` only divides by indices of the same reference).
"""

from __future__ import annotations

from typing import Any

#: The name and version of the reference workload; a different workload must get a different name.
REFERENCE = "gemm-f32-512-v1"
#: Matrix size of the reference GEMM.
GEMM_N = 512
#: Floating-point operations of one reference unit (one n x n by n x n product: n^3 multiply-adds).
UNIT_FLOP = 2 * GEMM_N**3
#: Seed of the reference matrices.
SEED = 16


def machine_index(doc: Any) -> tuple[float, str] | None:
    """A run's machine index: the mean gross J per reference unit over its sessions' calibration jobs of its first
    reference, and that reference's name; None without one (documents before schema v3, GPU runs, jobs that failed).
    Energy per text divided by it is per-text cost in reference units (J per text / J per unit)."""
    records = [c for c in getattr(doc, "calibration", None) or [] if getattr(c, "j_per_unit", None) is not None]
    if not records:
        return None
    reference = records[0].reference
    values = [c.j_per_unit for c in records if c.reference == reference]
    return sum(values) / len(values), reference


class _Gemm:
    """The reference workload behind the backend interface ``measure_window`` drives (predict, synchronize)."""

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


def calibrate(meter_set: Any, min_window_s: float, session: int, device: str, max_loops: int = 1_000_000) -> Any:
    """Run the reference workload in one metered window on ``meter_set`` and return its ``Calibration`` record.

    ``device``: the profile's device; on ``cuda`` nothing runs and the record says why (no index). Raises nothing
    the run should stop for: a failing window is recorded with its error as the reason."""
    from bench.analysis import total_energy_j
    from bench.fsutil import now_iso
    from bench.results import Calibration
    from bench.run.cell import measure_window, other_load, per_pass

    base: dict[str, Any] = {"session": session, "reference": REFERENCE, "device": device, "unit_flop": UNIT_FLOP}
    if device != "cpu":
        return Calibration(
            **base, measured_at=now_iso(), reason="the GPU reference workload is not implemented yet (CPU only)"
        )
    try:
        gemm = _Gemm()
        gemm.predict(None)  # warm-up: BLAS threads started, pages touched
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
