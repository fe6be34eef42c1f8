"""What every zero-shot LLM backend shares: the prompt, the answer parser, serving modes and token accounting.

A concrete backend (``hf_pipeline``, ``vllm``) implements only ``load``, ``_generate`` and ``close``; this base turns
texts into the paper's chat prompts, sends them one at a time (``sequential``, as the paper's runtimes imply) or all
at once (``batched``), parses the answers, and counts input and output tokens so energy per token can be reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.backends.base import cuda_synchronize
from bench.errors import ConfigError
from bench.prompts import build_messages, parse_answer, prompt_info

SERVING_MODES = ("sequential", "batched")


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
    ) -> None:
        if serving not in SERVING_MODES:
            raise ConfigError(f"serving={serving!r}: expected one of {', '.join(SERVING_MODES)}")
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
        if self.serving == "sequential":
            generations = [self._generate([conversation])[0] for conversation in conversations]
        else:
            generations = self._generate(conversations)
        if len(generations) != len(texts):
            raise RuntimeError(f"{self.name}: {len(generations)} answers for {len(texts)} prompts")
        self._usage = {
            "requests": len(generations),
            "input_tokens": sum(g.input_tokens for g in generations),
            "output_tokens": sum(g.output_tokens for g in generations),
        }
        self.last_answers = [g.text for g in generations]
        return [parse_answer(g.text, self.label_names) for g in generations]

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
            "decoding": "greedy",
            "prompt": prompt_info(self.language),
        }

    def synchronize(self) -> None:
        """Wait for queued GPU work (no-op on CPU)."""
        cuda_synchronize(self.device)

    # --- for subclasses -------------------------------------------------------------------------------------------

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        """Generate one greedy answer per conversation, in order."""
        raise NotImplementedError

    def label_completions(self) -> list[str]:
        """The exact answers constrained decoding allows: the category field with one label, then the end marker."""
        return [f"[[ ## category ## ]]\n{label}\n\n[[ ## completed ## ]]" for label in self.label_names]
