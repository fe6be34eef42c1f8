"""SoC energy through Zeus's ``get_soc()``: Apple Silicon (the ``zeus-apple-silicon`` extra, not installable on Linux,
so a fake module shaped as Zeus's ``apple.py`` uses it: ``AppleEnergyMonitor().get_cumulative_energy()`` returning
``AppleEnergyMetrics`` in mJ) and Jetson (Zeus's ``JetsonMeasurement``); each component labelled, the Neural Engine
recorded and said, a missing field never a zero."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from bench.meters import build_meter_set
from bench.meters.soc import SocMeter


class AppleEnergyMetrics(types.SimpleNamespace):
    """zeus_apple_silicon's metrics object: every field mJ (int) or None where the chip lacks it."""


class FakeAppleSilicon(types.ModuleType):
    """A module shaped like ``zeus_apple_silicon`` where Zeus calls it. ``mw``: constant power per field."""

    def __init__(self, mw: dict[str, int | None]) -> None:
        super().__init__("zeus_apple_silicon")
        self.mw = mw
        self.t = 0.0
        self.AppleEnergyMetrics = AppleEnergyMetrics
        fake = self

        class AppleEnergyMonitor:
            def get_cumulative_energy(self) -> AppleEnergyMetrics:
                fields = ("cpu_total_mj", "efficiency_cores_mj", "performance_cores_mj", "efficiency_cluster_mj",
                          "performance_cluster_mj", "efficiency_core_manager_mj", "performance_core_manager_mj",
                          "dram_mj", "gpu_mj", "gpu_sram_mj", "ane_mj")  # fmt: skip
                w = fake.mw
                return AppleEnergyMetrics(**{f: None if w.get(f) is None else int(w[f] * fake.t) for f in fields})

            def begin_window(self, key: str, restart: bool = False) -> None: ...

            def end_window(self, key: str) -> AppleEnergyMetrics: ...

        self.AppleEnergyMonitor = AppleEnergyMonitor


@pytest.fixture
def apple(monkeypatch: pytest.MonkeyPatch) -> FakeAppleSilicon:
    """Zeus's real AppleSilicon class over the fake extra, as get_soc() builds it on a Mac."""
    import zeus.device.soc as soc
    import zeus.device.soc.apple as zeus_apple

    fake = FakeAppleSilicon({"cpu_total_mj": 4000, "gpu_mj": 9000, "gpu_sram_mj": 500, "dram_mj": 1500, "ane_mj": 700})
    monkeypatch.setattr(zeus_apple, "zeus_apple_silicon", fake)
    monkeypatch.setattr(soc, "apple_silicon_is_available", lambda: True)
    monkeypatch.setattr(soc, "_soc", None)
    return fake


def test_apple_silicon_reports_cpu_gpu_dram_and_the_neural_engine(apple: FakeAppleSilicon, tmp_path: Path) -> None:
    ms = build_meter_set(rapl_root=tmp_path, use_gpu=True, nvml=None, series=False)
    described = ms.describe()
    for component in ("cpu", "gpu", "ram"):
        assert described["components"][component]["meter"] == "soc"
    assert [m.name for m in ms.primary] == ["soc"]  # no estimate, no GPU library meter on top
    ms.start()
    apple.t += 2.0
    reading = ms.stop()
    ms.close()
    energy = reading.components
    assert energy["cpu"].energy_j == pytest.approx(8.0) and energy["cpu"].method == "measured:apple-ioreport"
    assert energy["gpu"].energy_j == pytest.approx(19.0)  # GPU + GPU SRAM
    assert energy["ram"].energy_j == pytest.approx(3.0)
    detail = energy["gpu"].detail
    assert detail["extra_j"] == {"ane": pytest.approx(1.4)} and "not a kit component" in detail["note"]


def test_a_field_the_chip_lacks_is_not_claimed(apple: FakeAppleSilicon, tmp_path: Path) -> None:
    apple.mw["dram_mj"] = None
    ms = build_meter_set(rapl_root=tmp_path, ram_gb=16.0, use_gpu=True, series=False)
    assert ms.describe()["components"]["ram"]["meter"] == "ram-estimate"
    assert ms.describe()["components"]["cpu"]["meter"] == "soc"
    ms.close()


def test_jetson_rails_with_the_board_input_in_the_detail() -> None:
    from zeus.device.soc.jetson import JetsonMeasurement

    readings = iter([JetsonMeasurement(0.0, 0.0, 0.0), JetsonMeasurement(0.0, 0.0, 0.0),
                     JetsonMeasurement(3000.0, 5000.0, 12000.0)])  # fmt: skip
    soc = types.SimpleNamespace(get_total_energy_consumption=lambda: next(readings))
    meter = SocMeter(soc)
    assert meter.components() == ("cpu", "gpu") and meter.method == "measured:jetson-ina3221"
    meter.start()
    reading = meter.stop()
    assert reading.components["cpu"].energy_j == 3.0 and reading.components["gpu"].energy_j == 5.0
    assert reading.components["gpu"].detail["extra_j"] == {"board_input": 12.0}


def test_no_soc_here_leaves_the_other_meters(tmp_path: Path) -> None:
    ms = build_meter_set(rapl_root=tmp_path, ram_gb=8.0, use_gpu=False, series=False)
    assert "soc" not in ms.describe()["notes"] and ms.owner("cpu").name == "cpu-estimate"  # type: ignore[union-attr]
    ms.close()
