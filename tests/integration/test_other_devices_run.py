"""Runs on the devices beyond cuda and cpu (issue 25, item 2), through fakes of the hardware these machines lack, each
written to results that ``bench validate`` accepts:

- ``mps``: an Apple laptop's profile runs the sentence embedder (linear-embedding) and SmolLM2 in the HF pipeline with
  the backends on ``mps``; ``torch.mps.synchronize`` closes both edges of their windows (``tests/fakes/
  fake_torch_devices.py``: torch reports mps, the tensors themselves stay on this machine's CPU), and the run records
  the device and its availability.
- ``rocm``: eight MI300X (the fake amdsmi) under PyTorch's ROCm build (``torch.version.hip``): the backends get
  PyTorch's ``cuda`` device, the run records hip; a CUDA PyTorch on a rocm profile is a mismatch before any energy.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

import bench.environment
from bench.cli import main as bench_main
from bench.config import load_profile_file
from bench.errors import HardwareMismatchError
from bench.meters import gpu as gpu_module
from bench.report.sections.facts import manifest
from bench.results import load_results
from bench.runner import RunRequest, run
from bench.validation import check_document
from tests.fakes.fake_amdsmi import FakeAmdGpu, FakeAmdsmi
from tests.fakes.fake_torch_devices import HIP_VERSION, fake_hip, fake_mps, on_cpu

PROFILES = Path(__file__).parents[2] / "hardware_profiles"


def _profile_file(tmp_path: Path, name: str, base: str, device: str, hardware: dict[str, str]) -> Path:
    text = (PROFILES / f"{base}.toml").read_text(encoding="utf-8")
    text = re.sub(r"^\[suites\.power\]\n.*?(?=^\[|\Z)", "", text, flags=re.M | re.S)  # power limits: NVIDIA's
    text = text.replace(f'name = "{base}"', f'name = "{name}"').replace("schema_version = 2", "schema_version = 3")
    text = re.sub(r'^device = ".*"$', f'device = "{device}"', text, count=1, flags=re.M)
    for key, value in hardware.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _request(path: Path, tmp_path: Path, models: list[str], suite: str, **overrides: object) -> RunRequest:
    fields: dict = dict(
        profile=load_profile_file(path),
        suite_name=suite,
        models=models,
        reports_dir=tmp_path / "reports",
        repetitions=1,
        n_train=40,
        n_test=8,  # SmolLM2 scores every text in the window: a few seconds each on a busy 2-core machine
        min_window_s=0.2,
        idle_baseline_s=0.1,
        codecarbon=False,
        progress=False,
        max_other_cpu_share=1.0,  # the CI machine's neighbours may run beside it; the device path is what is checked
    )
    fields.update(overrides)
    return RunRequest(**fields)


def _validated(outcome: object) -> object:
    doc = load_results(outcome.results_path)  # type: ignore[attr-defined]
    assert doc.status == "complete" and {c.status for c in doc.cells} == {"ok"}, [c.error for c in doc.cells]
    assert check_document(doc) == [], check_document(doc)
    assert bench_main(["validate", str(outcome.results_path)]) == 0  # type: ignore[attr-defined]
    return doc


@pytest.mark.slow
def test_an_apple_laptop_runs_the_embedder_and_the_hf_pipeline_on_mps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zeus.device.soc as soc
    import zeus.device.soc.apple as zeus_apple

    from tests.integration.test_new_profiles_fakes import fake_apple_silicon

    # the chip's energy through Zeus's get_soc() over a fake zeus-apple-silicon (without it an mps run is refused)
    mw = {"cpu_total_mj": 4000, "gpu_mj": 9000, "gpu_sram_mj": 500, "dram_mj": 1500, "ane_mj": 700}
    monkeypatch.setattr(zeus_apple, "zeus_apple_silicon", fake_apple_silicon(mw))
    monkeypatch.setattr(soc, "apple_silicon_is_available", lambda: True)
    monkeypatch.setattr(soc, "_soc", None)
    calls = fake_mps(monkeypatch)
    on_cpu(monkeypatch)
    detect = bench.environment.detect_machine
    monkeypatch.setattr(bench.environment, "detect_machine", lambda: dataclasses.replace(detect(), os="Darwin 24.1.0"))
    path = _profile_file(tmp_path, "laptop", "cpu", "mps", {})
    models = ["linear-embedding", "smollm2-135m[serving=scoring]"]
    doc = _validated(run(_request(path, tmp_path, models, "default")))

    assert {c.model for c in doc.cells} == set(models)  # type: ignore[attr-defined]
    for model in models:
        assert doc.models[model]["info"]["device"] == "mps", model  # type: ignore[attr-defined]
    # both edges of every metered window (inference, and the embedder's training) on the device's queue
    assert {"TraditionalBackend", "HFPipelineBackend"} <= set(calls.callers)
    windows = sum(1 + (c.training is not None) for c in doc.cells)  # type: ignore[attr-defined]
    assert calls.synchronize >= 2 * windows
    assert calls.empty_cache >= 1  # the LLM closed: mps memory given back
    (session,) = doc.environment["sessions"]  # type: ignore[attr-defined]
    accelerator = session["accelerator"]
    assert accelerator["device"] == accelerator["torch_device"] == "mps" and accelerator["mps_available"] is True
    profile = doc.profile  # type: ignore[attr-defined]
    assert profile["hardware"]["device"] == "mps" and profile["schema_version"] == 3
    assert doc.settings["device"] == "mps"  # type: ignore[attr-defined]
    device = dict(manifest(doc)["machine"])["device"]  # the report's machine facts
    assert device.startswith("mps: PyTorch ") and device.endswith("on its mps device, mps available"), device


def test_an_mps_profile_off_a_mac_or_without_mps_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mps(monkeypatch, available=False)
    path = _profile_file(tmp_path, "laptop", "cpu", "mps", {})
    with pytest.raises(HardwareMismatchError, match=r"(?s)Apple's GPU.*Linux.*is_available\(\) is false"):
        run(_request(path, tmp_path, ["linear-bow"], "default"))


@pytest.fixture
def mi300x_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Eight MI300X through the fake amdsmi (no NVIDIA library), fast GPU windows, and a rocm profile of them."""
    from bench.backends.traditional import TraditionalBackend

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "amdsmi", FakeAmdsmi([FakeAmdGpu(power_w=300) for _ in range(8)]))
    monkeypatch.setattr(TraditionalBackend, "synchronize", lambda self: None)  # no GPU queue here
    monkeypatch.setattr(gpu_module, "DEFAULT_MIN_WINDOW_S", 0.3)
    monkeypatch.setattr(gpu_module, "COUNTER_PROBE_S", 0.0)
    for name in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(name, raising=False)
    hardware = {"gpu_models": '["MI300X"]', "gpu_count": "8", "gpu_memory_gb": "192", "gpu_max_power_w": "750"}
    return _profile_file(tmp_path, "mi300x-node", "l4", "rocm", hardware)


def test_an_mi300x_node_runs_on_pytorch_s_cuda_device_under_hip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mi300x_node: Path
) -> None:
    fake_hip(monkeypatch)
    doc = _validated(run(_request(mi300x_node, tmp_path, ["linear-bow"], "offline")))
    (cell,) = doc.cells  # type: ignore[attr-defined]
    assert cell.energy["gpu"].method == "measured:amdsmi-energy-counter"
    assert doc.models["linear-bow"]["info"]["device"] == "cuda"  # type: ignore[attr-defined]
    accelerator = doc.environment["sessions"][0]["accelerator"]  # type: ignore[attr-defined]
    assert accelerator["device"] == "rocm" and accelerator["torch_device"] == "cuda"
    assert accelerator["torch_hip"] == HIP_VERSION and accelerator["torch_cuda"] is None
    assert doc.profile["hardware"]["device"] == "rocm"  # type: ignore[attr-defined]
    assert dict(manifest(doc)["machine"])["device"].endswith(f"on its cuda device, HIP {HIP_VERSION}")


def test_a_rocm_profile_under_a_cuda_pytorch_is_refused_before_any_energy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mi300x_node: Path
) -> None:
    import torch

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.version, "hip", None)
    with pytest.raises(HardwareMismatchError, match=r"ROCm build.*CUDA build.*Dockerfile\.rocm"):
        run(_request(mi300x_node, tmp_path, ["linear-bow"], "offline"))
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_an_mps_run_without_the_soc_meter_is_refused_before_any_energy_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No zeus-apple-silicon: the chip's GPU would go unmetered (energy of the CPU estimate and RAM only, the GPU's
    work missing), so the run stops before its idle baseline, naming the extra to install; nothing is written."""
    import zeus.device.soc as soc

    from bench.errors import MeterError

    fake_mps(monkeypatch)
    on_cpu(monkeypatch)
    monkeypatch.setattr(soc, "apple_silicon_is_available", lambda: False)
    monkeypatch.setattr(soc, "_soc", None)
    detect = bench.environment.detect_machine
    monkeypatch.setattr(bench.environment, "detect_machine", lambda: dataclasses.replace(detect(), os="Darwin 24.1.0"))
    path = _profile_file(tmp_path, "laptop", "cpu", "mps", {})
    with pytest.raises(MeterError, match=r"nothing meters it.*\.\[apple\]"):
        run(_request(path, tmp_path, ["linear-bow"], "default"))
    assert not list(tmp_path.rglob("results.json"))
