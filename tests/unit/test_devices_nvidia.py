"""The device layer's NVIDIA file through Zeus, against the fake pynvml: what real GPUs do (issue 23, point 3).

Each test names the hardening item it checks. The fake passes Zeus's own check for NVIDIA's official binding
(``_nvmlGetFunctionPointer``) and answers field-value queries with pynvml's ctypes structures.
"""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import pytest

from bench.devices import DeviceError, probe_all
from bench.devices import nvidia as nvidia_module
from bench.meters import build_meter_set
from bench.meters import gpu as gpu_module
from bench.meters.gpu import GpuMeter
from bench.meters.others import OthersObserver
from bench.validation import gpu_telemetry_problems
from tests.fakes.fake_pynvml import FakeGpu, FakePynvml, PowerTrace, fake_gpus


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setattr(gpu_module, "COUNTER_PROBE_S", 0.0)


def h100(**kw: object) -> FakeGpu:
    """An H100 SXM: Hopper, 700 W limit, the plain power call a 1 s average, the instant field present."""
    return FakeGpu(
        name="NVIDIA H100 80GB HBM3",
        architecture=9,
        power_limit_w=700.0,
        power_limit_range_w=(200.0, 700.0),
        memory_total_bytes=85_520_809_984,
        power_average_s=1.0,
        **kw,  # type: ignore[arg-type]
    )


def test_the_fake_passes_zeuss_official_binding_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from zeus.device.gpu import nvidia as zeus_nvidia

    fake = FakePynvml([h100()])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    zeus_nvidia.nvml_is_available.cache_clear()
    try:
        assert zeus_nvidia.nvml_is_available() is True
    finally:
        zeus_nvidia.nvml_is_available.cache_clear()
        fake.nvmlShutdown()


def test_h100_samples_the_instant_field_not_the_1s_average() -> None:
    """Power item: on H100 nvmlDeviceGetPowerUsage averages over 1 s; the instant field follows a step at once."""
    fake = FakePynvml([h100(power_w=100.0, energy_counter=False)])
    meter = GpuMeter(library=fake, sample_hz=100.0, min_window_s=0.0)
    (device,) = meter.devices
    assert device.facts.power_source.startswith("NVML_FI_DEV_POWER_INSTANT")
    fake.set_power(0, 600.0)
    time.sleep(0.05)
    plain_w = fake.nvmlDeviceGetPowerUsage(device.handle) / 1000.0
    assert device.power_w() == pytest.approx(600.0)
    assert plain_w < 200.0  # the 1 s average has barely moved
    meter.close()


def test_boards_without_the_instant_field_sample_the_plain_call_and_say_so() -> None:
    fake = FakePynvml([FakeGpu(instant_power_field=False, energy_counter=False, power_w=80.0)])
    meter = GpuMeter(library=fake, min_window_s=0.0)
    assert meter.describe()["gpus"][0]["power_source"].startswith("nvmlDeviceGetPowerUsage")
    meter.close()


def test_gh200_is_module_scope_without_cpu_or_ram_estimates(tmp_path: Path) -> None:
    """Components item: Grace Hopper's power covers GPU, Grace and memory; no CPU/RAM estimate on top."""
    gh = FakeGpu(name="NVIDIA GH200 480GB", architecture=9, c2c_module=True, module_extra_w=150.0, power_w=300.0)
    fake = FakePynvml([gh])
    ms = build_meter_set(rapl_root=tmp_path, ram_gb=480.0, use_gpu=True, nvml=fake, series=False)
    described = ms.describe()
    assert described["components"]["gpu"]["detail"]["scope"] == "module"
    for component in ("cpu", "ram"):
        assert described["components"][component]["method"] == "unavailable"
        assert "module-scope" in described["components"][component]["reason"]
    (device,) = ms.owner("gpu").devices  # type: ignore[union-attr]
    assert device.power_w() == pytest.approx(450.0)  # module scope through Zeus: GPU + Grace + memory
    ms.close()


def test_four_gpus_one_unopenable_and_unused_is_skipped_and_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Access item: GPU 3 is hidden by the cgroup (NO_PERMISSION); the run uses 0-2, which are metered."""
    gpus = [*fake_gpus(3, power_w=100.0), FakeGpu(no_access=True)]
    fake = FakePynvml(gpus)
    meter = GpuMeter(library=fake, min_window_s=0.0)
    assert meter.indices == [0, 1, 2]
    (skipped,) = meter.describe()["skipped_gpus"]
    assert skipped["index"] == 3 and "NoPermission" in skipped["reason"]
    meter.start()
    reading = meter.stop()
    assert reading.components["gpu"].detail["skipped_gpus"] == [skipped]
    meter.close()
    with pytest.raises(DeviceError, match="GPU 3, which this run uses, cannot be opened"):
        GpuMeter([3], library=fake)
    assert fake.init_count == 0


@pytest.mark.parametrize(
    ("gpu", "why"),
    [(FakeGpu(counter_stuck=True), "did not move"), (FakeGpu(counter_scale=5.0), "counted")],
)
def test_a_stuck_or_implausible_counter_falls_back_to_sampling_at_open(
    monkeypatch: pytest.MonkeyPatch, gpu: FakeGpu, why: str
) -> None:
    """Counter item: checked when the meter opens, then power sampling with the reason (not a failed window)."""
    monkeypatch.setattr(gpu_module, "COUNTER_PROBE_S", 0.6)
    gpu.power_w = 100.0
    gpu.trace = PowerTrace.constant(100.0)
    meter = GpuMeter(library=FakePynvml([gpu]), min_window_s=0.0)
    assert meter.method == "measured:nvml-power-sampling"
    reason = meter.describe()["gpus"][0]["counter_fallback_reason"]
    assert why in reason and "power sampled" in reason
    meter.start()
    time.sleep(0.1)
    reading = meter.stop()
    assert reading.components["gpu"].energy_j == pytest.approx(100.0 * reading.duration_s, rel=0.2)
    meter.close()


def test_mig_mode_refuses_the_run_before_energy_is_spent(tmp_path: Path) -> None:
    """MIG item: asked of NVML, not guessed from CUDA_VISIBLE_DEVICES."""
    fake = FakePynvml([FakeGpu(name="NVIDIA A100-SXM4-80GB", mig_mode=1)])
    refused = r"GPU 0 \(NVIDIA A100-SXM4-80GB\) is in MIG mode.*refused.*--force or not.*nvidia-smi -i 0 -mig 0"
    with pytest.raises(DeviceError, match=refused) as err:
        build_meter_set(rapl_root=tmp_path, ram_gb=8.0, use_gpu=True, nvml=fake)
    assert err.value.kind == "mig" and "pass --force" not in str(err.value) and "whole GPU" in str(err.value)
    assert fake.init_count == 0
    assert "GPU 0 in MIG mode (runs on it are refused)" in probe_all({"nvidia": fake})["nvidia"][1]


def test_garbled_pids_are_never_attributed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Containers item: a driver/binding mismatch garbles pids (0, 4294967295)."""
    fake = FakePynvml([FakeGpu(processes=[(0, None), (4294967295, 1 << 30)])])
    observer = OthersObserver(nvidia_module.open_devices([0], library=fake).devices)
    observer.start()
    record = observer.stop()
    observer.close()
    assert {p["pid"] for p in record["gpu_processes"]} == {0, 4294967295}
    assert all(p["own"] is None for p in record["gpu_processes"])
    assert "garbled" in record["gpu_note"]


def test_throttling_inside_the_window_is_seen_through_violation_counters() -> None:
    """Throttling item: clocks-event reasons clear at both edges, 0.5 s of power capping in between."""
    fake = FakePynvml([FakeGpu(power_w=300.0)])
    meter = GpuMeter(library=fake, min_window_s=0.0)
    meter.start()
    fake.gpus[0].violation_ns[0] += 500_000_000  # NVML_PERF_POLICY_POWER, ns
    time.sleep(0.2)
    reading = meter.stop()
    (record,) = reading.components["gpu"].detail["gpus"]  # type: ignore[misc]
    assert record["clocks_event_reason_names_start"] == [] and record["clocks_event_reason_names_end"] == []
    assert record["throttled_power_s"] == pytest.approx(0.5) and record["throttled_thermal_s"] == 0.0
    assert any("held back by power" in p for p in gpu_telemetry_problems(reading.components["gpu"].detail))
    meter.close()


def test_reason_bits_0x200_and_0x400_are_named_and_judged() -> None:
    assert nvidia_module.clocks_event_reason_names(0x600) == ["board_limit", "reliability"]
    detail = {"gpus": [{"index": 0, "name": "H100", "clocks_event_reason_names_end": ["board_limit"]}]}
    assert any("board limit" in p for p in gpu_telemetry_problems(detail))


def test_temperature_through_temperature_v_and_persistence_recorded() -> None:
    fake = FakePynvml([FakeGpu(temperature_c=61, persistence_mode=0)])
    meter = GpuMeter(library=fake, min_window_s=0.0)
    meter.start()
    (record,) = meter.stop().components["gpu"].detail["gpus"]  # type: ignore[misc]
    assert record["temperature_c_end"] == 61 and record["persistence_mode"] is False
    called = {name for name, _ in fake.calls}
    assert "nvmlDeviceGetTemperatureV" in called and "nvmlDeviceGetTemperature" not in called
    meter.close()


def test_probe_all_says_per_vendor_why_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert "nvidia-ml-py not installed" in probe_all()["nvidia"][1]
    monkeypatch.setitem(sys.modules, "pynvml", types.ModuleType("pynvml"))
    assert "official binding" in probe_all()["nvidia"][1]


def test_vllm_workers_spawn_once_nvml_is_initialised_in_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.backends.vllm_backend import spawn_workers_if_parent_initialized

    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml([]))
    environ: dict[str, str] = {}
    assert spawn_workers_if_parent_initialized(environ) == "spawn"
    assert spawn_workers_if_parent_initialized({"VLLM_WORKER_MULTIPROC_METHOD": "fork"}) == "fork"  # the user's
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert spawn_workers_if_parent_initialized({}) is None
