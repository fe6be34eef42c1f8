"""The profiles of issue 25, item 1: h200, b200, gh200 (NVIDIA), mi300x, mi250x (AMD, device rocm) and apple-m
(Apple Silicon, device mps). Each loads and passes `bench profiles validate` (schema and placements), cites its
datasheet, lists its number formats (FP8 where the datasheet has it, and then an FP8 serving row), serves with vLLM
on CUDA and ROCm and with the HF pipeline on mps, and places the paper's LLMs as the catalog's sizes say, on one
device and on a full node (the fit tables below are the kit's own arithmetic, bench.catalog.placement)."""

from __future__ import annotations

import pytest

from bench.catalog.models import split_serving
from bench.catalog.placement import memory_needed_gb, paper_llm_fits, placement_problems
from bench.cli import main
from bench.config import HardwareProfile, load_profile, profiles_dir
from bench.environment import GpuInfo, MachineInfo, resolve_profile
from bench.errors import ConfigError
from bench.run.models import has_fp8
from bench.run.plan import hashed_profile

NEW = ["h200", "b200", "gh200", "mi300x", "mi250x", "apple-m"]
GPU = ["h200", "b200", "gh200", "mi300x", "mi250x"]
MIB = 2**20

#: profile -> (device, GPU model word, GPUs per node, GB per GPU, board maximum W, FP8)
FACTS = {
    "h200": ("cuda", "H200", 8, 141, 700, True),
    "b200": ("cuda", "B200", 8, 180, 1000, True),
    "gh200": ("cuda", "GH200", 4, 96, 1000, True),
    "mi300x": ("rocm", "MI300X", 8, 192, 750, True),
    "mi250x": ("rocm", "MI250X", 8, 64, 560, False),
}

SMALL = ["llama-3.1-8b", "qwen-7b", "phi-3.5-mini", "ds-llama-8b", "ds-qwen-14b"]
LARGE_70B = ["llama-3.1-70b", "qwen-72b", "ds-llama-70b"]
PAPER_LLMS = [*SMALL, "ds-qwen-32b", "phi-3.5-moe", "jamba-mini-1.5", *LARGE_70B]

#: profile, devices -> the paper's LLMs that do not fit that many devices of the profile's memory (the rest fit)
NOT_FITTING = {
    ("h200", 1): LARGE_70B,
    ("h200", 8): [],
    ("b200", 1): [],
    ("gh200", 1): ["phi-3.5-moe", "jamba-mini-1.5", *LARGE_70B],
    ("gh200", 2): [],
    ("mi300x", 1): [],
    ("mi250x", 1): ["ds-qwen-32b", "phi-3.5-moe", "jamba-mini-1.5", *LARGE_70B],
    ("mi250x", 2): LARGE_70B,
    ("mi250x", 4): [],
}


@pytest.mark.parametrize("name", NEW)
def test_each_new_profile_loads_and_its_placements_are_consistent(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, HardwareProfile) and profile.name == name
    assert {"default", "offline", "paper", "serving"} <= set(profile.suites)
    assert placement_problems(profile) == []
    assert "not yet run on real hardware" in profile.description


@pytest.mark.parametrize("name", GPU)
def test_gpu_profiles_cite_their_datasheet_and_list_fp8_where_it_has_it(name: str) -> None:
    device, word, count, memory_gb, max_w, fp8 = FACTS[name]
    hw = load_profile(name).hardware
    assert hw.device == device and hw.on_gpus and hw.gpu_models == [word]
    assert (hw.gpu_count, hw.gpu_memory_gb, hw.gpu_max_power_w, hw.min_gpus) == (count, memory_gb, max_w, 1)
    assert hw.datasheet is not None and hw.datasheet.dtype == "bfloat16" and hw.datasheet.source
    assert hw.datasheet.power_w <= max_w and 1e14 < hw.datasheet.peak_flop_per_s < 1e16
    assert ("fp8" in hw.precisions) is fp8 and has_fp8(hw) is fp8
    assert {"bf16", "fp16", "fp32"} <= set(hw.precisions)


def test_the_mi250x_s_datasheet_ratio_is_the_module_s() -> None:
    """Per GCD half the module's 383.0 TFLOPs and 560 W (an assumption the file states): J per FLOP unchanged."""
    sheet = load_profile("mi250x").hardware.datasheet
    assert sheet is not None
    assert sheet.power_w / sheet.peak_flop_per_s == pytest.approx(560 / 383.0e12)


@pytest.mark.parametrize("name", GPU)
def test_vllm_serves_cuda_and_rocm_with_an_fp8_row_where_the_gpu_has_fp8(name: str) -> None:
    profile = load_profile(name)
    assert profile.llm.backend == "vllm" and profile.llm.serving == "sequential" and profile.llm.dtype == "bfloat16"
    configs = [split_serving(m)[1] for m in profile.suite("serving").models]
    assert {c.get("serving") for c in configs} == {"sequential", "batched", "scoring"}
    assert any(c.get("quantization") == "fp8" for c in configs) is FACTS[name][5]
    assert profile.measurement.min_window_s >= 10


def test_apple_serves_with_the_hf_pipeline_on_mps_and_is_metered_by_the_soc() -> None:
    profile = load_profile("apple-m")
    hw = profile.hardware
    assert hw.device == "mps" and hw.torch_device == "mps" and not hw.on_gpus and hw.gpu_count == 0
    assert profile.llm.backend == "hf_pipeline" and profile.llm.dtype == "float16" and not has_fp8(hw)
    assert hw.datasheet is None and hw.precisions == []  # Apple publishes neither
    assert hw.min_ram_gb == 16
    configs = [split_serving(m)[1] for m in profile.suite("serving").models]
    assert all(c.get("quantization") in (None, "none") for c in configs)


def test_apple_s_exclusions_are_the_kit_s_memory_rule_against_16_gb() -> None:
    profile = load_profile("apple-m")
    from bench.catalog.models import get_model_spec

    fitting = []
    for name in PAPER_LLMS:
        weights, total = memory_needed_gb(float(get_model_spec(name).params["params_b"]))
        if total <= profile.hardware.min_ram_gb:
            fitting.append(name)
            continue
        reason = profile.excluded_models[name]
        assert reason.startswith(f"needs ~{weights:.0f} GB of float16 weights, ~{total:.0f} GB with the KV cache")
        assert "16 GB of unified memory" in reason
    assert fitting == ["phi-3.5-mini"] and "phi-3.5-mini" in profile.suite("paper").models
    assert set(profile.excluded_models) == set(PAPER_LLMS) - {"phi-3.5-mini"}


def _machine(name: str, gib: float, count: int) -> MachineInfo:
    gpus = [GpuInfo(i, name, round(gib * 2**30 / 1e9, 2), 500.0) for i in range(count)]
    return MachineInfo("h", "Linux", "3.11", "cpu", 2, 512.0, gpus=gpus, nvml_status="ok")


#: profile -> the device name and memory (GiB) its fakes report (tests/integration/test_new_profiles_fakes.py)
NAMES = {
    "h200": ("NVIDIA H200", 143_771 / 1024),
    "b200": ("NVIDIA B200", 183_359 / 1024),
    "gh200": ("NVIDIA GH200 480GB", 97_280 / 1024),
    "mi300x": ("AMD Instinct MI300X", 196_592 / 1024),
    "mi250x": ("AMD Instinct MI250X/MI250", 65_520 / 1024),
}


@pytest.mark.parametrize(("name", "devices"), sorted(NOT_FITTING))
def test_which_paper_llms_fit_how_many_devices(name: str, devices: int) -> None:
    """The fit table of the report: on ``devices`` of the profile's GPUs, as a run resolves the profile."""
    gpu, gib = NAMES[name]
    profile = resolve_profile(load_profile(name), _machine(gpu, gib, devices))
    assert profile.hardware.gpu_count == devices and profile.hardware.gpu_memory_gb == FACTS[name][3]
    fits = {f.model: f for f in paper_llm_fits(profile, max_nodes=1)}
    assert set(fits) == set(PAPER_LLMS)
    left_out = sorted(m for m, f in fits.items() if not f.fits)
    assert left_out == sorted(NOT_FITTING[(name, devices)])
    for model in left_out:
        assert "GB of bfloat16 weights" in str(fits[model].reason) and f"here {devices} x" in str(fits[model].reason)


def test_the_largest_llms_fit_one_b200_and_one_mi300x_but_two_h200s() -> None:
    def gpus(name: str, model: str) -> int:
        gpu, gib = NAMES[name]
        profile = resolve_profile(load_profile(name), _machine(gpu, gib, FACTS[name][2]))
        (fit,) = [f for f in paper_llm_fits(profile, max_nodes=1) if f.model == model]
        assert fit.placement is not None
        return fit.placement.total_gpus

    assert [gpus(n, "qwen-72b") for n in ("b200", "mi300x", "h200", "gh200", "mi250x")] == [1, 1, 2, 2, 4]
    assert [gpus(n, "jamba-mini-1.5") for n in ("h200", "gh200", "mi250x")] == [1, 2, 2]


def test_gh200_s_144_gb_part_is_a_variant_that_holds_the_moe_models_on_one() -> None:
    profile = resolve_profile(load_profile("gh200"), _machine("NVIDIA GH200 144G HBM3e", 146_831 / 1024, 1))
    assert profile.hardware.gpu_memory_gb == 144
    left_out = sorted(f.model for f in paper_llm_fits(profile, max_nodes=1) if not f.fits)
    assert left_out == sorted(LARGE_70B)


def test_precisions_are_checked_at_load(tmp_path) -> None:
    import tomllib

    data = tomllib.loads((profiles_dir() / "mi250x.toml").read_text())
    data["suites"]["serving"]["models"].append("llama-3.1-8b[serving=batched,batch_size=8,quantization=fp8]")
    with pytest.raises(ValueError, match=r"computes in fp8, which \[hardware\] precisions does not list"):
        HardwareProfile.model_validate(data)
    data = tomllib.loads((profiles_dir() / "h200.toml").read_text())
    data["hardware"]["precisions"] = ["fp32", "fp16"]
    with pytest.raises(ValueError, match=r"\[llm\] dtype computes in bf16"):
        HardwareProfile.model_validate(data)


def test_precisions_are_not_hashed_and_not_dumped_when_unset() -> None:
    h200 = load_profile("h200").model_dump(mode="json")
    assert h200["hardware"]["precisions"]
    without = {**h200, "hardware": {k: v for k, v in h200["hardware"].items() if k != "precisions"}}
    assert hashed_profile(h200) == hashed_profile(without)
    assert "precisions" not in load_profile("h100").model_dump(mode="json")["hardware"]


def test_validate_names_a_stale_exclusion_and_an_unplaceable_suite_model() -> None:
    h200 = load_profile("h200")
    stale = h200.model_copy(update={"excluded_models": {"qwen-7b": "too big"}})
    assert any("qwen-7b: it fits" in p for p in placement_problems(stale))
    one = h200.model_copy(update={"hardware": h200.hardware.model_copy(update={"gpu_count": 1, "gpu_count_min": 1})})
    problems = placement_problems(one)
    assert any("llama-3.1-70b@1x2" in p for p in problems)  # the gpu-count sweep asks for 2 of a node of 1
    assert any(p.startswith("llama-3.1-70b does not fit") for p in problems)


def test_a_profile_without_a_paper_suite_is_not_asked_about_the_paper_s_llms() -> None:
    """A user's copy that keeps only the traditional suites claims nothing about the LLMs: validate says nothing."""
    h200 = load_profile("h200")
    one = h200.model_copy(update={"hardware": h200.hardware.model_copy(update={"gpu_count": 1})})
    kept = {k: v for k, v in one.suites.items() if k in ("default", "offline")}
    assert placement_problems(one.model_copy(update={"suites": kept})) == []


def test_profiles_list_shows_them_and_validate_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "list"]) == 0
    listed = capsys.readouterr().out
    for name in NEW:
        assert f"{name} " in listed, name
    assert "INVALID" not in listed
    assert main(["profiles", "validate"]) == 0
    said = capsys.readouterr().out
    for name in NEW:
        assert f"OK {profiles_dir() / f'{name}.toml'}" in said


def test_a_cpu_machine_is_no_rocm_or_apple_machine() -> None:
    """Without the GPU check for rocm (and the OS check for mps) these profiles would match any machine."""
    from bench.environment import check_profile
    from bench.machine_profile import find_profile

    cpu = MachineInfo("h", "Linux 6.1", "3.11", "AMD EPYC", 2, 24.0, nvml_status="no NVML")
    for name in ("mi300x", "mi250x", "apple-m"):
        assert check_profile(load_profile(name), cpu), name
    found = find_profile(cpu)
    assert found is not None and found.name == "cpu"


def test_an_unknown_profile_still_names_the_new_ones() -> None:
    with pytest.raises(ConfigError, match="h200"):
        load_profile("h20")


def _edited(name: str, **hardware: object) -> dict:
    data = load_profile(name).model_dump(mode="json")
    for key, value in hardware.items():
        if key == "peak_flop_per_s":
            data["hardware"]["datasheet"][key] = value
        else:
            data["hardware"][key] = value
    return data


def test_a_datasheet_peak_in_tflops_is_refused_and_a_gpu_profile_without_memory_named() -> None:
    """A peak of 1307.4 (TFLOP/s written as FLOP/s) would make every reference ratio wrong by 1e12; a GPU profile
    with gpu_memory_gb = 0 could place no model (it raised a bare ValueError in `bench profiles validate`)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"peak_flop_per_s = 1307.4 is not a GPU's peak in FLOP/s.*989.5e12"):
        HardwareProfile.model_validate(_edited("mi300x", peak_flop_per_s=1307.4))
    no_memory = HardwareProfile.model_validate(_edited("mi300x", gpu_memory_gb=0, gpu_memory_variants_gb=[]))
    assert any("gpu_memory_gb is 0" in p for p in placement_problems(no_memory))  # said, not a traceback
    assert HardwareProfile.model_validate(_edited("b200", peak_flop_per_s=2.25e15)).hardware.datasheet is not None


@pytest.mark.parametrize("bad", ["My Profile", "UPPER", "../evil", ""])
def test_profiles_init_refuses_a_name_that_is_no_profile_name(bad: str) -> None:
    from bench.machine_profile import profile_from_machine

    with pytest.raises(ConfigError, match="a profile name is lower-case letters"):
        profile_from_machine(_machine("NVIDIA H100 80GB HBM3", 79.6, 1), name=bad)


def test_profiles_validate_names_a_misspelled_data_set_or_model_of_any_profile(tmp_path) -> None:
    """A CPU profile's suites too: `bench run` would refuse these names later, after the user believed the file OK."""
    text = (profiles_dir() / "cpu.toml").read_text().replace('name = "cpu"', 'name = "typo"')
    text = text.replace('"tomatoes-offline"', '"tomatoes-offlne"', 1).replace('"linear-bow"', '"linear-bwo"', 1)
    path = tmp_path / "typo.toml"
    path.write_text(text)
    from bench.config import load_profile_file

    problems = placement_problems(load_profile_file(path))
    assert any("data set tomatoes-offlne" in p and "Did you mean: tomatoes-offline" in p for p in problems)
    assert any("model linear-bwo" in p for p in problems), problems
    assert placement_problems(load_profile("cpu")) == []
