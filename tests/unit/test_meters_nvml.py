"""The NVML meter against a fake pynvml: counter and power-sampling integrals checked against known energies,
CUDA_VISIBLE_DEVICES, typed errors, NVML's init/shutdown balance, and build_meter_set's choice of GPU meter.

Power traces are replayed through the real meter in real time (the fake shares the meter's clock), so each window
lasts a fraction of a second; the integrals are compared against the exact energy of the trace over the span the
meter actually read.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import time

import pytest

from bench.devices import DeviceError, DeviceUnavailableError
from bench.devices import nvidia as nvidia_module
from bench.devices.nvidia import COUNTER_METHOD as ENERGY_COUNTER_METHOD
from bench.devices.nvidia import SAMPLING_METHOD as POWER_SAMPLING_METHOD
from bench.devices.nvidia import probe as nvml_probe
from bench.errors import MeterError
from bench.meters import MeterSet, build_meter_set
from bench.meters import gpu as nvml_module
from bench.meters.gpu import DEFAULT_MIN_WINDOW_S, GpuMeter, integrate_trapezoid_j
from tests.fakes import fake_pynvml
from tests.fakes.fake_pynvml import ERROR_CODES, FakeGpu, FakePynvml, PowerTrace, fake_gpus


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setattr(nvml_module, "COUNTER_PROBE_S", 0.0)  # the probe's own tests set it


def window(meter: GpuMeter, seconds: float) -> tuple[float, dict]:
    """Run one window of ``seconds``; return (energy J, gpu detail)."""
    meter.start()
    time.sleep(seconds)
    reading = meter.stop()
    gpu = reading.components["gpu"]
    assert gpu.energy_j is not None
    return gpu.energy_j, dict(gpu.detail)


# --- the fake is shaped like pynvml ------------------------------------------------------------------------------

#: Every pynvml function the kit calls (meter, probe, environment detection).
USED_FUNCTIONS = [
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
]


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is None, reason="nvidia-ml-py not installed")
def test_fake_has_the_names_of_the_real_pynvml() -> None:
    import pynvml

    fake = FakePynvml()
    for name in USED_FUNCTIONS:
        assert callable(getattr(pynvml, name)) and callable(getattr(fake, name)), name
    reasons = [n for n in dir(fake_pynvml) if n.startswith("nvmlClocksEventReason")]
    for name in ("NVML_CLOCK_SM", "NVML_CLOCK_MEM", "NVML_TEMPERATURE_GPU", *reasons, *ERROR_CODES):
        assert getattr(fake, name) == getattr(pynvml, name), name
    for name in fake_pynvml.ERROR_CLASSES:
        assert issubclass(getattr(pynvml, name), pynvml.NVMLError), name
    # NVMLError(code) returns the subclass for the code, in both.
    code = ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"]
    assert type(pynvml.NVMLError(code)).__name__ == type(fake.NVMLError(code)).__name__ == "NVMLError_NotSupported"
    assert str(fake.NVMLError_LibraryNotFound()) == "NVML Shared Library Not Found"


def test_fake_refuses_device_calls_outside_init() -> None:
    fake = FakePynvml(fake_gpus(1))
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    assert fake.nvmlDeviceGetCount() == 1
    fake.nvmlShutdown()
    with pytest.raises(fake_pynvml.NVMLError):
        fake.nvmlDeviceGetHandleByIndex(0)


def test_power_trace_integrals_are_exact() -> None:
    assert PowerTrace.constant(200.0).energy_j(3.0, 4.0) == pytest.approx(200.0)
    ramp = PowerTrace([(0.0, 100.0), (1.0, 300.0)])
    assert ramp.energy_j(0.0, 1.0) == pytest.approx(200.0)
    assert ramp.energy_j(0.5, 2.0) == pytest.approx((200 + 300) / 2 * 0.5 + 300 * 1.0)
    step = PowerTrace.constant(60.0).with_step(1.0, 300.0)
    assert step.power_w(0.999) == 60.0 and step.power_w(1.0) == 300.0
    assert step.energy_j(0.0, 2.0) == pytest.approx(360.0)


# --- integrals: trapezoid on recorded traces ---------------------------------------------------------------------


def test_trapezoid_is_exact_on_linear_pieces_sampled_at_the_knots() -> None:
    assert integrate_trapezoid_j([(0.0, 200.0), (0.5, 200.0), (1.0, 200.0)]) == pytest.approx(200.0)
    assert integrate_trapezoid_j([(0.0, 100.0), (1.0, 300.0)]) == pytest.approx(200.0)
    assert integrate_trapezoid_j([(0.0, 100.0)]) == 0.0


def test_trapezoid_on_an_inference_like_trace_sampled_at_20_hz_is_within_the_step_bound() -> None:
    # Idle 65 W, a 0.6 s ramp to 420 W, 3 s of load with a dip, a fall back to idle: the shape of a batch of LLM
    # requests on an A100 (synthetic: no real GPU was available to record one; power_samples() records real ones).
    trace = PowerTrace(
        [(0.0, 65.0), (1.0, 65.0), (1.6, 420.0), (3.0, 410.0), (3.05, 250.0), (3.1, 415.0), (4.6, 400.0), (4.6, 70.0)]
    )
    dt = 0.05
    samples = [(i * dt, trace.power_w(i * dt)) for i in range(int(6.0 / dt) + 1)]
    exact = trace.energy_j(0.0, 6.0)
    # Trapezoid error: zero on linear pieces sampled at both ends; at most |jump| x dt / 2 per step or kink between
    # samples (the 330 W fall at 4.6 s and the 0.1 s dip, which the 20 Hz grid only partly sees).
    bound = 330.0 * dt / 2 + 165.0 * 0.1
    assert abs(integrate_trapezoid_j(samples) - exact) <= bound
    pieces = [65 * 1.0, (65 + 420) / 2 * 0.6, (420 + 410) / 2 * 1.4, (410 + 250) / 2 * 0.05, (250 + 415) / 2 * 0.05]
    pieces += [(415 + 400) / 2 * 1.5, 70 * 1.4]
    assert exact == pytest.approx(sum(pieces))


# --- integrals: the meter on live fake GPUs ----------------------------------------------------------------------


def test_counter_is_exact_over_the_span_it_read() -> None:
    fake = FakePynvml([FakeGpu(power_w=200.0)])
    meter = GpuMeter(library=fake)
    energy_j, detail = window(meter, 0.3)
    (t0, _), (t1, _) = fake.gpus[0].counter_reads[-2:]
    assert energy_j == pytest.approx(fake.true_energy_j(0, t0, t1), abs=0.002)  # two 1 mJ floors
    record = detail["gpus"][0]
    assert record["method"] == ENERGY_COUNTER_METHOD and record["power_w"] == pytest.approx(200.0, rel=1e-3)
    assert meter.method == ENERGY_COUNTER_METHOD
    meter.close()


def test_counter_quantization_is_one_update_period_at_most() -> None:
    fake = FakePynvml([FakeGpu(power_w=200.0, counter_period_s=0.1)])
    meter = GpuMeter(library=fake)
    energy_j, detail = window(meter, 0.55)
    span_s = detail["gpus"][0]["duration_s"]
    # What a 100 ms counter costs: up to one update (200 W x 0.1 s = 20 J) per window, hence the 10 s minimum.
    assert abs(energy_j - 200.0 * span_s) <= 200.0 * 0.1 + 0.002
    assert pytest.approx(0.1 / 0.01) == DEFAULT_MIN_WINDOW_S == meter.min_window_s
    meter.close()


def test_sampling_constant_200_w_for_1_s_gives_200_j() -> None:
    fake = FakePynvml([FakeGpu(power_w=200.0, energy_counter=False)])
    meter = GpuMeter(library=fake, sample_hz=20.0)
    energy_j, detail = window(meter, 1.0)
    record = detail["gpus"][0]
    assert record["method"] == POWER_SAMPLING_METHOD and meter.method == POWER_SAMPLING_METHOD
    assert energy_j == pytest.approx(200.0 * record["duration_s"], rel=1e-6)  # constant: trapezoid exact
    assert 1.0 <= record["duration_s"] < 1.2 and energy_j == pytest.approx(200.0, rel=0.2)
    assert record["sample_hz"] >= 10.0 and record["samples"] >= 11  # the >= 10 Hz promise, edges included
    samples = meter.power_samples()["gpu"][0]
    assert samples[0][0] == pytest.approx(0.0, abs=0.01) and samples[-1][0] >= 1.0
    meter.close()


def test_sampling_a_ramp_is_exact_and_a_step_within_its_bound() -> None:
    fake = FakePynvml([FakeGpu(energy_counter=False, power_average_s=0.0)])  # instantaneous power: no lag
    meter = GpuMeter(library=fake, sample_hz=20.0)
    # One linear piece that outlasts the window however late a loaded machine stops it: trapezoids are exact on a
    # line, so only mW rounding remains (a knot inside the window would make the result depend on sample timing).
    fake.replay(0, [(0.0, 100.0), (30.0, 700.0)])
    energy_j, _ = window(meter, 0.6)
    reads = fake.gpus[0].power_reads
    exact = fake.true_energy_j(0, reads[0][0], reads[-1][0])
    # The meter stamps each sample with its own clock just after the read; on a loaded machine that stamp can lag the
    # read by milliseconds, which on a 20 W/s ramp is well under 1% of the window's energy.
    assert energy_j == pytest.approx(exact, rel=1e-2)

    fake.gpus[0].power_reads.clear()
    fake.replay(0, [(0.0, 60.0), (0.2, 60.0), (0.2, 300.0), (0.45, 300.0), (0.45, 60.0)])
    energy_j, _ = window(meter, 0.7)
    reads = fake.gpus[0].power_reads
    exact = fake.true_energy_j(0, reads[0][0], reads[-1][0])
    largest_gap_s = max(b[0] - a[0] for a, b in itertools.pairwise(reads))
    assert abs(energy_j - exact) <= 2 * 240.0 * largest_gap_s / 2  # two 240 W steps, each off by <= jump x gap / 2
    meter.close()


def test_mixed_gpus_sum_with_per_gpu_methods_and_the_weaker_label() -> None:
    fake = FakePynvml([FakeGpu(power_w=250.0), FakeGpu(power_w=150.0, energy_counter=False)])
    meter = GpuMeter(library=fake)
    energy_j, detail = window(meter, 0.4)
    methods = [g["method"] for g in detail["gpus"]]
    assert methods == [ENERGY_COUNTER_METHOD, POWER_SAMPLING_METHOD] and meter.method == POWER_SAMPLING_METHOD
    assert energy_j == pytest.approx(sum(g["energy_j"] for g in detail["gpus"]))
    assert detail["gpu_count"] == 2 and [g["power_w"] for g in detail["gpus"]] == pytest.approx([250, 150], rel=1e-2)
    meter.close()


def test_per_gpu_context_is_recorded() -> None:
    fake = FakePynvml([FakeGpu(name="NVIDIA H100 80GB HBM3", power_limit_w=700.0, sm_clock_mhz=1980)])
    meter = GpuMeter(library=fake)
    fake.gpus[0].sm_clock_mhz = 1755  # clocks change during the window (thermal or power capping)
    _, detail = window(meter, 0.05)
    record = detail["gpus"][0]
    assert record["name"] == "NVIDIA H100 80GB HBM3" and record["uuid"].startswith("GPU-")
    assert record["driver"] == "550.54.15" and record["power_limit_w"] == 700.0
    assert record["sm_clock_mhz_start"] == 1755 and record["mem_clock_mhz_end"] == 1593
    desc = meter.describe()
    assert desc["gpus"][0]["memory_gb"] == 80.0 and desc["min_window_s"] == DEFAULT_MIN_WINDOW_S
    meter.close()


def test_unsupported_limit_and_clocks_are_none_not_errors() -> None:
    fake = FakePynvml([FakeGpu(power_limit_w=None, sm_clock_mhz=None, mem_clock_mhz=None)])
    meter = GpuMeter(library=fake)
    _, detail = window(meter, 0.05)
    record = detail["gpus"][0]
    assert record["power_limit_w"] is None and record["sm_clock_mhz_start"] is None
    meter.close()


# --- CUDA_VISIBLE_DEVICES and indices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(None, [0, 1, 2]), ("1", [1]), ("2,0", [2, 0]), ("0,7,1", [0]), ("-1", []), ("", [])]
)
def test_integer_visible_devices(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: list[int]) -> None:
    if value is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    fake = FakePynvml(fake_gpus(3))
    fake.nvmlInit()
    inventory, _ = nvidia_module._inventory(fake, 3)
    assert [m[0] for m in nvidia_module.map_cuda_devices(inventory)] == expected


def test_cuda_index_is_mapped_to_nvml_index_by_pci_bus_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML numbers GPUs one way, CUDA (PCI_BUS_ID order) another: CUDA device 0 is the GPU on the lowest bus."""
    gpus = [FakeGpu(pci_bus_id="00000000:C1:00.0"), FakeGpu(pci_bus_id="00000000:18:00.0")]
    fake = FakePynvml(gpus)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    meter = GpuMeter(library=fake)
    (record,) = meter.describe()["gpus"]
    assert (record["index"], record["cuda_index"], record["matched_by"]) == (1, 0, "pci-bus-id")
    meter.close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", gpus[0].uuid)
    meter = GpuMeter(library=fake)
    assert [(g["index"], g["matched_by"]) for g in meter.describe()["gpus"]] == [(0, "uuid")]
    meter.close()


def test_uuid_visible_devices_resolve_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePynvml(fake_gpus(3))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{fake.gpus[2].uuid[:12]},{fake.gpus[0].uuid}")
    meter = GpuMeter(library=fake)
    assert meter.indices == [2, 0]
    meter.close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-1234")
    with pytest.raises(DeviceError, match="MIG"):
        GpuMeter(library=fake)
    assert fake.init_count == 0


def test_no_visible_gpu_is_unavailable_and_bad_indices_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePynvml(fake_gpus(2))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceUnavailableError, match="none is visible"):
        GpuMeter(library=fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(MeterError, match=r"indices \[0, 5\] invalid"):
        GpuMeter([0, 5], library=fake)
    assert GpuMeter([1], library=fake).indices == [1]


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("NVML_ERROR_LIBRARY_NOT_FOUND", "--gpus all"),
        ("NVML_ERROR_DRIVER_NOT_LOADED", "kernel driver is not loaded"),
        ("NVML_ERROR_LIB_RM_VERSION_MISMATCH", "differ in version"),
        ("NVML_ERROR_UNKNOWN", "Unknown Error"),
    ],
)
def test_init_failures_are_typed_unavailable_with_a_hint(code: str, hint: str) -> None:
    fake = FakePynvml(fake_gpus(1), init_error=ERROR_CODES[code])
    with pytest.raises(DeviceUnavailableError, match=hint) as err:
        GpuMeter(library=fake)
    assert isinstance(err.value, MeterError) and err.value.code == ERROR_CODES[code]
    ok, why = nvml_probe(fake)
    assert not ok and "nvmlInit failed" in why


def test_missing_library_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(DeviceUnavailableError, match="nvidia-ml-py not installed"):
        GpuMeter()


def test_gpu_lost_mid_window_names_the_gpu_and_the_call() -> None:
    fake = FakePynvml(fake_gpus(2))
    meter = GpuMeter(library=fake)
    meter.start()
    fake.gpus[1].errors["nvmlDeviceGetTotalEnergyConsumption"] = ERROR_CODES["NVML_ERROR_GPU_IS_LOST"]
    with pytest.raises(DeviceError, match=r"GPU 1 \(NVIDIA A100.*GPU is lost.*Xid") as err:
        meter.stop()
    assert err.value.device == "GPU 1 (NVIDIA A100-SXM4-80GB)" and err.value.call == "energy counter"
    assert err.value.kind == "lost"
    meter.close()
    assert fake.init_count == 0


def test_sampler_thread_error_surfaces_at_stop() -> None:
    fake = FakePynvml([FakeGpu(energy_counter=False)])
    meter = GpuMeter(library=fake, sample_hz=50.0)
    meter.start()
    fake.gpus[0].errors["nvmlDeviceGetFieldValues"] = ERROR_CODES["NVML_ERROR_NO_PERMISSION"]
    time.sleep(0.1)
    with pytest.raises(DeviceError, match="NoPermission"):
        meter.stop()
    del fake.gpus[0].errors["nvmlDeviceGetFieldValues"]
    window(meter, 0.05)  # the meter is usable again after a failed window
    meter.close()


def test_gpu_without_counter_or_power_cannot_be_metered() -> None:
    fake = FakePynvml([FakeGpu(energy_counter=False, power_reading=False)])
    with pytest.raises(DeviceError, match="neither an energy counter nor its power draw"):
        GpuMeter(library=fake)
    assert fake.init_count == 0  # the failed constructor shut NVML down again


def test_old_driver_without_the_counter_function_falls_back_to_sampling() -> None:
    gpu = FakeGpu(
        power_w=90.0, errors={"nvmlDeviceGetTotalEnergyConsumption": ERROR_CODES["NVML_ERROR_FUNCTION_NOT_FOUND"]}
    )
    meter = GpuMeter(library=FakePynvml([gpu]))
    assert meter.method == POWER_SAMPLING_METHOD
    meter.close()


def test_counter_going_backwards_or_standing_still_is_an_error() -> None:
    fake = FakePynvml([FakeGpu(power_w=100.0)])
    meter = GpuMeter(library=fake)
    meter.start()
    fake.gpus[0].counter_base_mj -= 10**6  # driver reload: the counter restarts lower
    with pytest.raises(DeviceError, match="went backwards"):
        meter.stop()
    fake.gpus[0].trace = PowerTrace.constant(0.0)  # a dead (virtualized) counter
    meter.start()
    time.sleep(0.55)
    with pytest.raises(DeviceError, match="did not move"):
        meter.stop()
    meter.close()


def test_protocol_misuse_and_idempotent_close() -> None:
    fake = FakePynvml(fake_gpus(1))
    meter = GpuMeter(library=fake)
    with pytest.raises(MeterError, match="without start"):
        meter.stop()
    meter.start()
    with pytest.raises(MeterError, match="twice"):
        meter.start()
    meter.close()
    meter.close()
    assert fake.init_count == 0 and not any(t.name == "bench-nvml-sampler" for t in __import__("threading").enumerate())
    with pytest.raises(MeterError, match="closed"):
        meter.start()
    with pytest.raises(MeterError, match="sample_hz"):
        GpuMeter(library=fake, sample_hz=5.0)


def test_errors_are_typed_meter_errors() -> None:
    assert issubclass(DeviceUnavailableError, DeviceError) and issubclass(DeviceError, DeviceError)
    assert issubclass(DeviceError, MeterError)


# --- MeterSet and build_meter_set --------------------------------------------------------------------------------


def test_meter_set_takes_the_gpu_floor_as_window_minimum() -> None:
    meter = GpuMeter(library=FakePynvml(fake_gpus(1)), min_window_s=12.0)
    ms = MeterSet([meter])
    assert ms.min_window_s == 12.0 and ms.min_window_by() == "nvml"
    assert ms.describe()["min_window_s"] == 12.0
    ms.close()
    assert MeterSet([]).min_window_s == 0.0 and MeterSet([]).min_window_by() is None


def test_build_uses_nvml_for_cuda_profiles(tmp_path: pytest.TempPathFactory) -> None:
    fake = FakePynvml(fake_gpus(2, power_w=80.0))
    ms = build_meter_set(rapl_root=tmp_path, ram_gb=8.0, use_gpu=True, nvml=fake)
    d = ms.describe()
    assert d["components"]["gpu"]["meter"] == "nvml"
    assert d["components"]["gpu"]["method"] == ENERGY_COUNTER_METHOD
    assert d["components"]["gpu"]["detail"]["gpu_count"] == 2 and d["min_window_s"] == DEFAULT_MIN_WINDOW_S
    assert [m.name for m in ms.primary][-1] == "nvml"  # started last, stopped first: the tightest window
    ms.start()
    time.sleep(0.05)
    reading = ms.stop()
    assert reading.components["gpu"].energy_j == pytest.approx(160.0 * reading.duration_s, rel=0.05)
    ms.close()
    assert fake.init_count == 0


def test_build_reports_gpu_unavailable_with_reasons(tmp_path: pytest.TempPathFactory) -> None:
    fake = FakePynvml(fake_gpus(1))
    cpu_profile = build_meter_set(rapl_root=tmp_path, ram_gb=8.0, use_gpu=False, nvml=fake).describe()
    assert "device = 'cpu'" in cpu_profile["components"]["gpu"]["reason"]
    broken = FakePynvml(fake_gpus(1), init_error=ERROR_CODES["NVML_ERROR_DRIVER_NOT_LOADED"])
    no_driver = build_meter_set(rapl_root=tmp_path, ram_gb=8.0, use_gpu=True, nvml=broken).describe()
    assert no_driver["components"]["gpu"]["meter"] is None
    assert "Driver Not Loaded" in no_driver["components"]["gpu"]["reason"]
    mute = FakePynvml([FakeGpu(energy_counter=False, power_reading=False)])
    no_power = build_meter_set(rapl_root=tmp_path, ram_gb=8.0, use_gpu=True, nvml=mute).describe()
    assert "neither an energy counter" in no_power["components"]["gpu"]["reason"]


def test_real_pynvml_without_driver_is_a_normal_state(tmp_path: pytest.TempPathFactory) -> None:
    """On this machine nvidia-ml-py may be installed without a driver: a reason, never a crash."""
    ok, why = nvml_probe()
    if ok:
        pytest.skip("a real NVIDIA GPU is visible here")
    ms = build_meter_set(rapl_root=tmp_path, ram_gb=8.0, use_gpu=True)
    assert f"nvidia: {why}" in ms.describe()["components"]["gpu"]["reason"]
    assert nvidia_module.probe()[0] is False


# --- NVML_ERROR_NOT_READY (27): the driver is still initializing the GPU ----------------------------------------


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """NOT_READY retries without the real pauses; returns the pauses the kit asked for."""
    pauses: list[float] = []
    monkeypatch.setattr(nvidia_module, "NOT_READY_BACKOFF_S", (0.01, 0.02, 0.04))
    real_sleep = time.sleep
    monkeypatch.setattr(nvidia_module.time, "sleep", lambda s: (pauses.append(s), real_sleep(0))[1])
    return pauses


def test_the_fake_raises_not_ready_like_pynvml_and_only_as_often_as_told() -> None:
    fake = FakePynvml(fake_gpus(1))
    fake.errors["nvmlInit"] = ERROR_CODES["NVML_ERROR_NOT_READY"]
    fake.errors_left["nvmlInit"] = 2
    for _ in range(2):
        with pytest.raises(fake.NVMLError_NotReady) as err:
            fake.nvmlInit()
        assert err.value.value == 27 and isinstance(err.value, fake.NVMLError)
    fake.nvmlInit()  # the third call succeeds
    assert fake.init_count == 1 and "nvmlInit" not in fake.errors
    fake.nvmlShutdown()


def test_not_ready_at_init_is_retried_then_works(quick_backoff: list[float]) -> None:
    fake = FakePynvml(fake_gpus(1, power_w=90.0))
    fake.errors["nvmlInit"] = ERROR_CODES["NVML_ERROR_NOT_READY"]
    fake.errors_left["nvmlInit"] = 2
    meter = GpuMeter(library=fake)
    assert meter.method == ENERGY_COUNTER_METHOD and quick_backoff == [0.01, 0.02]
    meter.close()


def test_not_ready_at_init_that_persists_says_what_it_means(quick_backoff: list[float]) -> None:
    fake = FakePynvml(fake_gpus(1))
    fake.errors["nvmlInit"] = ERROR_CODES["NVML_ERROR_NOT_READY"]
    with pytest.raises(DeviceUnavailableError, match="not ready yet: the driver is still initializing") as err:
        GpuMeter(library=fake)
    assert err.value.code == 27 and quick_backoff == [0.01, 0.02, 0.04]
    ok, why = nvml_probe(fake)
    assert not ok and "not ready yet" in why
    # build_meter_set records the reason the GPU is unavailable, never a silent zero
    ms = build_meter_set(nvml=fake, use_gpu=True)
    assert "still initializing" in ms.describe()["components"]["gpu"]["reason"]
    ms.close()


def test_counter_not_ready_falls_back_to_sampling_with_the_reason(quick_backoff: list[float]) -> None:
    gpu = FakeGpu(power_w=90.0, errors={"nvmlDeviceGetTotalEnergyConsumption": ERROR_CODES["NVML_ERROR_NOT_READY"]})
    meter = GpuMeter(library=FakePynvml([gpu]), sample_hz=50.0)
    assert meter.method == POWER_SAMPLING_METHOD
    described = meter.describe()["gpus"][0]
    assert "not ready yet" in described["counter_fallback_reason"]
    assert "falling back to power sampling" in described["counter_fallback_reason"]
    energy_j, detail = window(meter, 0.3)
    record = detail["gpus"][0]
    assert record["method"] == POWER_SAMPLING_METHOD and "not ready yet" in record["counter_fallback_reason"]
    assert energy_j / record["duration_s"] == pytest.approx(90.0, rel=0.01)
    meter.close()


def test_counter_not_ready_for_a_moment_keeps_the_counter(quick_backoff: list[float]) -> None:
    gpu = FakeGpu(
        power_w=90.0,
        errors={"nvmlDeviceGetTotalEnergyConsumption": ERROR_CODES["NVML_ERROR_NOT_READY"]},
        errors_left={"nvmlDeviceGetTotalEnergyConsumption": 1},
    )
    meter = GpuMeter(library=FakePynvml([gpu]))
    assert meter.method == ENERGY_COUNTER_METHOD and quick_backoff == [0.01]
    assert "counter_fallback_reason" not in meter.describe()["gpus"][0]
    meter.close()
