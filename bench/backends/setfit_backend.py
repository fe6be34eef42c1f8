"""SetFit (Tunstall et al. 2022, https://arxiv.org/abs/2209.11055) on the profile's sentence embedder: contrastive
fine-tuning of the sentence-transformer on pairs drawn from the training texts, then a LogisticRegression head on
the tuned embeddings. Runs through the ``setfit`` library (>= 1.2, the first release for transformers 5), with its
defaults unless ``params`` say otherwise; the settings and seed used are recorded in ``info()["training"]``.

What both fine-tuned families share (the embedder, which must be a sentence-transformer, refused at load otherwise,
naming it; the check that every class has at least ``MIN_TEXTS_PER_CLASS`` training texts; seeding; ``info``) is in
``bench.backends.finetuned``.

Heavy libraries (torch, setfit, datasets) are imported in ``load``/``fit``, never at module import.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from bench.backends import import_optional
from bench.backends.finetuned import (
    MIN_TEXTS_PER_CLASS,
    PREDICT_BATCH_SIZE,
    FinetunedBackend,
    check_training_set,
    quiet_training,
)

__all__ = ["MIN_TEXTS_PER_CLASS", "PREDICT_BATCH_SIZE", "SetFitBackend", "check_training_set"]


class SetFitBackend(FinetunedBackend):
    """SetFit on a sentence embedder of the catalog.

    ``embedder``: catalog name (``None``: the paper's; profiles override it). ``device``: ``"cpu"``, ``"cuda"``,
    ``"mps"``. ``seed``: the training seed (SetFit's ``TrainingArguments.seed``: pair sampling, shuffling, head init).
    ``num_iterations``, ``num_epochs``, ``batch_size``, ``body_learning_rate``, ``max_steps``: SetFit's own
    ``TrainingArguments``; ``None`` keeps the library default (num_iterations is then 20 pairs per text and
    direction... as setfit 1.2 documents it; the used values are read back from the arguments and recorded).
    Raises ConfigError for an unknown embedder.
    """

    MODEL = "setfit"
    BACKEND = "setfit"
    LIBRARIES = ("setfit", "sentence_transformers", "transformers", "torch", "sklearn")

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
        super().__init__(embedder, device, seed)
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

    def _import_libraries(self) -> None:
        import_optional("setfit", "the SetFit model (pip install 'setfit>=1.2')")

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Fine-tune a fresh copy of the embedder and its head on the training texts (DataError: a class too small).

        Every call starts from the pretrained weights, so repeated fits (the training window's loop rule) train the
        same model. The libraries' progress bars and log lines are off meanwhile (``quiet_training``)."""
        classes = self._begin_fit(texts, labels, label_names)
        setfit = import_optional("setfit", "the SetFit model")
        datasets = import_optional("datasets", "the SetFit model")
        transformers = import_optional("transformers", "the SetFit model")
        with quiet_training():
            self._model = setfit.SetFitModel.from_pretrained(self._folder, device=self.device, local_files_only=True)
            args = setfit.TrainingArguments(
                seed=self.seed, report_to="none", show_progress_bar=False, save_strategy="no", **self.overrides
            )
            train = datasets.Dataset.from_dict({"text": list(texts), "label": [int(label) for label in labels]})
            trainer = setfit.Trainer(model=self._model, args=args, train_dataset=train)
            # The embedding phase runs transformers' Trainer, whose step bar (ProgressCallback) or, with tqdm off,
            # log printer (PrinterCallback: a dict of losses on stdout) is a default callback; setfit documents
            # Trainer.remove_callback for dropping one. show_progress_bar=False above covers the head phase.
            for callback in (transformers.ProgressCallback, transformers.PrinterCallback):
                trainer.remove_callback(callback)
            trainer.train()
        self._classes = classes
        self._training = self._training_record(
            "setfit",
            len(texts),
            overrides=dict(self.overrides),
            arguments=_training_arguments(args),
            head=type(self._model.model_head).__name__,
        )

    def predict(self, texts: Sequence[str]) -> list[int]:
        """One original label id per text (RuntimeError before ``fit``)."""
        if self._model is None:
            raise RuntimeError("SetFitBackend.predict() before fit(): train the model first.")
        if len(texts) == 0:
            return []
        predicted = self._model.predict(list(texts), batch_size=PREDICT_BATCH_SIZE, show_progress_bar=False)
        return [int(label) for label in _as_list(predicted)]

    def _planned_training(self) -> dict[str, Any] | None:
        """SetFit's ``TrainingArguments`` with this seed and the overrides, library defaults filled in (None before
        setfit is imported, i.e. before ``load``)."""
        if "setfit" not in sys.modules:
            return None
        args = sys.modules["setfit"].TrainingArguments(seed=self.seed, **self.overrides)
        return {
            "library": "setfit",
            "seed": self.seed,
            "overrides": dict(self.overrides),
            "arguments": _training_arguments(args),
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
