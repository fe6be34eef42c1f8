"""Serving mode ``scoring``: zero-shot classification by label likelihood in the HF backend, on a tiny model whose
right label is known by construction."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import ConfigError
from tests.tiny_models import build_tiny_llama

pytest.importorskip("transformers")

LABELS = ["neg", "pos"]
TEXTS = ["a great movie", "a bad film, boring plot", "wonderful acting", "the rock is destined to be a star", "x"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def _scorer(path: Path, **kwargs: object):
    from bench.backends.hf_pipeline import HFPipelineBackend

    backend = HFPipelineBackend(str(path), serving="scoring", **kwargs)
    backend.load()
    backend.fit([], [], LABELS)
    return backend


def _favour(backend: object, label: str) -> None:
    """Rewire the loaded model so that the tokens of ``label`` are the likeliest next tokens everywhere
    (``tests.tiny_models.favour_tokens``)."""
    from tests.tiny_models import favour_tokens

    favoured = set(backend._label_ids[LABELS.index(label)])  # type: ignore[attr-defined]
    others = {t for i, ids in enumerate(backend._label_ids) if LABELS[i] != label for t in ids}  # type: ignore[attr-defined]
    assert favoured - others, "the labels must differ in a token"
    favour_tokens(backend._pipe.model, favoured - others)  # type: ignore[attr-defined]


@pytest.mark.parametrize("label", LABELS)
def test_the_label_made_likeliest_wins_for_every_text_in_any_batch_size(tiny: Path, label: str) -> None:
    for batch_size in (1, 2, 16):
        backend = _scorer(tiny, batch_size=batch_size)
        _favour(backend, label)
        assert backend.predict(TEXTS) == [LABELS.index(label)] * len(TEXTS)
        assert backend.last_answers == [label] * len(TEXTS)
        usage = backend.usage()
        assert usage["requests"] == len(TEXTS) and usage["output_tokens"] == 0 and usage["input_tokens"] > 0
        stats = backend.serving_stats()
        assert stats["serving"] == "scoring" and sum(stats["call_sizes"]) == len(TEXTS)
        assert len(stats["call_s"]) == -(-len(TEXTS) // batch_size)  # one forward pass per batch
        assert backend.info()["decoding"] == "label-likelihood"


def test_scoring_never_answers_invalid_and_padding_does_not_change_the_answer(tiny: Path) -> None:
    one = _scorer(tiny, batch_size=1).predict(TEXTS)
    many = _scorer(tiny, batch_size=4).predict(TEXTS)
    assert one == many and all(p in (0, 1) for p in one)


def test_a_label_that_tokenizes_to_nothing_is_refused(tiny: Path) -> None:
    from bench.backends.hf_pipeline import HFPipelineBackend

    backend = HFPipelineBackend(str(tiny), serving="scoring")
    backend.load()
    with pytest.raises(ConfigError, match=r"serving=scoring: the label\(s\) \[''\] tokenize to no tokens"):
        backend.fit([], [], ["pos", ""])


def test_the_vllm_backend_refuses_such_a_label_with_only_the_tokenizer_loaded(tiny: Path) -> None:
    """The run's preflight (``check_context``) loads only the tokenizer and fits the labels: no engine, no weights."""
    from bench.backends.vllm_backend import VllmBackend

    backend = VllmBackend(str(tiny), serving="scoring")
    backend.load_tokenizer()
    with pytest.raises(ConfigError, match=r"serving=scoring: the label\(s\) \[''\] tokenize to no tokens"):
        backend.fit([], [], ["pos", ""])
    assert backend._llm is None
    backend.fit([], [], LABELS)  # scorable labels: their tokens are ready for the engine
    assert all(backend._label_ids) and backend._score_prefix


def test_best_label_is_the_highest_mean_log_probability_first_on_ties() -> None:
    from bench.backends.zero_shot import best_label

    assert best_label([-3.0, -2.5], [3, 1]) == 0  # -1.0 per token beats -2.5
    assert best_label([-2.0, -1.0], [2, 1]) == 0  # a tie: the first label, as torch.argmax
    with pytest.raises(ValueError, match="2 scores for 1 labels"):
        best_label([-1.0, -2.0], [1])
