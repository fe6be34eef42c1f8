"""What every zero-shot LLM backend shares: the prompt, the answer parser, serving modes and token accounting.

A concrete backend (``hf_pipeline``, ``vllm``) implements only ``load``, ``_generate`` and ``close``; this base turns
texts into the paper's chat prompts, sends them one at a time (``sequential``, as the paper's runtimes imply) or in
batches (``batched``), or scores each label's answer by its log-likelihood instead of generating (``scoring``, by
``SCORING_RULE``: the one rule both backends use); it parses the answers, times each engine call
(``serving_stats``), and counts input and output tokens so energy per token can be reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.backends.base import device_synchronize
from bench.errors import ConfigError
from bench.prompts import build_messages, parse_answer, prompt_info

SERVING_MODES = ("sequential", "batched", "scoring")
QUANTIZATIONS = ("none", "int8", "fp8", "awq", "gptq", "q8_0")
#: GGUF types llama.cpp converts a GGUF file to (``bench.catalog.resolve.GGUF_TARGETS``): the llamacpp backend only.
GGUF_QUANTIZATIONS = ("q8_0",)
#: Quantizations that are a property of the checkpoint (its config.json's ``quantization_config.quant_method``), not
#: something a backend does to float weights: vLLM runs them, the HF pipeline backend does not.
PREQUANTIZED = ("awq", "gptq")

# config.json keys that hold a model's maximum context length, in the order transformers' models use them.
_MAX_LEN_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_seq_len")


def checkpoint_quant_method(path: str | Path) -> str | None:
    """The ``quant_method`` of the ``quantization_config`` in a model folder's ``config.json`` (lower case), or None
    when it has none. Raises ConfigError when the folder has no config.json or it is not a JSON object."""
    config_file = Path(path) / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{config_file}: cannot read the model's config ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{config_file}: not a JSON object")
    quant = config.get("quantization_config")
    method = quant.get("quant_method") if isinstance(quant, dict) else None
    return str(method).lower() if method else None


def check_prequantized(path: str | Path, model: str, quantization: str) -> None:
    """``quantization=awq|gptq`` names what the checkpoint at ``path`` is: its config.json must carry a
    ``quantization_config`` whose ``quant_method`` is ``quantization``. Does nothing for other quantizations.

    Raises ConfigError naming the model, what its config says and what is allowed for it instead, or naming the
    model and its config.json when that cannot be read."""
    if quantization not in PREQUANTIZED:
        return
    try:
        method = checkpoint_quant_method(path)
    except ConfigError as exc:
        raise ConfigError(
            f"model {model!r}: quantization={quantization} is checked against the checkpoint's config.json, which "
            f"a model folder must hold: {exc}"
        ) from None
    if method == quantization:
        return
    says = f"quant_method {method!r}" if method else "no quantization_config"
    allowed = f"quantization={method}" if method in PREQUANTIZED else "none | fp8 (vLLM on a GPU with FP8 support)"
    raise ConfigError(
        f"model {model!r}: quantization={quantization} runs a checkpoint quantized with {quantization.upper()}, but "
        f"its config.json ({Path(path) / 'config.json'}) has {says}; allowed for this model: {allowed}. A "
        f"pre-quantized checkpoint is a model of its own: pin it (a catalog entry, or hf:ORG/NAME@REV)"
    )


#: How ``scoring`` serving ranks the labels, recorded in every LLM's info (``ZeroShotBackend.info``): the
#: log-likelihood of the answer as generation writes it, i.e. the sum of the natural-log probabilities of the tokens
#: of ``label_completions()`` after the category marker: the label's tokens and the end marker that follows it
#: (``\n\n[[ ## completed ## ]]``), so a label that is a prefix of another cannot win by stopping early.
#: lm-evaluation-harness's ``acc`` for multiple-choice tasks: ``pred = np.argmax(lls)`` over the choices' summed
#: continuation log-likelihoods, unnormalised (EleutherAI/lm-evaluation-harness, ``lm_eval/api/task.py``,
#: ``ConfigurableTask.process_results`` for ``output_type="multiple_choice"``; its ``acc_norm`` divides by the
#: continuation's length in characters instead). The mean log-probability per token, which the kit used before
#: (issue 24), favours long labels whose later tokens are nearly certain; it is not kept.
SCORING_RULE = "sum-logprob-label-and-end-marker"
SCORING_RULE_INFO = {
    "rule": SCORING_RULE,
    "what": "sum of the log-probabilities of the answer's tokens after the category marker: the label and the "
    "end marker '[[ ## completed ## ]]' after it (no length normalisation)",
    "source": "lm-evaluation-harness acc (multiple_choice: sum of the continuation's log-likelihoods)",
}


def best_label(total_logprobs: Sequence[float]) -> int:
    """The index of the label whose answer has the highest log-likelihood: ``total_logprobs[j]`` is the sum of the
    natural-log probabilities of label ``j``'s answer tokens (label and end marker, ``SCORING_RULE``); the first such
    label on a tie, as ``torch.argmax`` picks. Raises ValueError on an empty input or a score that is not a number
    (NaN: a model that returned no probability)."""
    if not total_logprobs:
        raise ValueError("best_label: no label scores")
    if any(score != score for score in total_logprobs):
        raise ValueError(f"best_label: a score is not a number: {list(total_logprobs)}")
    return list(total_logprobs).index(max(total_logprobs))


def model_max_len(path: str | Path) -> int | None:
    """The maximum context length (tokens) a model folder's ``config.json`` declares (None when it declares none)."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    # Multimodal and some newer configs nest the language model's settings.
    for section in (config, config.get("text_config") or {}, config.get("llm_config") or {}):
        for key in _MAX_LEN_KEYS:
            value = section.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


@dataclass(frozen=True)
class Truncation:
    """One text cut to fit the context window: its position in the texts given, and its prompt's length in tokens
    before and after the cut (the answer's ``max_new_tokens`` come on top of ``kept_tokens``)."""

    index: int
    prompt_tokens: int
    kept_tokens: int


@dataclass(frozen=True)
class Generation:
    """One model answer: the generated text and the token counts of prompt and answer."""

    text: str
    input_tokens: int
    output_tokens: int
    #: of ``input_tokens``, those read from a reused KV cache (a shared prompt prefix) instead of computed
    cached_tokens: int = 0


class ZeroShotBackend:
    """Base of the LLM backends (not registered itself). Subclasses set ``name`` and implement ``_generate``."""

    name = "zero-shot"
    #: why this backend cannot batch texts by length (``length_sorted``), or None where it can
    no_length_sort: str | None = None

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        device: str = "cpu",
        seed: int = 0,
        serving: str = "batched",
        batch_size: int = 16,
        max_new_tokens: int = 64,
        constrained: bool = False,
        dtype: str = "auto",
        gpus: int = 1,
        pipeline_parallel_size: int = 1,
        params_b: float | None = None,
        reasoning: bool = False,
        truncate: bool = False,
        quantization: str = "none",
        prefix_cache: bool | None = None,
        length_sorted: bool = False,
        active_params_b: float | None = None,
        active_params_source: str | None = None,
    ) -> None:
        if serving not in SERVING_MODES:
            raise ConfigError(f"serving={serving!r}: expected one of {', '.join(SERVING_MODES)}")
        if quantization not in QUANTIZATIONS:
            raise ConfigError(f"quantization={quantization!r}: expected one of {', '.join(QUANTIZATIONS)}")
        if length_sorted and (serving == "sequential" or self.no_length_sort):
            raise ConfigError(
                f"model {model!r}: length_sorted=true orders a pass's texts into batches by token count, but "
                + (self.no_length_sort or "sequential serving has no batches")
                + "; it is run by the hf_pipeline backend with serving=batched|scoring (allowed here: false)"
            )
        if min(max_new_tokens, batch_size, gpus, pipeline_parallel_size) < 1:
            raise ConfigError("max_new_tokens, batch_size, gpus and pipeline_parallel_size must be >= 1")
        self.model = model
        self.revision = revision
        self.device = device
        self.seed = seed
        self.serving = serving
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.constrained = constrained
        self.dtype = dtype
        self.gpus = gpus
        self.pipeline_parallel_size = pipeline_parallel_size
        self.params_b = params_b  # catalog metadata, recorded (the runner sizes GPUs and token budgets from it)
        self.reasoning = reasoning
        self.truncate = truncate
        self.quantization = quantization
        #: the ``prefix_cache`` serving key: True reuses the prompt's shared beginning (``text_prefix_ids``) for every
        #: text, False computes every prompt whole; None: the backend's default (HF: False; vLLM: the engine's own)
        self.prefix_cache = prefix_cache
        #: the ``length_sorted`` serving key: batches of texts of about one token count (``predict``)
        self.length_sorted = length_sorted
        #: mixture-of-experts models: the catalog's billions of parameters per token and where that number is from
        self.active_params_b = active_params_b
        self.active_params_source = active_params_source
        #: parameters of the loaded weights (a backend that can count them sets it, before any quantization)
        self.n_params: int | None = None
        #: seconds of each engine call of the last pass (a request in sequential serving, a batch otherwise)
        self.call_s: list[float] = []
        self.call_sizes: list[int] = []
        self.label_names: list[str] = []
        self.language = "en"
        self.last_answers: list[str] = []
        self._usage = {"requests": 0, "input_tokens": 0, "output_tokens": 0}
        self._tokenizer: Any = None
        self._model_path: str | None = None
        self._pin: dict[str, Any] = {}
        # (text, label names, language) -> (text cut to fit, prompt tokens, kept tokens): the prompt depends on all 3
        self._fitted: dict[tuple[str, tuple[str, ...], str], tuple[str, int, int]] = {}
        self._truncations: list[Truncation] = []
        #: ``scoring``: the answer's tokens every label shares (the category marker) and, per label, the tokens that
        #: follow them in its answer: the label's and the end marker's (``_prepare_scoring``)
        self._score_prefix: list[int] = []
        self._continuation_ids: list[list[int]] = []

    # --- protocol -------------------------------------------------------------------------------------------------

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Zero-shot: nothing is trained; remember the label set and the prompt language."""
        if not label_names:
            raise ConfigError("a zero-shot model needs the label names of the data set")
        self.label_names = list(label_names)
        self.language = language
        if self.serving == "scoring" and self._tokenizer is not None:
            self._prepare_scoring()

    def _prepare_scoring(self) -> None:
        """``scoring``: tokenize every answer constrained generation allows (``label_completions()``: category marker,
        label, end marker) as one text, the way generation writes it; the tokens all answers begin with are the
        shared prefix (``_score_prefix``, read after the prompt), the rest of each answer is what its label is scored
        on (``_continuation_ids``: the label's tokens and the end marker's). Both backends score these same token
        sequences by ``SCORING_RULE``.

        Raises ConfigError naming the labels that tokenize to no tokens (nothing to score), before any weights load
        when called from the run's preflight (only the tokenizer is loaded there)."""
        empty = [n for n in self.label_names if not self._tokenizer(n, add_special_tokens=False)["input_ids"]]
        if empty:
            raise ConfigError(
                f"model {self.model!r}, serving=scoring: the label(s) {empty} tokenize to no tokens, so they "
                "cannot be scored; rename them (--label-names) or use serving=sequential|batched"
            )
        answers = [self._tokenizer(c, add_special_tokens=False)["input_ids"] for c in self.label_completions()]
        shared = 0  # the longest prefix of tokens every answer has, leaving every label at least one token of its own
        while shared < min(len(a) for a in answers) - 1 and len({a[shared] for a in answers}) == 1:
            shared += 1
        self._score_prefix = list(answers[0][:shared])
        self._continuation_ids = [list(a[shared:]) for a in answers]

    def _scoring_prompt_ids(self, conversation: list[dict[str, str]]) -> list[int]:
        """The tokens every label of ``conversation`` is scored after: its chat prompt and the category marker."""
        return self._prompt_ids(conversation) + self._score_prefix

    def predict(self, texts: Sequence[str]) -> list[int]:
        """Prompt, generate (greedy), parse. An answer matching no label is -1 (wrong, counted as invalid)."""
        if not self.label_names:
            raise RuntimeError("fit() must be called before predict(): the label set is unknown")
        texts, self._truncations = self._fit_to_context(texts)
        if self.length_sorted:  # batches of like token counts, answers put back in the texts' order
            order = sorted(range(len(texts)), key=lambda i: len(self._tokenizer(texts[i])["input_ids"]))
            predictions = self._predict_in_order([texts[i] for i in order])
            back = sorted(range(len(order)), key=order.__getitem__)
            self.last_answers = [self.last_answers[k] for k in back]
            return [predictions[k] for k in back]
        return self._predict_in_order(texts)

    def _predict_in_order(self, texts: Sequence[str]) -> list[int]:
        conversations = [build_messages(text, self.label_names, self.language) for text in texts]
        self._start_pass()
        if self.serving == "scoring":
            return self._predict_scored(conversations)
        calls = [[c] for c in conversations] if self.serving == "sequential" else self._batches(conversations)
        generations = []
        self.call_s, self.call_sizes = [], []
        for call in calls:
            t0 = time.perf_counter()
            generations += self._generate(call)
            self.call_s.append(time.perf_counter() - t0)
            self.call_sizes.append(len(call))
        if len(generations) != len(texts):
            raise RuntimeError(f"{self.name}: {len(generations)} answers for {len(texts)} prompts")
        self._usage = {
            "requests": len(generations),
            "input_tokens": sum(g.input_tokens for g in generations),
            "output_tokens": sum(g.output_tokens for g in generations),
        }
        cached = sum(g.cached_tokens for g in generations)
        if cached or self.prefix_cache:
            self._usage["cached_tokens"] = cached
        self.last_answers = [g.text for g in generations]
        return [parse_answer(g.text, self.label_names) for g in generations]

    # --- the context window ---------------------------------------------------------------------------------------

    def load_tokenizer(self) -> None:
        """Resolve the model (a local folder, the Hub cache, the SmolLM2 package) and load only its tokenizer: enough
        to count prompt tokens before any weights are loaded. ``load`` reuses it. Raises ConfigError as ``load``."""
        if self._tokenizer is not None:
            return
        import transformers

        from bench.catalog.resolve import resolve_model

        if self._model_path is None:  # a backend may have resolved it already
            self._model_path, self._pin = resolve_model(self.model, self.revision)
        path = self._model_path
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        if not tokenizer.chat_template:
            raise ConfigError(f"model {self.model!r}: its tokenizer has no chat template; the prompt needs one")
        self._tokenizer = tokenizer

    def context_window(self) -> int | None:
        """The most tokens (prompt + answer) one request may hold: the model's own maximum from its config.json
        (None when it declares none). Backends that cap it further (vLLM's ``max_model_len``) override this."""
        return model_max_len(self._model_path) if self._model_path else None

    def prompt_tokens(self, text: str) -> int:
        """Tokens of ``text``'s full chat prompt (template, instruction, labels, text), as the model receives it."""
        return len(self._prompt_ids(build_messages(text, self.label_names, self.language)))

    def _prompt_ids(self, conversation: list[dict[str, str]]) -> list[int]:
        """The token ids of a conversation's chat prompt, generation prompt included."""
        if self._tokenizer is None:
            raise RuntimeError("load_tokenizer() or load() must be called before counting prompt tokens")
        ids = self._tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return list(ids)

    def prompt_budget(self) -> int | None:
        """Prompt tokens one request may hold: the context window less ``max_new_tokens`` for the answer."""
        window = self.context_window()
        return None if window is None else window - self.max_new_tokens

    def prepare(self, texts: Sequence[str]) -> None:
        """Outside the metered window: with ``truncate`` on, cut every text whose prompt exceeds the budget so that it
        fits (the end of the text goes, the instruction and labels stay), remembering the cut for ``predict``."""
        budget = self.prompt_budget()
        if not self.truncate or budget is None:
            return
        for text in texts:
            if self._prompt_key(text) in self._fitted:
                continue
            tokens = self.prompt_tokens(text)
            if tokens <= budget:
                continue
            ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
            keep = len(ids) - (tokens - budget)
            cut, kept = text, tokens
            while kept > budget:  # decoding and re-encoding may merge or split a token at the cut: shorten again
                if keep <= 0:
                    raise ConfigError(
                        f"model {self.model!r}: the prompt without any text is {kept} tokens, more than the "
                        f"{budget} its context window leaves after {self.max_new_tokens} answer tokens"
                    )
                cut = self._tokenizer.decode(ids[:keep], skip_special_tokens=True)
                kept = self.prompt_tokens(cut)
                keep -= max(1, kept - budget)
            self._fitted[self._prompt_key(text)] = (cut, tokens, kept)

    def _prompt_key(self, text: str) -> tuple[str, tuple[str, ...], str]:
        return (text, tuple(self.label_names), self.language)

    def _fit_to_context(self, texts: Sequence[str]) -> tuple[list[str], list[Truncation]]:
        """The texts as ``prepare`` cut them, and which were cut (none unless ``truncate`` is on)."""
        if not self._fitted:
            return list(texts), []
        out, cuts = [], []
        for index, text in enumerate(texts):
            fitted = self._fitted.get(self._prompt_key(text))
            if fitted is None:
                out.append(text)
            else:
                out.append(fitted[0])
                cuts.append(Truncation(index=index, prompt_tokens=fitted[1], kept_tokens=fitted[2]))
        return out, cuts

    def truncations(self) -> list[Truncation]:
        """The texts the last ``predict`` call cut to fit the context window (positions in the texts it was given)."""
        return list(self._truncations)

    def _predict_scored(self, conversations: list[list[dict[str, str]]]) -> list[int]:
        """``scoring`` serving: each batch of conversations scored against every label (``_score``), timed."""
        predictions: list[int] = []
        self.call_s, self.call_sizes = [], []
        self._usage = {"requests": 0, "input_tokens": 0, "output_tokens": 0}
        if self.prefix_cache:
            self._usage["cached_tokens"] = 0
        for call in self._batches(conversations):
            t0 = time.perf_counter()
            # (labels, input tokens, output tokens[, of the input tokens those read from a reused cache])
            result = self._score(call)
            self.call_s.append(time.perf_counter() - t0)
            self.call_sizes.append(len(call))
            labels, input_tokens, output_tokens = result[:3]
            predictions += labels
            self._usage["requests"] += len(call)
            self._usage["input_tokens"] += input_tokens
            self._usage["output_tokens"] += output_tokens
            if len(result) > 3 and (result[3] or "cached_tokens" in self._usage):
                self._usage["cached_tokens"] = self._usage.get("cached_tokens", 0) + int(result[3])
        self.last_answers = [self.label_names[p] for p in predictions]
        return predictions

    def serving_stats(self) -> dict[str, Any]:
        """Per-call times of the last pass (s): requests in ``sequential`` serving, batches otherwise."""
        return {
            "serving": self.serving,
            "batch_size": self.batch_size,
            "call_s": list(self.call_s),
            "call_sizes": list(self.call_sizes),
        }

    def usage(self) -> dict[str, int]:
        """Requests and token counts of the last ``predict`` call (one pass over the texts): ``requests``,
        ``input_tokens`` (every prompt's tokens, in ``scoring`` also the labels' answer tokens), ``output_tokens``
        (generated), and, where a cache was reused (``prefix_cache``), ``cached_tokens``: of the input tokens, those
        read from it instead of computed in this pass."""
        return dict(self._usage)

    def arithmetic_params(self) -> tuple[int, str] | None:
        """The parameters one token's forward pass multiplies by, and where the count is from: the catalog's active
        parameters of a mixture-of-experts model (``active_params_b`` x 1e9, its source), else the loaded weights'
        own count (``n_params``, set by the backend before any quantization), else the catalog's ``params_b`` x 1e9
        (rounded to its digits); None where nothing says."""
        if self.active_params_b is not None:
            source = f"catalog active parameters per token: {self.active_params_source}"
            return round(self.active_params_b * 1e9), source
        if self.n_params is not None:
            return int(self.n_params), "the loaded weights' parameter count (before any quantization)"
        if self.params_b is not None:
            return round(self.params_b * 1e9), "catalog params_b (billions, as rounded there)"
        return None

    def text_prefix_ids(self) -> tuple[list[int], str | None]:
        """The tokens every prompt of the current label set and language begins with: the chat prompt up to the text
        (system message, instruction, labels, the user turn's start), less its last token, which is left to each text
        so that a text whose first characters merge with it into one token (a leading newline) still starts with the
        rest. ([], why) where the chat template does not carry the text verbatim or the prefix tokenizes to nothing.

        Each prompt must still be checked to begin with these tokens (``_prompt_ids(c)[:len(prefix)] == prefix``):
        tokenizing the prefix alone and the whole prompt may differ at the boundary, and a prompt that does not begin
        with them is computed whole."""
        if self._tokenizer is None:
            raise RuntimeError("load_tokenizer() or load() must be called before the prompt prefix is known")
        marker = "\u2063TEXT\u2063"  # invisible separators around a word: not something a template writes
        conversation = build_messages(marker, self.label_names, self.language)
        rendered = self._tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        at = rendered.find(marker) if isinstance(rendered, str) else -1
        if at < 0:
            return [], "the chat template does not carry the text verbatim"
        ids = list(self._tokenizer(rendered[:at], add_special_tokens=False)["input_ids"])[:-1]
        if not ids:
            return [], "the prompt has no shared beginning before the text"
        return ids, None

    def _start_pass(self) -> None:
        """Called at the start of every ``predict`` (inside the metered window), before the first engine call: a
        backend that reuses a prompt prefix computes it here, once per pass. No-op by default."""

    def info(self) -> dict[str, Any]:
        """Provenance: model, revision, serving settings, prompt identity."""
        return {
            "backend": self.name,
            "model": self.model,
            "revision": self.revision,
            "device": self.device,
            "serving": self.serving,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
            "constrained": self.constrained,
            "dtype": self.dtype,
            "gpus": self.gpus,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "params_b": self.params_b,
            "reasoning": self.reasoning,
            "truncate": self.truncate,
            "context_window": self.context_window(),
            "quantization": self.quantization,
            "prefix_cache": self.prefix_cache,
            "length_sorted": self.length_sorted,
            "active_params_b": self.active_params_b,
            "active_params_source": self.active_params_source,
            "n_params": self.n_params,
            "decoding": "label-likelihood" if self.serving == "scoring" else "greedy",
            "scoring_rule": dict(SCORING_RULE_INFO) if self.serving == "scoring" else None,
            "prompt": prompt_info(self.language),
        }

    def synchronize(self) -> None:
        """Wait for queued GPU work (cuda, mps; no-op on CPU)."""
        device_synchronize(self.device)

    # --- for subclasses -------------------------------------------------------------------------------------------

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        """Generate one greedy answer per conversation, in order."""
        raise NotImplementedError

    def _batches(self, conversations: list[list[dict[str, str]]]) -> list[list[list[dict[str, str]]]]:
        """The engine calls of batched and scoring serving: ``batch_size`` conversations each (vLLM: one call)."""
        return [conversations[i : i + self.batch_size] for i in range(0, len(conversations), self.batch_size)]

    def _score(self, conversations: list[list[dict[str, str]]]) -> tuple[Any, ...]:
        """``scoring`` serving: (per conversation, the index of the label whose answer is likeliest by
        ``SCORING_RULE`` (``best_label`` over the sums of ``_continuation_ids``' log-probabilities), the input tokens
        the forward passes read, the tokens generated: 0, or what an engine must decode to return at all[, of the
        input tokens those read from a reused KV cache instead of computed: optional, 0 when left out]).
        Backends that cannot score raise ConfigError."""
        raise ConfigError(f"backend {self.name}: serving=scoring is not implemented; use sequential or batched")

    def label_completions(self) -> list[str]:
        """The exact answers constrained decoding allows: the category field with one label, then the end marker."""
        return [f"[[ ## category ## ]]\n{label}\n\n[[ ## completed ## ]]" for label in self.label_names]
