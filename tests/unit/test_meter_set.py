"""MeterSet with fake meters (order, priorities, reasons, failures), build_meter_set, and the NVML probe."""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import time
import types
from pathlib import Path

import pytest

from bench.devices import nvidia as nvidia_module
from bench.devices.nvidia import probe as nvml_probe
from bench.errors import MeterError
from bench.meters import MeterSet, WindowReading, build_meter_set
from bench.meters.base import ComponentEnergy, Meter, Reading
from tests.fakes.fake_pynvml import ERROR_CODES, FakePynvml, fake_gpus


class FakeMeter:
    """Returns fixed joules per component and logs start/stop into a shared list."""

    def __init__(
        self,
        name: str,
        energies: dict[str, float],
        log: list[str],
        *,
        method: str = "measured:rapl",
        fail_start: bool = False,
        fail_stop: bool = False,
    ) -> None:
        self.name = name
        self.method = method
        self._energies = energies
        self._log = log
        self._fail_start = fail_start
        self._fail_stop = fail_stop
        self.closed = 0

    def components(self) -> tuple[str, ...]:
        return tuple(self._energies)

    def start(self) -> None:
        self._log.append(f"start:{self.name}")
        if self._fail_start:
            raise MeterError(f"{self.name} cannot start")

    def stop(self) -> Reading:
        self._log.append(f"stop:{self.name}")
        if self._fail_stop:
            raise MeterError(f"{self.name} lost its counter")
        return Reading(
            self.name,
            1.0,
            {c: ComponentEnergy(e, self.method, detail={"by": self.name}) for c, e in self._energies.items()},
        )

    def close(self) -> None:
        self.closed += 1


def test_fake_meter_follows_protocol() -> None:
    assert isinstance(FakeMeter("x", {}, []), Meter)


def test_order_side_outside_primary() -> None:
    log: list[str] = []
    side = FakeMeter("side", {"cpu": 9.0}, log, method="estimated:codecarbon")
    a = FakeMeter("a", {"cpu": 1.0}, log)
    b = FakeMeter("b", {"ram": 2.0}, log, method="estimated:ram-0.375W/GB")
    ms = MeterSet([a, b], [side])
    ms.start()
    ms.stop()
    assert log == ["start:side", "start:a", "start:b", "stop:b", "stop:a", "stop:side"]


def test_first_primary_wins_and_missing_component_has_reason() -> None:
    log: list[str] = []
    first = FakeMeter("rapl", {"cpu": 5.0, "ram": 1.0}, log)
    second = FakeMeter("est", {"cpu": 50.0, "ram": 10.0}, log, method="estimated:tdp-utilization")
    ms = MeterSet([first, second], unavailable={"gpu": "nvidia-ml-py not installed"})
    ms.start()
    window = ms.stop()
    assert isinstance(window, WindowReading)
    assert set(window.components) == {"gpu", "cpu", "ram"}
    assert window.components["cpu"].energy_j == 5.0 and window.components["cpu"].detail["by"] == "rapl"
    assert window.components["ram"].energy_j == 1.0
    gpu = window.components["gpu"]
    assert gpu.energy_j is None and gpu.method == "unavailable" and gpu.reason == "nvidia-ml-py not installed"
    assert window.side == {}
    assert window.duration_s >= 0


def test_uncovered_component_without_configured_reason_still_has_one() -> None:
    ms = MeterSet([FakeMeter("a", {"cpu": 1.0}, [])])
    ms.start()
    window = ms.stop()
    assert window.components["ram"].reason and window.components["gpu"].reason


def test_side_readings_kept_apart_and_serializable() -> None:
    log: list[str] = []
    ms = MeterSet(
        [FakeMeter("a", {"cpu": 1.0, "ram": 2.0}, log)],
        [FakeMeter("codecarbon", {"cpu": 3.0, "ram": 4.0}, log, method="estimated:codecarbon")],
        unavailable={"gpu": "no GPU"},
    )
    ms.start()
    window = ms.stop()
    assert window.side["codecarbon"].components["cpu"].energy_j == 3.0
    assert window.components["cpu"].energy_j == 1.0  # side numbers never replace primary ones
    gpu = json.loads(json.dumps(dataclasses.asdict(window.components["gpu"])))
    assert gpu == {"energy_j": None, "method": "unavailable", "reason": "no GPU", "detail": {}}
    assert window.side["codecarbon"].components["ram"].energy_j == 4.0


def test_side_meter_failing_to_start_does_not_abort() -> None:
    log: list[str] = []
    ms = MeterSet([FakeMeter("a", {"cpu": 1.0}, log)], [FakeMeter("cc", {"cpu": 3.0}, log, fail_start=True)])
    ms.start()
    window = ms.stop()
    assert window.components["cpu"].energy_j == 1.0
    side_cpu = window.side["cc"].components["cpu"]
    assert side_cpu.energy_j is None and "cc cannot start" in (side_cpu.reason or "")
    assert "stop:cc" not in log  # never started, never stopped


def test_primary_failing_to_start_aborts_and_stops_the_others() -> None:
    log: list[str] = []
    ms = MeterSet(
        [FakeMeter("a", {"cpu": 1.0}, log), FakeMeter("b", {"ram": 1.0}, log, fail_start=True)],
        [FakeMeter("side", {"cpu": 1.0}, log)],
    )
    with pytest.raises(MeterError, match="b cannot start"):
        ms.start()
    assert log == ["start:side", "start:a", "start:b", "stop:a", "stop:side"]
    with pytest.raises(MeterError):
        ms.stop()  # the window never opened


def test_primary_failing_at_stop_gives_null_with_reason() -> None:
    ms = MeterSet([FakeMeter("a", {"cpu": 1.0}, [], fail_stop=True), FakeMeter("b", {"ram": 2.0}, [])])
    ms.start()
    window = ms.stop()
    cpu = window.components["cpu"]
    assert cpu.energy_j is None and "lost its counter" in (cpu.reason or "")
    assert window.components["ram"].energy_j == 2.0


def test_start_twice_and_close_idempotent() -> None:
    a = FakeMeter("a", {"cpu": 1.0}, [])
    side = FakeMeter("s", {"cpu": 1.0}, [])
    ms = MeterSet([a], [side])
    ms.start()
    with pytest.raises(MeterError):
        ms.start()
    ms.stop()
    ms.close()
    ms.close()
    assert a.closed == 2 and side.closed == 2


class EdgeAllocator(FakeMeter):
    """A GPU-like meter that allocates while it opens and closes (NVML reads build dicts), with a collection armed:
    the next one the collector runs pauses ``pause_s`` (a full collection of a large heap on a loaded machine)."""

    def __init__(self, pause_s: float) -> None:
        super().__init__("edge", {"gpu": 1.0}, [])
        self.pause_s, self.armed, self.paused_at = pause_s, False, []

    def collecting(self, phase: str, info: dict) -> None:
        if phase == "start" and self.armed:
            self.armed = False
            self.paused_at.append(time.perf_counter())
            time.sleep(self.pause_s)

    def start(self) -> None:
        super().start()
        self.armed = True
        self._garbage = [[object()] for _ in range(100)]  # crosses the collector's threshold

    def stop(self) -> Reading:
        self.armed = True
        self._garbage = [[object()] for _ in range(100)]
        return super().stop()


def test_a_garbage_collection_at_the_edges_falls_outside_every_meter_s_span() -> None:
    """A collection due while the primary meters open or close runs inside the window (in its duration and every
    meter's span alike) or after the last meter stopped, never between a meter's edge and the set's: there it made
    a constant 3.75 W RAM estimate read (0.05 + pause) / 0.05 times its power over a short window (seen as a CPU
    estimate at 3x its TDP on a loaded machine, where a full collection took 0.45 s)."""
    from bench.meters.estimate import RamEstimateMeter

    edge = EdgeAllocator(pause_s=0.3)
    ms = MeterSet([RamEstimateMeter(total_gb=10.0), edge])  # the estimate opens first and closes last
    threshold = gc.get_threshold()
    gc.callbacks.append(edge.collecting)
    try:
        gc.set_threshold(1, 10**6, 10**6)  # a collection at the next allocation: wherever the meters allocate
        for _ in range(2):
            ms.start()
            time.sleep(0.05)
            window = ms.stop()
            assert gc.isenabled()
            ram_span_s = window.component_duration_s["ram"]
            assert ram_span_s - window.duration_s < 0.05, (ram_span_s, window.duration_s, edge.paused_at)
            assert window.components["ram"].energy_j / window.duration_s == pytest.approx(3.75, rel=0.1)
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(edge.collecting)
    assert edge.paused_at, "the armed collection ran (inside the window or after it)"


def test_the_collector_is_left_as_it_was_found() -> None:
    ms = MeterSet([FakeMeter("a", {"cpu": 1.0}, [])])
    gc.disable()
    try:
        ms.start()
        ms.stop()
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
    failing = MeterSet([FakeMeter("a", {"cpu": 1.0}, [], fail_start=True)])
    with pytest.raises(MeterError):
        failing.start()
    assert gc.isenabled()


def test_duplicate_names_refused() -> None:
    with pytest.raises(MeterError):
        MeterSet([FakeMeter("a", {"cpu": 1.0}, [])], [FakeMeter("a", {"cpu": 1.0}, [])])


def test_describe_lists_meter_and_method_per_component() -> None:
    ms = MeterSet(
        [FakeMeter("rapl", {"cpu": 1.0}, []), FakeMeter("ram-est", {"ram": 1.0}, [], method="estimated:ram-0.375W/GB")],
        [],
        unavailable={"gpu": "no NVML"},
        side_unavailable={"codecarbon": "pip install codecarbon"},
    )
    d = ms.describe()
    assert d["components"]["cpu"]["meter"] == "rapl" and d["components"]["cpu"]["method"] == "measured:rapl"
    assert d["components"]["ram"]["method"] == "estimated:ram-0.375W/GB"
    assert d["components"]["gpu"] == {"meter": None, "method": "unavailable", "reason": "no NVML"}
    assert d["side"]["codecarbon"] == {"enabled": False, "reason": "pip install codecarbon"}
    json.dumps(d)


# --- build_meter_set ---------------------------------------------------------------------------------------------


def _fake_powercap(root: Path, *, dram: bool) -> Path:
    zones = [("intel-rapl:0", "package-0")] + ([("intel-rapl:0:0", "dram")] if dram else [])
    for zone, name in zones:
        d = root / zone
        d.mkdir(parents=True)
        (d / "name").write_text(name)
        (d / "energy_uj").write_text("1000")
        (d / "max_energy_range_uj").write_text("262143328850")
    return root


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvidia_module, "probe", lambda nvml=None: (False, "nvidia-ml-py not installed"))


@pytest.mark.usefixtures("no_nvml")
def test_build_uses_rapl_for_cpu_and_dram(tmp_path: Path) -> None:
    ms = build_meter_set(rapl_root=_fake_powercap(tmp_path, dram=True))
    d = ms.describe()
    assert d["components"]["cpu"]["meter"] == "rapl" and d["components"]["cpu"]["method"] == "measured:rapl"
    assert d["components"]["ram"]["meter"] == "rapl"
    reason = d["components"]["gpu"]["reason"]
    assert reason.startswith("nvidia: nvidia-ml-py not installed; amd: amdsmi unavailable"), reason  # every vendor
    ms.close()


@pytest.mark.usefixtures("no_nvml")
def test_rapl_root_comes_from_bench_rapl_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The permission message suggests BENCH_RAPL_ROOT for a host tree mounted elsewhere: it must be honoured."""
    monkeypatch.setenv("BENCH_RAPL_ROOT", str(_fake_powercap(tmp_path / "host-rapl", dram=True)))
    ms = build_meter_set()
    d = ms.describe()
    assert d["components"]["cpu"]["meter"] == "rapl" and d["components"]["ram"]["meter"] == "rapl"
    assert d["notes"]["rapl_root"] == f"BENCH_RAPL_ROOT={tmp_path / 'host-rapl'}"
    ms.close()
    # an explicit argument wins over the environment
    empty = tmp_path / "empty"
    empty.mkdir()
    ms = build_meter_set(rapl_root=empty)
    assert ms.describe()["components"]["cpu"]["method"] == "estimated:tdp-utilization"
    ms.close()


def test_the_rapl_permission_help_names_a_setting_that_exists() -> None:
    from bench.meters import RAPL_ROOT_ENV
    from bench.meters.rapl import _PERMISSION_HELP

    assert RAPL_ROOT_ENV in _PERMISSION_HELP and "rapl_root=" not in _PERMISSION_HELP


@pytest.mark.usefixtures("no_nvml")
def test_build_rapl_cpu_without_dram_estimates_ram(tmp_path: Path) -> None:
    ms = build_meter_set(rapl_root=_fake_powercap(tmp_path, dram=False), ram_gb=8.0)
    d = ms.describe()
    assert d["components"]["cpu"]["method"] == "measured:rapl"
    assert d["components"]["ram"]["method"] == "estimated:ram-0.375W/GB"
    assert d["components"]["ram"]["detail"]["total_gb"] == 8.0
    ms.close()


@pytest.mark.usefixtures("no_nvml")
def test_build_without_rapl_estimates_and_says_why(tmp_path: Path) -> None:
    ms = build_meter_set(rapl_root=tmp_path / "missing", cpu_tdp_w=65.0, ram_gb=16.0)
    d = ms.describe()
    assert d["components"]["cpu"]["method"] == "estimated:tdp-utilization"
    assert d["components"]["cpu"]["detail"]["tdp_w"] == 65.0
    assert "no powercap directory" in d["notes"]["cpu"]
    ms.start()
    window = ms.stop()
    assert window.components["cpu"].energy_j is not None and window.components["cpu"].energy_j >= 0
    assert window.components["ram"].energy_j is not None
    assert window.components["gpu"].energy_j is None and window.components["gpu"].reason
    ms.close()


@pytest.mark.usefixtures("no_nvml")
def test_build_codecarbon_missing_is_recorded_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    ms = build_meter_set(rapl_root=tmp_path, codecarbon=True)
    side = ms.describe()["side"]["codecarbon"]
    assert side["enabled"] is False and "pip install codecarbon" in side["reason"]


@pytest.mark.usefixtures("no_nvml")
def test_build_codecarbon_as_side_meter(tmp_path: Path) -> None:
    from bench.meters.codecarbon import codecarbon_available

    if not codecarbon_available()[0]:
        pytest.skip("codecarbon not installed")
    ms = build_meter_set(rapl_root=tmp_path, codecarbon=True, codecarbon_measure_power_secs=5.0)
    d = ms.describe()
    assert d["side"]["codecarbon"]["enabled"] is True
    assert d["side"]["codecarbon"]["detail"]["measure_power_secs"] == 5.0
    assert [m.name for m in ms.side] == ["codecarbon"]
    ms.close()


# --- NVML probe ----------------------------------------------------------------------------------------------------


def test_nvml_probe_without_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    ok, why = nvml_probe()
    assert not ok and "nvidia-ml-py not installed" in why


def test_nvml_probe_refuses_an_unofficial_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old `pynvml` package lacks `_nvmlGetFunctionPointer` (the test Zeus makes): a reason, not a crash."""
    fake = FakePynvml(fake_gpus(1))
    monkeypatch.setitem(sys.modules, "pynvml", types.ModuleType("pynvml"))
    ok, why = nvml_probe()
    assert not ok and "not NVIDIA's official binding" in why
    assert nvml_probe(fake)[0] is True


def test_nvml_probe_init_failure_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePynvml(fake_gpus(1), init_error=ERROR_CODES["NVML_ERROR_DRIVER_NOT_LOADED"])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    ok, why = nvml_probe()
    assert not ok and "Driver Not Loaded" in why


def test_nvml_probe_counts_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml(fake_gpus(2), driver="550.54"))
    assert nvml_probe() == (True, "NVML 550.54: 2 device(s)")
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml([]))
    ok, why = nvml_probe()
    assert not ok and "no GPU" in why
