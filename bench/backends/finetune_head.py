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
from bench.backends.base import cuda_synchronize
from bench.backends.setfit_backend import (
    check_training_set,
    library_versions,
    resolve_sentence_transformer,
    seed_everything,
)
from bench.catalog.embedders import PAPER_EMBEDDER, get_embedder_spec
from bench.errors import ConfigError

PREDICT_BATCH_SIZE = 32


class FinetuneHeadBackend:
    """Encoder + classification head, fine-tuned end to end.

    ``embedder``: catalog name (``None``: the paper's; profiles override it); it must be a sentence-transformer whose
    folder holds the transformer's ``config.json`` and weights. ``device``: ``"cpu"``, ``"cuda"``. ``seed``: head
    initialisation, shuffling and dropout. ``epochs``, ``batch_size``, ``learning_rate``, ``warmup_ratio``,
    ``weight_decay``, ``max_length`` (tokens; longer texts are cut): the training settings, recorded in ``info()``.
    Raises ConfigError for a non-positive setting.
    """

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
        self.embedder = embedder or PAPER_EMBEDDER
        get_embedder_spec(self.embedder)
        for name, value in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
            ("max_length", max_length),
        ):
            if value <= 0:
                raise ConfigError(f"model finetune-head: {name} must be positive, not {value!r}")
        self.device = device
        self.seed = int(seed)
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
        self._folder: str | None = None
        self._pin: dict[str, Any] | None = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._classes: list[int] | None = None
        self._training: dict[str, Any] | None = None

    def load(self) -> None:
        """Import torch and transformers, check the embedder and load its tokenizer (ConfigError naming it)."""
        if self._folder is not None:
            return
        import_optional("torch", "the finetune-head model")
        transformers = import_optional("transformers", "the finetune-head model")
        folder, pin = resolve_sentence_transformer(self.embedder)
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self._folder, self._pin = folder, pin

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Fine-tune a fresh encoder + head (from the pretrained weights at every call) on the training texts.

        Raises DataError for fewer than two classes or a class with fewer than two texts (as SetFit, so both
        families train on the same splits)."""
        check_training_set(texts, labels, label_names, model="finetune-head")
        self.load()
        import torch
        import transformers

        s = self.settings
        classes = sorted({int(label) for label in labels})
        position = {label: i for i, label in enumerate(classes)}
        seed_everything(self.seed)
        transformers.set_seed(self.seed)
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
        self._training = {
            "library": "torch loop (transformers AutoModelForSequenceClassification)",
            "seed": self.seed,
            "settings": dict(s),
            "steps": total,
            "final_batch_loss": last_loss,
            "n_train": len(texts),
        }

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

    def synchronize(self) -> None:
        """Wait for queued CUDA work; a no-op on the CPU."""
        cuda_synchronize(self.device)

    def close(self) -> None:
        """Drop the trained model (the tokenizer stays)."""
        self._model = None

    def info(self) -> dict[str, Any]:
        """Embedder and its pin, training settings and seed, library versions, device."""
        return {
            "backend": "finetune-head",
            "device": self.device,
            "seed": self.seed,
            "embedder": {"name": self.embedder, "pin": self._pin},
            "training": self._training or {"seed": self.seed, "settings": dict(self.settings)},
            "classes": self._classes,
            "predict_batch_size": PREDICT_BATCH_SIZE,
            "library_versions": library_versions("transformers", "torch"),
        }

    def _encode(self, texts: list[str]) -> Any:
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.settings["max_length"], return_tensors="pt"
        )
        return {key: value.to(self.device) for key, value in enc.items()}
