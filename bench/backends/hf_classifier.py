"""A fine-tuned sequence classifier of the user's (``bench run --model clf:ORG/NAME[@REV]`` or ``clf:/a/folder``)
through transformers' ``text-classification`` pipeline.

Nothing is trained: ``fit`` matches the model's labels (``config.id2label``) to the data set's label names, case- and
whitespace-insensitively, with ``label_map`` (``--label-map MODEL_LABEL=DATA_LABEL``) for the rest; generic names
(``LABEL_0``) carry no meaning and need the map. A model label that matches no data label is an error listing both
sides, raised before any energy is spent (``check_labels`` runs on the config alone, without torch).

The folder (or Hub snapshot) must hold the tokenizer the model was fine-tuned with, no larger than its embedding
(``bench.catalog.resolve.check_classifier_folder``, run by ``resolve_user_model`` in the run's preflight and again at
load): without it transformers builds a default tokenizer mapping every word to ``[UNK]``, and the model answers at
chance.

Where the model comes from is pinned (``bench.catalog.resolve.resolve_user_model``): a local folder by a sha256 over
its files (``folder_sha256``), a Hub model by its revision. Offline, a Hub model is taken from the local cache only;
without ``@REV`` the cached snapshot is used and the pin records the commit it resolved to, and an uncached one is
refused with how to pin and fetch it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.backends.base import device_empty_cache, device_synchronize
from bench.backends.finetuned import quiet_training
from bench.catalog.resolve import resolve_user_model
from bench.errors import ConfigError

#: transformers' names for labels nobody named (``LABEL_0``, ``LABEL_1``, ...).
GENERIC_LABEL = re.compile(r"^LABEL_\d+$")
#: Texts per forward pass of the pipeline (recorded in ``info``).
BATCH_SIZE = 32


def _norm(label: str) -> str:
    return " ".join(str(label).split()).casefold()


def check_labels(
    id2label: Mapping[int, str], label_names: Sequence[str], label_map: Mapping[str, str] | None = None, *, model: str
) -> dict[int, int]:
    """The model's label ids -> the data set's label ids.

    A model label matches a data label by name (case and surrounding/inner whitespace ignored), or through
    ``label_map`` (model label -> data label name, matched the same way). Raises ConfigError listing both sides
    when a model label matches none, naming ``--label-map`` (always for generic ``LABEL_n`` names)."""
    label_map = {_norm(k): v for k, v in (label_map or {}).items()}
    data = {_norm(name): i for i, name in enumerate(label_names)}
    out: dict[int, int] = {}
    unmatched: list[str] = []
    bad_map: list[str] = []
    for model_id, model_label in sorted(id2label.items()):
        key = _norm(model_label)
        if key in label_map:
            target = _norm(label_map[key])
            if target not in data:
                bad_map.append(f"{model_label}={label_map[key]}")
                continue
            out[int(model_id)] = data[target]
        elif key in data:
            out[int(model_id)] = data[key]
        else:
            unmatched.append(str(model_label))
    if unmatched or bad_map:
        generic = [u for u in unmatched if GENERIC_LABEL.match(u)]
        problems = []
        if unmatched:
            problems.append(f"model label(s) matching no data label: {', '.join(map(repr, unmatched))}")
        if bad_map:
            problems.append(f"--label-map entries naming no data label: {', '.join(bad_map)}")
        # A whole map to try: what already matched, then each label left over paired with a data label not yet taken.
        matched = {str(id2label[i]): label_names[j] for i, j in sorted(out.items())}
        free = [n for j, n in enumerate(label_names) if j not in out.values()] or list(label_names)
        pending = [u for u in unmatched] + [entry.split("=", 1)[0] for entry in bad_map]
        example = ",".join(
            [f"{k}={v}" for k, v in matched.items()] + [f"{u}={free[i % len(free)]}" for i, u in enumerate(pending)]
        )
        raise ConfigError(
            f"model {model}: {'; '.join(problems)}. The model's labels: "
            f"{', '.join(repr(v) for _, v in sorted(id2label.items()))}; the data's labels: "
            f"{', '.join(map(repr, label_names))}. "
            + ("Generic names like LABEL_0 say nothing about their meaning: " if generic else "")
            + f"map them with --label-map {example}"
        )
    return out


def read_id2label(folder: Path) -> dict[int, str]:
    """``id2label`` of a model folder's config.json (without transformers; absent: transformers' default LABEL_n);
    ConfigError when the file cannot be read or names an architecture that is not a sequence classifier."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{folder / 'config.json'}: cannot be read ({exc})") from None
    architectures = [str(a) for a in config.get("architectures") or []]
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ConfigError(
            f"{folder}: its config.json names {', '.join(architectures)}, not a sequence classifier "
            "(…ForSequenceClassification): a clf: model must be fine-tuned for classification; give a generative "
            f"model as a zero-shot LLM, --model hf:{folder}"
        )
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        # transformers leaves its defaults out of config.json: num_labels (2 unless said) generic LABEL_n names
        n = int(config.get("num_labels") or len(config.get("label2id") or {}) or 2)
        id2label = {i: f"LABEL_{i}" for i in range(n)}
    return {int(k): str(v) for k, v in id2label.items()}


class HFClassifierBackend:
    """transformers' text-classification pipeline behind the kit's backend protocol (no training; see module)."""

    name = "hf_classifier"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        device: str = "cpu",
        seed: int = 0,
        label_map: Mapping[str, str] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.model = model
        self.revision = revision
        self.device = device
        self.seed = seed
        self.label_map = dict(label_map or {})
        self.batch_size = batch_size
        self._pipe: Any = None
        self._pin: dict[str, Any] = {}
        self._id2label: dict[int, str] = {}
        self._label2id: dict[str, int] = {}
        self._to_data: dict[int, int] = {}
        self._max_length: int | None = None
        self._tokenizer_facts: dict[str, Any] = {}

    def load(self) -> None:
        """Resolve the model (local folder or cached Hub snapshot), load tokenizer and weights, build the pipeline.

        Raises ConfigError (``resolve_user_model``, ``check_classifier_folder``) when the folder has no tokenizer or
        its tokenizer has more tokens than the model's embedding rows, before the weights load."""
        import torch
        import transformers

        transformers.logging.set_verbosity_error()
        torch.manual_seed(self.seed)
        path, self._pin = resolve_user_model(self.model, self.revision)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
        with quiet_training():  # no "Loading weights" bar per cell: the run's own progress bar is the interface
            model = transformers.AutoModelForSequenceClassification.from_pretrained(str(path))
        model.eval()
        self._id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        self._label2id = {v: k for k, v in self._id2label.items()}
        limit = getattr(tokenizer, "model_max_length", None)
        positions = getattr(model.config, "max_position_embeddings", None)
        candidates = [x for x in (limit, positions) if isinstance(x, int) and 0 < x < 10**9]
        self._max_length = min(candidates) if candidates else None
        self._tokenizer_facts = {
            "class": type(tokenizer).__name__,
            "vocab_size": len(tokenizer),
            "embedding_rows": getattr(model.config, "vocab_size", None),
            "checked": "tokenizer files present; vocabulary <= embedding rows (bench.catalog.resolve)",
        }
        self._pipe = transformers.pipeline("text-classification", model=model, tokenizer=tokenizer, device=self.device)

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Nothing to train: match the model's labels to the data's (ConfigError listing both sides otherwise)."""
        self._to_data = check_labels(self._id2label, label_names, self.label_map, model=f"clf:{self.model}")

    def predict(self, texts: Sequence[str]) -> list[int]:
        """One data label id per text: the model's top label, mapped (texts longer than the model takes are cut)."""
        if self._pipe is None:
            raise RuntimeError("load() must be called before predict()")
        kwargs: dict[str, Any] = {"truncation": True}
        if self._max_length:
            kwargs["max_length"] = self._max_length
        results = self._pipe(list(texts), batch_size=self.batch_size, **kwargs)
        return [self._to_data.get(self._label2id.get(r["label"], -1), -1) for r in results]

    def synchronize(self) -> None:
        """Wait for queued GPU work (no-op on CPU)."""
        device_synchronize(self.device)

    def info(self) -> dict[str, Any]:
        """What ran: the model's pin, its labels and how they map, library versions, device, batch size."""
        import torch
        import transformers

        return {
            "backend": self.name,
            "model": self.model,
            "revision": self.revision,
            "pin": self._pin,
            "device": self.device,
            "batch_size": self.batch_size,
            "truncation_max_tokens": self._max_length,
            "tokenizer": self._tokenizer_facts,
            "id2label": {str(k): v for k, v in sorted(self._id2label.items())},
            "label_map": self.label_map,
            "model_label_to_data_label": {str(k): v for k, v in sorted(self._to_data.items())},
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        }

    def close(self) -> None:
        """Drop the pipeline (and free GPU memory)."""
        self._pipe = None
        device_empty_cache(self.device)
