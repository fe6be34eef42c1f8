"""Power over time (bench.meters.series): the encoding, the recorder thread over the fake RAPL and fake NVML, the
estimates, failures, and the stored form (bench.results.PowerSeries)."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bench.meters import MeterSet, build_meter_set
from bench.meters.base import ComponentEnergy, Reading
from bench.meters.estimate import CpuEstimateMeter, RamEstimateMeter
from bench.meters.gpu import GpuMeter
from bench.meters.rapl import RaplMeter
from bench.meters.series import (
    MAX_POINTS,
    PowerRecorder,
    cumulative_from_samples,
    encode,
    round_sig,
)
from bench.results import Cell, PowerSeries, parse_results, write_results
from tests import factories
from tests.fakes.fake_pynvml import FakeGpu, FakePynvml, PowerTrace
from tests.fakes.fake_rapl import FakeRapl


def window(meter_set: MeterSet, seconds: float, during: Any = None) -> Any:
    meter_set.start()
    if during is not None:
        time.sleep(seconds / 2)
        during()
        time.sleep(seconds / 2)
    else:
        time.sleep(seconds)
    return meter_set.stop()


def energy_of(series: dict[str, Any]) -> float:
    return sum(series["watts"]) * series["interval_s"]


# --- the encoding -------------------------------------------------------------------------------------------------


def test_encode_constant_power_and_energy_kept() -> None:
    curve = [(t / 10, 20.0 * t / 10) for t in range(21)]  # 20 W for 2 s, read at 10 Hz
    out = encode([curve], 2.0, 0.1)
    assert out["t0_s"] == 0.0
    assert out["interval_s"] == pytest.approx(0.1)
    assert out["watts"] == [20.0] * 20
    assert energy_of(out) == pytest.approx(40.0)


def test_encode_caps_points_and_keeps_energy_when_downsampling() -> None:
    curve = cumulative_from_samples([(t / 100, 10.0 + (t % 7)) for t in range(100_001)])  # 1000 s at 100 Hz
    out = encode([curve], 1000.0, 0.01)
    assert len(out["watts"]) == MAX_POINTS
    assert out["interval_s"] == pytest.approx(1000.0 / MAX_POINTS)
    assert energy_of(out) == pytest.approx(curve[-1][1], rel=1e-3)


def test_encode_sums_curves_and_respects_the_bin_floor() -> None:
    a = [(0.0, 0.0), (3.0, 30.0)]  # 10 W
    b = [(0.0, 0.0), (1.5, 7.5), (3.0, 37.5)]  # 5 W then 20 W
    out = encode([a, b], 3.0, 1.5)
    assert out["watts"] == [15.0, 30.0]


def test_round_sig_keeps_three_digits() -> None:
    assert round_sig(123.456) == 123.0
    assert round_sig(0.012345) == 0.0123
    assert round_sig(0.0) == 0.0


@pytest.mark.parametrize(
    ("curves", "window_s", "message"),
    [([[(0.0, 0.0), (1.0, 1.0)]], 0.0, "longer than 0 s"), ([[(0.0, 0.0)]], 1.0, "at least two readings")],
)
def test_encode_refuses_what_it_cannot_encode(curves: Any, window_s: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(curves, window_s, 0.1)


def test_recorder_refuses_a_rate_below_one_hz() -> None:
    with pytest.raises(ValueError, match="1 to 1000 Hz"):
        PowerRecorder({}, hz=0.5)


# --- the recorder over the fakes ------------------------------------------------------------------------------------


def test_rapl_series_shows_a_step_and_adds_up_to_the_energy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRapl(tmp_path, cpu=PowerTrace.constant(10.0), dram=PowerTrace.constant(3.0)).install(monkeypatch)
    meter = RaplMeter(tmp_path, poll_s=None)
    meter_set = MeterSet([meter], series_hz=20.0)
    reading = window(meter_set, 1.0, during=lambda: fake.set_power("intel-rapl:0", 30.0))
    series = reading.series
    assert series["encoding"] == "mean-power-bins-v1" and series["hz"] == 20.0
    cpu = series["components"]["cpu"]
    assert cpu["method"] == "measured:rapl" and cpu["source"] == "counter"
    assert cpu["interval_s"] >= 0.05 and cpu["reads"] >= 10
    assert cpu["watts"][0] == pytest.approx(10.0, rel=0.05) and cpu["watts"][-1] == pytest.approx(30.0, rel=0.05)
    assert energy_of(cpu) == pytest.approx(reading.components["cpu"].energy_j, rel=0.05)
    assert all(w == pytest.approx(3.0, rel=0.1) for w in series["components"]["ram"]["watts"])  # 1 ms counter steps
    assert "gpu" not in series["components"]  # no meter owns it


def test_rapl_series_survives_a_counter_wrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1 kW into a counter that wraps every 200 J (0.2 s), read every 20 ms: the series reads through the wraps.
    fake = FakeRapl(tmp_path, cpu=PowerTrace.constant(1000.0), max_energy_range_uj=200_000_000).install(monkeypatch)
    meter_set = MeterSet([RaplMeter(tmp_path, poll_s=None)], series_hz=50.0)
    reading = window(meter_set, 0.7)
    assert reading.components["cpu"].detail["wraps"] >= 3
    cpu = reading.series["components"]["cpu"]
    assert min(cpu["watts"]) > 900 and energy_of(cpu) == pytest.approx(reading.components["cpu"].energy_j, rel=0.05)
    assert fake.reads


def test_nvml_counter_series_bins_span_ten_counter_updates() -> None:
    fake = FakePynvml([FakeGpu(power_w=60.0, counter_period_s=0.1)])
    meter_set = MeterSet([GpuMeter(library=fake, min_window_s=0.0)], series_hz=10.0)
    reading = window(meter_set, 2.2, during=lambda: fake.set_power(0, 200.0))
    gpu = reading.series["components"]["gpu"]
    assert gpu["method"] == "measured:nvml-energy-counter" and gpu["source"] == "counter"
    assert gpu["interval_s"] >= 1.0 and len(gpu["watts"]) == 2
    assert gpu["watts"][0] < gpu["watts"][1]
    assert energy_of(gpu) == pytest.approx(reading.components["gpu"].energy_j, rel=0.1)
    meter_set.close()


def test_nvml_sampled_series_is_the_meters_own_samples() -> None:
    fake = FakePynvml([FakeGpu(power_w=50.0, energy_counter=False), FakeGpu(power_w=70.0, energy_counter=False)])
    meter = GpuMeter(library=fake, sample_hz=20.0, min_window_s=0.0)
    meter_set = MeterSet([meter], series_hz=10.0)
    reading = window(meter_set, 0.8, during=lambda: fake.set_power(0, 150.0))
    gpu = reading.series["components"]["gpu"]
    assert gpu["method"] == "measured:nvml-power-sampling" and gpu["source"] == "samples"
    assert gpu["reads"] is None  # no counter was read: the sampler's samples are the series
    assert 0.04 <= gpu["interval_s"] <= 0.2
    assert gpu["watts"][0] == pytest.approx(120.0, rel=0.1) and gpu["watts"][-1] == pytest.approx(220.0, rel=0.1)
    assert energy_of(gpu) == pytest.approx(reading.components["gpu"].energy_j, rel=0.1)
    meter_set.close()


def test_estimates_have_series_labelled_as_estimates() -> None:
    ram = RamEstimateMeter(total_gb=8.0)
    meter_set = MeterSet([CpuEstimateMeter(tdp_w=40.0), ram], series_hz=20.0)
    reading = window(meter_set, 0.5)
    series = reading.series["components"]
    assert series["cpu"]["method"] == "estimated:tdp-utilization"
    assert series["ram"]["method"] == "estimated:ram-0.375W/GB"
    assert all(w == pytest.approx(3.0, rel=0.02) for w in series["ram"]["watts"])  # read times jitter, not the power
    assert energy_of(series["cpu"]) == pytest.approx(reading.components["cpu"].energy_j, rel=0.1, abs=0.05)


class SilentMeter:
    """A meter with neither a counter to read nor samples."""

    name = "silent"
    method = "measured:rapl"

    def components(self) -> tuple[str, ...]:
        return ("cpu",)

    def start(self) -> None:
        pass

    def stop(self) -> Reading:
        return Reading(self.name, 1.0, {"cpu": ComponentEnergy(1.0, self.method)})

    def close(self) -> None:
        pass


class BrokenCounter(SilentMeter):
    name = "broken"

    def energy_so_far_j(self) -> dict[str, float]:
        raise OSError("energy_uj vanished")


def test_meter_without_series_says_why_and_failure_never_fails_the_window() -> None:
    reading = window(MeterSet([SilentMeter()], series_hz=10.0), 0.05)
    assert reading.components["cpu"].energy_j == 1.0
    assert "neither reads a counter nor samples" in reading.series["missing"]["cpu"]
    reading = window(MeterSet([BrokenCounter()], series_hz=10.0), 0.05)
    assert reading.components["cpu"].energy_j == 1.0
    assert "energy_uj vanished" in reading.series["missing"]["cpu"]


def test_one_thread_during_the_window_and_none_after() -> None:
    meter_set = MeterSet([CpuEstimateMeter(tdp_w=40.0), RamEstimateMeter(total_gb=8.0)], series_hz=10.0)
    meter_set.start()
    names = [t.name for t in threading.enumerate()]
    meter_set.stop()
    assert names.count("bench-power-series") == 1
    assert "bench-power-series" not in [t.name for t in threading.enumerate()]


def test_tick_cost_is_small(tmp_path: Path) -> None:
    # The real interfaces a cpu-profile tick reads: /proc/stat (CPU estimate) and the RAM estimate; plus sysfs files.
    recorder = PowerRecorder({"cpu": CpuEstimateMeter(tdp_w=40.0), "ram": RamEstimateMeter(total_gb=8.0)})
    for meter in recorder.owners.values():
        meter.start()
    recorder._t0 = time.perf_counter()
    costs = []
    for _ in range(50):
        t = time.perf_counter()
        recorder._read()
        costs.append(time.perf_counter() - t)
    assert statistics.median(costs) < 0.002  # 2 ms: 2% of one core at 10 Hz at worst; measured ~0.05 ms here


def test_build_meter_set_records_series_by_default(tmp_path: Path) -> None:
    meter_set = build_meter_set(rapl_root=tmp_path / "none", use_gpu=False, cpu_tdp_w=20.0, ram_gb=4.0)
    assert meter_set.describe()["power_series"]["hz"] == 10.0
    reading = window(meter_set, 0.3)
    assert set(reading.series["components"]) == {"cpu", "ram"}
    assert "gpu" in reading.series["missing"]
    meter_set.close()
    off = build_meter_set(rapl_root=tmp_path / "none", use_gpu=False, cpu_tdp_w=20.0, ram_gb=4.0, series=False)
    assert "power_series" not in off.describe() and window(off, 0.05).series is None
    off.close()


# --- stored form ----------------------------------------------------------------------------------------------------


def test_cell_stores_the_series_and_older_cells_load(tmp_path: Path) -> None:
    meter_set = MeterSet([RamEstimateMeter(total_gb=8.0)], series_hz=10.0)
    series = window(meter_set, 0.3).series
    cell = factories.cell(power_series=PowerSeries.model_validate(series))
    doc = factories.document([cell, factories.cell(1)])
    write_results(doc, tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    stored = data["cells"][0]["power_series"]
    assert all(w == pytest.approx(3.0, rel=0.02) for w in stored["components"]["ram"]["watts"])
    assert data["cells"][1]["power_series"] is None
    loaded = parse_results(data)
    assert loaded.cells[0].power_series is not None and loaded.cells[1].power_series is None
    older = dict(data["cells"][1])
    del older["power_series"]
    assert Cell.model_validate(older).power_series is None


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"watts": [-1.0]}, "watts"),
        ({"watts": [1.0] * (MAX_POINTS + 1)}, "watts"),
        ({"watts": []}, "watts"),
        ({"interval_s": 0.0}, "interval_s"),
    ],
)
def test_bad_series_is_refused_naming_the_field(change: dict[str, Any], where: str) -> None:
    component = {"method": "measured:rapl", "source": "counter", "interval_s": 0.1, "watts": [1.0], **change}
    with pytest.raises(ValidationError, match=where):
        PowerSeries.model_validate({"window_s": 1.0, "hz": 10.0, "components": {"cpu": component}})
