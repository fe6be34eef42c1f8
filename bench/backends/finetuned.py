"""What the two fine-tuned families (``setfit``: ``bench.backends.setfit_backend``; ``finetune-head``:
``bench.backends.finetune_head``) share, in one place: the embedder, which must be a sentence-transformer (refused at
load otherwise, naming it); the check that the training split has two classes or more, each with at least
``MIN_TEXTS_PER_CLASS`` texts (SetFit builds positive pairs within a class; the head trains on the same splits);
seeding; the record of the training settings and seed; the provenance ``info()`` returns; and the quieting of the
libraries' own progress bars and log lines while they load and train (``quiet_training``).

``FinetunedBackend`` is the base of both backends; they add how a fit trains and how a prediction runs. Heavy
libraries (torch, transformers, setfit, datasets) are imported in ``load``/``fit``, never at module import.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from bench.backends.base import device_synchronize, library_versions
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


@contextlib.contextmanager
def quiet_training() -> Iterator[None]:
    """While a fine-tuned model loads and trains (and while the LLM and classifier backends load weights), the
    libraries' progress bars and informational log lines are off:
    ``Map:`` of datasets, ``Batches:`` of sentence-transformers' encode, transformers' loading reports and
    warnings, setfit's ``***** Running training *****``. Errors still show; the run's own progress bar (rich, not
    tqdm) is untouched and stays the interface.

    Each library's documented switch is used: ``transformers.utils.logging.disable_progress_bar`` and
    ``set_verbosity_error``, ``datasets.utils.disable_progress_bars``, ``setfit.logging.set_verbosity_warning``, and
    the ``sentence_transformers`` logger at WARNING (its encode shows a bar at INFO). Every setting is restored on
    exit, so code outside a fit finds the libraries as it left them; a library not imported yet is left alone (this
    imports none). The transformers ``Trainer``'s per-step bar is a callback of the trainer, not a global switch:
    ``SetFitBackend`` removes it from its trainer."""
    with contextlib.ExitStack() as restore:
        tl = sys.modules.get("transformers.utils.logging")
        if tl is not None:
            restore.callback(tl.set_verbosity, tl.get_verbosity())
            if tl.is_progress_bar_enabled():
                restore.callback(tl.enable_progress_bar)
            tl.disable_progress_bar()
            tl.set_verbosity_error()
        du = sys.modules.get("datasets.utils")
        if du is not None and not du.are_progress_bars_disabled():
            du.disable_progress_bars()
            restore.callback(du.enable_progress_bars)
        sl = sys.modules.get("setfit.logging")
        if sl is not None:
            restore.callback(sl.set_verbosity, sl.get_verbosity())
            sl.set_verbosity_warning()
        st_logger = logging.getLogger("sentence_transformers")
        restore.callback(st_logger.setLevel, st_logger.level)
        st_logger.setLevel(max(st_logger.getEffectiveLevel(), logging.WARNING))
        yield


class FinetunedBackend:
    """The shared half of the fine-tuned backends: embedder, device, seed, state, ``load``, ``synchronize``,
    ``close``, ``info`` and the start of every ``fit`` (``_begin_fit``).

    Subclasses set ``MODEL`` (the catalog name, in messages), ``BACKEND`` (``info()["backend"]``), ``LIBRARIES``
    (modules whose versions ``info`` records) and implement ``_import_libraries`` (ConfigError naming the missing
    package), ``fit``, ``predict``, and optionally ``_after_load(folder)`` and ``_planned_training``.

    ``embedder``: catalog name (``None``: the paper's; profiles override it); raises ConfigError for an unknown one
    at construction, so a typo fails before any cell runs. ``device``: ``"cpu"``, ``"cuda"``, ``"mps"``. ``seed``: the
    training seed.
    """

    MODEL: ClassVar[str] = ""
    BACKEND: ClassVar[str] = ""
    LIBRARIES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, embedder: str | None, device: str, seed: int) -> None:
        self.embedder = embedder or PAPER_EMBEDDER
        get_embedder_spec(self.embedder)  # a typo fails before any cell runs
        self.device = device
        self.seed = int(seed)
        self._folder: str | None = None
        self._pin: dict[str, Any] | None = None
        self._model: Any = None
        self._classes: list[int] | None = None
        self._training: dict[str, Any] | None = None

    def _import_libraries(self) -> None:
        """Import what training needs (``bench.backends.import_optional``: ConfigError naming the package)."""

    def _after_load(self, folder: str) -> None:
        """Load what the backend needs from the embedder's ``folder`` besides the model (a tokenizer)."""

    def load(self) -> None:
        """Import the libraries and check the embedder: ConfigError naming it if it is not a sentence-transformer
        (no ``modules.json``), or naming the package that is missing. Loading twice does nothing."""
        if self._folder is not None:
            return
        self._import_libraries()
        folder, pin = resolve_sentence_transformer(self.embedder)
        with quiet_training():
            self._after_load(folder)
        self._folder, self._pin = folder, pin

    def _begin_fit(self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str]) -> list[int]:
        """Check the split (DataError: fewer than two classes, or a class with fewer than ``MIN_TEXTS_PER_CLASS``
        texts, naming it), load, seed every generator; the sorted class ids of ``labels``."""
        check_training_set(texts, labels, label_names, model=self.MODEL)
        self.load()
        seed_everything(self.seed)
        return sorted({int(label) for label in labels})

    def _training_record(self, library: str, n_train: int, **details: Any) -> dict[str, Any]:
        """What a fit records in ``info()["training"]``: the library, the seed, ``details``, the training texts."""
        return {"library": library, "seed": self.seed, **details, "n_train": n_train}

    def _planned_training(self) -> dict[str, Any] | None:
        """The training settings the next ``fit`` will use (``info`` before any fit); None where not known yet."""
        return None

    def synchronize(self) -> None:
        """Wait for work queued on the GPU (cuda, mps); a no-op on the CPU."""
        device_synchronize(self.device)

    def close(self) -> None:
        """Drop the trained model (what ``load`` read stays)."""
        self._model = None

    def info(self) -> dict[str, Any]:
        """Embedder and its pin, training settings and seed, classes, library versions, device.

        Before ``fit`` (the runner records a model's info right after loading) the training settings are the ones
        ``fit`` will use (``_planned_training``)."""
        return {
            "backend": self.BACKEND,
            "device": self.device,
            "seed": self.seed,
            "embedder": {"name": self.embedder, "pin": self._pin},
            "training": self._training or self._planned_training(),
            "classes": self._classes,
            "predict_batch_size": PREDICT_BATCH_SIZE,
            "library_versions": library_versions(*self.LIBRARIES),
        }
