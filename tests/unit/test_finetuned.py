"""The fine-tuned families (setfit, finetune-head) on the offline all-MiniLM-L6-v2, with settings cut to a few steps
so a tiny corpus trains in seconds; and their bad inputs: a class with one training text, an embedder that is not
a sentence-transformer."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.backends import create_backend
from bench.backends.setfit_backend import check_training_set
from bench.catalog.embedders import OFFLINE_EMBEDDER
from bench.catalog.models import get_model_spec, list_models
from bench.errors import ConfigError, DataError
from tests.tiny_models import build_tiny_classifier
from tests.unit.test_traditional import LABEL_NAMES, make_corpus

TRAIN = make_corpus(24, seed=1)
TEST = make_corpus(15, seed=2)
# A few optimizer steps each: what is tested is the wiring, not the accuracy of a real training.
FAST = {
    "setfit": {"num_iterations": 2, "max_steps": 6, "batch_size": 8},
    "finetune-head": {"epochs": 3, "batch_size": 8, "learning_rate": 1e-4},
}


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    """Hub forbidden, as in the CPU image; one torch thread (on a shared, busy machine two threads spin against
    each other and training runs several times slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield
    torch.set_num_threads(threads)


def make(name: str, seed: int = 0) -> object:
    spec = get_model_spec(name)
    return create_backend(spec, embedder=OFFLINE_EMBEDDER, device="cpu", seed=seed, **FAST[name])


def test_catalog_has_both_families_on_the_embedder() -> None:
    names = [spec.name for spec in list_models("finetuned")]
    assert names == ["setfit", "finetune-head"]
    for name in names:
        assert "embedder" in get_model_spec(name).params  # so the profile's embedder is passed (bench.run.models)


@pytest.mark.parametrize("name", ["setfit", "finetune-head"])
def test_trains_predicts_and_records_settings(name: str) -> None:
    backend = make(name)
    backend.load()
    before = backend.info()["training"]  # the runner records info right after load: the settings fit will use
    assert before["seed"] == 0 and (before.get("overrides") or before.get("settings"))
    backend.fit(*TRAIN, LABEL_NAMES)
    predicted = backend.predict(TEST[0])
    assert len(predicted) == len(TEST[0]) and set(predicted) <= {0, 1, 2}
    assert backend.predict(TEST[0]) == predicted  # deterministic: the window's loop rule needs it
    assert backend.predict([]) == []
    info = backend.info()
    json.dumps(info)  # stored in results.json: strict JSON
    assert info["seed"] == 0 and info["training"]["seed"] == 0
    assert info["embedder"]["name"] == OFFLINE_EMBEDDER and info["embedder"]["pin"]["sha256"]
    assert info["training"]["n_train"] == len(TRAIN[0])
    if name == "setfit":
        assert info["training"]["overrides"] == FAST["setfit"]
        assert info["training"]["arguments"]["max_steps"] == 6
        assert info["library_versions"]["setfit"]
    else:
        assert info["training"]["settings"]["epochs"] == 3
        assert info["training"]["steps"] == 3 * 3  # 24 texts / batch 8 = 3 steps per epoch
    backend.close()


#: What a tqdm bar writes (``Map: 100%|####| 24/24 [00:00<00:00, 310.2 examples/s]``) and the libraries' chatter.
BAR = re.compile(r"\d+%\||\d+/\d+ \[|it/s\]|s/it\]|examples/s")
CHATTER = ("Map", "Batches", "Running training", "train_runtime", "Iteration", "Epoch")


def test_a_setfit_cell_prints_no_progress_bar_and_restores_the_libraries(capfd: pytest.CaptureFixture[str]) -> None:
    """A cell of the setfit backend (training window, warm-up, inference, as `bench run` runs it): nothing of
    tqdm or the libraries' logging reaches the terminal (the run's own progress bar is the interface), and the
    libraries' switches are as they were afterwards."""
    from types import SimpleNamespace

    import transformers

    from bench.run.cell import run_cell
    from bench.validation import Expectations
    from tests.unit.test_training_window import IDLE, FakeMeters

    backend = make("setfit")
    backend.load()
    setfit_logging = sys.modules["setfit.logging"]
    before = (transformers.utils.logging.is_progress_bar_enabled(), setfit_logging.get_verbosity())
    texts = list(TRAIN[0]) + list(TEST[0])
    record = SimpleNamespace(
        splits=[SimpleNamespace(train_idx=list(range(len(TRAIN[0]))), test_idx=list(range(len(TRAIN[0]), len(texts))))],
        test_labels={"0": list(TEST[1])},
        label_names=LABEL_NAMES,
        language="en",
    )
    data = SimpleNamespace(record=record, texts=texts, labels=list(TRAIN[1]) + list(TEST[1]))
    capfd.readouterr()
    cell = run_cell(
        backend,
        data,
        "toy",
        "setfit",
        0,
        FakeMeters([1.0, 1.0]),
        min_window_s=0.0,
        max_loops=1,
        idle_w=IDLE,
        load_s=0.0,
        gpus=None,
        expectations=Expectations(),
        meter_training=True,
    )
    out, err = capfd.readouterr()
    assert cell.status == "ok", cell.error
    assert not BAR.search(err) and not BAR.search(out), err[-2000:] + out[-2000:]
    assert not [word for word in CHATTER if word in err or word in out], err[-2000:] + out[-2000:]
    assert (transformers.utils.logging.is_progress_bar_enabled(), setfit_logging.get_verbosity()) == before


def test_finetune_head_same_seed_same_model() -> None:
    first, second = make("finetune-head"), make("finetune-head")
    for backend in (first, second):
        backend.fit(*TRAIN, LABEL_NAMES)
    assert first.predict(TEST[0]) == second.predict(TEST[0])
    assert first.info()["training"]["final_batch_loss"] == second.info()["training"]["final_batch_loss"]


@pytest.mark.parametrize("name", ["setfit", "finetune-head"])
def test_class_with_one_text_is_a_clear_error(name: str) -> None:
    texts, labels = TRAIN[0][:7], [0, 0, 0, 1, 1, 1, 2]  # 'food' (id 2) has one text
    with pytest.raises(DataError, match=r"at least 2 training texts.*'food' \(id 2\): 1 text"):
        make(name).fit(texts, labels, LABEL_NAMES)


@pytest.mark.parametrize("name", ["setfit", "finetune-head"])
def test_class_with_one_text_fails_its_cell_and_the_grid_goes_on(name: str) -> None:
    """Through the runner's own cell function: a failed cell naming the class, the training window closed, nothing
    raised (the grid's next cell runs)."""
    from types import SimpleNamespace

    from bench.run.cell import run_cell
    from bench.validation import Expectations
    from tests.unit.test_training_window import IDLE, FakeMeters

    texts = list(TRAIN[0][:9])
    record = SimpleNamespace(
        splits=[SimpleNamespace(train_idx=list(range(7)), test_idx=[7, 8])],
        test_labels={"0": [0, 1]},
        label_names=LABEL_NAMES,
        language="en",
    )
    data = SimpleNamespace(record=record, texts=texts, labels=[0, 0, 0, 1, 1, 1, 2, 0, 1])  # id 2: one text
    meters = FakeMeters([1.0, 1.0])
    cell = run_cell(
        make(name),
        data,
        "toy",
        name,
        0,
        meters,
        min_window_s=0.0,
        max_loops=1,
        idle_w=IDLE,
        load_s=0.0,
        gpus=None,
        expectations=Expectations(),
        meter_training=True,
    )
    assert not meters.open and cell.status == "failed" and cell.error is not None
    assert cell.error.type == "DataError"
    assert cell.error.message.startswith(f"during training: model {name}: every class needs at least 2 training")
    assert "'food' (id 2): 1 text" in cell.error.message


def test_check_training_set_edges() -> None:
    with pytest.raises(DataError, match="1 class"):
        check_training_set(["a", "b"], [0, 0], ["x", "y"], model="setfit")
    with pytest.raises(DataError, match="2 texts but 1 labels"):
        check_training_set(["a", "b"], [0], ["x", "y"], model="setfit")
    check_training_set(["a", "b", "c", "d"], [0, 0, 1, 1], ["x", "y"], model="setfit")


@pytest.mark.parametrize("name", ["setfit", "finetune-head"])
def test_embedder_that_is_not_a_sentence_transformer_is_refused_at_load(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = build_tiny_classifier(tmp_path / "plain-bert", {0: "neg", 1: "pos"})
    monkeypatch.setattr(
        "bench.backends.finetuned.resolve_embedder_path", lambda spec: (str(folder), {"name": spec.name})
    )
    backend = make(name)
    with pytest.raises(ConfigError, match=rf"embedder '{OFFLINE_EMBEDDER}' \(.*plain-bert\) is not a sentence-trans"):
        backend.load()


@pytest.mark.parametrize("name", ["setfit", "finetune-head"])
def test_embedder_refused_at_load_fails_the_models_cells_naming_it(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's loading (bench.run.models.load_model) returns the refusal as the model's error, so its cells fail
    at load with the embedder named and the grid goes on with the next model."""
    from bench.config import load_profile
    from bench.run.cell import failed_cell
    from bench.run.models import load_model

    folder = build_tiny_classifier(tmp_path / "plain-bert", {0: "neg", 1: "pos"})
    monkeypatch.setattr(
        "bench.backends.finetuned.resolve_embedder_path", lambda spec: (str(folder), {"name": spec.name})
    )
    profile = load_profile("cpu")
    backend, load_s, error = load_model(get_model_spec(name), profile, seed=0)
    assert backend is None and load_s is None and isinstance(error, ConfigError)
    cell = failed_cell("toy", name, 0, "2026-01-01T00:00:00+00:00", error, stage="load")
    assert cell.error is not None and cell.error.message.startswith(f"during load: embedder '{profile.embedder}'")
    assert "is not a sentence-transformer: it has no modules.json" in cell.error.message


def test_unknown_embedder_and_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ConfigError, match="unknown embedder"):
        create_backend(get_model_spec("setfit"), embedder="all-MiniLM-L6", device="cpu", seed=0)
    with pytest.raises(ConfigError, match="epochs must be positive"):
        create_backend(get_model_spec("finetune-head"), embedder=OFFLINE_EMBEDDER, device="cpu", seed=0, epochs=0)


def test_predict_before_fit_is_refused() -> None:
    for name in ("setfit", "finetune-head"):
        with pytest.raises(RuntimeError, match="before fit"):
            make(name).predict(["x"])


def test_profile_training_settings_reach_the_backend() -> None:
    from bench.config import load_profile
    from bench.run.models import load_model

    profile = load_profile("cpu")
    profile = profile.model_copy(update={"training": {"setfit": {"num_iterations": 1}, "linear-bow": {"x": 1}}})
    backend, _, error = load_model(get_model_spec("setfit"), profile, seed=3)
    assert error is None and backend.overrides == {"num_iterations": 1} and backend.seed == 3
    assert backend.embedder == profile.embedder
    _, _, error = load_model(get_model_spec("linear-bow"), profile, seed=0)  # only fine-tuned models take it
    assert error is None
    bad = profile.model_copy(update={"training": {"finetune-head": {"epoch": 2}}})
    _, _, error = load_model(get_model_spec("finetune-head"), bad, seed=0)
    assert isinstance(error, ConfigError) and "epoch" in str(error) and "epochs" in str(error)
