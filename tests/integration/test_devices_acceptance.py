"""Issue 23's acceptance runs: a real ``bench.runner.run`` (models on the CPU, as tests/integration/test_runner.py
does) on fakes of the accelerators users bring, each written to results that ``bench validate`` accepts, with the
right labels, scopes and flags; a GPU in MIG mode is refused before any energy is spent.

Fakes with real byte counts and units: H100 80GB HBM3 (NVML memory total 85,520,809,984 bytes = 81,559 MiB; the plain
power call a 1 s average, the instant field instantaneous), GH200 (C2C: module-scope power), MI300X (amdsmi: energy
accumulator x 15.3 uJ, whole-watt power, 196,592 MiB VRAM), four A100s of which one may not be opened.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bench.cli import main as bench_main
from bench.config import load_profile
from bench.errors import HardwareMismatchError, MeterError
from bench.meters import gpu as gpu_module
from bench.results import load_results
from bench.runner import RunRequest, run
from bench.validation import check_document
from tests.fakes.fake_amdsmi import FakeAmdGpu, FakeAmdsmi
from tests.fakes.fake_pynvml import FakeGpu, FakePynvml

PROFILES = Path(__file__).parents[2] / "hardware_profiles"
H100_BYTES = 85_520_809_984


@pytest.fixture(autouse=True)
def _fast_gpu_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.backends.traditional import TraditionalBackend

    monkeypatch.setattr(TraditionalBackend, "synchronize", lambda self: None)  # no CUDA here
    monkeypatch.setattr(gpu_module, "DEFAULT_MIN_WINDOW_S", 0.3)
    monkeypatch.setattr(gpu_module, "COUNTER_PROBE_S", 0.0)
    for name in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(name, raising=False)


def profile(tmp_path: Path, name: str, pattern: str, count: int, memory_gb: float, power_w: float) -> Path:
    """The h100 profile's file with the hardware of another machine (its own name, as the loader requires)."""
    text = (PROFILES / "h100.toml").read_text()
    hardware = (
        f'[hardware]\ndevice = "cuda"\ngpu_model_pattern = "{pattern}"\ngpu_count = {count}\n'
        f"gpu_memory_gb = {memory_gb}\ngpu_max_power_w = {power_w}\n"
    )
    start, end = text.index("[hardware]"), text.index("[container]")
    path = tmp_path / f"{name}.toml"
    rest = re.sub(r"^\[suites\.power\].*?(?=^\[|\Z)", "", text[end:], flags=re.S | re.M)  # h100's limits: its own
    path.write_text(text[:start].replace('name = "h100"', f'name = "{name}"') + hardware + "\n" + rest)
    return path


def run_and_validate(tmp_path: Path, profile_ref: str | Path) -> object:
    request = RunRequest(
        profile=load_profile(str(profile_ref)),
        suite_name="offline",
        models=["linear-bow"],
        reports_dir=tmp_path / "reports",
        repetitions=1,
        min_window_s=0.2,
        idle_baseline_s=0.1,
        codecarbon=False,
        progress=False,
        max_other_cpu_share=1.0,  # the CI machine's neighbours may run beside it; the GPU flags are what is checked
    )
    outcome = run(request)
    doc = load_results(outcome.results_path)
    assert check_document(doc) == [], check_document(doc)
    assert bench_main(["validate", str(outcome.results_path)]) == 0
    (cell,) = doc.cells
    assert cell.status == "ok" and cell.validity == [], cell.validity
    return doc


def test_h100_node_instant_field_and_real_byte_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [
        FakeGpu(
            name="NVIDIA H100 80GB HBM3",
            architecture=9,
            power_w=120.0,
            power_limit_w=700.0,
            power_limit_range_w=(200.0, 700.0),
            memory_total_bytes=H100_BYTES,
            power_average_s=1.0,
        )
        for _ in range(4)
    ]
    fake = FakePynvml(gpus)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    doc = run_and_validate(tmp_path, "h100")
    gpu = doc.cells[0].energy["gpu"]  # type: ignore[attr-defined]
    assert gpu.method == "measured:nvml-energy-counter" and gpu.detail["scope"] == "gpu"
    assert gpu.energy_j / doc.cells[0].duration_s == pytest.approx(480.0, rel=0.01)  # type: ignore[attr-defined]
    for record in gpu.detail["gpus"]:
        assert record["memory_gb"] == 85.52 and record["power_limit_w"] == 700.0
        assert record["power_source"].startswith("NVML_FI_DEV_POWER_INSTANT")
        assert record["matched_by"].startswith("pci-bus-id") and record["cuda_index"] == record["index"]
    assert doc.environment["machine"]["gpus"][0]["memory_gb"] == pytest.approx(85.52, abs=0.01)  # type: ignore[attr-defined]
    # the two power readings the board gives differ right after a step: the kit samples the instant one
    fake.nvmlInit()
    fake.set_power(0, 600.0)
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    instant = fake.nvmlDeviceGetFieldValues(handle, [(fake.NVML_FI_DEV_POWER_INSTANT, 0)])[0].value.uiVal / 1e3
    assert instant == 600.0 and fake.nvmlDeviceGetPowerUsage(handle) / 1e3 < 200.0
    fake.nvmlShutdown()


def test_gh200_module_scope_without_cpu_or_ram_on_top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gh = FakeGpu(
        name="NVIDIA GH200 480GB",
        architecture=9,
        c2c_module=True,
        power_w=300.0,
        module_extra_w=150.0,
        power_limit_w=900.0,
        power_limit_range_w=(450.0, 1000.0),
        memory_total_bytes=102_005_473_280,  # GH200's HBM3 as NVML reports it (97,280 MiB)
    )
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml([gh]))
    monkeypatch.setenv("BENCH_RAPL_ROOT", str(tmp_path / "no-rapl"))  # Grace has no RAPL: the estimates would run
    doc = run_and_validate(tmp_path, profile(tmp_path, "gh200", "GH200", 1, 96, 900))
    energy = doc.cells[0].energy  # type: ignore[attr-defined]
    assert energy["gpu"].detail["scope"] == "module" and energy["gpu"].detail["gpus"][0]["scope"] == "module"
    assert energy["gpu"].energy_j / doc.cells[0].duration_s == pytest.approx(450.0, rel=0.01)  # type: ignore[attr-defined]
    for component in ("cpu", "ram"):
        assert energy[component].energy_j is None and energy[component].method == "unavailable"
        assert "module-scope" in energy[component].reason
    assert doc.meters["notes"]["cpu"] == "module scope: counted in the gpu component"  # type: ignore[attr-defined]


def test_mi300x_through_amdsmi_energy_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVIDIA library: the registry's next vendor meters
    monkeypatch.setitem(sys.modules, "amdsmi", FakeAmdsmi([FakeAmdGpu(power_w=300) for _ in range(8)]))
    doc = run_and_validate(tmp_path, profile(tmp_path, "mi300x", "MI300X", 8, 192, 750))
    gpu = doc.cells[0].energy["gpu"]  # type: ignore[attr-defined]
    assert gpu.method == "measured:amdsmi-energy-counter" and gpu.detail["gpu_count"] == 8
    assert doc.meters["min_window_by"] == "amdsmi"  # type: ignore[attr-defined]
    assert gpu.energy_j / doc.cells[0].duration_s == pytest.approx(2400.0, rel=0.01)  # type: ignore[attr-defined]
    record = gpu.detail["gpus"][0]
    assert record["vendor"] == "amd" and record["name"] == "AMD Instinct MI300X" and record["matched_by"] == "hip-id"
    assert record["memory_gb"] == 206.14 and record["power_limit_w"] == 750.0
    assert record["power_source"].startswith("current_socket_power")
    assert record["clocks_event_reasons_start"] is None and record["throttled_power_s"] is None  # none on AMD


def test_four_gpus_one_not_openable_is_skipped_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(power_w=90.0) for _ in range(3)] + [FakeGpu(no_access=True)]
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml(gpus))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")  # Slurm gave this task three; the cgroup hides the fourth
    doc = run_and_validate(tmp_path, profile(tmp_path, "a100x3", "A100", 3, 80, 400))
    gpu = doc.cells[0].energy["gpu"]  # type: ignore[attr-defined]
    assert [g["index"] for g in gpu.detail["gpus"]] == [0, 1, 2]
    (skipped,) = gpu.detail["skipped_gpus"]
    assert skipped["index"] == 3 and "NoPermission" in skipped["reason"]
    assert gpu.energy_j / doc.cells[0].duration_s == pytest.approx(270.0, rel=0.01)  # type: ignore[attr-defined]
    assert "GPU 3" in doc.meters["notes"]["gpu_skipped"]  # type: ignore[attr-defined]


def test_a_gpu_in_mig_mode_is_refused_before_any_energy_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePynvml([FakeGpu(name="NVIDIA A100-SXM4-80GB", mig_mode=1)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fields: dict = dict(
        profile=load_profile(str(profile(tmp_path, "a100x1", "A100", 1, 80, 400))),
        suite_name="offline",
        models=["linear-bow"],
        reports_dir=tmp_path / "reports",
        repetitions=1,
        codecarbon=False,
        progress=False,
    )
    refused = r"GPU 0 \(NVIDIA A100-SXM4-80GB\) is in MIG mode.*refused.*--force or not.*nvidia-smi -i 0 -mig 0"
    for force in (False, True):  # --force does not run it unmetered: refused with the same message, never "--force"
        with pytest.raises(MeterError, match=refused) as err:
            run(RunRequest(**fields, force=force))
        assert "pass --force" not in str(err.value) and "whole GPU" in str(err.value)
        assert not isinstance(err.value, HardwareMismatchError)
    assert not list((tmp_path / "reports").rglob("results.json")) and fake.init_count == 0
