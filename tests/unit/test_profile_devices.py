"""Profile schema 3: the devices rocm (AMD, PyTorch's cuda device on HIP) and mps (Apple's GPU), beside cpu and
cuda; profiles of schemas 1 and 2 still read, a device newer than its file's schema and vLLM on mps are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.config import (
    DEFAULT_MAX_BATCH_SIZE,
    PROFILE_SCHEMA_VERSION,
    load_profile,
    load_profile_file,
    torch_device,
)
from bench.errors import ConfigError
from bench.run.plan import hashed_profile

REPO = Path(__file__).resolve().parents[2]


def _profile_text(name: str, *, schema: int = 3, power: bool = False, **replace: str) -> str:
    """The shipped profile ``name`` as ``mine``, at ``schema``, with ``replace``'s TOML lines swapped (key = line);
    without its power suite (power limits need cuda) unless ``power``."""
    text = (REPO / "hardware_profiles" / f"{name}.toml").read_text(encoding="utf-8")
    if not power:
        text = re.sub(r"^\[suites\.power\]\n.*?(?=^\[|\Z)", "", text, flags=re.M | re.S)
    text = text.replace(f'name = "{name}"', 'name = "mine"')
    text = re.sub(r"^schema_version = \d+$", f"schema_version = {schema}", text, count=1, flags=re.M)
    for key, line in replace.items():
        text, n = re.subn(rf"^{key} = .*$", line, text, count=1, flags=re.M)
        assert n == 1, key
    return text


def _load(tmp_path: Path, text: str):
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    return load_profile_file(path)


def test_schema_3_is_current_and_the_shipped_profiles_still_read() -> None:
    assert PROFILE_SCHEMA_VERSION == 3
    for name in ("cpu", "h100", "l4"):
        assert load_profile(name).schema_version in (2, 3)


@pytest.mark.parametrize("schema", [1, 2, 3])
def test_a_cuda_profile_of_every_schema_reads(tmp_path: Path, schema: int) -> None:
    text = _profile_text("l4", schema=schema)
    if schema == 1:  # schema 1 names its GPUs by a pattern
        text = re.sub(r"^gpu_models = .*$", 'gpu_model_pattern = "L4"', text, flags=re.M)
    profile = _load(tmp_path, text)
    assert profile.schema_version == schema
    assert profile.hardware.device == "cuda" and profile.hardware.on_gpus
    assert profile.hardware.gpu_models == ["L4"] and profile.hardware.torch_device == "cuda"


@pytest.mark.parametrize("schema", [1, 2, 3])
def test_a_cpu_profile_of_every_schema_reads(tmp_path: Path, schema: int) -> None:
    profile = _load(tmp_path, _profile_text("cpu", schema=schema))
    assert profile.schema_version == schema and profile.hardware.device == "cpu"
    assert not profile.hardware.on_gpus and profile.hardware.torch_device == "cpu"


def test_a_rocm_profile_runs_on_pytorch_s_cuda_device(tmp_path: Path) -> None:
    profile = _load(tmp_path, _profile_text("l4", device='device = "rocm"', gpu_models='gpu_models = ["MI300X"]'))
    hw = profile.hardware
    assert hw.device == "rocm" and hw.on_gpus and hw.torch_device == "cuda"
    assert hw.accepts_gpu("AMD Instinct MI300X") and not hw.accepts_gpu("AMD Instinct MI300A")
    assert profile.llm.backend == "vllm"  # vLLM's ROCm build
    assert profile.max_batch_size == DEFAULT_MAX_BATCH_SIZE["rocm"] == DEFAULT_MAX_BATCH_SIZE["cuda"]


def test_a_rocm_profile_needs_gpus(tmp_path: Path) -> None:
    text = _profile_text("cpu", device='device = "rocm"')
    with pytest.raises(ConfigError, match=r"device = 'rocm' needs gpu_count >= 1 and gpu_models.*MI300X"):
        _load(tmp_path, text)


def test_an_mps_profile_serves_llms_with_the_hf_pipeline(tmp_path: Path) -> None:
    profile = _load(tmp_path, _profile_text("cpu", device='device = "mps"'))
    hw = profile.hardware
    assert hw.device == "mps" and not hw.on_gpus and hw.torch_device == "mps"
    assert profile.llm.backend == "hf_pipeline"
    assert profile.max_batch_size == DEFAULT_MAX_BATCH_SIZE["mps"]


def test_vllm_on_mps_is_refused_naming_the_hf_pipeline(tmp_path: Path) -> None:
    text = _profile_text(
        "l4",
        device='device = "mps"',
        gpu_models="gpu_models = []",
        gpu_count="gpu_count = 1",
        batch_size="batch_size = 64",
    )
    with pytest.raises(ConfigError, match=r"backend = 'vllm' cannot run on device = 'mps'.*hf_pipeline"):
        _load(tmp_path, text)
    assert _load(tmp_path, text.replace('backend = "vllm"', 'backend = "hf_pipeline"')).hardware.device == "mps"


def test_mps_is_one_gpu(tmp_path: Path) -> None:
    text = _profile_text("cpu", device='device = "mps"', gpu_count="gpu_count = 2")
    with pytest.raises(ConfigError, match="gpu_count is 0 or 1"):
        _load(tmp_path, text)


@pytest.mark.parametrize("device", ["rocm", "mps"])
@pytest.mark.parametrize("schema", [1, 2])
def test_a_new_device_in_an_old_schema_is_refused(tmp_path: Path, device: str, schema: int) -> None:
    if device == "rocm":
        text = _profile_text("l4", schema=schema, device='device = "rocm"', gpu_models='gpu_models = ["MI300X"]')
    else:
        text = _profile_text("cpu", schema=schema, device='device = "mps"')
    with pytest.raises(ConfigError, match=rf"device = '{device}' is a schema-3 device: set schema_version = 3"):
        _load(tmp_path, text)


def test_an_unknown_device_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hardware\.device.*'cpu', 'cuda', 'rocm' or 'mps'.*'xpu'"):
        _load(tmp_path, _profile_text("cpu", device='device = "xpu"'))


def test_power_limits_stay_nvidia_only(tmp_path: Path) -> None:
    text = _profile_text("l4", power=True, device='device = "rocm"', gpu_models='gpu_models = ["MI300X"]')
    with pytest.raises(ConfigError, match=r"power_limit_w, which needs device = 'cuda'.*NVML"):
        _load(tmp_path, text)


def test_torch_device_names() -> None:
    assert [torch_device(d) for d in ("cpu", "cuda", "cuda:1", "rocm", "rocm:1", "mps")] == [
        "cpu",
        "cuda",
        "cuda:1",
        "cuda",
        "cuda:1",
        "mps",
    ]


def test_the_schema_version_is_not_hashed(tmp_path: Path) -> None:
    """A run stored under a schema-2 profile resumes under the same profile at schema 3."""
    two = _load(tmp_path, _profile_text("l4", schema=2))
    three = _load(tmp_path, _profile_text("l4", schema=3))
    assert hashed_profile(two.model_dump(mode="json")) == hashed_profile(three.model_dump(mode="json"))
