"""clf: models (issue 13, D): a user's fine-tuned sequence classifier through transformers' text-classification
pipeline, its labels matched to the data's, its pin, on a tiny BERT the test builds."""

from __future__ import annotations

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
        folder.mkdir(parents=True, exist_ok=True)
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
