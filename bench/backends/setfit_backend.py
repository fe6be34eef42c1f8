"""SetFit (Tunstall et al. 2022, https://arxiv.org/abs/2209.11055) on the profile's sentence embedder: contrastive
fine-tuning of the sentence-transformer on pairs drawn from the training texts, then a LogisticRegression head on
the tuned embeddings. Runs through the ``setfit`` library (>= 1.2, the first release for transformers 5), with its
defaults unless ``params`` say otherwise; the settings and seed used are recorded in ``info()["training"]``.

Also holds what both fine-tuned families share (``bench.backends.finetune_head`` imports it): the embedder, which
must be a sentence-transformer (refused at load otherwise, naming it), and the check that every class has at least
``MIN_TEXTS_PER_CLASS`` training texts (SetFit builds positive pairs within a class).

Heavy libraries (torch, setfit, datasets) are imported in ``load``/``fit``, never at module import.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.backends import import_optional
from bench.backends.base import cuda_synchronize
from bench.catalog.embedders import PAPER_EMBEDDER, get_embedder_spec, resolve_embedder_path
from bench.errors import ConfigError, DataError

#: SetFit pairs two texts of the same class: a class needs two training texts (the head needs one, pairs two).
MIN_TEXTS_PER_CLASS = 2
#: Batch size of prediction (sentence-transformers' encode default, as the traditional embedding models).
PREDICT_BATCH_SIZE = 32
#: What marks a folder as a sentence-transformer: sentence-transformers writes it next to the weights.
ST_MARKER = "modules.json"


def check_training_set(texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, model: str) -> None:
    """Raise DataError unless the split has at least two classes, each with ``MIN_TEXTS_PER_CLASS`` texts.

    The message names the model, each short class (name and id) and its count, and how to fix it."""
    if len(texts) != len(labels):
        raise DataError(f"model {model}: fit got {len(texts)} texts but {len(labels)} labels.")
    counts = Counter(int(label) for label in labels)
    if len(counts) < 2:
        raise DataError(
            f"model {model}: the training split has {len(counts)} class(es) ({sorted(counts)}); a classifier needs "
            "at least two. Use a larger or stratified training split."
        )
    short = sorted(label for label, n in counts.items() if n < MIN_TEXTS_PER_CLASS)
    if short:
        named = ", ".join(
            f"{label_names[c] if 0 <= c < len(label_names) else '?'!r} (id {c}): {counts[c]} text" for c in short
        )
        raise DataError(
            f"model {model}: every class needs at least {MIN_TEXTS_PER_CLASS} training texts (SetFit trains on "
            f"pairs of texts of one class); too few in {named}. Use a larger training split (--n-train) or drop "
            "the class from the data."
        )


def resolve_sentence_transformer(embedder: str) -> tuple[str, dict[str, Any]]:
    """``(local folder, pin)`` of the catalog embedder ``embedder``, refusing one that is not a sentence-transformer.

    Raises ConfigError (unknown name, missing package or snapshot: see ``resolve_embedder_path``; or no
    ``modules.json`` in its folder, naming the embedder and the folder)."""
    spec = get_embedder_spec(embedder)
    folder, pin = resolve_embedder_path(spec)
    if not (Path(folder) / ST_MARKER).is_file():
        raise ConfigError(
            f"embedder {embedder!r} ({folder}) is not a sentence-transformer: it has no {ST_MARKER}. The fine-tuned "
            "models (setfit, finetune-head) start from a sentence-transformers model; set the profile's embedder to "
            "one, e.g. all-MiniLM-L6-v2 or paraphrase-multilingual-mpnet-base-v2."
        )
    return folder, pin


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (transformers' ``set_seed`` does the same plus CUDA)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def library_versions(*modules: str) -> dict[str, str | None]:
    """Versions of the imported modules (what actually ran); None for one that was never imported."""
    names = {"sklearn": "scikit-learn", "sentence_transformers": "sentence-transformers"}
    out: dict[str, str | None] = {}
    for module in modules:
        loaded = sys.modules.get(module)
        out[names.get(module, module)] = getattr(loaded, "__version__", None) if loaded else None
    return out


class SetFitBackend:
    """SetFit on a sentence embedder of the catalog.

    ``embedder``: catalog name (``None``: the paper's; profiles override it). ``device``: ``"cpu"``, ``"cuda"``.
    ``seed``: the training seed (SetFit's ``TrainingArguments.seed``: pair sampling, shuffling, head init).
    ``num_iterations``, ``num_epochs``, ``batch_size``, ``body_learning_rate``, ``max_steps``: SetFit's own
    ``TrainingArguments``; ``None`` keeps the library default (num_iterations is then 20 pairs per text and
    direction... as setfit 1.2 documents it; the used values are read back from the arguments and recorded).
    """

    def __init__(
        self,
        embedder: str | None = None,
        device: str = "cpu",
        seed: int = 0,
        num_iterations: int | None = None,
        num_epochs: int | None = None,
        batch_size: int | None = None,
        body_learning_rate: float | None = None,
        max_steps: int | None = None,
    ) -> None:
        self.embedder = embedder or PAPER_EMBEDDER
        get_embedder_spec(self.embedder)  # a typo fails before any cell runs
        self.device = device
        self.seed = int(seed)
        self.overrides: dict[str, Any] = {
            key: value
            for key, value in {
                "num_iterations": num_iterations,
                "num_epochs": num_epochs,
                "batch_size": batch_size,
                "body_learning_rate": body_learning_rate,
                "max_steps": max_steps,
            }.items()
            if value is not None
        }
        self._folder: str | None = None
        self._pin: dict[str, Any] | None = None
        self._model: Any = None
        self._classes: list[int] | None = None
        self._training: dict[str, Any] | None = None

    def load(self) -> None:
        """Import setfit and check the embedder (ConfigError naming it if it is not a sentence-transformer)."""
        if self._folder is not None:
            return
        import_optional("setfit", "the SetFit model (pip install 'setfit>=1.2')")
        self._folder, self._pin = resolve_sentence_transformer(self.embedder)

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Fine-tune a fresh copy of the embedder and its head on the training texts (DataError: a class too small).

        Every call starts from the pretrained weights, so repeated fits (the training window's loop rule) train the
        same model."""
        check_training_set(texts, labels, label_names, model="setfit")
        self.load()
        setfit = import_optional("setfit", "the SetFit model")
        datasets = import_optional("datasets", "the SetFit model")
        seed_everything(self.seed)
        self._model = setfit.SetFitModel.from_pretrained(self._folder, device=self.device, local_files_only=True)
        args = setfit.TrainingArguments(
            seed=self.seed, report_to="none", show_progress_bar=False, save_strategy="no", **self.overrides
        )
        train = datasets.Dataset.from_dict({"text": list(texts), "label": [int(label) for label in labels]})
        trainer = setfit.Trainer(model=self._model, args=args, train_dataset=train)
        trainer.train()
        self._classes = sorted({int(label) for label in labels})
        self._training = {
            "library": "setfit",
            "seed": self.seed,
            "overrides": dict(self.overrides),
            "arguments": _training_arguments(args),
            "head": type(self._model.model_head).__name__,
            "n_train": len(texts),
        }

    def predict(self, texts: Sequence[str]) -> list[int]:
        """One original label id per text (RuntimeError before ``fit``)."""
        if self._model is None:
            raise RuntimeError("SetFitBackend.predict() before fit(): train the model first.")
        if len(texts) == 0:
            return []
        predicted = self._model.predict(list(texts), batch_size=PREDICT_BATCH_SIZE, show_progress_bar=False)
        return [int(label) for label in _as_list(predicted)]

    def synchronize(self) -> None:
        """Wait for queued CUDA work; a no-op on the CPU."""
        cuda_synchronize(self.device)

    def close(self) -> None:
        """Drop the trained model."""
        self._model = None

    def info(self) -> dict[str, Any]:
        """Embedder and its pin, training settings and seed, library versions, device.

        Before ``fit`` (the runner records a model's info right after loading) the training settings are the ones
        ``fit`` will use: SetFit's ``TrainingArguments`` with this seed and the overrides, library defaults
        filled in."""
        training = self._training
        if training is None and "setfit" in sys.modules:
            args = sys.modules["setfit"].TrainingArguments(seed=self.seed, **self.overrides)
            training = {
                "library": "setfit",
                "seed": self.seed,
                "overrides": dict(self.overrides),
                "arguments": _training_arguments(args),
            }
        return {
            "backend": "setfit",
            "device": self.device,
            "seed": self.seed,
            "embedder": {"name": self.embedder, "pin": self._pin},
            "training": training,
            "classes": self._classes,
            "predict_batch_size": PREDICT_BATCH_SIZE,
            "library_versions": library_versions("setfit", "sentence_transformers", "transformers", "torch", "sklearn"),
        }


def _training_arguments(args: Any) -> dict[str, Any]:
    """The SetFit arguments that shape training, as JSON-safe values (tuples for body/head pairs become lists)."""
    keys = (
        "batch_size",
        "num_epochs",
        "max_steps",
        "sampling_strategy",
        "num_iterations",
        "body_learning_rate",
        "head_learning_rate",
        "l2_weight",
        "max_length",
        "warmup_proportion",
        "end_to_end",
        "use_amp",
        "seed",
    )
    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(args, key, None)
        out[key] = list(value) if isinstance(value, tuple) else value
    loss = getattr(args, "loss", None)
    out["loss"] = getattr(loss, "__name__", None) or type(loss).__name__
    out["distance_metric"] = getattr(getattr(args, "distance_metric", None), "__name__", None)
    return out


def _as_list(values: Any) -> list[Any]:
    tolist = getattr(values, "tolist", None)
    return list(tolist()) if callable(tolist) else list(values)
