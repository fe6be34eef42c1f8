"""The GPU side meters of ``build_meter_set(gpu_cross_check=True)``: NVML power sampled at 10 Hz and nvidia-smi
polling, over the same window as the primary NVML counter, against a fake NVML and a stand-in nvidia-smi at 90 W."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from bench.devices.nvidia import COUNTER_METHOD as ENERGY_COUNTER_METHOD
from bench.devices.nvidia import SAMPLING_METHOD as POWER_SAMPLING_METHOD
from bench.meters import build_meter_set
from bench.meters import smi as smi_module
from bench.meters.smi import NVIDIA_SMI_METHOD, NvidiaSmiMeter
from tests.fakes.fake_pynvml import FakePynvml, fake_gpus

FAKE_SMI = [sys.executable, str(Path(__file__).parents[1] / "fakes" / "fake_nvidia_smi.py")]


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_three_gpu_methods_integrate_the_same_window() -> None:
    fake = FakePynvml(fake_gpus(2, power_w=90.0))
    ms = build_meter_set(nvml=fake, use_gpu=True, gpu_cross_check=True, nvidia_smi_command=FAKE_SMI)
    d = ms.describe()
    assert set(d["side"]) == {"nvml-sampling", "nvidia-smi"} and all(v["enabled"] for v in d["side"].values())
    ms.start()
    time.sleep(1.5)
    reading = ms.stop()
    ms.close()
    counter = reading.components["gpu"]
    assert counter.method == ENERGY_COUNTER_METHOD
    sampled = reading.side["nvml-sampling"].components["gpu"]
    polled = reading.side["nvidia-smi"].components["gpu"]
    assert sampled.method == POWER_SAMPLING_METHOD and polled.method == NVIDIA_SMI_METHOD
    assert counter.energy_j / reading.component_duration_s["gpu"] == pytest.approx(180.0, rel=0.01)
    # each side meter's window encloses the primary one by a few ms: compare powers, then energies within 2%
    assert sampled.energy_j / reading.side["nvml-sampling"].duration_s == pytest.approx(180.0, rel=0.01)
    assert polled.energy_j / reading.side["nvidia-smi"].duration_s == pytest.approx(180.0, rel=0.02)
    assert sampled.energy_j / counter.energy_j == pytest.approx(1.0, rel=0.02)
    assert polled.energy_j / counter.energy_j == pytest.approx(1.0, rel=0.03)
    assert 10 <= sampled.detail["gpus"][0]["samples"] <= 20  # 10 Hz over 1.5 s, plus the two edges


def test_without_nvidia_smi_the_column_is_unavailable_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smi_module.shutil, "which", lambda name: None)
    ms = build_meter_set(nvml=FakePynvml(fake_gpus(1)), use_gpu=True, gpu_cross_check=True)
    side = ms.describe()["side"]
    assert side["nvml-sampling"]["enabled"] and not side["nvidia-smi"]["enabled"]
    assert "nvidia-smi not found on PATH" in side["nvidia-smi"]["reason"]
    ms.close()


def test_without_a_gpu_meter_both_side_meters_say_why() -> None:
    ms = build_meter_set(nvml=FakePynvml([]), use_gpu=True, gpu_cross_check=True)
    side = ms.describe()["side"]
    assert not side["nvml-sampling"]["enabled"] and "no GPU is metered" in side["nvidia-smi"]["reason"]
    ms.close()


def test_nvidia_smi_that_prints_nothing_gives_null_with_a_reason() -> None:
    meter = NvidiaSmiMeter([0], command=[sys.executable, "-c", "import time; time.sleep(5)"])
    meter.start()
    time.sleep(0.2)
    energy = meter.stop().components["gpu"]
    assert energy.energy_j is None and "no power reading for GPU(s) [0]" in (energy.reason or "")
    meter.close()
