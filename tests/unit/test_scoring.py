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

    answers = backend._continuation_ids  # type: ignore[attr-defined]
    favoured = set(answers[LABELS.index(label)])
    others = {t for i, ids in enumerate(answers) if LABELS[i] != label for t in ids}
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
    assert all(backend._continuation_ids) and backend._score_prefix


def test_best_label_is_the_highest_summed_log_probability_first_on_ties() -> None:
    from bench.backends.zero_shot import best_label

    assert best_label([-3.0, -2.5]) == 1  # the sum: -2.5 wins, however many tokens each answer has
    assert best_label([-1.0, -1.0]) == 0  # a tie: the first label, as torch.argmax
    with pytest.raises(ValueError, match="no label scores"):
        best_label([])
    with pytest.raises(ValueError, match="not a number"):
        best_label([-1.0, float("nan")])


# --- issue 24, 2: the answer's log-likelihood, label and end marker, on a model whose right labels are known -------

#: Multi-word labels; "good" is a prefix of "good overall".
CUE_LABELS = ["bad", "somewhat bad but watchable", "good", "good overall"]
#: The model's answer distribution per cue word in the text (``tests.tiny_models.build_cue_llama``). "awful": the
#: right answer is "bad", but "somewhat bad but watchable"'s later tokens are certain, so the mean per token (the
#: old rule) picks it. "lovely": "good overall"; scoring "good" without the end marker after it would pick "good".
CUE_ANSWERS = {
    "awful": {"bad": 0.6, "somewhat bad but watchable": 0.4},
    "dull": {"somewhat bad but watchable": 0.9, "bad": 0.1},
    "lovely": {"good overall": 0.7, "good": 0.3},
    "superb": {"good": 0.8, "good overall": 0.2},
}
RIGHT = {cue: max(answers, key=answers.__getitem__) for cue, answers in CUE_ANSWERS.items()}
FILLER = ["the", "movie", "film", "was", "plot", "acting", "story", "really", "quite", "today", "and", "it"]


def cue_texts(per_cue: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """``per_cue`` texts per cue word (one to eight filler words around it); and each text's cue."""
    import random

    rng = random.Random(seed)
    texts, cues = [], []
    for cue in CUE_ANSWERS:
        for _ in range(per_cue):
            words = rng.sample(FILLER, rng.randint(1, 8))
            words.insert(rng.randint(0, len(words)), cue)
            texts.append(" ".join(words))
            cues.append(cue)
    return texts, cues


@pytest.fixture(scope="module")
def cue_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import build_cue_llama

    return build_cue_llama(tmp_path_factory.mktemp("cue") / "model", CUE_LABELS, CUE_ANSWERS)


def _answer_logprobs(backend: object, text: str) -> list[list[float]]:
    """Per label, the log-probability of each of its answer tokens after the prompt, by one plain forward pass per
    label (no cache, no padding): the reference the backend's batched, cached scoring must agree with."""
    import torch

    from bench.prompts import build_messages

    prompt = backend._scoring_prompt_ids(build_messages(text, CUE_LABELS))  # type: ignore[attr-defined]
    out = []
    for answer in backend._continuation_ids:  # type: ignore[attr-defined]
        ids = torch.tensor([prompt + answer])
        with torch.inference_mode():
            logits = backend._pipe.model(input_ids=ids).logits[0].float()  # type: ignore[attr-defined]
        logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
        out.append([float(logprobs[k, token]) for k, token in enumerate(answer)])
    return out


def test_scoring_picks_the_likeliest_answer_and_agrees_with_constrained_generation(cue_model: Path) -> None:
    """Before (mean log-probability per label token): every "awful" text scored "somewhat bad but watchable" (0.75
    accuracy and agreement with constrained generation here); the answer's summed log-likelihood gets every text."""
    from bench.backends.hf_pipeline import HFPipelineBackend

    texts, cues = cue_texts(6)
    right = [CUE_LABELS.index(RIGHT[cue]) for cue in cues]
    scorer = HFPipelineBackend(str(cue_model), serving="scoring", batch_size=8)
    scorer.load()
    scorer.fit([], [], CUE_LABELS)
    scored = scorer.predict(texts)
    assert scored == right
    from bench.backends.zero_shot import SCORING_RULE

    assert scorer.info()["scoring_rule"]["rule"] == SCORING_RULE == "sum-logprob-label-and-end-marker"
    assert "lm-evaluation-harness acc" in scorer.info()["scoring_rule"]["source"]

    # the backend's cached, padded batch agrees with plain forward passes; and the other rules would not
    label_tokens = [len(scorer._tokenizer(label, add_special_tokens=False)["input_ids"]) for label in CUE_LABELS]
    assert label_tokens[1] > label_tokens[0]  # the long label's tokens after its first are near-certain
    for text, cue in zip(texts, cues, strict=True):
        per_token = _answer_logprobs(scorer, text)
        sums = [sum(lp) for lp in per_token]
        assert sums.index(max(sums)) == CUE_LABELS.index(RIGHT[cue])
        means = [sum(lp[:n]) / n for lp, n in zip(per_token, label_tokens, strict=True)]  # the old rule
        label_only = [sum(lp[:n]) for lp, n in zip(per_token, label_tokens, strict=True)]  # no end marker
        if cue == "awful":
            assert CUE_LABELS[means.index(max(means))] == "somewhat bad but watchable"
        if cue == "lovely":
            assert CUE_LABELS[label_only.index(max(label_only))] == "good"

    generator = HFPipelineBackend(str(cue_model), serving="batched", constrained=True, batch_size=8)
    generator.load()
    generator.fit([], [], CUE_LABELS)
    generated = generator.predict(texts)
    agreement = sum(s == g for s, g in zip(scored, generated, strict=True)) / len(texts)
    print(f"scoring vs constrained generation: agreement {agreement:.3f} on {len(texts)} texts")
    assert generated == right and agreement == 1.0
