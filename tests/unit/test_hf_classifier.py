"""clf: models (issue 13, D): a user's fine-tuned sequence classifier through transformers' text-classification
pipeline, its labels matched to the data's, its pin, on a tiny BERT the test builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.backends.hf_classifier import HFClassifierBackend, check_labels
from bench.catalog.models import absolute_user_model, get_model_spec, split_placement, user_model_ref
from bench.catalog.resolve import resolve_user_model
from bench.errors import ConfigError
from bench.fsutil import folder_sha256
from tests.tiny_models import build_tiny_classifier


def test_labels_match_by_name_ignoring_case_and_whitespace() -> None:
    assert check_labels({0: "NEGATIVE", 1: " Positive "}, ["positive", "negative"], model="m") == {0: 1, 1: 0}


def test_generic_labels_need_a_label_map_and_the_error_lists_both_sides() -> None:
    with pytest.raises(ConfigError) as err:
        check_labels({0: "LABEL_0", 1: "LABEL_1"}, ["neg", "pos"], model="clf:x")
    message = str(err.value)
    assert "model labels: 'LABEL_0', 'LABEL_1'" in message.replace("model's labels", "model labels")
    assert "the data's labels: 'neg', 'pos'" in message and "Generic names like LABEL_0" in message
    assert "--label-map LABEL_0=neg,LABEL_1=pos" in message
    assert check_labels(
        {0: "LABEL_0", 1: "LABEL_1"}, ["neg", "pos"], {"label_0": "NEG", "LABEL_1": "pos"}, model="m"
    ) == {
        0: 0,
        1: 1,
    }
    with pytest.raises(ConfigError, match=r"--label-map entries naming no data label: LABEL_1=good"):
        check_labels({0: "LABEL_0", 1: "LABEL_1"}, ["neg", "pos"], {"LABEL_0": "neg", "LABEL_1": "good"}, model="m")
    # half a map: the hint completes it with the data label not yet taken, keeping what the user mapped
    with pytest.raises(ConfigError, match=r"map them with --label-map LABEL_0=neg,LABEL_1=pos$"):
        check_labels({0: "LABEL_0", 1: "LABEL_1"}, ["pos", "neg"], {"LABEL_0": "neg"}, model="m")


def test_user_model_names() -> None:
    assert user_model_ref("clf:org/name@abc123") == ("clf", "org/name", "abc123", False)
    assert user_model_ref("hf:./folder") == ("hf", "./folder", None, True)
    assert split_placement("clf:org/name@abc123") == ("clf:org/name@abc123", None)
    assert get_model_spec("clf:org/name@abc123").params == {"model": "org/name", "revision": "abc123"}
    assert get_model_spec("hf:org/name").kind == "llm" and get_model_spec("clf:org/name").kind == "classifier"
    assert absolute_user_model("clf:./x").startswith("clf:/") and absolute_user_model("clf:org/n") == "clf:org/n"
    with pytest.raises(ConfigError, match=r"--model 'clf:': nothing after 'clf:'"):
        get_model_spec("clf:")
    with pytest.raises(ConfigError, match=r"neither a folder here nor a Hub id"):
        get_model_spec("clf:not a model")


def test_an_uncached_hub_model_without_revision_says_how_to_pin_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"not in the local Hugging Face cache.*clf:nobody-xyz/none@REVISION"):
        resolve_user_model("nobody-xyz/none", None)


def test_tiny_classifier_end_to_end_with_its_folder_pin(tmp_path: Path) -> None:
    folder = build_tiny_classifier(tmp_path / "clf", {0: "Negative", 1: "Positive"})
    backend = HFClassifierBackend(str(folder))
    backend.load()
    backend.fit([], [], ["negative", "positive"])
    predictions = backend.predict(["a great movie", "a bad film"] * 3)
    assert len(predictions) == 6 and set(predictions) <= {0, 1}
    assert predictions == backend.predict(["a great movie", "a bad film"] * 3)  # deterministic (eval mode)
    info = backend.info()
    assert info["pin"] == {"source": "local", "path": str(folder.resolve()), "folder_sha256": folder_sha256(folder)}
    assert info["model_label_to_data_label"] == {"0": 0, "1": 1}
    # a text longer than the model's 64 positions is cut, not a crash
    assert len(backend.predict(["great " * 500])) == 1
    backend.close()


def test_an_unpinned_hub_model_is_resolved_to_the_commit_the_hub_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online, `clf:org/name` without @REV: the Hub's answer (ModelInfo.sha) is the commit fetched and recorded."""
    import huggingface_hub
    from huggingface_hub.hf_api import ModelInfo

    import bench.catalog.resolve as module

    sha = "0123456789abcdef0123456789abcdef01234567"
    asked: list[tuple[str, object]] = []

    class FakeApi:
        def model_info(self, repo_id: str, timeout: float | None = None) -> ModelInfo:
            return ModelInfo(id=repo_id, sha=sha)

    def fake_download(repo_id: str, revision: str | None = None, local_files_only: bool = False) -> str:
        asked.append((revision, local_files_only))
        if local_files_only:
            raise FileNotFoundError("not cached")
        folder = tmp_path / "snapshots" / str(revision)
        if not folder.is_dir():  # a complete classifier: the snapshot is checked for its tokenizer like a folder
            build_tiny_classifier(folder, {0: "neg", 1: "pos"})
        return str(folder)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    path, pin = module.resolve_user_model("org/name", None)
    assert path.name == sha and asked == [(sha, True), (sha, False)]
    assert pin["revision"] == sha and pin["revision_from"].startswith("the Hub's default branch")

    class SilentApi:  # no network: the cache is asked for the latest snapshot instead
        def model_info(self, repo_id: str, timeout: float | None = None) -> ModelInfo:
            raise OSError("no route to host")

    monkeypatch.setattr(huggingface_hub, "HfApi", SilentApi)
    with pytest.raises(ConfigError, match=r"not in the local Hugging Face cache.*clf:org/name@REVISION"):
        module.resolve_user_model("org/name", None)


def test_a_generative_model_given_as_clf_is_refused_naming_hf(tmp_path: Path) -> None:
    from bench.backends.hf_classifier import read_id2label
    from tests.tiny_models import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "llm")
    with pytest.raises(ConfigError, match=r"names LlamaForCausalLM, not a sequence classifier.*--model hf:"):
        read_id2label(folder)
    assert read_id2label(build_tiny_classifier(tmp_path / "clf", {0: "neg", 1: "pos"})) == {0: "neg", 1: "pos"}


# --- issue 24, 1: the folder's tokenizer is checked before any energy is spent ---------------------------------------


def _without_tokenizer(folder: Path) -> Path:
    """The classifier's folder as a user saves it with ``model.save_pretrained`` only: config and weights."""
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (folder / name).unlink(missing_ok=True)
    return folder


def test_a_folder_without_its_tokenizer_is_refused_naming_the_folder_and_the_fix(tmp_path: Path) -> None:
    """Before: transformers built a default BertTokenizer (5 tokens, every word [UNK]) and the model ran at chance."""
    folder = _without_tokenizer(build_tiny_classifier(tmp_path / "clf", {0: "neg", 1: "pos"}))
    for load in (lambda: resolve_user_model(str(folder), None), HFClassifierBackend(str(folder)).load):
        with pytest.raises(ConfigError) as err:
            load()
        message = str(err.value)
        assert f"model clf:{folder}: {folder} has no complete tokenizer" in message
        assert "a tokenizer vocabulary (tokenizer.json or vocab.txt or vocab.json + merges.txt" in message
        assert "tokenizer_config.json" in message and "[UNK]" in message and ".save_pretrained(" in message


def test_half_a_tokenizer_names_the_file_missing(tmp_path: Path) -> None:
    folder = _without_tokenizer(build_tiny_classifier(tmp_path / "clf", {0: "neg", 1: "pos"}))
    (folder / "vocab.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"missing: merges.txt \(beside vocab.json\)\)"):
        resolve_user_model(str(folder), None)


def test_the_same_folder_with_its_tokenizer_runs_and_records_it(tmp_path: Path) -> None:
    folder = build_tiny_classifier(tmp_path / "clf", {0: "neg", 1: "pos"})
    backend = HFClassifierBackend(str(folder))
    backend.load()
    backend.fit([], [], ["neg", "pos"])
    assert len(backend.predict(["a great movie", "a bad film"])) == 2
    facts = backend.info()["tokenizer"]
    assert facts["vocab_size"] <= facts["embedding_rows"] and facts["class"]
    # padded embeddings (more rows than tokens) are common and fine
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 64}))
    from bench.catalog.resolve import check_classifier_folder

    padded = check_classifier_folder(folder, model="clf:x")
    assert padded["embedding_rows"] == padded["tokenizer_vocab_size"] + 64


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    folder = build_tiny_classifier(tmp_path / "clf", {0: "neg", 1: "pos"})
    rows = json.loads((folder / "config.json").read_text())["vocab_size"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([f"newword{i}" for i in range(10)])  # not the tokenizer the model was trained with
    tokenizer.save_pretrained(folder)
    with pytest.raises(ConfigError) as err:
        resolve_user_model(str(folder), None)
    message = str(err.value)
    assert f"the tokenizer in {folder} has {rows + 10:,} tokens" in message
    assert f"embedding has {rows:,} rows (config.json vocab_size)" in message


def test_the_run_preflight_refuses_such_a_folder_before_the_grid(tmp_path: Path) -> None:
    """``bench run``'s preflight checks a classifier's labels through ``resolve_user_model``: the tokenizer check
    comes with it, before any meter starts."""
    from bench.catalog.models import get_model_spec
    from bench.run.models import check_classifier_labels

    folder = _without_tokenizer(build_tiny_classifier(tmp_path / "clf", {0: "neg", 1: "pos"}))
    with pytest.raises(ConfigError, match=r"has no complete tokenizer"):
        check_classifier_labels(get_model_spec(f"clf:{folder}"), {"d": ["neg", "pos"]}, {})


def test_a_hub_snapshot_without_tokenizer_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    sha = "0123456789abcdef0123456789abcdef01234567"
    snapshot = _without_tokenizer(build_tiny_classifier(tmp_path / "snapshots" / sha, {0: "neg", 1: "pos"}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(snapshot))
    with pytest.raises(ConfigError) as err:
        resolve_user_model("org/name", sha)
    message = str(err.value)
    assert f"model clf:org/name@{sha}: {snapshot} has no complete tokenizer" in message
    assert "The model repository lacks them" in message
