"""The distance from the limit (issue 27, item 3): an LLM cell's arithmetic (2 x parameters x computed tokens) on a
model whose size the test computes from its configuration, the MoE entries' active parameters, the J-per-FLOP
references (calibration GEMM, datasheet peak) and the limit columns of the report and of ``bench compare``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.arithmetic import (
    METHOD,
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


def _llm_document() -> ResultDocument:
    """A CPU run with one LLM (2 repetitions, 4 texts each) whose arithmetic is known, and one traditional model."""
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
