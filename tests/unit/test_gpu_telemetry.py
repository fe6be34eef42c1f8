"""GPU telemetry per window (issue 16, part 2): temperature, clocks, power limit and clocks event ("throttle") reasons
read by the NVML meter at both edges of a window (fake NVML), and the validator's reasons for throttling and
temperatures outside 20-95 C."""

from __future__ import annotations

from bench.devices.nvidia import clocks_event_reason_names
from bench.meters.gpu import GpuMeter
from bench.validation import gpu_telemetry_problems
from tests.fakes.fake_pynvml import (
    FakeGpu,
    FakePynvml,
    nvmlClocksEventReasonGpuIdle,
    nvmlClocksEventReasonHwThermalSlowdown,
    nvmlClocksEventReasonSwPowerCap,
)


def test_reason_bits_have_names_and_unknown_bits_are_kept() -> None:
    assert clocks_event_reason_names(0) == []
    assert clocks_event_reason_names(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert clocks_event_reason_names(0x1 | 0x2000) == ["gpu_idle", "bit_0x2000"]


def test_the_meter_records_the_gpus_state_at_both_edges() -> None:
    fake = FakePynvml([FakeGpu(name="NVIDIA H100 80GB HBM3", power_limit_w=700.0, temperature_c=41)])
    fake.gpus[0].clocks_event_reasons = nvmlClocksEventReasonGpuIdle
    meter = GpuMeter(library=fake)
    meter.start()
    gpu = fake.gpus[0]
    gpu.temperature_c, gpu.sm_clock_mhz, gpu.power_limit_w = 97, 1290, 600.0  # hot, slowed, capped lower
    gpu.clocks_event_reasons = nvmlClocksEventReasonSwPowerCap | nvmlClocksEventReasonHwThermalSlowdown
    reading = meter.stop()
    meter.close()
    record = reading.components["gpu"].detail["gpus"][0]
    assert (record["temperature_c_start"], record["temperature_c_end"]) == (41, 97)
    assert (record["sm_clock_mhz_start"], record["sm_clock_mhz_end"]) == (1410, 1290)
    assert (record["power_limit_w_start"], record["power_limit_w_end"]) == (700.0, 600.0)
    assert record["clocks_event_reasons_start"] == 0x1 and record["clocks_event_reason_names_start"] == ["gpu_idle"]
    assert record["clocks_event_reason_names_end"] == ["sw_power_cap", "hw_thermal_slowdown"]
    assert gpu_telemetry_problems(reading.components["gpu"].detail) == [
        "energy.gpu: GPU 0 (NVIDIA H100 80GB HBM3) at 97 C at the window's end, outside 20-95 C",
        "energy.gpu: GPU 0 (NVIDIA H100 80GB HBM3) throttled (power, thermal: sw_power_cap, hw_thermal_slowdown) at "
        "the window's end",
    ]


def test_unsupported_telemetry_is_none_and_not_judged() -> None:
    fake = FakePynvml([FakeGpu(temperature_c=None, clocks_event_reasons=None)])
    meter = GpuMeter(library=fake)
    meter.start()
    reading = meter.stop()
    meter.close()
    record = reading.components["gpu"].detail["gpus"][0]
    assert record["temperature_c_start"] is None and record["clocks_event_reason_names_end"] is None
    assert gpu_telemetry_problems(reading.components["gpu"].detail) == []


def test_cold_sensor_and_idle_reason_alone() -> None:
    detail = {
        "gpus": [
            {"index": 1, "name": "X", "temperature_c_start": 12, "clocks_event_reason_names_start": ["gpu_idle"]},
            {"index": 2, "name": "Y", "temperature_c_end": 60, "clocks_event_reason_names_end": ["sync_boost"]},
        ]
    }
    assert gpu_telemetry_problems(detail) == ["energy.gpu: GPU 1 (X) at 12 C at the window's start, outside 20-95 C"]
