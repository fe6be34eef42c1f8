"""The ``vllm`` backend end to end on vLLM's CPU build, with a tiny random Llama the test builds itself.

Runs in the vLLM venv: ``.ci/vllm-setup.sh && BENCH_REQUIRE_VLLM=1 .venv-vllm/bin/python -m pytest tests/vllm``.
In the main venv (no vLLM) the engine tests skip and say why; with ``BENCH_REQUIRE_VLLM=1`` (CI's vLLM job) a missing
or broken vLLM fails them instead, so CI cannot pass by skipping. The tests without an engine (settings, fast
failures) run everywhere.

A random model answers garbage, so unconstrained predictions are mostly -1; what is checked there is the plumbing
(lengths, types, token counts, both serving modes). With ``constrained=True`` every answer must be one of the label
completions and parse to a valid label: that is the real check that vLLM's structured outputs are wired in.

vLLM starts its engine core and a worker as spawned processes; under ``python -m pytest`` the main module is pytest's,
which is import-safe, so the engine is created in-process. One engine per parameter (unconstrained, constrained),
module-scoped: pytest closes the first before it starts the second, which also checks that a closed engine lets the
next one start in the same process (the runner loads models one after another).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bench.backends import Backend, create_backend
from bench.backends.vllm_backend import (
    DEFAULT_CPU_KV_CACHE_GB,
    DEFAULT_MAX_MODEL_LEN,
    VllmBackend,
    model_max_len,
)
from bench.catalog.models import LLM_BACKENDS, ModelSpec
from bench.errors import ConfigError

LABELS = ["negative", "positive", "Sci/Tech"]
TEXTS = [
    "a great movie with wonderful acting",
    "boring plot, a bad film",
    "the rock is destined to be a star",
    "Stocks fell as the central bank raised rates.",
    "",  # an empty text still gets a prompt and an answer
    "Ein sehr langweiliger Film. " * 20,
]


@pytest.fixture(scope="module")
def vllm_module() -> ModuleType:
    """vLLM, or a skip (main venv) / failure (BENCH_REQUIRE_VLLM=1) that says why it is unavailable."""
    try:
        import vllm
    except Exception as exc:  # ImportError, or a broken install (e.g. torchvision built for another torch)
        reason = (
            f"vllm is not importable ({type(exc).__name__}: {exc}); these tests run in the vLLM venv: "
            ".ci/vllm-setup.sh && .venv-vllm/bin/python -m pytest tests/vllm"
        )
        if os.environ.get("BENCH_REQUIRE_VLLM") == "1":
            pytest.fail(f"BENCH_REQUIRE_VLLM=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return vllm


@pytest.fixture(scope="module")
def tiny_model(vllm_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama (head_dim 64, as vLLM's CPU attention needs) with a locally trained BPE tokenizer."""
    from tests.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module", params=[False, True], ids=["free", "constrained"])
def engine(request: pytest.FixtureRequest, tiny_model: Path) -> Iterator[VllmBackend]:
    """A loaded backend made the way the runner makes one: a catalog spec through ``create_backend``."""
    spec = ModelSpec("tiny-llama", "", "llm", LLM_BACKENDS["vllm"], {"model": str(tiny_model)})
    # max_new_tokens 64: a random model under the choice grammar may spell a completion character by character
    # (~50 tokens for the longest label here); a cut-off completion would not parse.
    backend = create_backend(spec, device="cpu", seed=0, constrained=request.param, max_new_tokens=64, batch_size=4)
    assert isinstance(backend, VllmBackend) and isinstance(backend, Backend)
    started = time.perf_counter()
    backend.load()
    print(f"vLLM engine started in {time.perf_counter() - started:.1f} s")
    backend.fit(["unused"], [0], LABELS)
    yield backend
    backend.close()
    backend.close()  # idempotent


# --- end to end through the protocol -----------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_in_both_serving_modes(engine: VllmBackend) -> None:
    usage: dict[str, dict[str, int]] = {}
    for mode in ("batched", "sequential"):
        engine.serving = mode
        try:
            predictions = engine.predict(TEXTS)
        finally:
            engine.serving = "batched"
        assert len(predictions) == len(TEXTS) == len(engine.last_answers)
        assert all(isinstance(p, int) and -1 <= p < len(LABELS) for p in predictions), predictions
        usage[mode] = engine.usage()
        assert usage[mode]["requests"] == len(TEXTS)
        assert usage[mode]["input_tokens"] > 0 and usage[mode]["output_tokens"] > 0
        assert usage[mode]["output_tokens"] <= len(TEXTS) * engine.max_new_tokens
        if engine.constrained:
            # The real check of constrained decoding: a random model still answers only label completions.
            assert all(answer in engine.label_completions() for answer in engine.last_answers), engine.last_answers
            assert -1 not in predictions, f"invalid answers under constrained decoding: {engine.last_answers}"
    # The same chat template renders the same prompts whichever way they are sent.
    assert usage["batched"]["input_tokens"] == usage["sequential"]["input_tokens"]
    # vLLM's automatic prefix caching (on by default in V1): the prompts' shared beginning read from its cache,
    # counted per answer (RequestOutput.num_cached_tokens), never more than the prompts' tokens
    for mode in usage:
        assert 0 <= usage[mode].get("cached_tokens", 0) <= usage[mode]["input_tokens"]
    if engine.info()["enable_prefix_caching"]:
        assert usage["sequential"].get("cached_tokens", 0) > 0  # the later requests found the first one's blocks


@pytest.mark.slow
def test_info_records_engine_and_versions(engine: VllmBackend, tiny_model: Path) -> None:
    info = engine.info()
    assert info["backend"] == "vllm" and info["decoding"] == "greedy"
    assert info["constrained"] is engine.constrained
    assert info["vllm"] and info["torch"] and info["transformers"]
    assert info["pin"]["source"] == "local" and info["pin"]["path"] == str(tiny_model.resolve())
    settings = info["engine"]
    assert isinstance(info["enable_prefix_caching"], bool)  # what the running engine has, read from its config
    assert info["prefix_cache"] is None and "enable_prefix_caching" not in settings  # not asked: vLLM's default
    assert settings["enforce_eager"] is True  # CPU: no torch.compile
    assert settings["max_model_len"] == 2048  # the tiny model's own maximum caps the default
    assert settings["tensor_parallel_size"] == 1 and settings["pipeline_parallel_size"] == 1
    assert settings["max_num_seqs"] == engine.batch_size == 4
    if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        assert settings["kv_cache_memory_bytes"] == int(DEFAULT_CPU_KV_CACHE_GB * 2**30)


# --- scoring: label likelihood through prompt log-probabilities ------------------------------------------------------

SCORED_LABELS = ["neg", "pos"]


@pytest.fixture(scope="module", params=SCORED_LABELS)
def scoring_engine(
    request: pytest.FixtureRequest, vllm_module: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VllmBackend, str]]:
    """A loaded scoring backend on a tiny Llama whose weights make ``request.param``'s tokens the likeliest everywhere
    (``tests.tiny_models.favour_tokens``): the right label is known by construction."""
    from tests.tiny_models import build_tiny_llama_favouring

    folder = build_tiny_llama_favouring(tmp_path_factory.mktemp("favour"), SCORED_LABELS, request.param)
    spec = ModelSpec("tiny-llama", "", "llm", LLM_BACKENDS["vllm"], {"model": str(folder)})
    backend = create_backend(spec, device="cpu", seed=0, serving="scoring", batch_size=4)
    assert isinstance(backend, VllmBackend)
    backend.load()
    backend.fit(["unused"], [0], SCORED_LABELS)
    yield backend, request.param
    backend.close()


@pytest.mark.slow
def test_scoring_picks_the_label_made_likeliest(scoring_engine: tuple[VllmBackend, str]) -> None:
    engine, label = scoring_engine
    assert engine.predict(TEXTS) == [SCORED_LABELS.index(label)] * len(TEXTS)
    assert engine.last_answers == [label] * len(TEXTS)
    usage = engine.usage()
    prompts = [engine._scoring_prompt_ids(c) for c in map(_conversation, TEXTS)]
    label_tokens = sum(len(ids) for ids in engine._continuation_ids)
    # one request per (text, label), each prefilled in full: its prompt and the label's answer tokens (label, end
    # marker)
    assert usage["requests"] == len(TEXTS)
    assert usage["input_tokens"] == sum(len(p) * len(SCORED_LABELS) + label_tokens for p in prompts)
    assert usage["output_tokens"] == len(TEXTS) * len(SCORED_LABELS)  # max_tokens=1: the least vLLM decodes
    stats = engine.serving_stats()
    assert stats["serving"] == "scoring" and stats["call_sizes"] == [len(TEXTS)]  # one generate call
    info = engine.info()
    assert info["decoding"] == "label-likelihood" and info["engine"]["enable_prefix_caching"] is True
    assert engine.predict(TEXTS) == [SCORED_LABELS.index(label)] * len(TEXTS)  # a second pass: the same answers


@pytest.mark.slow
def test_scoring_ranks_whole_answers_and_agrees_with_constrained_generation(
    vllm_module: ModuleType, tmp_path: Path
) -> None:
    """Issue 24, 2 on vLLM: the model of tests/unit/test_scoring.py, whose right multi-word labels are known by
    construction (the mean per token picked "somewhat bad but watchable" for every "awful" text); vLLM scores by the
    same rule as the HF backend, and its constrained generation (structured outputs) agrees."""
    from tests.tiny_models import build_cue_llama
    from tests.unit.test_scoring import CUE_ANSWERS, CUE_LABELS, RIGHT, cue_texts

    folder = build_cue_llama(tmp_path / "cue", CUE_LABELS, CUE_ANSWERS)
    texts, cues = cue_texts(4)
    right = [CUE_LABELS.index(RIGHT[cue]) for cue in cues]
    spec = ModelSpec("tiny-llama", "", "llm", LLM_BACKENDS["vllm"], {"model": str(folder)})
    backend = create_backend(spec, device="cpu", seed=0, serving="scoring", batch_size=8)
    assert isinstance(backend, VllmBackend)
    backend.load()
    try:
        backend.fit([], [], CUE_LABELS)
        scored = backend.predict(texts)
        assert scored == right and backend.info()["scoring_rule"]["rule"] == "sum-logprob-label-and-end-marker"
        backend.serving, backend.constrained = "batched", True
        generated = backend.predict(texts)
    finally:
        backend.close()
    agreement = sum(s == g for s, g in zip(scored, generated, strict=True)) / len(texts)
    print(f"vLLM scoring vs constrained generation: agreement {agreement:.3f} on {len(texts)} texts")
    assert generated == right and agreement == 1.0


def _conversation(text: str) -> list[dict[str, str]]:
    from bench.prompts import build_messages

    return build_messages(text, SCORED_LABELS, "en")


def test_wrong_device_is_refused_before_the_engine_starts(vllm_module: ModuleType, tmp_path: Path) -> None:
    # vllm-cpu on a profile that asks for CUDA would run and measure the wrong device.
    backend = VllmBackend(str(tmp_path), device="cuda")
    with pytest.raises(ConfigError, match="runs on 'cpu'"):
        backend.load()
    backend.close()


# --- without an engine: settings and fast failures (run in every venv) ------------------------------------------


def test_predict_needs_load_and_fit(tmp_path: Path) -> None:
    backend = VllmBackend(str(tmp_path))
    with pytest.raises(RuntimeError, match="fit"):
        backend.predict(["x"])
    backend.fit([], [], LABELS)
    with pytest.raises(RuntimeError, match="load"):
        backend.predict(["x"])
    backend.close()  # never loaded: nothing to free, no error


def test_hub_id_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    backend = VllmBackend("meta-llama/Llama-3.1-8B-Instruct", revision="0e9e39f249a16976918f6564b8830bc894c89659")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"not in the local Hugging Face cache and HF_HUB_OFFLINE=1"):
        backend.load()
    assert time.perf_counter() - started < 10, "an offline Hub id must fail at once, not wait for the network"


def test_hub_id_needs_a_revision() -> None:
    with pytest.raises(ConfigError, match="no pinned revision"):
        VllmBackend("meta-llama/Llama-3.1-8B-Instruct").load()


def _model_folder(path: Path, **config: Any) -> Path:
    import json

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_model_max_len_reads_plain_and_nested_configs(tmp_path: Path) -> None:
    assert model_max_len(_model_folder(tmp_path / "a", max_position_embeddings=131072)) == 131072
    assert model_max_len(_model_folder(tmp_path / "b", text_config={"max_position_embeddings": 4096})) == 4096
    assert model_max_len(_model_folder(tmp_path / "c", hidden_size=8)) is None
    assert model_max_len(tmp_path / "missing") is None


def test_engine_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    long = str(_model_folder(tmp_path / "long", max_position_embeddings=131072))
    short = str(_model_folder(tmp_path / "short", max_position_embeddings=2048))

    cpu = VllmBackend(long, seed=7, dtype="bfloat16")._resolve_engine_args(long)
    assert cpu["enforce_eager"] is True and cpu["revision"] is None and cpu["trust_remote_code"] is False
    assert cpu["max_model_len"] == DEFAULT_MAX_MODEL_LEN  # not the model's 128k
    assert cpu["kv_cache_memory_bytes"] == int(DEFAULT_CPU_KV_CACHE_GB * 2**30)
    assert (cpu["seed"], cpu["dtype"], cpu["max_num_seqs"]) == (7, "bfloat16", 16)

    # A reasoning budget raises the context; the model's own maximum caps a default, never an explicit value.
    assert VllmBackend(long, max_new_tokens=6000)._resolve_engine_args(long)["max_model_len"] == 10096
    assert VllmBackend(short)._resolve_engine_args(short)["max_model_len"] == 2048
    assert VllmBackend(short, max_model_len=4096)._resolve_engine_args(short)["max_model_len"] == 4096

    gpu = VllmBackend(long, device="cuda", gpus=2, pipeline_parallel_size=2)._resolve_engine_args(long)
    assert gpu["enforce_eager"] is False and "kv_cache_memory_bytes" not in gpu
    assert (gpu["tensor_parallel_size"], gpu["pipeline_parallel_size"]) == (2, 2)
    assert VllmBackend(long, device="cuda", kv_cache_gb=8)._resolve_engine_args(long)["kv_cache_memory_bytes"] == (
        8 * 2**30
    )
    assert VllmBackend(long, enforce_eager=False)._resolve_engine_args(long)["enforce_eager"] is False

    # The serving key prefix_cache sets vLLM's automatic prefix caching; unset, scoring asks for it, others leave it.
    assert VllmBackend(long, prefix_cache=False)._resolve_engine_args(long)["enable_prefix_caching"] is False
    assert VllmBackend(long, prefix_cache=True)._resolve_engine_args(long)["enable_prefix_caching"] is True
    assert (
        VllmBackend(long, serving="scoring", prefix_cache=False)._resolve_engine_args(long)["enable_prefix_caching"]
        is False
    )
    assert VllmBackend(long, serving="scoring")._resolve_engine_args(long)["enable_prefix_caching"] is True
    assert "enable_prefix_caching" not in VllmBackend(long)._resolve_engine_args(long)
    assert VllmBackend(long, prefix_cache=True).prefix_caching_on() is None  # not loaded, nothing asked yet

    # vLLM's own CPU setting wins over the kit's default.
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")
    assert "kv_cache_memory_bytes" not in VllmBackend(long)._resolve_engine_args(long)


@pytest.mark.parametrize("bad", [{"max_model_len": 0}, {"kv_cache_gb": 0}, {"serving": "streaming"}, {"gpus": 0}])
def test_bad_settings_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        VllmBackend("some/model", **bad)


def test_unknown_parameter_is_reported_by_create_backend() -> None:
    spec = ModelSpec("x", "", "llm", LLM_BACKENDS["vllm"], {"model": "some/model", "temprature": 0.5})
    with pytest.raises((ConfigError, TypeError), match="temprature"):
        create_backend(spec)
