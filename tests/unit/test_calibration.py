"""The session's calibration job (issue 16, part 4): the reference GEMM metered like a cell, its index (J and s per
reference unit), and the compare page dividing energy per text by each run's index."""

from __future__ import annotations

import sys

import pytest

from bench.calibration import (
    GPU_REFERENCE,
    GPU_UNIT_FLOP,
    REFERENCE,
    UNIT_FLOP,
    TorchGemm,
    calibrate,
    reference_for,
    torch_gemm_reference,
)
from bench.meters import MeterSet, build_meter_set
from bench.meters import gpu as nvml_module
from bench.meters.base import ComponentEnergy, Reading
from bench.report.compare import calibration_index, compare_context
from bench.results import Calibration, EnergyValue
from tests.factories import cell, document
from tests.fakes.fake_pynvml import FakePynvml, fake_gpus


class FixedPowerMeter:
    """cpu at a constant 50 W over its own measured window."""

    name = "fixed"

    def components(self) -> tuple[str, ...]:
        return ("cpu",)

    def start(self) -> None:
        import time

        self._t0 = time.perf_counter()

    def stop(self) -> Reading:
        import time

        duration_s = time.perf_counter() - self._t0
        return Reading("fixed", duration_s, {"cpu": ComponentEnergy(50.0 * duration_s, "measured:rapl")})

    def close(self) -> None:
        pass


def test_the_reference_gemm_is_metered_like_a_cell() -> None:
    record = calibrate(MeterSet([FixedPowerMeter()]), min_window_s=0.2, session=0, device="cpu")
    assert record.reason is None and record.reference == REFERENCE and record.unit_flop == 2 * 512**3 == UNIT_FLOP
    assert record.loops is not None and record.loops >= 1 and record.duration_s >= 0.2
    assert record.s_per_unit == pytest.approx(record.duration_s / record.loops)
    # 50 W over the window, divided by the loop count: J per unit is 50 W x s per unit (the meter's window encloses
    # the set's by microseconds)
    assert record.j_per_unit == pytest.approx(50.0 * record.s_per_unit, rel=0.02)
    assert record.energy["cpu"].method == "measured:rapl"
    assert record.energy["gpu"].energy_j is None and record.energy["gpu"].reason


def test_the_gpu_reference_is_a_versioned_fp16_gemm_of_its_own_name() -> None:
    assert GPU_REFERENCE == "gemm-torch-f16-4096-v1" == torch_gemm_reference() and GPU_UNIT_FLOP == 2 * 4096**3
    assert reference_for("cuda") == reference_for("cuda:1") == (GPU_REFERENCE, GPU_UNIT_FLOP)
    assert reference_for("cpu") == (REFERENCE, UNIT_FLOP) and reference_for("mps") is None
    # any other size or dtype is another reference: its index is never set beside the GPU reference's
    assert torch_gemm_reference(64, "float32") == "gemm-torch-f32-64-v1" != GPU_REFERENCE
    with pytest.raises(ValueError, match="float64"):
        torch_gemm_reference(64, "float64")


def test_the_torch_reference_uses_the_same_seeded_matrices_everywhere() -> None:
    import torch

    one, two = TorchGemm("cpu", n=16, dtype="float32"), TorchGemm("cpu", n=16, dtype="float32")
    assert torch.equal(one.a, two.a) and torch.equal(one.b, two.b) and not torch.equal(one.a, one.b)
    one.predict(None)
    assert torch.allclose(one.out, one.a @ one.b)


def test_the_torch_reference_is_metered_like_a_cell_on_the_fake_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU reference's code path (torch GEMM, synchronize, the window) on CPU tensors, metered by the kit's meter
    set with a fake GPU at 90 W: a record with an index, the GPU's share of it the fake's 90 W x s per unit."""
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml(fake_gpus(1, power_w=90.0)))
    monkeypatch.setattr(nvml_module, "DEFAULT_MIN_WINDOW_S", 0.3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    meters = build_meter_set(use_gpu=True, codecarbon=False)
    try:
        workload = TorchGemm("cpu", n=64, dtype="float32")
        record = calibrate(meters, min_window_s=0.5, session=1, device="cuda", workload=workload)
    finally:
        meters.close()
    assert record.reason is None, record.reason
    assert record.reference == "gemm-torch-f32-64-v1" and record.unit_flop == 2 * 64**3 and record.device == "cpu"
    assert record.loops is not None and record.loops > 1 and record.duration_s >= 0.5
    gpu = record.energy["gpu"]
    assert gpu.method == "measured:nvml-energy-counter"
    assert gpu.energy_j == pytest.approx(90.0 * record.s_per_unit, rel=0.05)
    assert record.j_per_unit == pytest.approx(sum(v.energy_j or 0.0 for v in record.energy.values()))
    assert record.j_per_unit > gpu.energy_j  # the CPU and RAM estimates count too, as in a cell's gross energy


def test_a_cuda_profile_without_cuda_records_why_there_is_no_index() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the GPU reference would run")
    record = calibrate(MeterSet([FixedPowerMeter()]), min_window_s=0.2, session=0, device="cuda")
    assert record.reference == GPU_REFERENCE and record.unit_flop == GPU_UNIT_FLOP
    assert record.j_per_unit is None and record.reason is not None and "sees no CUDA device" in record.reason
    other = calibrate(MeterSet([FixedPowerMeter()]), min_window_s=0.2, session=0, device="mps")
    assert other.j_per_unit is None and "no reference workload for device 'mps'" in (other.reason or "")


def _calibrated(j_per_unit: float, reference: str = REFERENCE) -> object:
    doc = document([cell(0), cell(1)])
    doc.calibration = [
        Calibration(
            session=0,
            reference=reference,
            device="cpu",
            unit_flop=UNIT_FLOP,
            measured_at="2026-01-01T00:00:00+00:00",
            loops=10,
            duration_s=2.0,
            s_per_unit=0.2,
            j_per_unit=j_per_unit,
            energy={"cpu": EnergyValue(energy_j=j_per_unit, method="measured:rapl")},
        )
    ]
    return doc


def test_compare_divides_energy_per_text_by_each_runs_index() -> None:
    a, b, older = _calibrated(2.0), _calibrated(4.0), document([cell(0), cell(1)])
    assert calibration_index(a) == (2.0, REFERENCE) and calibration_index(older) is None
    context = compare_context([a, b, older])
    table = context["sections"][0]["table"]
    labels = [c.label for c in table.columns]
    assert labels.count("energy / index") == 2  # A and B; C has no calibration
    row = table.rows[0]
    first = labels.index("energy / index")
    jpt_a = float(row[2].text)  # A's energy per text
    assert float(row[first].text) == pytest.approx(jpt_a / 2.0, rel=0.01)
    notes = [n for n in context["notices"] if n.text.startswith("Energy per text divided by")]
    assert len(notes) == 1 and any(i.startswith("C: no calibration") for i in notes[0].items)
    mixed = compare_context([a, _calibrated(4.0, reference="gemm-f32-1024-v9")])
    labels = [c.label for c in mixed["sections"][0]["table"].columns]
    assert "energy / index" not in labels  # different references are never divided side by side
