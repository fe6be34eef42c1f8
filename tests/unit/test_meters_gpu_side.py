"""The GPU side meter of ``build_meter_set(gpu_cross_check=True)``: the vendor's power sampled at 10 Hz over the same
window as the primary energy counter, against a fake NVML at 90 W per GPU."""

from __future__ import annotations

import time

import pytest

from bench.devices.nvidia import COUNTER_METHOD as ENERGY_COUNTER_METHOD
from bench.devices.nvidia import SAMPLING_METHOD as POWER_SAMPLING_METHOD
from bench.meters import build_meter_set
from tests.fakes.fake_pynvml import FakePynvml, fake_gpus


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_counter_and_sampling_integrate_the_same_window() -> None:
    fake = FakePynvml(fake_gpus(2, power_w=90.0))
    ms = build_meter_set(nvml=fake, use_gpu=True, gpu_cross_check=True)
    d = ms.describe()
    assert set(d["side"]) == {"nvml-sampling"} and d["side"]["nvml-sampling"]["enabled"]
    ms.start()
    time.sleep(1.5)
    reading = ms.stop()
    ms.close()
    counter = reading.components["gpu"]
    assert counter.method == ENERGY_COUNTER_METHOD
    sampled = reading.side["nvml-sampling"].components["gpu"]
    assert sampled.method == POWER_SAMPLING_METHOD
    assert counter.energy_j / reading.component_duration_s["gpu"] == pytest.approx(180.0, rel=0.01)
    # the side meter's window encloses the primary one by a few ms: compare powers, then energies within 2%
    assert sampled.energy_j / reading.side["nvml-sampling"].duration_s == pytest.approx(180.0, rel=0.01)
    assert sampled.energy_j / counter.energy_j == pytest.approx(1.0, rel=0.02)
    assert 10 <= sampled.detail["gpus"][0]["samples"] <= 20  # 10 Hz over 1.5 s, plus the two edges


def test_without_a_gpu_meter_the_side_meter_says_why() -> None:
    ms = build_meter_set(nvml=FakePynvml([]), use_gpu=True, gpu_cross_check=True)
    side = ms.describe()["side"]
    assert not side["gpu-sampling"]["enabled"] and "no GPU is metered" in side["gpu-sampling"]["reason"]
    ms.close()
