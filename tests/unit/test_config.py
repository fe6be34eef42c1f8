"""Hardware profiles: every shipped profile validates; bad files fail with the file, field and fix named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import HardwareProfile, list_profiles, load_profile, load_profile_file
from bench.errors import ConfigError

SHIPPED = ["a100", "a30", "apple-m", "b200", "cpu", "gh200", "h100", "h200", "l4", "mi250x", "mi300x", "v100"]
#: The image a profile's device runs in (Apple runs on the host: its profile names the CPU image the schema asks for).
DOCKERFILES = {"cuda": "Dockerfile.cuda", "rocm": "Dockerfile.rocm", "cpu": "Dockerfile.cpu", "mps": "Dockerfile.cpu"}


def test_the_paper_machines_and_more_ship() -> None:
    assert set(SHIPPED) <= set(list_profiles())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_validates(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, HardwareProfile)
    assert profile.name == name
    assert "default" in profile.suites
    assert profile.measurement.min_window_s > 0
    if profile.hardware.on_gpus:
        assert profile.hardware.gpu_count >= 1
        # GPU counters update every ~100 ms: the window must be long enough for them (DESIGN.md: 10 s).
        assert profile.measurement.min_window_s >= 10
    assert profile.container.dockerfile == DOCKERFILES[profile.hardware.device]


def test_cpu_is_the_default_and_runs_the_paper_traditional_models() -> None:
    suite = load_profile("cpu").suite("default")
    assert suite.repetitions == 10
    traditional = {
        "linear-bow",
        "linear-tfidf",
        "linear-embedding",
        "xgboost-bow",
        "xgboost-tfidf",
        "xgboost-embedding",
    }
    assert traditional <= set(suite.models)
    assert all(suite.repetitions_of(m) == 10 for m in traditional)
    # the LLM pipeline check runs fewer repetitions so `make bench` stays within minutes on two cores
    assert suite.repetitions_of("smollm2-135m[serving=scoring]") == 1
    assert "tomatoes-offline" in suite.datasets
    assert load_profile("cpu").suite("paper").repetitions_of("smollm2-135m") == 10


@pytest.mark.parametrize("name", [n for n in SHIPPED if n not in ("cpu", "apple-m")])
def test_gpu_paper_suite_holds_every_llm_that_fits_and_excludes_the_rest(name: str) -> None:
    from bench.catalog.models import gpus_needed, list_models

    profile = load_profile(name)
    paper = profile.suite("paper")
    assert profile.llm.backend == "vllm" and profile.llm.serving == "sequential" and not profile.llm.constrained
    for spec in list_models("llm"):
        if not spec.paper_label:  # the SmolLM2 pipeline checks (HF and GGUF) are no paper model
            continue
        need = gpus_needed(spec.params["params_b"], profile.hardware.gpu_memory_gb)
        if need <= profile.hardware.gpu_count:
            assert spec.name in paper.models, f"{spec.name} fits {name} but is not in its paper suite"
        else:
            assert spec.name in profile.excluded_models, f"{spec.name} does not fit {name} and has no reason"
            assert f"needs {need} GPUs" in profile.excluded_models[spec.name]


def test_paper_gpu_placement_on_h100() -> None:
    """The paper (setup.md): 1 H100 for 7-8B and the 14B/32B distills, 2 for the 70B class, Phi MoE and Jamba."""
    from bench.catalog.models import MODELS, gpus_needed

    two = {"llama-3.1-70b", "qwen-72b", "phi-3.5-moe", "jamba-mini-1.5", "ds-llama-70b"}
    for name, spec in MODELS.items():
        if spec.kind == "llm" and name != "smollm2-135m":
            assert gpus_needed(spec.params["params_b"], 94) == (2 if name in two else 1), name


def test_model_repetitions_must_name_suite_models(tmp_path: Path) -> None:
    text = _cpu_text().replace(
        'model_repetitions = { "smollm2-135m[serving=scoring]" = 1, "setfit" = 1 }',
        'model_repetitions = { "gpt-5" = 1 }',
    )
    with pytest.raises(ConfigError, match="model_repetitions names models not in the suite"):
        load_profile_file(_write(tmp_path, text))


def _write(tmp_path: Path, text: str, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _cpu_text(name: str = "mine") -> str:
    return (
        (Path(__file__).resolve().parents[2] / "hardware_profiles" / "cpu.toml")
        .read_text()
        .replace('name = "cpu"', f'name = "{name}"')
    )


def test_a_copy_of_cpu_loads(tmp_path: Path) -> None:
    assert load_profile_file(_write(tmp_path, _cpu_text())).name == "mine"


def test_typo_key_is_an_error_naming_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _cpu_text().replace("min_window_s", "min_windw_s"))
    with pytest.raises(ConfigError) as err:
        load_profile_file(path)
    text = str(err.value)
    assert str(path) in text
    assert "measurement.min_windw_s" in text and "unknown key" in text
    assert "measurement.min_window_s" in text and "missing" in text


def test_wrong_type_is_an_error_with_the_value(tmp_path: Path) -> None:
    path = _write(tmp_path, _cpu_text().replace("idle_baseline_s = 5.0", 'idle_baseline_s = "five"'))
    with pytest.raises(ConfigError, match=r"measurement\.idle_baseline_s.*'five'"):
        load_profile_file(path)


def test_bad_toml_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "name = [unclosed")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile_file(path)


def test_name_must_match_file(tmp_path: Path) -> None:
    path = _write(tmp_path, _cpu_text("other"), name="mine")
    with pytest.raises(ConfigError, match="must match the file name"):
        load_profile_file(path)


def test_cuda_profile_needs_gpus(tmp_path: Path) -> None:
    text = _cpu_text().replace('device = "cpu"', 'device = "cuda"')
    with pytest.raises(ConfigError, match="gpu_count >= 1"):
        load_profile_file(_write(tmp_path, text))


def test_bad_regex_is_rejected(tmp_path: Path) -> None:
    text = _cpu_text().replace(
        'device = "cpu"\ngpu_count = 0', 'device = "cuda"\ngpu_count = 1\ngpu_model_pattern = "A1(00"'
    )
    with pytest.raises(ConfigError, match="regular expression"):
        load_profile_file(_write(tmp_path, text))


def test_unknown_profile_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown hardware profile 'a10'.*Did you mean: .*a100"):
        load_profile("a10")


def test_unknown_suite_lists_known() -> None:
    with pytest.raises(ConfigError, match=r"no suite 'defualt'.*Did you mean: default"):
        load_profile("cpu").suite("defualt")


def test_excluded_model_cannot_be_in_a_suite(tmp_path: Path) -> None:
    text = _cpu_text() + '\n[excluded_models]\nlinear-bow = "does not fit"\n'
    with pytest.raises(ConfigError, match="excluded models"):
        load_profile_file(_write(tmp_path, text))


def test_a_malformed_placement_in_a_suite_is_refused_at_load(tmp_path: Path) -> None:
    """Suite model names are read with the catalog's placement syntax, not split by hand."""
    text = _cpu_text().replace('models = ["linear-bow", "xgboost-tfidf"]', 'models = ["linear-bow", "xgboost-tfidf@2"]')
    with pytest.raises(ConfigError, match=r"(?s)mine\.toml.*suite 'smoke'.*xgboost-tfidf@2.*<model>@<nodes>x<gpus"):
        load_profile_file(_write(tmp_path, text))
