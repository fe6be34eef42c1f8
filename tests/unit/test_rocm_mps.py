"""Devices beyond cuda and cpu (issue 25, item 2), through fakes of the hardware these machines lack: the window's
edges synchronised on Apple's GPU (``torch.mps.synchronize``), PyTorch's build and device recorded and checked
against the profile (``torch.version.hip``, mps availability), rocm running on PyTorch's ``cuda`` device and placed
and matched as a GPU profile, vLLM refused on mps. The image and containers: ``test_rocm_image.py``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.backends.base import device_empty_cache, device_synchronize
from bench.config import HardwareProfile, load_profile, load_profile_file
from bench.environment import GpuInfo, MachineInfo, accelerator_facts, accelerator_problems, check_profile
from bench.errors import ConfigError
from tests.fakes.fake_torch_devices import HIP_VERSION, fake_hip, fake_mps

REPO = Path(__file__).resolve().parents[2]


def _profile(tmp_path: Path, name: str, device: str, **hardware: str) -> HardwareProfile:
    """``cpu.toml`` (device mps) or ``l4.toml`` (device rocm, 8 x MI300X) as profile ``name`` at schema 3."""
    base = "cpu" if device == "mps" else "l4"
    text = (REPO / "hardware_profiles" / f"{base}.toml").read_text(encoding="utf-8")
    text = re.sub(r"^\[suites\.power\]\n.*?(?=^\[|\Z)", "", text, flags=re.M | re.S)
    text = text.replace(f'name = "{base}"', f'name = "{name}"').replace("schema_version = 2", "schema_version = 3")
    text = re.sub(r'^device = ".*"$', f'device = "{device}"', text, count=1, flags=re.M)
    if device == "rocm":
        hardware = {"gpu_models": '["MI300X"]', "gpu_count": "8", "gpu_memory_gb": "192", **hardware}
        text = text.replace('dockerfile = "Dockerfile.cuda"', 'dockerfile = "Dockerfile.rocm"')
        text = text.replace('image = "bench:cuda-l4"', f'image = "bench:rocm-{name}"')
    for key, value in hardware.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return load_profile_file(path)


def _machine(os_name: str = "Linux 6.8", *gpus: GpuInfo) -> MachineInfo:
    return MachineInfo("h", os_name, "3.12", "Apple M3 Pro", 12, 36.0, gpus=list(gpus), nvml_status="ok")


# --- the window's edges ----------------------------------------------------------------------------------------


def test_mps_is_synchronised_and_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch  # noqa: F401  (device_synchronize never imports it itself)

    calls = fake_mps(monkeypatch)
    device_synchronize("mps")
    device_synchronize("cpu")
    device_empty_cache("mps")
    assert (calls.synchronize, calls.empty_cache) == (1, 1)


def test_no_mps_call_where_torch_has_no_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_mps(monkeypatch, available=False)
    device_synchronize("mps")
    device_empty_cache("mps")
    assert (calls.synchronize, calls.empty_cache) == (0, 0)


def test_cuda_is_synchronised_only_once_initialised(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCm's PyTorch keeps the ``cuda`` device, so one path serves NVIDIA and AMD."""
    import torch

    synced: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    device_synchronize("cuda")
    assert synced == []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    device_synchronize("cuda:1")
    assert synced == ["cuda:1"]


# --- the run's environment facts and checks ------------------------------------------------------------------------


def test_rocm_facts_name_the_hip_build_and_the_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hip(monkeypatch)
    facts = accelerator_facts("rocm")
    assert facts["device"] == "rocm" and facts["torch_device"] == "cuda"
    assert facts["torch_hip"] == HIP_VERSION and facts["torch_cuda"] is None and facts["torch"]
    assert accelerator_problems(facts) == []
    problems = accelerator_problems(accelerator_facts("cuda"))  # an NVIDIA profile on a ROCm PyTorch
    assert len(problems) == 1 and "ROCm build" in problems[0] and "device = 'rocm'" in problems[0]


def test_a_rocm_profile_on_a_cuda_pytorch_is_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.version, "hip", None)
    (problem,) = accelerator_problems(accelerator_facts("rocm"))
    assert "CUDA build" in problem and "Dockerfile.rocm" in problem


def test_a_cpu_pytorch_is_no_mismatch_of_a_gpu_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake-GPU runs (models on the CPU) go on: a CPU build says nothing against cuda or rocm."""
    import torch

    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    assert accelerator_problems(accelerator_facts("cuda")) == accelerator_problems(accelerator_facts("rocm")) == []


def test_mps_facts_and_their_check(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mps(monkeypatch, available=False)
    facts = accelerator_facts("mps")
    assert facts["mps_available"] is False and facts["torch_device"] == "mps"
    (problem,) = accelerator_problems(facts)
    assert "is_available() is false" in problem and "Apple Silicon" in problem and "host" in problem
    fake_mps(monkeypatch, available=True)
    facts = accelerator_facts("mps")
    assert facts["mps_available"] is True and accelerator_problems(facts) == []


def test_cpu_facts_do_not_import_torch() -> None:
    code = "import sys; from bench.environment import accelerator_facts as f; print(f('cpu'), 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'device': 'cpu', 'torch_device': 'cpu', 'torch': None} False"


def test_an_mps_profile_matches_a_mac_only(tmp_path: Path) -> None:
    profile = _profile(tmp_path, "laptop", "mps")
    (problem,) = check_profile(profile, _machine("Linux 6.8"))
    assert "Apple's GPU" in problem and "Linux 6.8" in problem
    assert check_profile(profile, _machine("Darwin 24.1.0")) == []


def test_auto_picks_the_mps_profile_on_a_mac_and_never_elsewhere(tmp_path: Path) -> None:
    from bench.machine_profile import find_profile

    shutil.copy(REPO / "hardware_profiles" / "cpu.toml", tmp_path / "cpu.toml")
    _profile(tmp_path, "laptop", "mps")
    found = find_profile(_machine("Darwin 24.1.0"), tmp_path)
    assert found is not None and found.name == "laptop"
    found = find_profile(_machine("Linux 6.8"), tmp_path)
    assert found is not None and found.name == "cpu"


# --- rocm runs on PyTorch's cuda device; no vLLM on mps ---------------------------------------------------------


def test_backends_get_pytorch_s_device_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.backends
    from bench.catalog.models import get_model_spec
    from bench.run.models import load_model

    seen: list[str] = []

    class Loaded:
        def load(self) -> None:
            pass

    def create_backend(spec: Any, **overrides: Any) -> Loaded:
        seen.append(overrides["device"])
        return Loaded()

    monkeypatch.setattr(bench.backends, "create_backend", create_backend)
    for profile in (_profile(tmp_path, "mi", "rocm"), _profile(tmp_path, "laptop", "mps"), load_profile("l4")):
        backend, _, error = load_model(get_model_spec("linear-embedding"), profile, seed=0)
        assert error is None and backend is not None
    assert seen == ["cuda", "mps", "cuda"]


def test_vllm_backend_refuses_mps() -> None:
    from bench.backends.vllm_backend import VllmBackend

    with pytest.raises(ConfigError, match=r"cannot run on device 'mps'.*hf_pipeline"):
        VllmBackend("package:smollm2-135m", device="mps")


def test_rocm_places_llms_by_gpu_memory_and_mps_places_none(tmp_path: Path) -> None:
    from bench.catalog.placement import fits_summary, paper_llm_fits

    rocm = _profile(tmp_path, "mi", "rocm")
    fits = paper_llm_fits(rocm, max_nodes=1)
    assert fits and all(f.fits for f in fits if f.model == "llama-3.1-8b")
    assert "8 GPU(s) of MI300X, 192 GB each" in fits_summary(rocm, fits)[0]
    laptop = _profile(tmp_path, "laptop", "mps")
    assert paper_llm_fits(laptop) == []
    assert "Apple's GPU (mps)" in fits_summary(laptop, [])[0]


def test_profiles_init_on_amd_gpus_makes_a_rocm_profile() -> None:
    from bench.machine_profile import profile_from_machine

    mi300x = GpuInfo(0, "AMD Instinct MI300X", 206.14, 750.0)
    profile = profile_from_machine(_machine("Linux 6.8", mi300x, GpuInfo(1, "AMD Instinct MI300X", 206.14, 750.0)))
    assert profile.schema_version == 3 and profile.hardware.device == "rocm"
    assert profile.hardware.gpu_models == ["AMD Instinct MI300X"] and profile.hardware.gpu_count == 2
    assert profile.container.dockerfile == "Dockerfile.rocm" and profile.container.image.startswith("bench:rocm-")
    assert profile.llm.backend == "vllm"
    nvidia = profile_from_machine(_machine("Linux 6.8", GpuInfo(0, "NVIDIA L40S", 48.3, 350.0)))
    assert nvidia.hardware.device == "cuda" and nvidia.container.dockerfile == "Dockerfile.cuda"
