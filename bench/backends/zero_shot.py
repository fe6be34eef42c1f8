"""What every zero-shot LLM backend shares: the prompt, the answer parser, serving modes and token accounting.

A concrete backend (``hf_pipeline``, ``vllm``) implements only ``load``, ``_generate`` and ``close``; this base turns
texts into the paper's chat prompts, sends them one at a time (``sequential``, as the paper's runtimes imply) or in
batches (``batched``), or scores each label's likelihood instead of generating (``scoring``); it parses the
answers, times each engine call (``serving_stats``), and counts input and output tokens so energy per token can be
reported.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.backends.base import cuda_synchronize
from bench.errors import ConfigError
from bench.prompts import build_messages, parse_answer, prompt_info

SERVING_MODES = ("sequential", "batched", "scoring")
QUANTIZATIONS = ("none", "int8", "fp8")


@dataclass(frozen=True)
class Generation:
    """One model answer: the generated text and the token counts of prompt and answer."""

    text: str
    input_tokens: int
    output_tokens: int


class ZeroShotBackend:
    """Base of the LLM backends (not registered itself). Subclasses set ``name`` and implement ``_generate``."""

    name = "zero-shot"

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
        quantization: str = "none",
    ) -> None:
        if serving not in SERVING_MODES:
            raise ConfigError(f"serving={serving!r}: expected one of {', '.join(SERVING_MODES)}")
        if quantization not in QUANTIZATIONS:
            raise ConfigError(f"quantization={quantization!r}: expected one of {', '.join(QUANTIZATIONS)}")
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
        self.quantization = quantization
        #: seconds of each engine call of the last pass (a request in sequential serving, a batch otherwise)
        self.call_s: list[float] = []
        self.call_sizes: list[int] = []
        self.label_names: list[str] = []
        self.language = "en"
        self.last_answers: list[str] = []
        self._usage = {"requests": 0, "input_tokens": 0, "output_tokens": 0}

    # --- protocol -------------------------------------------------------------------------------------------------

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Zero-shot: nothing is trained; remember the label set and the prompt language."""
        if not label_names:
            raise ConfigError("a zero-shot model needs the label names of the data set")
        self.label_names = list(label_names)
        self.language = language

    def predict(self, texts: Sequence[str]) -> list[int]:
        """Prompt, generate (greedy), parse. An answer matching no label is -1 (wrong, counted as invalid)."""
        if not self.label_names:
            raise RuntimeError("fit() must be called before predict(): the label set is unknown")
        conversations = [build_messages(text, self.label_names, self.language) for text in texts]
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
        self.last_answers = [g.text for g in generations]
        return [parse_answer(g.text, self.label_names) for g in generations]

    def _predict_scored(self, conversations: list[list[dict[str, str]]]) -> list[int]:
        """``scoring`` serving: each batch of conversations scored against every label (``_score``), timed."""
        predictions: list[int] = []
        self.call_s, self.call_sizes = [], []
        self._usage = {"requests": 0, "input_tokens": 0, "output_tokens": 0}
        for call in self._batches(conversations):
            t0 = time.perf_counter()
            labels, input_tokens = self._score(call)
            self.call_s.append(time.perf_counter() - t0)
            self.call_sizes.append(len(call))
            predictions += labels
            self._usage["requests"] += len(call)
            self._usage["input_tokens"] += input_tokens
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
        """Requests and token counts of the last ``predict`` call (one pass over the texts)."""
        return dict(self._usage)

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
            "quantization": self.quantization,
            "decoding": "label-likelihood" if self.serving == "scoring" else "greedy",
            "prompt": prompt_info(self.language),
        }

    def synchronize(self) -> None:
        """Wait for queued GPU work (no-op on CPU)."""
        cuda_synchronize(self.device)

    # --- for subclasses -------------------------------------------------------------------------------------------

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        """Generate one greedy answer per conversation, in order."""
        raise NotImplementedError

    def _batches(self, conversations: list[list[dict[str, str]]]) -> list[list[list[dict[str, str]]]]:
        """The engine calls of batched and scoring serving: ``batch_size`` conversations each (vLLM: one call)."""
        return [conversations[i : i + self.batch_size] for i in range(0, len(conversations), self.batch_size)]

    def _score(self, conversations: list[list[dict[str, str]]]) -> tuple[list[int], int]:
        """``scoring`` serving: (the label index of highest length-normalized log-probability per conversation, the
        input tokens the forward passes read). Backends that cannot score raise ConfigError."""
        raise ConfigError(f"backend {self.name}: serving=scoring is not implemented; use sequential or batched")

    def label_completions(self) -> list[str]:
        """The exact answers constrained decoding allows: the category field with one label, then the end marker."""
        return [f"[[ ## category ## ]]\n{label}\n\n[[ ## completed ## ]]" for label in self.label_names]
