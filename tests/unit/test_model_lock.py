"""The committed model lock: its shape, its loader's errors, and `bench models lock --verify` against a fake Hub."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub.hf_api import ModelInfo

from bench.catalog import lock as lockmod
from bench.catalog.fetch import hub_model_ids
from bench.catalog.lock import (
    check_snapshot,
    git_blob_sha1,
    load_lock,
    unverified_warnings,
    verify_lock,
    write_lock,
)
from bench.catalog.models import MODELS
from bench.cli import main
from bench.errors import ConfigError

COMMITTED = Path(lockmod.__file__).resolve().parent / "models.lock.json"
PAPER_LLMS = [s for s in MODELS.values() if s.kind == "llm" and s.paper_label]


def test_committed_lock_has_the_papers_11_llms_each_with_two_sources() -> None:
    lock = load_lock(COMMITTED)
    paper_ids = {str(s.params["model"]) for s in PAPER_LLMS}
    assert len(paper_ids) == 11 and set(lock) == paper_ids == set(hub_model_ids())
    for hub_id, entry in lock.items():
        assert re.fullmatch(r"[0-9a-f]{40}", entry["revision"]), hub_id
        assert entry["verified"] is False  # nobody here could ask the Hub
        assert len(entry["sources"]) >= 2, hub_id
        wheres = [s["where"] for s in entry["sources"]]
        assert len(set(wheres)) == len(wheres), f"{hub_id}: a source listed twice"
        for source in entry["sources"]:
            assert entry["revision"] in source["quote"] or entry["revision"] in source["where"], (hub_id, source)


def _write(tmp_path: Path, models: Any) -> Path:
    path = tmp_path / "models.lock.json"
    path.write_text(json.dumps({"schema_version": 1, "models": models}))
    return path


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"revision": "main"}, "revision must be a 40-hex commit"),
        ("abc", "must be an object"),
        ({"revision": "a" * 40, "verified": "yes"}, "verified must be true or false"),
        ({"revision": "a" * 40, "sources": ["x"]}, "sources must be a list"),
        ({"revision": "a" * 40, "files": []}, "files must be an object"),
        ({"revision": "a" * 40, "files": {"x": {"size": 1}}}, r"files\['x'\] needs one of"),
        ({"revision": "a" * 40, "files": {"x": {"sha256": "zz"}}}, "sha256 must be 64 hex"),
        ({"revision": "a" * 40, "files": {"x": {"git_blob_sha1": "zz"}}}, "git_blob_sha1 must be 40 hex"),
        ({"revision": "a" * 40, "verified": True}, "verified is true but files is empty"),
    ],
)
def test_malformed_entries_name_file_entry_and_field(tmp_path: Path, entry: Any, message: str) -> None:
    path = _write(tmp_path, {"org/model": entry})
    with pytest.raises(ConfigError, match=message) as err:
        load_lock(path)
    assert str(path) in str(err.value) and "org/model" in str(err.value)


def test_not_json_and_wrong_schema(tmp_path: Path) -> None:
    path = tmp_path / "models.lock.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_lock(path)
    path.write_text(json.dumps({"schema_version": 2, "models": {}}))
    with pytest.raises(ConfigError, match="schema_version 1"):
        load_lock(path)
    path.write_text("[]")
    with pytest.raises(ConfigError, match="schema_version 1"):
        load_lock(path)


def test_write_lock_keeps_the_note(tmp_path: Path) -> None:
    path = tmp_path / "models.lock.json"
    write_lock({"a/b": {"revision": "a" * 40}}, path, note="why")
    write_lock({"a/b": {"revision": "b" * 40}}, path)
    assert json.loads(path.read_text())["note"] == "why"


def test_unverified_warnings_name_model_and_command() -> None:
    warnings = unverified_warnings(["meta-llama/Llama-3.1-8B-Instruct", "not/locked"], COMMITTED)
    assert len(warnings) == 1
    assert "meta-llama/Llama-3.1-8B-Instruct@0e9e39f249a1" in warnings[0]
    assert "bench models lock --verify" in warnings[0]


# --- --verify against a fake Hub -------------------------------------------------------------------------------------

WEIGHTS = b"\x00weights" * 10
CONFIG = b'{"model_type": "llama"}'


def _blob(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(content) + content, usedforsecurity=False).hexdigest()


class FakeHfApi:
    """Answers ``model_info`` as huggingface_hub's HfApi does: a real ``ModelInfo`` built from the Hub's JSON."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known  # hub id -> its one commit
        self.calls: list[tuple[str, str | None, bool]] = []

    def model_info(self, repo_id: str, *, revision: str | None = None, files_metadata: bool = False) -> ModelInfo:
        from huggingface_hub.utils import RevisionNotFoundError

        self.calls.append((repo_id, revision, files_metadata))
        if self.known.get(repo_id) != revision:
            import httpx

            url = f"https://huggingface.co/api/models/{repo_id}/revision/{revision}"
            response = httpx.Response(404, request=httpx.Request("GET", url))
            raise RevisionNotFoundError(f"404 Client Error. Revision Not Found for url: {url}", response=response)
        siblings = [
            {"rfilename": "config.json", "size": len(CONFIG), "blobId": _blob(CONFIG)},
            {
                "rfilename": "model.safetensors",
                "size": len(WEIGHTS),
                "blobId": "1" * 40,
                "lfs": {"size": len(WEIGHTS), "sha256": hashlib.sha256(WEIGHTS).hexdigest(), "pointerSize": 134},
            },
        ]
        return ModelInfo(id=repo_id, sha=revision, siblings=siblings)


def _lock(tmp_path: Path, revision: str = "c" * 40) -> Path:
    path = tmp_path / "models.lock.json"
    write_lock(
        {"org/model": {"revision": revision, "sources": [{"where": "a"}, {"where": "b"}], "verified": False}}, path
    )
    return path


def test_verify_records_digests_and_sets_verified(tmp_path: Path) -> None:
    path = _lock(tmp_path)
    api = FakeHfApi({"org/model": "c" * 40})
    verify_lock(api=api, path=path)
    assert api.calls == [("org/model", "c" * 40, True)]
    entry = load_lock(path)["org/model"]
    assert entry["verified"] is True and entry["verified_at"]
    assert entry["files"]["model.safetensors"] == {"sha256": hashlib.sha256(WEIGHTS).hexdigest(), "size": len(WEIGHTS)}
    assert entry["files"]["config.json"] == {"git_blob_sha1": _blob(CONFIG), "size": len(CONFIG)}
    assert [s["where"] for s in entry["sources"]] == ["a", "b"]  # sources kept


def test_verify_unknown_commit_names_entry_and_sources(tmp_path: Path) -> None:
    path = _lock(tmp_path)
    with pytest.raises(ConfigError, match="RevisionNotFoundError") as err:
        verify_lock(api=FakeHfApi({"org/model": "d" * 40}), path=path)
    assert "org/model@" + "c" * 40 in str(err.value) and "came from: a; b" in str(err.value)
    assert load_lock(path)["org/model"]["verified"] is False  # nothing written


def test_verify_other_sha_answered(tmp_path: Path) -> None:
    class Liar(FakeHfApi):
        def model_info(self, repo_id: str, **kw: Any) -> ModelInfo:
            return ModelInfo(id=repo_id, sha="e" * 40, siblings=[])

    with pytest.raises(ConfigError, match=r"it answered e{40}"):
        verify_lock(api=Liar({}), path=_lock(tmp_path))


def test_verify_unknown_id_and_empty_lock(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no entry for x/y"):
        verify_lock(["x/y"], api=FakeHfApi({}), path=_lock(tmp_path))
    with pytest.raises(ConfigError, match="no model lock to verify"):
        verify_lock(api=FakeHfApi({}), path=tmp_path / "absent.json")


def test_verify_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE=1 forbids the network"):
        verify_lock(path=_lock(tmp_path))


def test_cli_verify_uses_huggingface_hub_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import huggingface_hub

    path = _lock(tmp_path)
    monkeypatch.setenv("BENCH_MODEL_LOCK", str(path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: FakeHfApi({"org/model": "c" * 40}))
    assert main(["models", "lock", "--verify"]) == 0
    assert "verified, 2 files" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "lock", "--verify"]) == 2
    assert "forbids the network" in capsys.readouterr().err


# --- checking a folder against the lock ---------------------------------------------------------------------------


def _verified_entry() -> dict[str, Any]:
    return {
        "revision": "c" * 40,
        "verified": True,
        "files": {
            "config.json": {"git_blob_sha1": _blob(CONFIG), "size": len(CONFIG)},
            "model.safetensors": {"sha256": hashlib.sha256(WEIGHTS).hexdigest(), "size": len(WEIGHTS)},
        },
    }


def test_check_snapshot_passes_and_reports(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(CONFIG)
    (tmp_path / "model.safetensors").write_bytes(WEIGHTS)
    assert git_blob_sha1(tmp_path / "config.json") == _blob(CONFIG)
    out = check_snapshot(tmp_path, "org/model", _verified_entry())
    assert out["files_checked"] == 2 and out["digests"]["model.safetensors"] == hashlib.sha256(WEIGHTS).hexdigest()


def test_check_snapshot_mismatch_names_file_and_both_digests(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(CONFIG)
    (tmp_path / "model.safetensors").write_bytes(WEIGHTS + b"x")
    with pytest.raises(ConfigError) as err:
        check_snapshot(tmp_path, "org/model", _verified_entry())
    text = str(err.value)
    assert "model.safetensors" in text
    assert hashlib.sha256(WEIGHTS + b"x").hexdigest() in text and hashlib.sha256(WEIGHTS).hexdigest() in text


def test_check_snapshot_missing_file_and_unverified_entry(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(CONFIG)
    with pytest.raises(ConfigError, match=r"model.safetensors of org/model@c{12} is missing"):
        check_snapshot(tmp_path, "org/model", _verified_entry())
    with pytest.raises(ConfigError, match="has no file digests"):
        check_snapshot(tmp_path, "org/model", {"revision": "c" * 40})


# --- runs: an unverified entry runs, with a warning in the results and the report --------------------------------


def test_a_suite_with_unverified_hub_llms_gets_one_warning_each(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.config import SuiteSpec
    from bench.run.plan import lock_warnings, suite_hub_ids

    monkeypatch.setenv("BENCH_MODEL_LOCK", str(COMMITTED))
    suite = SuiteSpec(datasets=["x"], models=["linear-bow", "smollm2-135m", "qwen-7b", "llama-3.1-70b@2x1"])
    assert suite_hub_ids(suite) == ["Qwen/Qwen2-7B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"]
    warnings = lock_warnings(suite)
    assert len(warnings) == 2 and "Qwen/Qwen2-7B-Instruct@f2826a00ceef" in warnings[0]
    assert lock_warnings(SuiteSpec(datasets=["x"], models=["linear-bow", "smollm2-135m"])) == []


def test_the_report_shows_the_lock_warning() -> None:
    from bench.report import render_report
    from bench.report.sample import sample_document

    doc = sample_document(("tomatoes",), repetitions=1, models=1, predictions=False)
    text = unverified_warnings(["Qwen/Qwen2-7B-Instruct"], COMMITTED)[0]
    html = render_report(doc.model_copy(update={"warnings": [text]}))
    assert "Qwen/Qwen2-7B-Instruct@f2826a00ceef is not verified against the Hub" in html
