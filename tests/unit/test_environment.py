"""Machine detection and the profile check (no GPU here: GPUs are given as data)."""

from __future__ import annotations

import pytest

from bench.config import load_profile
from bench.environment import GpuInfo, MachineInfo, _visible_indices, check_profile, detect_machine, enforce_profile
from bench.errors import HardwareMismatchError, MeterError


def machine(gpus: list[GpuInfo] | None = None, ram_gb: float = 24.0) -> MachineInfo:
    return MachineInfo(
        hostname="h",
        os="Linux",
        python="3.11",
        cpu_model="cpu",
        logical_cpus=2,
        ram_gb=ram_gb,
        gpus=gpus or [],
        nvml_status="nvidia-ml-py not installed (no NVML)",
    )


def test_detect_machine_reads_this_box() -> None:
    info = detect_machine()
    assert info.logical_cpus >= 1 and info.ram_gb > 0
    assert info.cpu_model
    assert info.to_dict()["gpus"] == [] or all("name" in g for g in info.to_dict()["gpus"])


def test_cpu_profile_matches_a_cpu_machine() -> None:
    assert check_profile(load_profile("cpu"), machine()) == []


def test_a100_on_a_machine_without_gpus_names_both() -> None:
    with pytest.raises(HardwareMismatchError) as err:
        enforce_profile(load_profile("a100"), machine(), force=False)
    text = str(err.value)
    assert "'a100'" in text and "A100" in text and "no GPU" in text and "--force" in text


def test_force_returns_the_mismatch_to_record() -> None:
    problems = enforce_profile(load_profile("a100"), machine(), force=True)
    assert problems and "a100" in problems[0]


def test_a_gpu_in_mig_mode_is_refused_with_or_without_force() -> None:
    """NVML gives no energy per MIG instance: no --force advice, the GPU named and what to do instead."""
    why = "GPU 0 (NVIDIA A100-SXM4-80GB) is in MIG mode: ... --force or not. Disable MIG mode ... (sudo nvidia-smi"
    mig = MachineInfo("h", "Linux", "3.11", "cpu", 2, 64.0, nvml_status=why, gpu_refusal=why)
    for force in (False, True):
        with pytest.raises(MeterError) as err:
            enforce_profile(load_profile("a100"), mig, force=force)
        assert str(err.value) == why and "pass --force" not in str(err.value)
    assert enforce_profile(load_profile("cpu"), mig, force=False) == []  # a CPU run uses no GPU


def test_wrong_gpu_model_and_count() -> None:
    h100 = load_profile("h100")
    two_a100 = [GpuInfo(i, "NVIDIA A100-SXM4-80GB", 80.0, 400.0) for i in range(2)]
    assert "this machine has: NVIDIA A100-SXM4-80GB" in check_profile(h100, machine(two_a100))[0]
    two_h100 = [GpuInfo(i, "NVIDIA H100 80GB HBM3", 85.52, 700.0) for i in range(2)]
    assert check_profile(h100, machine(two_h100)) == []  # the class takes any count from gpu_count_min = 1
    node_only = h100.model_copy(update={"hardware": h100.hardware.model_copy(update={"gpu_count_min": 4})})
    assert "this machine has 2" in check_profile(node_only, machine(two_h100))[0]
    four = [GpuInfo(i, "NVIDIA H100", 94.0, 700.0) for i in range(4)]
    assert check_profile(h100, machine(four)) == []


def test_too_little_ram() -> None:
    assert "RAM" in check_profile(load_profile("cpu"), machine(ram_gb=1.0))[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [0, 1, 2, 3]),
        ("", []),
        ("2,0", [2, 0]),
        ("1,-1,3", [1]),
        ("0,7,1", [0]),
        ("7", []),
        ("GPU-abc", [0, 1, 2, 3]),
    ],
)
def test_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: list[int]) -> None:
    if value is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert _visible_indices(4) == expected
