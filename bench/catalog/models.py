"""The models the kit knows: one immutable ``ModelSpec`` per row of the paper's tables.

A spec is data, not code: ``backend`` is a lazy ``"module:Class"`` path that ``bench.backends.create_backend``
imports only when the model runs, so listing models never imports sklearn, torch or vLLM. Adding a model family
(the paper's 11 LLMs) means adding entries to a tuple below plus one backend file; nothing else changes. Backend-
specific settings (Hub id and revision, GPUs, dtype, ...) go into ``params``, which is passed to the backend's
constructor as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from bench.catalog.embedders import PAPER_EMBEDDER
from bench.errors import ConfigError, did_you_mean

ModelKind = Literal["traditional", "llm"]
KINDS: tuple[str, ...] = ("traditional", "llm")


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
    ``"traditional"`` (trained on the split's training texts) or ``"llm"`` (zero-shot). ``backend``: lazy
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

# The LLM issue adds `_LLMS: tuple[ModelSpec, ...] = (...)` (backend "bench.backends.vllm:VLLMBackend", params with
# hub_id / revision / gpus) and appends it here.
_ALL: tuple[ModelSpec, ...] = _TRADITIONAL


def _index(specs: tuple[ModelSpec, ...]) -> MappingProxyType[str, ModelSpec]:
    by_name: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ValueError(f"duplicate model name {spec.name!r} in the catalog")
        by_name[spec.name] = spec
    return MappingProxyType(by_name)


#: Every known model by name, in catalog order (the paper's table order), read-only.
MODELS: MappingProxyType[str, ModelSpec] = _index(_ALL)


def get_model_spec(name: str) -> ModelSpec:
    """Return the catalog entry ``name``; ConfigError with close matches if it is unknown."""
    try:
        return MODELS[name]
    except KeyError:
        known = list(MODELS)
        raise ConfigError(
            f"unknown model {name!r}.{did_you_mean(name, known)} Known models: {', '.join(known)}."
        ) from None


def list_models(kind: str | None = None) -> list[ModelSpec]:
    """All models in catalog order, or only those of ``kind`` ("traditional" or "llm")."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}.{did_you_mean(kind, KINDS)} Known kinds: {', '.join(KINDS)}.")
    return [spec for spec in MODELS.values() if kind is None or spec.kind == kind]
