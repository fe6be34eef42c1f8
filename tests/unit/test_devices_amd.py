"""The AMD device file through Zeus's ``AMDGPU`` against the fake amdsmi, and the fake against the installed amdsmi.

The installed package cannot be imported here (no libamd_smi.so), so the fake's names, parameters, status codes and
exception methods are checked against its source text.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import math
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bench.devices import DeviceError, amd, probe_all
from bench.meters import gpu as gpu_module
from bench.meters.gpu import GpuMeter
from bench.meters.others import OthersObserver
from bench.validation import Expectations, power_problems
from tests.fakes import fake_amdsmi
from tests.fakes.fake_amdsmi import FakeAmdGpu, FakeAmdsmi


def amdsmi_source(name: str) -> str:
    """amdsmi's source file ``name`` (``amdsmi_interface.py``, ...): from the installed package, or, where `make
    setup` uninstalled it for want of ROCm's library (``.ci/drop-amdsmi-without-rocm.sh``), from the wheel it kept in
    ``<venv>/amdsmi-dist``."""
    spec = importlib.util.find_spec("amdsmi")
    if spec is not None and spec.origin:
        return (Path(spec.origin).parent / name).read_text()
    wheels = sorted((Path(sys.prefix) / "amdsmi-dist").glob("amdsmi-*.whl"))
    if not wheels:
        pytest.fail(f"amdsmi is neither installed nor kept in {sys.prefix}/amdsmi-dist: run `make setup`")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return wheel.read(f"amdsmi/{name}").decode()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(gpu_module, "COUNTER_PROBE_S", 0.0)


def test_the_fake_has_the_installed_amdsmis_names_parameters_and_codes() -> None:
    tree = ast.parse(amdsmi_source("amdsmi_interface.py"))
    real = {f.name: [a.arg for a in f.args.args] for f in tree.body if isinstance(f, ast.FunctionDef)}
    fake = FakeAmdsmi([])
    for name in dir(fake):
        if name.startswith("amdsmi_"):
            params = list(inspect.signature(getattr(fake, name)).parameters)
            assert params == real[name], name
    wrapper = amdsmi_source("amdsmi_wrapper.py")
    for name in dir(fake_amdsmi):
        if name.startswith("AMDSMI_STATUS_"):
            assert f"\n{name} = {getattr(fake_amdsmi, name)}\n" in wrapper, name
    exceptions = amdsmi_source("amdsmi_exception.py")
    assert "def get_error_code(self)" in exceptions and "def get_error_info(self, detailed=True)" in exceptions


def test_mi300x_counter_in_its_units_through_zeus() -> None:
    """accumulator ticks x counter_resolution (uJ, a C float) / 1000 = mJ; a window's energy is power x time."""
    fake = FakeAmdsmi([FakeAmdGpu(power_w=400)])
    meter = GpuMeter(vendor="amd", library=fake, min_window_s=0.0)
    (device,) = meter.devices
    started = time.monotonic()
    raw = fake.amdsmi_get_energy_count(device.handle)
    energy_mj = device.energy_mj()
    elapsed_s = time.monotonic() - started
    assert raw["counter_resolution"] == pytest.approx(15.3, abs=1e-5) and raw["counter_resolution"] != 15.3  # C float
    # the counter runs on between the two reads: at most 400 W x the time between them (plus one tick's rounding)
    gap_mj = energy_mj - math.floor(raw["energy_accumulator"] * raw["counter_resolution"] / 1e3)
    assert -1 <= gap_mj <= 400 * elapsed_s * 1e3 + 1
    assert device.power_w() == 400.0 and device.facts.memory_gb == 206.14 and device.facts.power_limit_w == 750.0
    assert device.state()["temperature_c"] == 45  # amdsmi's degrees C, not Zeus 0.16's (which divides by 1000 again)
    meter.start()
    time.sleep(0.3)
    reading = meter.stop()
    gpu = reading.components["gpu"]
    assert gpu.method == "measured:amdsmi-energy-counter" and meter.name == "amdsmi"
    assert gpu.energy_j / reading.duration_s == pytest.approx(400.0, rel=0.05)
    meter.close()
    assert fake.init_count == 0


def test_a_board_with_only_the_average_and_no_counter_is_sampled_and_labelled() -> None:
    board = FakeAmdGpu(name="AMD Instinct MI250X", current_power=False, average_power=True, energy_counter=False)
    fake = FakeAmdsmi([board])
    meter = GpuMeter(vendor="amd", library=fake, min_window_s=0.0)
    assert meter.method == "measured:amdsmi-power-sampling"
    assert meter.describe()["gpus"][0]["power_source"].startswith("average_socket_power")
    meter.start()
    time.sleep(0.2)
    assert meter.stop().components["gpu"].energy_j > 0
    meter.close()


def test_an_implausible_amd_counter_falls_back_to_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCm/amdsmi#38: counters off by a factor on some boards; judged at open, the reason recorded."""
    monkeypatch.setattr(gpu_module, "COUNTER_PROBE_S", 0.6)
    meter = GpuMeter(vendor="amd", library=FakeAmdsmi([FakeAmdGpu(counter_scale=8.0)]), min_window_s=0.0)
    assert meter.method == "measured:amdsmi-power-sampling"
    assert "not trusted" in meter.describe()["gpus"][0]["counter_fallback_reason"]
    meter.close()


def test_hip_order_is_not_amd_smi_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """amd-smi numbers GPUs by PCI BDF, HIP may not (MI350X): HIP_VISIBLE_DEVICES names HIP indices."""
    fake = FakeAmdsmi([FakeAmdGpu(hip_id=1), FakeAmdGpu(hip_id=0)])
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "0")
    meter = GpuMeter(vendor="amd", library=fake, min_window_s=0.0)
    (record,) = meter.describe()["gpus"]
    assert record["index"] == 1 and record["cuda_index"] == 0 and record["matched_by"] == "hip-id"
    meter.close()


def test_errors_name_the_device_and_what_to_do() -> None:
    gpu = FakeAmdGpu(errors={"amdsmi_get_energy_count": fake_amdsmi.AMDSMI_STATUS_NO_PERM})
    with pytest.raises(DeviceError, match=r"energy counter on GPU 0 \(AMD Instinct MI300X\).*/dev/kfd") as err:
        GpuMeter(vendor="amd", library=FakeAmdsmi([gpu]), min_window_s=0.0)
    assert err.value.kind == "permission"
    ok, why = amd.probe(FakeAmdsmi([], init_error=fake_amdsmi.AMDSMI_STATUS_DRIVER_NOT_LOADED))
    assert not ok and "amdgpu kernel driver is not loaded" in why
    assert "amdsmi unusable" in probe_all()["amd"][1]  # the installed one, without libamd_smi.so


def test_processes_on_an_amd_gpu_are_observed() -> None:
    fake = FakeAmdsmi([FakeAmdGpu(processes=[(4242, 8 * 2**30)])])
    observer = OthersObserver(amd.open_devices([0], library=fake).devices)
    observer.start()
    record = observer.stop()
    observer.close()
    assert {(p["pid"], p["used_memory_bytes"]) for p in record["gpu_processes"]} == {(4242, 8 * 2**30)}


# --- MI250/MI250X: two GCDs per module, the module's power and energy on the first (even HIP index) ---------------


def mi250x(modules: int) -> FakeAmdsmi:
    """``modules`` MI250X as amdsmi lists them: two GCDs each, 200 W on the first (both dies), 0 W on the second."""
    gcds = [FakeAmdGpu(name="AMD Instinct MI250X/MI250", power_w=0 if i % 2 else 200, power_cap_w=560)
            for i in range(2 * modules)]  # fmt: skip
    return FakeAmdsmi(gcds)


def window(meter: GpuMeter) -> tuple[Any, dict[int, dict[str, Any]], float]:
    meter.start()
    time.sleep(0.3)
    reading = meter.stop()
    gpu = reading.components["gpu"]
    meter.close()
    return gpu, {r["index"]: r for r in gpu.detail["gpus"]}, gpu.energy_j / reading.duration_s


def test_both_gcds_of_an_mi250x_module_are_metered_once_on_the_first() -> None:
    meter = GpuMeter(vendor="amd", library=mi250x(2), min_window_s=0.0)
    assert meter.indices == [0, 1, 2, 3] and len(meter.devices) == 4 and meter.scope == "gcd-pair"
    with pytest.raises(DeviceError, match="counted in GPU 0's reading"):
        meter.devices[1].energy_mj()  # never a silent 0 from the second GCD
    gpu, records, power_w = window(meter)
    assert [records[i]["counted_in"] for i in range(4)] == [None, 0, None, 2]
    assert {r["scope"] for r in records.values()} == {"gcd-pair"} and gpu.detail["gpu_count"] == 4
    assert records[0]["power_w"] == pytest.approx(200.0, rel=0.05) and "GPU 1 counted here" in records[0]["scope_note"]
    assert records[1]["energy_j"] is None and records[1]["power_w"] is None and records[1]["temperature_c_end"] == 45
    assert power_w == pytest.approx(400.0, rel=0.05)  # two modules, not four GCDs
    assert power_problems("gpu", power_w, gpu.method, gpu.detail, Expectations()) == []


def test_the_second_gcd_alone_reads_its_module_through_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1")
    gpu, records, power_w = window(GpuMeter(vendor="amd", library=mi250x(1), min_window_s=0.0))
    (record,) = records.values()
    assert (record["index"], record["cuda_index"], record["scope"], record["counted_in"]) == (1, 0, "gcd-pair", None)
    assert "read on its first GCD (HIP 0)" in record["scope_note"] and "not in this run" in record["scope_note"]
    assert power_w == pytest.approx(200.0, rel=0.05) and record["power_limit_w"] == 560.0  # the module's
    assert power_problems("gpu", power_w, gpu.method, gpu.detail, Expectations()) == []


def test_the_first_gcd_alone_says_its_reading_covers_both_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "0")
    _, records, power_w = window(GpuMeter(vendor="amd", library=mi250x(1), min_window_s=0.0))
    (record,) = records.values()
    assert (record["index"], record["scope"], record["counted_in"]) == (0, "gcd-pair", None)
    assert "both dies: with the other GCD's draw (not in this run)" in record["scope_note"]
    assert power_w == pytest.approx(200.0, rel=0.05)


def test_probe_names_the_gcd_pairs_and_other_gpus_at_0_w_are_no_pair() -> None:
    ok, why = amd.probe(mi250x(2))
    assert ok and why.startswith("amdsmi: 4 GPU(s); MI250/MI250X GCD pairs (HIP) 0+1, 2+3:")
    opened = amd.open_devices(library=FakeAmdsmi([FakeAmdGpu(), FakeAmdGpu(power_w=0)]))  # two MI300X, one idle
    assert [(d.facts.scope, d.facts.counted_in) for d in opened.devices] == [("gpu", None), ("gpu", None)]
    opened.close()
    assert amd.probe(FakeAmdsmi([FakeAmdGpu()])) == (True, "amdsmi: 1 GPU(s)")
