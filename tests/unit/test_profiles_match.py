"""Profile schema 2: GPU models matched by whole words, a class's memory sizes and counts, schema 1 still read, the
settings hash unchanged by the schema, and the GPU set-up's versions as the CUDA image's (issue 25, item 0)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.catalog.placement import model_fit
from bench.config import gpu_model_matches, load_profile, load_profile_file
from bench.environment import GpuInfo, MachineInfo, check_profile, memory_size_of, resolve_profile
from bench.errors import ConfigError
from bench.machine_profile import local_name, profile_from_machine
from bench.run.models import has_fp8
from bench.run.plan import hashed_profile

REPO = Path(__file__).resolve().parents[2]
MIB = 2**20


@pytest.mark.parametrize(
    ("model", "name", "matches"),
    [
        ("L4", "NVIDIA L4", True),
        ("L4", "NVIDIA L40S", False),
        ("L4", "NVIDIA L40", False),
        ("A10", "NVIDIA A10", True),
        ("A10", "NVIDIA A100-SXM4-80GB", False),
        ("A10", "NVIDIA A10G", False),
        ("A100", "NVIDIA A100-SXM4-80GB", True),
        ("A100", "NVIDIA A100 80GB PCIe", True),
        ("H100", "NVIDIA H100 80GB HBM3", True),
        ("H100", "NVIDIA H100 PCIe", True),
        ("H100", "NVIDIA H100 NVL", True),
        ("H100", "NVIDIA GH200 480GB", False),
        ("H100", "NVIDIA H200", False),
        ("H100 NVL", "NVIDIA H100 NVL", True),
        ("H100 NVL", "NVIDIA H100 80GB HBM3", False),
        ("V100", "Tesla V100-SXM2-32GB", True),
        ("v100", "tesla v100-pcie-16gb", True),
        ("NVIDIA L40S", "NVIDIA L40S", True),
        ("MI250X", "AMD Instinct MI250X/MI250", True),
    ],
)
def test_gpu_models_match_by_whole_words(model: str, name: str, matches: bool) -> None:
    assert gpu_model_matches(model, name) is matches


def gpu(name: str, mib: int, index: int = 0) -> GpuInfo:
    """A GPU as NVML reports it: ``mib`` MiB total (GpuInfo.memory_gb is bytes / 1e9, as _probe_gpus rounds it)."""
    return GpuInfo(index, name, round(mib * MIB / 1e9, 2), 300.0)


def machine(*gpus: GpuInfo) -> MachineInfo:
    return MachineInfo("h", "Linux", "3.11", "cpu", 2, 64.0, gpus=list(gpus), nvml_status="ok")


def test_the_l4_profile_refuses_an_l40s() -> None:
    problems = check_profile(load_profile("l4"), machine(gpu("NVIDIA L40S", 46_068)))
    assert len(problems) == 1 and "model L4" in problems[0] and "NVIDIA L40S" in problems[0]
    assert "bench profiles init" in problems[0] and "--profile auto" in problems[0]
    assert check_profile(load_profile("l4"), machine(gpu("NVIDIA L4", 23_034))) == []


@pytest.mark.parametrize(
    ("name", "mib", "size"),
    [
        ("NVIDIA H100 80GB HBM3", 81_559, 80),
        ("NVIDIA H100 PCIe", 81_559, 80),
        ("NVIDIA H100 NVL", 95_830, 94),
        ("NVIDIA H100", 64 * 1024, None),  # a 64 GB H100 is no size the class knows
    ],
)
def test_the_h100_class_takes_its_memory_sizes(name: str, mib: int, size: float | None) -> None:
    h100 = load_profile("h100")
    assert memory_size_of(h100, gpu(name, mib)) == size
    problems = check_profile(h100, machine(gpu(name, mib)))
    if size is None:
        assert len(problems) == 1 and "94 or 80 GB" not in problems[0] and "80 or 94 GB" in problems[0]
        assert "gpu_memory_variants_gb" in problems[0]
    else:
        assert problems == []
        resolved = resolve_profile(h100, machine(gpu(name, mib)))
        assert (resolved.hardware.gpu_count, resolved.hardware.gpu_memory_gb) == (1, size)


def test_resolving_four_94_gb_h100s_is_the_paper_s_node_unchanged() -> None:
    h100 = load_profile("h100")
    node = machine(*(gpu("NVIDIA H100", 95_830, i) for i in range(4)))
    assert resolve_profile(h100, node) is h100
    # a Slurm task keeps the node's count: it is given its GPUs by --gpus
    two_of_eight = machine(*(gpu("NVIDIA H100 80GB HBM3", 81_559, i) for i in range(2)))
    assert resolve_profile(h100, two_of_eight, count=False).hardware.gpu_count == 4


def test_a_schema_1_profile_still_reads(tmp_path: Path) -> None:
    text = (REPO / "hardware_profiles" / "l4.toml").read_text()
    old = re.sub(r"gpu_models = \[[^\]]*\]", 'gpu_model_pattern = "L4"', text).replace(
        "schema_version = 2", "schema_version = 1"
    )
    (tmp_path / "l4.toml").write_text(old)
    profile = load_profile_file(tmp_path / "l4.toml")
    assert profile.schema_version == 1 and profile.hardware.gpu_models == ["L4"]  # a plain word: a model name
    assert not profile.hardware.accepts_gpu("NVIDIA L40S")
    regex = old.replace('gpu_model_pattern = "L4"', 'gpu_model_pattern = "L4$|L40S"')
    (tmp_path / "l4.toml").write_text(regex)
    profile = load_profile_file(tmp_path / "l4.toml")
    assert profile.hardware.gpu_model_pattern == "L4$|L40S" and profile.hardware.accepts_gpu("NVIDIA L40S")
    both = text.replace('gpu_models = ["L4"]', 'gpu_models = ["L4"]\ngpu_model_pattern = "L4"')
    (tmp_path / "l4.toml").write_text(both)
    with pytest.raises(ConfigError, match="gpu_models or gpu_model_pattern"):
        load_profile_file(tmp_path / "l4.toml")


def test_the_schema_does_not_change_the_settings_hash() -> None:
    """A run stored with the schema-1 h100 (pattern "H100", 4 x 94 GB) hashes as the schema-2 h100 on that node."""
    new = load_profile("h100").model_dump(mode="json")
    old = {**new, "schema_version": 1}
    old["hardware"] = {k: v for k, v in new["hardware"].items() if k not in ("gpu_models", "gpu_count_min")}
    old["hardware"] = {**old["hardware"], "gpu_model_pattern": "H100"}
    del old["hardware"]["gpu_memory_variants_gb"]
    assert hashed_profile(old) == hashed_profile(new)
    one_80 = resolve_profile(load_profile("h100"), machine(gpu("NVIDIA H100 80GB HBM3", 81_559)))
    assert hashed_profile(one_80) != hashed_profile(new), "another machine's numbers are another run's"


def test_placement_follows_the_memory_found() -> None:
    from bench.catalog.models import get_model_spec

    h100 = load_profile("h100")
    one_nvl = resolve_profile(h100, machine(gpu("NVIDIA H100 NVL", 95_830)))
    one_80 = resolve_profile(h100, machine(gpu("NVIDIA H100 80GB HBM3", 81_559)))
    moe = get_model_spec("phi-3.5-moe")  # 96 GB in 16 bit with the overhead: 2 GPUs of 94 GB, as the paper placed it
    assert not model_fit(moe, one_nvl, max_nodes=1).fits
    qwen32 = get_model_spec("ds-qwen-32b")
    assert model_fit(qwen32, one_80, max_nodes=1).placement.label == "1x1"


def test_a_machine_s_own_profile() -> None:
    a10 = machine(gpu("NVIDIA A10", 23_028))
    profile = profile_from_machine(a10)
    assert profile.name == local_name(a10) == "local-a10"
    assert profile.hardware.gpu_models == ["NVIDIA A10"] and profile.hardware.gpu_memory_gb == 22.4
    assert profile.llm.dtype == "bfloat16" and not has_fp8(profile.hardware)
    assert "llama-3.1-8b" in profile.suites["paper"].models and "ds-qwen-14b" in profile.excluded_models
    v100 = profile_from_machine(machine(gpu("Tesla V100-SXM2-32GB", 32_768)))
    assert v100.name == "local-v100-sxm2-32gb" and v100.llm.dtype == "float16"  # Volta has no bfloat16
    assert has_fp8(profile_from_machine(machine(gpu("NVIDIA L40S", 46_068))).hardware)
    with pytest.raises(ConfigError, match="shipped profile"):
        profile_from_machine(a10, name="l4")
    with pytest.raises(ConfigError, match="2 models"):
        profile_from_machine(machine(gpu("NVIDIA A10", 23_028), gpu("NVIDIA L4", 23_034, 1)))


def test_setup_gpu_installs_the_cuda_image_s_versions() -> None:
    makefile = (REPO / "Makefile").read_text()
    dockerfile = (REPO / "Dockerfile.cuda").read_text()

    def value(text: str, pattern: str) -> str:
        found = re.search(pattern, text, re.MULTILINE)
        assert found, pattern
        return found[1]

    assert value(makefile, r"^VLLM_VERSION \?= (\S+)") == value(dockerfile, r"^ARG VLLM_VERSION=(\S+)")
    assert value(makefile, r"^CUDA_TORCH_SPEC \?= torch==(\S+)") == value(dockerfile, r"^ARG TORCH_VERSION=(\S+)")
    assert re.search(r"^setup-gpu: .*## ", makefile, re.MULTILINE)


def test_a_slurm_task_on_gpus_of_another_size_than_planned_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`bench slurm` placed the models by the profile's 94 GB; a task on 80 GB H100s would run other placements."""
    import bench.environment
    from bench.run.request import RunRequest
    from bench.run.resolve import resolve_plan

    node = machine(*(gpu("NVIDIA H100 80GB HBM3", 81_559, i) for i in range(2)))
    monkeypatch.setattr(bench.environment, "detect_machine", lambda: node)
    request = RunRequest(profile=load_profile("h100"), suite_name="default", reports_dir=tmp_path, gpus=2)
    with pytest.raises(ConfigError, match=r"plans with 94 GB per GPU, this node's GPUs are of 80 GB"):
        resolve_plan(request, machine=True)
    host = resolve_plan(RunRequest(profile=load_profile("h100"), reports_dir=tmp_path), machine=True)
    assert (host.profile.hardware.gpu_count, host.profile.hardware.gpu_memory_gb) == (2, 80)
