"""CodeCarbonMeter on this machine (a real short window) and the laziness of its import."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.devices.nvidia import probe as nvml_probe
from bench.errors import MeterError
from bench.meters.codecarbon import CodeCarbonMeter, codecarbon_available


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def test_import_bench_meters_does_not_import_codecarbon() -> None:
    code = (
        "import sys, bench.meters, bench.meters.codecarbon, bench.meters.estimate, bench.meters.rapl, "
        "bench.meters.gpu\n"
        "def loaded(*names): return [m for m in sys.modules if m.split('.')[0] in names]\n"
        "assert not loaded('codecarbon', 'pynvml'), loaded('codecarbon', 'pynvml')\n"
        # Building the set probes NVML (may import pynvml) and checks codecarbon is installed without importing it.
        "bench.meters.build_meter_set(codecarbon=True)\n"
        "assert not loaded('codecarbon'), loaded('codecarbon')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.skipif(not codecarbon_available()[0], reason="codecarbon not installed")
def test_real_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # anything CodeCarbon wrote would land here
    attempts: list[object] = []

    def no_network(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    meter = CodeCarbonMeter(country_iso_code="DEU", measure_power_secs=15.0)
    meter.start()
    busy(0.5)
    reading = meter.stop()
    meter.close()

    assert reading.meter == "codecarbon"
    assert reading.duration_s >= 0.5
    assert set(reading.components) == {"gpu", "cpu", "ram"}
    for component in ("cpu", "ram"):
        energy = reading.components[component]
        assert energy.energy_j is not None and energy.energy_j >= 0
        assert energy.method in ("measured:codecarbon", "estimated:codecarbon")
        assert energy.detail["codecarbon_version"]
    # CodeCarbon's RAM is always its own model on a PC; without readable RAPL its CPU is its TDP x load model.
    assert reading.components["ram"].method == "estimated:codecarbon"
    if not Path("/sys/class/powercap").exists():
        assert reading.components["cpu"].method == "estimated:codecarbon"
    if not nvml_probe()[0]:
        gpu = reading.components["gpu"]
        assert gpu.energy_j is None and "no GPU" in (gpu.reason or "")
    assert "emissions_kg" in reading.components["cpu"].detail

    assert list(tmp_path.iterdir()) == []  # no emissions.csv, no lock file
    assert attempts == []  # offline: no API, no geo lookup, no carbon-intensity service
    out, err = capfd.readouterr()
    assert "codecarbon INFO" not in out + err and "codecarbon WARNING" not in out + err
    assert isinstance(meter.describe()["methods"], dict)


@pytest.mark.skipif(not codecarbon_available()[0], reason="codecarbon not installed")
def test_windows_can_repeat() -> None:
    meter = CodeCarbonMeter()
    for _ in range(3):
        meter.start()
        reading = meter.stop()
        assert reading.components["ram"].energy_j is not None
    with pytest.raises(MeterError):
        meter.stop()


def test_missing_codecarbon_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # makes `import codecarbon` raise ImportError
    ok, why = codecarbon_available()
    assert not ok and "pip install codecarbon" in why
    with pytest.raises(MeterError, match="pip install codecarbon"):
        CodeCarbonMeter().start()


def test_bad_arguments() -> None:
    with pytest.raises(MeterError):
        CodeCarbonMeter(measure_power_secs=0)
