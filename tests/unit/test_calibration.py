"""The session's calibration job (issue 16, part 4): the reference GEMM metered like a cell, its index (J and s per
reference unit), and the compare page dividing energy per text by each run's index."""

from __future__ import annotations

import pytest

from bench.calibration import REFERENCE, UNIT_FLOP, calibrate
from bench.meters import MeterSet
from bench.meters.base import ComponentEnergy, Reading
from bench.report.compare import calibration_index, compare_context
from bench.results import Calibration, EnergyValue
from tests.factories import cell, document


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


def test_a_gpu_profile_records_why_there_is_no_index() -> None:
    record = calibrate(MeterSet([FixedPowerMeter()]), min_window_s=0.2, session=0, device="cuda")
    assert record.j_per_unit is None and record.reason is not None and "not implemented" in record.reason


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
