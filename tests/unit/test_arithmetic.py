"""The distance from the limit (issue 27, item 3): an LLM cell's arithmetic (2 x parameters x computed tokens) on a
model whose size the test computes from its configuration, the MoE entries' active parameters, the J-per-FLOP
references (calibration GEMM, datasheet peak) and the limit columns of the report and of ``bench compare``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.arithmetic import (
    METHOD,
    Reference,
    arithmetic_record,
    calibration_j_per_flop,
    datasheet_j_per_flop,
    model_flop,
    reference_ratio,
)
from bench.calibration import UNIT_FLOP
from bench.results import Calibration, EnergyValue, ResultDocument
from tests.factories import cell, document
from tests.tiny_models import build_tiny_llama

LABELS = ["neg", "pos"]
TEXTS = ["a great movie", "a bad film, boring plot", "wonderful acting", "x"]


def _llama_params(config: dict) -> int:
    """A Llama's parameter count from its configuration, by its weight shapes: embeddings, per layer the attention
    projections, the gated MLP and two RMS norms, the final norm and the (untied) output head."""
    h, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv, head_dim = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    attention = h * heads * head_dim + 2 * h * kv * head_dim + heads * head_dim * h
    mlp = 3 * h * inter
    per_layer = attention + mlp + 2 * h
    head = 0 if config.get("tie_word_embeddings") else vocab * h
    return vocab * h + config["num_hidden_layers"] * per_layer + h + head


@pytest.mark.parametrize("prefix_cache", [False, True])
def test_the_arithmetic_of_a_pass_on_a_model_of_known_size(tmp_path: Path, prefix_cache: bool) -> None:
    pytest.importorskip("transformers")
    import json

    from bench.backends.hf_pipeline import HFPipelineBackend

    folder = build_tiny_llama(tmp_path / "model")
    params = _llama_params(json.loads((folder / "config.json").read_text()))
    backend = HFPipelineBackend(str(folder), serving="scoring", batch_size=2, prefix_cache=prefix_cache)
    backend.load()
    backend.fit([], [], LABELS)
    backend.predict(TEXTS)
    assert backend.arithmetic_params() == (params, "the loaded weights' parameter count (before any quantization)")
    usage = backend.usage()
    record = arithmetic_record(usage, backend.arithmetic_params())
    cached = usage.get("cached_tokens", 0)
    assert (cached > 0) == prefix_cache
    assert record.prompt_tokens == usage["input_tokens"] and record.generated_tokens == 0
    assert record.cached_tokens == cached
    assert record.computed_tokens == usage["input_tokens"] - cached
    assert record.params == params
    assert record.flop == 2 * params * (usage["input_tokens"] - cached)
    assert record.method == METHOD == "derived:2*params*tokens"


def test_int8_counts_the_parameters_before_quantization(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    import json

    from bench.backends.hf_pipeline import HFPipelineBackend

    folder = build_tiny_llama(tmp_path / "model")
    backend = HFPipelineBackend(str(folder), quantization="int8", dtype="float32")
    backend.load()
    assert backend.n_params == _llama_params(json.loads((folder / "config.json").read_text()))
    # the quantized Linear layers' packed weights are no parameters any more: counting after would be far less
    assert sum(p.numel() for p in backend._pipe.model.parameters()) < backend.n_params / 2


def test_moe_entries_count_their_active_parameters_with_the_model_cards_as_source() -> None:
    from bench.backends import create_backend
    from bench.catalog.models import get_model_spec

    expected = {"phi-3.5-moe": (6.6e9, 41.9), "jamba-mini-1.5": (12.0e9, 51.6)}
    for name, (active, total_b) in expected.items():
        spec = get_model_spec(name)
        assert spec.params["params_b"] == total_b
        backend = create_backend(spec)
        count, source = backend.arithmetic_params()  # type: ignore[attr-defined]
        assert count == round(active) and "model card" in source and "huggingface.co/" in source
        assert backend.info()["active_params_b"] == active / 1e9  # type: ignore[attr-defined]
    # a dense entry: its params_b until the loaded weights say more exactly
    backend = create_backend(get_model_spec("llama-3.1-8b"))
    assert backend.arithmetic_params() == (8_000_000_000, "catalog params_b (billions, as rounded there)")  # type: ignore[attr-defined]


def test_the_record_refuses_inconsistent_counts_and_needs_both_inputs() -> None:
    assert arithmetic_record(None, (1, "x")) is None
    assert arithmetic_record({"input_tokens": 3, "output_tokens": 1}, None) is None
    with pytest.raises(ValueError, match="cached_tokens=5 is not between 0 and the pass's 3 prompt tokens"):
        arithmetic_record({"input_tokens": 3, "output_tokens": 0, "cached_tokens": 5}, (10, "x"))
    record = arithmetic_record({"input_tokens": 100, "output_tokens": 7, "cached_tokens": 60}, (1_000, "test"))
    assert (record.computed_tokens, record.flop) == (47, 2 * 1_000 * 47)


def _calibration(j_per_unit: float, session: int = 0) -> Calibration:
    return Calibration(
        session=session,
        reference="gemm-f32-512-v1",
        device="cpu",
        unit_flop=UNIT_FLOP,
        measured_at="2026-01-01T00:00:00+00:00",
        loops=10,
        duration_s=2.0,
        s_per_unit=0.2,
        j_per_unit=j_per_unit,
        energy={"cpu": EnergyValue(energy_j=j_per_unit, method="measured:rapl")},
    )


def test_references_j_per_flop() -> None:
    doc = document(calibration=[_calibration(0.5), _calibration(1.5, session=1)])
    value, label = calibration_j_per_flop(doc)
    assert value == pytest.approx(1.0 / UNIT_FLOP) and "gemm-f32-512-v1 (2 session(s))" in label
    assert calibration_j_per_flop(document()) is None
    from bench.config import load_profile

    h100 = load_profile("h100").model_dump(mode="json")
    j, label = datasheet_j_per_flop(h100)
    assert j == pytest.approx(700 / 989.5e12) and "bfloat16" in label
    assert datasheet_j_per_flop(load_profile("cpu").model_dump(mode="json")) is None
    assert load_profile("h100").hardware.datasheet.source.startswith("NVIDIA H100 Tensor Core GPU datasheet")
    assert reference_ratio(10.0, 1e9, 1e-9) == pytest.approx(10.0)
    assert reference_ratio(None, 1e9, 1e-9) is None and reference_ratio(1.0, 0.0, 1e-9) is None


def test_the_datasheet_is_left_out_of_the_settings_hash() -> None:
    from bench.config import load_profile
    from bench.run.plan import hashed_profile

    profile = load_profile("h100").model_dump(mode="json")
    assert "datasheet" in profile["hardware"] and "datasheet" not in hashed_profile(profile)["hardware"]
    assert "datasheet" not in load_profile("cpu").model_dump(mode="json")["hardware"]  # unset: not even null


def _llm_document(**overrides: object) -> ResultDocument:
    """A CPU run with one LLM (2 repetitions, 4 texts each) whose arithmetic is known, and one traditional model
    (``overrides``: more fields of the document, e.g. a GPU profile and the GPUs the run found)."""
    from bench.results import Arithmetic

    model = "smollm2-135m[serving=scoring,prefix_cache=true]"
    flop = model_flop(135_000_000, 1_000)  # 2.7e11 FLOP per pass
    llm_cells = [
        cell(
            rep,
            model=model,
            arithmetic=Arithmetic(
                prompt_tokens=1_600,
                cached_tokens=600,
                generated_tokens=0,
                computed_tokens=1_000,
                params=135_000_000,
                params_source="test",
                flop=flop,
            ),
        )
        for rep in (0, 1)
    ]
    return document(
        cells=[cell(0), cell(1), *llm_cells],
        suite={"datasets": ["toy"], "models": ["linear-bow", model], "repetitions": 2},
        models={"linear-bow": {"paper_label": "Linear BoW"}, model: {"kind": "llm"}},
        calibration=[_calibration(UNIT_FLOP * 1e-10)],  # 1e-10 J per FLOP
        **overrides,
    )


def test_model_rows_and_the_report_show_the_limit_columns_for_llm_rows_only() -> None:
    from bench.analysis import model_rows
    from bench.report import render_report

    doc = _llm_document()
    rows = {r.model: r for r in model_rows(doc)}
    llm = rows["smollm2-135m[serving=scoring,prefix_cache=true]"]
    # gross energy per pass: 1.0 + 0.5 J (factories.energy); arithmetic 2.7e11 FLOP at 1e-10 J/FLOP = 27 J
    assert llm.flop_per_text == pytest.approx(2.7e11 / 4)
    assert llm.x_calibration == pytest.approx(1.5 / 27)
    assert llm.x_datasheet is None  # a CPU profile: no datasheet
    assert rows["linear-bow"].flop_per_text is None and rows["linear-bow"].x_calibration is None
    page = render_report(doc)
    assert "energy / calibration J per FLOP" in page and "GFLOP / text" in page
    assert "a reference ratio, not a bound" in page and "attention is left out" in page
    assert "0.0556" in page  # 1.5 / 27, three significant digits
    assert "67.5" in page  # 2.7e11 / 4 FLOP = 67.5 GFLOP per text


def test_the_report_has_no_limit_columns_without_arithmetic() -> None:
    from bench.report import render_report

    page = render_report(document(calibration=[_calibration(1.0)]))
    assert "calibration J per FLOP" not in page and "GFLOP / text" not in page


def test_compare_shows_the_ratio_per_run() -> None:
    from bench.report import render_compare

    page = render_compare([_llm_document(), document(calibration=[_calibration(1.0)])])
    assert "energy / calibration J per FLOP" in page and "0.0556" in page and "not a bound" in page


# --- the datasheet's column for the run's GPUs (form-factor variants) ------------------------------------------------


def _gpu_run(profile: str, *names: str, **overrides: object) -> ResultDocument:
    """``_llm_document`` on GPU profile ``profile`` whose run found GPUs NVML named ``names`` (one session)."""
    from bench.config import load_profile

    machine = {"hostname": "node", "gpus": [{"index": i, "name": n, "memory_gb": 80.0} for i, n in enumerate(names)]}
    return _llm_document(
        profile=load_profile(profile).model_dump(mode="json"),
        environment={"machine": machine, "sessions": [{"machine": machine}]},
        **overrides,
    )


def test_an_h100_pcie_run_gets_the_pcie_column_and_says_so() -> None:
    """One H100 PCIe card (350 W, 756 TFLOP/s dense BF16) must not be measured against the SXM module's 700 W at
    989.5 TFLOP/s: that reference costs 1.53x the J per FLOP, and the ratio would read 35% low."""
    from bench.analysis import model_rows
    from bench.arithmetic import datasheet_reference
    from bench.report import render_report

    doc = _gpu_run("h100", "NVIDIA H100 PCIe")
    ref = datasheet_reference(doc)
    assert ref is not None and ref.j_per_flop == pytest.approx(350 / 756e12)
    assert "H100 PCIe variant (for NVIDIA H100 PCIe)" in ref.label and "756 TFLOP/s at 350 W" in ref.label
    assert "whitepaper" in ref.label  # the variant's source
    llm = {r.model: r for r in model_rows(doc)}["smollm2-135m[serving=scoring,prefix_cache=true]"]
    # 1.5 J per pass over 2.7e11 FLOP at 350 / 756e12 J per FLOP (0.125 J): 12 times
    assert llm.x_datasheet == pytest.approx(12.0)
    page = render_report(doc)
    assert "energy / datasheet peak J per FLOP" in page and "H100 PCIe variant" in page and ">12.0<" in page


def test_an_sxm_name_gets_the_default_column_named_as_the_default() -> None:
    from bench.analysis import model_rows
    from bench.arithmetic import datasheet_reference

    doc = _gpu_run("h100", "NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3")
    ref = datasheet_reference(doc)
    assert ref is not None and ref.j_per_flop == pytest.approx(700 / 989.5e12)
    assert "the profile's default (no variant for NVIDIA H100 80GB HBM3)" in ref.label
    assert "H100 SXM" in ref.label  # the default's source names its column
    llm = {r.model: r for r in model_rows(doc)}["smollm2-135m[serving=scoring,prefix_cache=true]"]
    assert llm.x_datasheet == pytest.approx(1.5 / (2.7e11 * 700 / 989.5e12))


def test_gpus_of_different_form_factors_get_no_datasheet_and_the_reason() -> None:
    from bench.analysis import model_rows
    from bench.arithmetic import datasheet_reference
    from bench.report import render_report

    doc = _gpu_run("h100", "NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3")
    ref = datasheet_reference(doc)
    assert ref is not None and ref.j_per_flop is None
    assert "datasheet peak: none" in ref.label and "select different datasheet columns" in ref.label
    assert "NVIDIA H100 PCIe: H100 PCIe" in ref.label and "NVIDIA H100 80GB HBM3: the default" in ref.label
    llm = {r.model: r for r in model_rows(doc)}["smollm2-135m[serving=scoring,prefix_cache=true]"]
    assert llm.x_datasheet is None and llm.x_calibration is not None
    page = render_report(doc)
    assert "energy / datasheet peak J per FLOP" not in page  # no column of numbers that apply to none of them
    assert "select different datasheet columns" in page  # the note says why


def test_the_other_variants_and_the_cases_that_get_none() -> None:
    from bench.config import load_profile

    def ref(profile: str, *names: str) -> Reference:
        return datasheet_j_per_flop(load_profile(profile).model_dump(mode="json"), names)

    nvl = ref("h100", "NVIDIA H100 NVL")
    assert nvl.j_per_flop == pytest.approx(400 / 835.5e12) and "H100 NVL variant" in nvl.label
    h200_nvl = ref("h200", "NVIDIA H200 NVL")
    assert h200_nvl.j_per_flop == pytest.approx(600 / 835.5e12) and "H200 NVL variant" in h200_nvl.label
    assert ref("h200", "NVIDIA H200").j_per_flop == pytest.approx(700 / 989.5e12)
    a100_pcie = ref("a100", "NVIDIA A100 80GB PCIe")
    assert a100_pcie.j_per_flop == pytest.approx(300 / 312e12) and "A100 80GB PCIe variant" in a100_pcie.label
    # names that select the same column are one column: SXM4 modules of 40 and 80 GB (the same figures)
    assert ref("a100", "NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-40GB").j_per_flop == pytest.approx(400 / 312e12)
    # a machine's other GPU (not of the profile's models) was not the run's: left out
    assert ref("h100", "NVIDIA H100 PCIe", "NVIDIA T400 4GB").j_per_flop == pytest.approx(350 / 756e12)
    # a forced run on GPUs of another model: that model's datasheet is not cited here
    other = ref("h100", "NVIDIA A100-SXM4-80GB")
    assert other.j_per_flop is None and "not of the profile's models (H100)" in other.label
    # no names (a CPU run, results that recorded none): the default with today's label
    today = "datasheet peak, bfloat16 dense, 989.5 TFLOP/s at 700 W per GPU"
    assert tuple(ref("h100")) == (pytest.approx(700 / 989.5e12), today)


def test_a_name_two_variants_match_gets_none() -> None:
    from bench.config import load_profile

    profile = load_profile("a100").model_dump(mode="json")
    variant = dict(profile["hardware"]["datasheet"]["variants"][0], name="any PCIe", name_words=["PCIe"])
    profile["hardware"]["datasheet"]["variants"].append(variant)
    ref = datasheet_j_per_flop(profile, ["NVIDIA A100 80GB PCIe"])
    assert ref.j_per_flop is None and "matches more than one datasheet variant (A100 80GB PCIe, any PCIe)" in ref.label


def test_the_run_s_gpu_names_come_from_every_session() -> None:
    from bench.arithmetic import run_gpu_names

    first = {"gpus": [{"name": "NVIDIA H100 PCIe"}, {"name": "NVIDIA H100 PCIe"}]}
    resumed = {"gpus": [{"name": "NVIDIA H100 NVL"}]}
    doc = document(environment={"machine": first, "sessions": [{"machine": first}, {"machine": resumed}]})
    assert run_gpu_names(doc) == ["NVIDIA H100 PCIe", "NVIDIA H100 NVL"]
    assert run_gpu_names(document()) == []  # a CPU run's machine: no GPUs
    assert run_gpu_names({"environment": {"machine": None}}) == []


def _profile_with_variant(tmp_path: Path, **variant: object) -> Path:
    """The shipped a100 profile as a file in ``tmp_path`` whose first datasheet variant has ``variant``'s values."""
    import tomllib

    import tomli_w

    from bench.config import DEFAULT_PROFILES_DIR

    data = tomllib.loads((DEFAULT_PROFILES_DIR / "a100.toml").read_text(encoding="utf-8"))
    data["hardware"]["datasheet"]["variants"][0].update(variant)
    path = tmp_path / "a100.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("variant", "field", "says"),
    [
        ({"peak_flop_per_s": 312}, "peak_flop_per_s", "peak_flop_per_s = 312 is not a GPU's peak in FLOP/s"),
        ({"power_w": -300}, "power_w", "greater than 0 (got -300)"),
        ({"power_w": 0.3}, "power_w", "power_w = 0.3 is not a GPU's datasheet power in W (expected 10 to 5000 W"),
        ({"power_w": 300000}, "power_w", "power_w = 300000 is not a GPU's datasheet power in W"),
        ({"source": ""}, "source", "at least 1 character"),
        ({"name_words": []}, "name_words", "at least 1 item"),
        ({"name_words": ["-"]}, "name_words", "name_words entry '-' holds no word of a GPU name"),
        ({"colour": "green"}, "colour", "unknown key"),
    ],
)
def test_a_bad_variant_is_refused_naming_the_file_the_field_and_the_value(
    tmp_path: Path, variant: dict, field: str, says: str
) -> None:
    from bench.config import load_profile_file
    from bench.errors import ConfigError

    path = _profile_with_variant(tmp_path, **variant)
    with pytest.raises(ConfigError) as caught:
        load_profile_file(path)
    message = str(caught.value)
    assert str(path) in message and f"hardware.datasheet.variants.0.{field}" in message and says in message


@pytest.mark.parametrize(("power_w", "slip"), [(0.35, "written in kW?"), (350000, "written in mW?")])
def test_a_power_slip_of_a_thousand_is_refused_naming_the_unit(tmp_path: Path, power_w: float, slip: str) -> None:
    """power_w in kW or mW (a variant's or the datasheet's own) would put x_datasheet 1,000x off: refused at load,
    naming the file, the field's path, the value and the unit it was likely written in."""
    import tomllib

    import tomli_w

    from bench.config import DEFAULT_PROFILES_DIR, load_profile_file
    from bench.errors import ConfigError

    for where in ("variant", "default"):
        data = tomllib.loads((DEFAULT_PROFILES_DIR / "h100.toml").read_text(encoding="utf-8"))
        sheet = data["hardware"]["datasheet"]
        (sheet["variants"][1] if where == "variant" else sheet)["power_w"] = power_w
        path = tmp_path / "h100.toml"
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_profile_file(path)
        message = str(caught.value)
        field = "hardware.datasheet.variants.1.power_w" if where == "variant" else "hardware.datasheet.power_w"
        assert str(path) in message and f"{field}: " in message, message
        assert f"power_w = {power_w:g} is not a GPU's datasheet power in W" in message and slip in message
        assert "write it in W, e.g. 350" in message


def test_a_datasheet_power_above_the_profile_s_board_maximum_is_refused(tmp_path: Path) -> None:
    """A column above [hardware] gpu_max_power_w (the board's maximum the profile cites) contradicts it: refused,
    naming both figures; a variant below it (an NVL or PCIe card) and a default equal to it load."""
    from bench.config import load_profile_file
    from bench.errors import ConfigError

    path = _profile_with_variant(tmp_path, power_w=450)  # a100: gpu_max_power_w = 400
    with pytest.raises(ConfigError) as caught:
        load_profile_file(path)
    message = str(caught.value)
    assert str(path) in message and "hardware.datasheet.variants.0.power_w = 450 W" in message
    assert "variant 'A100 80GB PCIe''s power" in message and "gpu_max_power_w = 400 W" in message
    hw = load_profile_file(_profile_with_variant(tmp_path, power_w=300)).hardware
    assert hw.datasheet is not None and hw.datasheet.power_w == hw.gpu_max_power_w == 400


@pytest.mark.parametrize(
    ("first", "second", "short", "long"),
    [
        (["PCIe"], ["H100 PCIe", "NVL"], "PCIe", "H100 PCIe"),  # the review's example: one's words in the other's
        (["NVL"], ["nvl"], "NVL", "nvl"),  # the same words, in another case
        (["H100 NVL"], ["NVIDIA H100-NVL"], "H100 NVL", "NVIDIA H100-NVL"),  # separators are not words
    ],
)
def test_variants_whose_words_overlap_are_refused_naming_both(
    tmp_path: Path, first: list[str], second: list[str], short: str, long: str
) -> None:
    """Two variants one NVML name could both match would give no datasheet value at report time: refused at load,
    naming both variants and the words; words neither of which holds the other load."""
    import tomllib

    import tomli_w

    from bench.config import DEFAULT_PROFILES_DIR, load_profile_file
    from bench.errors import ConfigError

    data = tomllib.loads((DEFAULT_PROFILES_DIR / "h100.toml").read_text(encoding="utf-8"))
    data["hardware"]["datasheet"]["variants"][0]["name_words"] = first
    data["hardware"]["datasheet"]["variants"][1]["name_words"] = second
    path = tmp_path / "h100.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profile_file(path)
    message = " ".join(str(caught.value).split())
    assert str(path) in message and "hardware.datasheet: " in message
    assert "of variant 'H100 PCIe'" in message and "of variant 'H100 NVL'" in message
    assert f"every GPU name holding {long!r} also holds {short!r} as whole words" in message
    data["hardware"]["datasheet"]["variants"][0]["name_words"] = ["H100 PCIe"]
    data["hardware"]["datasheet"]["variants"][1]["name_words"] = ["NVL", "H100-NVL"]  # its own entries may overlap
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    assert len(load_profile_file(path).hardware.datasheet.variants) == 2


def test_the_a100_pcie_names_select_their_own_column_or_the_default() -> None:
    """Whole-word matching of the NVML names: "NVIDIA A100 80GB PCIe" holds "80GB PCIe"; "NVIDIA A100-PCIE-40GB" is
    the words NVIDIA A100 PCIE 40GB, which do not hold "80GB PCIe" (in that order): the 40 GB PCIe card, for which
    no column is cited, takes the profile's default, never the 80 GB card's."""
    from bench.config import load_profile

    profile = load_profile("a100").model_dump(mode="json")
    assert "A100 80GB PCIe variant" in datasheet_j_per_flop(profile, ["NVIDIA A100 80GB PCIe"]).label
    assert "the profile's default" in datasheet_j_per_flop(profile, ["NVIDIA A100-PCIE-40GB"]).label
    assert "the profile's default" in datasheet_j_per_flop(profile, ["NVIDIA A100-SXM4-40GB"]).label


def test_variants_that_share_words_or_a_name_are_refused(tmp_path: Path) -> None:
    import tomllib

    import tomli_w

    from bench.config import DEFAULT_PROFILES_DIR, load_profile_file
    from bench.errors import ConfigError

    data = tomllib.loads((DEFAULT_PROFILES_DIR / "h100.toml").read_text(encoding="utf-8"))
    data["hardware"]["datasheet"]["variants"][1]["name_words"] = ["pcie"]  # the H100 PCIe's words, in other case
    path = tmp_path / "h100.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"(?s)h100.toml.*hardware.datasheet: .*name_words 'PCIe' of variant 'H100 PCIe' and 'pcie'"
    ):
        load_profile_file(path)
    data["hardware"]["datasheet"]["variants"][1].update(name="H100 PCIe", name_words=["NVL"])
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"datasheet variants named more than once: \['H100 PCIe'\]"):
        load_profile_file(path)


def test_variants_leave_the_settings_hash_and_old_forms_as_they_were() -> None:
    """Variants are datasheet data: not hashed (a stored run of the profile resumes); a profile without them dumps
    as before (no ``variants`` key in its results), and a stored profile of before reads."""
    from bench.config import HardwareProfile, load_profile
    from bench.run.plan import hashed_profile, settings_sha256

    h100 = load_profile("h100").model_dump(mode="json")
    assert len(h100["hardware"]["datasheet"]["variants"]) == 2
    before = json_copy(h100)
    del before["hardware"]["datasheet"]["variants"]
    assert hashed_profile(h100) == hashed_profile(before)
    assert settings_sha256(h100, {"x": 1}) == settings_sha256(before, {"x": 1})
    old = HardwareProfile.model_validate(before)  # a results document's profile from before variants
    assert old.hardware.datasheet is not None and old.hardware.datasheet.variants == []
    assert "variants" not in old.model_dump(mode="json")["hardware"]["datasheet"]
    assert "variants" not in load_profile("b200").model_dump(mode="json")["hardware"]["datasheet"]


def json_copy(data: dict) -> dict:
    import json

    return json.loads(json.dumps(data))


def test_every_shipped_variant_is_a_column_of_its_profile_s_gpu() -> None:
    """A variant's power is within the board maximum the profile cites, its arithmetic the default's, and its words
    select an NVML name of the form factor it names, one the profile accepts (else it could never apply)."""
    from bench.config import gpu_model_matches, list_profiles, load_profile

    nvml = {"H100 PCIe": "NVIDIA H100 PCIe", "H100 NVL": "NVIDIA H100 NVL", "H200 NVL": "NVIDIA H200 NVL"}
    nvml["A100 80GB PCIe"] = "NVIDIA A100 80GB PCIe"
    shipped = {}
    for profile in list_profiles():
        hw = load_profile(profile).hardware
        for variant in hw.datasheet.variants if hw.datasheet else []:
            assert hw.gpu_max_power_w is not None and variant.power_w <= hw.gpu_max_power_w
            assert variant.dtype == hw.datasheet.dtype and variant.source
            name = nvml[variant.name]
            assert hw.accepts_gpu(name) and any(gpu_model_matches(w, name) for w in variant.name_words)
            shipped[variant.name] = profile
    assert shipped == {"H100 PCIe": "h100", "H100 NVL": "h100", "H200 NVL": "h200", "A100 80GB PCIe": "a100"}
