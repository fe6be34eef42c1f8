"""The profile's sentence embedder with a classification head (transformers ``AutoModelForSequenceClassification``:
the encoder, a new linear head on the [CLS] token, every weight trained), fine-tuned a few epochs on the training
texts with a plain torch loop: AdamW, linear warm-up and decay, cross-entropy.

Why a plain loop and not transformers' ``Trainer``: on 200 texts the loop is some 20 lines whose every setting is
visible and recorded here, it writes no checkpoints or logs to disk, and it pulls in no accelerate state; the
``Trainer`` adds all three for nothing this model uses. Settings (defaults: 5 epochs, batch 16, learning rate 5e-5,
10 % warm-up, weight decay 0.01, 128 tokens) are the usual BERT fine-tuning values (Devlin et al. 2019, appendix
A.3, batch 16-32, 2e-5 to 5e-5, 2-4 epochs; one epoch more here because 200 texts make few steps per epoch).

Torch and transformers are imported in ``load``/``fit``, never at module import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.backends import import_optional
from bench.backends.finetuned import PREDICT_BATCH_SIZE, FinetunedBackend, quiet_training
from bench.errors import ConfigError

__all__ = ["PREDICT_BATCH_SIZE", "FinetuneHeadBackend"]


class FinetuneHeadBackend(FinetunedBackend):
    """Encoder + classification head, fine-tuned end to end.

    ``embedder``: catalog name (``None``: the paper's; profiles override it); it must be a sentence-transformer whose
    folder holds the transformer's ``config.json`` and weights. ``device``: ``"cpu"``, ``"cuda"``, ``"mps"``.
    ``seed``: head initialisation, shuffling and dropout. ``epochs``, ``batch_size``, ``learning_rate``,
    ``warmup_ratio``, ``weight_decay``, ``max_length`` (tokens; longer texts are cut): the training settings, recorded
    in ``info()``.
    Raises ConfigError for an unknown embedder or a non-positive setting.
    """

    MODEL = "finetune-head"
    BACKEND = "finetune-head"
    LIBRARIES = ("transformers", "torch")

    def __init__(
        self,
        embedder: str | None = None,
        device: str = "cpu",
        seed: int = 0,
        epochs: int = 5,
        batch_size: int = 16,
        learning_rate: float = 5e-5,
        warmup_ratio: float = 0.1,
        weight_decay: float = 0.01,
        max_length: int = 128,
    ) -> None:
        super().__init__(embedder, device, seed)
        for name, value in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
            ("max_length", max_length),
        ):
            if value <= 0:
                raise ConfigError(f"model finetune-head: {name} must be positive, not {value!r}")
        self.settings: dict[str, Any] = {
            "epochs": int(epochs),
            "batch_size": int(batch_size),
            "learning_rate": float(learning_rate),
            "warmup_ratio": float(warmup_ratio),
            "weight_decay": float(weight_decay),
            "max_length": int(max_length),
            "optimizer": "torch.optim.AdamW",
            "schedule": "transformers.get_linear_schedule_with_warmup",
            "loss": "cross-entropy",
        }
        self._tokenizer: Any = None

    def _import_libraries(self) -> None:
        import_optional("torch", "the finetune-head model")
        import_optional("transformers", "the finetune-head model")

    def _after_load(self, folder: str) -> None:
        import transformers

        self._tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Fine-tune a fresh encoder + head (from the pretrained weights at every call) on the training texts.

        Raises DataError for fewer than two classes or a class with fewer than two texts (as SetFit, so both
        families train on the same splits)."""
        classes = self._begin_fit(texts, labels, label_names)
        import torch
        import transformers

        s = self.settings
        position = {label: i for i, label in enumerate(classes)}
        transformers.set_seed(self.seed)
        with quiet_training():  # no "newly initialized weights" warning / loading report: the new head is the point
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                self._folder, num_labels=len(classes), local_files_only=True
            ).to(self.device)
        y = torch.tensor([position[int(label)] for label in labels], dtype=torch.long)
        order_gen = torch.Generator().manual_seed(self.seed)
        steps_per_epoch = -(-len(texts) // s["batch_size"])
        total = steps_per_epoch * s["epochs"]
        optimizer = torch.optim.AdamW(model.parameters(), lr=s["learning_rate"], weight_decay=s["weight_decay"])
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(s["warmup_ratio"] * total), total)
        model.train()
        last_loss = None
        for _ in range(s["epochs"]):
            order = torch.randperm(len(texts), generator=order_gen).tolist()
            for start in range(0, len(order), s["batch_size"]):
                batch = order[start : start + s["batch_size"]]
                enc = self._encode([texts[i] for i in batch])
                out = model(**enc, labels=y[batch].to(self.device))
                out.loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                last_loss = float(out.loss.detach())
        model.eval()
        self._model, self._classes = model, classes
        self._training = self._training_record(
            "torch loop (transformers AutoModelForSequenceClassification)",
            len(texts),
            settings=dict(s),
            steps=total,
            final_batch_loss=last_loss,
        )

    def predict(self, texts: Sequence[str]) -> list[int]:
        """One original label id per text (RuntimeError before ``fit``)."""
        if self._model is None or self._classes is None:
            raise RuntimeError("FinetuneHeadBackend.predict() before fit(): train the model first.")
        import torch

        out: list[int] = []
        with torch.inference_mode():
            for start in range(0, len(texts), PREDICT_BATCH_SIZE):
                logits = self._model(**self._encode(list(texts[start : start + PREDICT_BATCH_SIZE]))).logits
                out += [self._classes[int(i)] for i in logits.argmax(dim=-1).tolist()]
        return out

    def _planned_training(self) -> dict[str, Any] | None:
        """The seed and the settings the next ``fit`` uses."""
        return {"seed": self.seed, "settings": dict(self.settings)}

    def _encode(self, texts: list[str]) -> Any:
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.settings["max_length"], return_tensors="pt"
        )
        return {key: value.to(self.device) for key, value in enc.items()}
