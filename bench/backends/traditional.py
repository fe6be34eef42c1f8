"""The paper's traditional models: LogisticRegression or XGBClassifier on word counts, character TF-IDF or sentence
embeddings, all with library defaults and no tuning (Zschache & Hartwig, section "Models").

Bag-of-words tokenises by the data's script (``bench.data.scripts.bow_tokenisation``): texts written without spaces
between words (Chinese, Japanese, Thai, ...; from ``language`` or detected from the training texts) are segmented
into words by ICU; all others keep scikit-learn's default token pattern, as the paper. ``info()["tokenisation"]``
records which and why.

sklearn, xgboost, torch and sentence-transformers are imported inside methods (``load`` imports them, so their
import cost lands in the separately timed load phase, never in the metered ``predict`` window).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from bench.backends import import_optional
from bench.backends.base import device_synchronize, library_versions
from bench.catalog.embedders import PAPER_EMBEDDER, get_embedder_spec, resolve_embedder_path
from bench.data.scripts import Tokenisation, bow_tokenisation
from bench.errors import ConfigError, DataError, did_you_mean

CLASSIFIERS: tuple[str, ...] = ("logreg", "xgboost")
FEATURES: tuple[str, ...] = ("bow", "tfidf-char", "embedding")

#: How bag-of-words splits texts into words, recorded in ``info()["tokenisation"]`` (see the module).
TOKENISATION_RULE = (
    "per data set at fit (bench.data.scripts.bow_tokenisation): ICU word segmentation when the language or the "
    "training texts' script is one written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese), else "
    "scikit-learn's default token pattern, as the paper"
)

#: sentence-transformers' own default; fixed here so it is recorded and cannot drift with a library upgrade.
ENCODE_BATCH_SIZE = 32

# One loaded encoder per (folder, device) for the whole process: the 12 embedding cells of a dataset (2 classifiers
# x repetitions) share one load. The runner times the first load; later loads report cache_hit=True.
_ENCODERS: dict[tuple[str, str], Any] = {}
_ENCODERS_LOCK = threading.Lock()


def clear_embedder_cache() -> None:
    """Drop every cached sentence encoder (frees its memory; the next ``load()`` loads from disk again)."""
    with _ENCODERS_LOCK:
        _ENCODERS.clear()


def _get_encoder(folder: str, device: str) -> tuple[Any, bool]:
    """Return ``(SentenceTransformer, cache_hit)`` for the model in ``folder`` on ``device``."""
    key = (folder, device)
    with _ENCODERS_LOCK:
        if key in _ENCODERS:
            return _ENCODERS[key], True
        st = import_optional("sentence_transformers", "sentence embeddings")
        # Always a local folder (resolve_embedder_path downloaded or located it), so no Hub call happens here.
        encoder = st.SentenceTransformer(folder, device=device, local_files_only=True)
        _ENCODERS[key] = encoder
        return encoder, False


class TraditionalBackend:
    """LogisticRegression / XGBClassifier on BoW, character 2-3-gram TF-IDF or sentence embeddings.

    ``classifier``: ``"logreg"`` or ``"xgboost"``. ``features``: ``"bow"``, ``"tfidf-char"`` or ``"embedding"``.
    ``embedder``: catalog name of the sentence embedder (only used with ``features="embedding"``; ``None`` means
    the paper's); accepted and ignored for the other features so a profile-wide override can be passed to every
    traditional model. ``device``: where the embedder runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); the
    classifiers always run on the CPU, as sklearn does. ``seed``: passed as ``random_state`` (changes nothing with the
    defaults; see ``_make_classifier``).
    """

    def __init__(
        self,
        classifier: str,
        features: str,
        embedder: str | None = None,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        if classifier not in CLASSIFIERS:
            raise ConfigError(
                f"unknown classifier {classifier!r}.{did_you_mean(classifier, CLASSIFIERS)} "
                f"Known: {', '.join(CLASSIFIERS)}."
            )
        if features not in FEATURES:
            raise ConfigError(
                f"unknown features {features!r}.{did_you_mean(features, FEATURES)} Known: {', '.join(FEATURES)}."
            )
        self.classifier = classifier
        self.features = features
        # Validate the name now (cheap, no loading) so a typo fails before any cell runs.
        self.embedder = (embedder or PAPER_EMBEDDER) if features == "embedding" else None
        self._embedder_spec = get_embedder_spec(self.embedder) if self.embedder else None
        self.device = device
        self.seed = int(seed)

        self._loaded = False
        self._encoder: Any = None
        self._encoder_cache_hit: bool | None = None
        self._embedder_pin: dict[str, Any] | None = None
        self._vectorizer: Any = None
        self._tokenisation: Tokenisation | None = None
        self._model: Any = None
        # Sorted original label ids seen in training; XGBoost is trained on their positions 0..K-1.
        self._classes: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Import the libraries and load the sentence encoder (cached per process). Idempotent."""
        if self._loaded:
            return
        import_optional("sklearn", "the traditional models")
        if self.classifier == "xgboost":
            import_optional("xgboost", "the XGBoost classifier")
        if self._embedder_spec is not None:
            folder, self._embedder_pin = resolve_embedder_path(self._embedder_spec)
            self._encoder, self._encoder_cache_hit = _get_encoder(folder, self.device)
        self._loaded = True

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        """Train the vectorizer (BoW / TF-IDF) and the classifier on the training texts. ``language`` (BCP 47,
        ``und``: not given) and the texts' script decide bag-of-words tokenisation (see the module).

        Raises DataError when texts and labels differ in number or the training split has fewer than two classes."""
        import numpy as np

        if len(texts) != len(labels):
            raise DataError(f"fit got {len(texts)} texts but {len(labels)} labels.")
        classes = sorted({int(label) for label in labels})
        if len(classes) < 2:
            raise DataError(
                f"the training split has {len(classes)} class(es) ({classes}); a classifier needs at least two. "
                "Use a larger or stratified training split."
            )
        self.load()
        self._classes = np.asarray(classes, dtype=np.int64)
        if self.features == "bow":
            self._tokenisation = bow_tokenisation(texts, language)
        self._vectorizer = self._make_vectorizer()
        x = self._featurize(texts, training=True)
        y = np.asarray([int(label) for label in labels], dtype=np.int64)
        if self.classifier == "xgboost":
            # XGBoost wants labels 0..K-1; ids absent from training (or gaps such as {0, 3}) map through positions.
            y = np.searchsorted(self._classes, y)
        self._model = self._make_classifier()
        self._model.fit(x, y)

    def predict(self, texts: Sequence[str]) -> list[int]:
        """Return one original label id per text (embedding the texts first for the embedding models)."""
        if self._model is None:
            raise RuntimeError("TraditionalBackend.predict() before fit(): train the model first.")
        if len(texts) == 0:
            return []
        x = self._featurize(texts, training=False)
        predicted = self._model.predict(x)
        if self.classifier == "xgboost":
            predicted = self._classes[predicted.astype("int64")]
        return [int(label) for label in predicted]

    def synchronize(self) -> None:
        """Wait for GPU work (cuda, mps) queued by the encoder; a no-op on the CPU (sklearn and xgboost here are
        synchronous)."""
        device_synchronize(self.device)

    def close(self) -> None:
        """Drop the trained model and the reference to the encoder (which stays cached for other cells)."""
        self._model = None
        self._vectorizer = None
        self._tokenisation = None
        self._classes = None
        self._encoder = None
        self._loaded = False

    # -- provenance ------------------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What ran: classifier, features, parameters, library versions, embedder pin, device and threads."""
        embedder: dict[str, Any] | None = None
        if self._embedder_spec is not None:
            embedder = {
                "name": self._embedder_spec.name,
                "dim": self._embedder_spec.dim,
                "pin": self._embedder_pin,
                "cache_hit": self._encoder_cache_hit,
                "encode_batch_size": ENCODE_BATCH_SIZE,
                "max_seq_length": getattr(self._encoder, "max_seq_length", None),
                "normalize_embeddings": False,
            }
        return {
            "backend": "traditional",
            "classifier": self.classifier,
            "features": self.features,
            "device": self.device,
            "classifier_device": "cpu",
            "seed": self.seed,
            "library_versions": _library_versions(self.classifier, self.features),
            "embedder": embedder,
            "classifier_params": _jsonable(self._model.get_params()) if self._model is not None else None,
            "vectorizer_params": _jsonable(self._vectorizer.get_params()) if self._vectorizer is not None else None,
            "tokenisation": self._tokenisation_info(),
            "classes": [int(c) for c in self._classes] if self._classes is not None else None,
            "threads": _threads(),
        }

    def _tokenisation_info(self) -> dict[str, Any] | None:
        """Bag-of-words only: the rule, and once ``fit`` ran, which tokenisation it chose and why."""
        if self.features != "bow":
            return None
        out: dict[str, Any] = {"rule": TOKENISATION_RULE}
        if self._tokenisation is not None:
            out.update(self._tokenisation.record())
        return out

    # -- internals -------------------------------------------------------------------------------------------------

    def _make_vectorizer(self) -> Any:
        if self.features == "embedding":
            return None
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        if self.features == "bow":
            tokenizer = self._tokenisation.tokenizer() if self._tokenisation is not None else None
            if tokenizer is None:
                return CountVectorizer()  # scikit-learn's defaults, as the paper
            return CountVectorizer(tokenizer=tokenizer, token_pattern=None)
        return TfidfVectorizer(analyzer="char", ngram_range=(2, 3))

    def _make_classifier(self) -> Any:
        # Library defaults, as the paper. random_state=seed changes no modelling default: LogisticRegression's
        # default lbfgs solver ignores it, and XGBClassifier's defaults (subsample=1, colsample_*=1) draw nothing
        # at random (its None default means seed 0). It is passed so the seed is recorded in get_params().
        # n_jobs stays at its default (XGBoost: all cores), so the measured work matches a stock installation.
        if self.classifier == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(random_state=self.seed)
        xgboost = import_optional("xgboost", "the XGBoost classifier")
        return xgboost.XGBClassifier(random_state=self.seed)

    def _featurize(self, texts: Sequence[str], *, training: bool) -> Any:
        texts = list(texts)
        if self.features == "embedding":
            return self._encoder.encode(
                texts, batch_size=ENCODE_BATCH_SIZE, show_progress_bar=False, convert_to_numpy=True
            )
        if training:
            return self._vectorizer.fit_transform(texts)
        return self._vectorizer.transform(texts)


def _library_versions(classifier: str, features: str) -> dict[str, str | None]:
    """Versions of the libraries this model used (from the imported modules, so they are what actually ran)."""
    wanted = ["numpy", "sklearn"]
    if classifier == "xgboost":
        wanted.append("xgboost")
    if features == "embedding":
        wanted += ["sentence_transformers", "transformers", "torch"]
    return library_versions(*wanted)


def _threads() -> dict[str, Any]:
    """Threads the numeric libraries may use: the measured energy depends on it."""
    threads: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        threads["affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on macOS / Windows
        threads["affinity"] = None
    torch = sys.modules.get("torch")
    threads["torch"] = torch.get_num_threads() if torch is not None else None
    try:
        from threadpoolctl import threadpool_info

        threads["threadpools"] = [
            {key: pool.get(key) for key in ("user_api", "internal_api", "num_threads")} for pool in threadpool_info()
        ]
    except ImportError:
        threads["threadpools"] = None
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        threads[var] = os.environ.get(var)
    return threads


def _jsonable(value: Any) -> Any:
    """Make estimator parameters JSON-safe: results are strict JSON (no NaN, no Python types)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return repr(value)
