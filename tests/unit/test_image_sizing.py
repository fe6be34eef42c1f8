"""Images of a buildable size (only the chosen suite's or models' weights, estimated first, refused above the limit)
and the model store (locked snapshots outside the image, every file checked against the lock before a cell loads it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from bench.catalog.fetch import fetch_to_store, select_models
from bench.catalog.lock import write_lock
from bench.catalog.resolve import MODEL_STORE_ENV, from_model_store, resolve_model, store_folder
from bench.cli import main
from bench.config import load_profile
from bench.containers.image import build_plan
from bench.containers.launch import CONTAINER_MODEL_STORE, ContainerError, container_run
from bench.containers.sizing import IMAGE_WEIGHTS_LIMIT_GB, estimate_weights_gb, plan_image
from bench.errors import ConfigError

QWEN = "Qwen/Qwen2-7B-Instruct"
REV = "f2826a00ceef68f0f2b946d945ecc0477ce4450c"  # the committed lock's Qwen2-7B-Instruct commit
WEIGHTS = b"\x01weights" * 8
CONFIG = b"{}"


def _blob(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(content) + content, usedforsecurity=False).hexdigest()


# --- the size plan -------------------------------------------------------------------------------------------------


def test_the_paper_suite_is_refused_and_the_default_suite_bakes_no_llm() -> None:
    h100 = load_profile("h100")
    paper = plan_image(h100, suite="paper")
    assert len(paper.baked) == 11 and paper.over_limit
    # 382.4 B parameters of the catalog x 2 bytes (no lock entry is verified, so the catalog's counts are the basis)
    assert paper.weights_gb == pytest.approx(764.8)
    default = plan_image(h100)
    assert default.choice == "suite default" and default.baked == [] and not default.over_limit
    assert IMAGE_WEIGHTS_LIMIT_GB == 60.0


def test_models_choose_what_is_baked() -> None:
    plan = plan_image(load_profile("h100"), models=["qwen-7b,phi-3.5-mini", "qwen-7b@1x2"])
    assert [m.name for m in plan.baked] == ["qwen-7b", "phi-3.5-mini"]  # a placement bakes its base model once
    assert plan.weights_gb == pytest.approx(7.6 * 2 + 3.8 * 2) and not plan.over_limit
    assert any("qwen-7b" in line and "7.6B params x 2 bytes" in line for line in plan.describe())


def test_a_verified_entry_is_sized_by_its_files() -> None:
    entry = {"files": {"model.safetensors": {"sha256": "a" * 64, "size": 3_000_000_000}, "x.json": {"size": 9}}}
    assert estimate_weights_gb(QWEN, 7.6, entry) == (3.0, "lock file sizes")
    assert estimate_weights_gb(QWEN, 7.6, None) == (pytest.approx(15.2), "7.6B params x 2 bytes")


def test_bad_choices_are_named() -> None:
    h100 = load_profile("h100")
    with pytest.raises(ConfigError, match=r"no suite 'papr'; its suites: .*paper"):
        plan_image(h100, suite="papr")
    with pytest.raises(ConfigError, match="qwen-7"):
        plan_image(h100, models=["qwen-7"])
    with pytest.raises(ConfigError, match="not both"):
        select_models(h100, suite="paper", models=["qwen-7b"])


def test_build_plan_passes_the_choice_to_the_dockerfile() -> None:
    h100 = load_profile("h100")
    assert build_plan(h100).build_args["SUITE"] == "default"
    plan = build_plan(h100, models=["qwen-7b", "phi-3.5-mini"])
    assert plan.build_args["SUITE"] == "" and plan.build_args["MODELS"] == "qwen-7b,phi-3.5-mini"
    dockerfile = Path(plan.dockerfile).read_text()
    assert '${SUITE:+--suite "${SUITE}"} ${MODELS:+--model "${MODELS}"}' in dockerfile


def test_cli_dry_run_prints_size_refusal_and_default(capsys: Any) -> None:
    assert main(["image", "build", "--profile", "h100", "--suite", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "estimated model weights: 764.8 GB (limit 60 GB" in out
    assert "refusing to build" in out and "--yes" in out and "--model-store" in out
    assert "the default suite's image: 0.0 GB" in out
    assert "dry run: docker build" in out and "SUITE=paper" in out
    assert "11 model lock entries are not verified" in out


def test_cli_refuses_above_the_limit_before_asking_an_engine(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/bench-test.sock")
    assert main(["image", "build", "--profile", "h100", "--suite", "paper"]) == 2
    assert "refusing to build: the image would bake 764.8 GB" in capsys.readouterr().err
    assert main(["image", "build", "--profile", "h100", "--suite", "paper", "--yes", "--dry-run"]) == 0
    assert "--yes was given: it would build" in capsys.readouterr().out


# --- the model store ---------------------------------------------------------------------------------------------


@pytest.fixture
def verified_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lock whose Qwen2-7B entry is verified with two files; the store holds exactly those files."""
    lock = tmp_path / "models.lock.json"
    files = {
        "config.json": {"git_blob_sha1": _blob(CONFIG), "size": len(CONFIG)},
        "model.safetensors": {"sha256": hashlib.sha256(WEIGHTS).hexdigest(), "size": len(WEIGHTS)},
    }
    write_lock({QWEN: {"revision": REV, "verified": True, "files": files, "sources": []}}, lock)
    monkeypatch.setenv("BENCH_MODEL_LOCK", str(lock))
    return lock


def _fill(store: Path, weights: bytes = WEIGHTS) -> Path:
    folder = store_folder(store, QWEN, REV)
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(CONFIG)
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_a_run_loads_from_the_store_after_checking_every_file(
    tmp_path: Path, verified_lock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _fill(tmp_path / "store")
    monkeypatch.setenv(MODEL_STORE_ENV, str(tmp_path / "store"))
    path, pin = resolve_model(QWEN, REV)
    assert path == str(folder) == pin["path"]
    assert pin["source"] == "model-store" and pin["files_checked"] == 2
    assert pin["file_digests"]["model.safetensors"] == hashlib.sha256(WEIGHTS).hexdigest()


def test_a_changed_file_in_the_store_is_refused_naming_both_digests(tmp_path: Path, verified_lock: Path) -> None:
    _fill(tmp_path / "store", WEIGHTS + b"!")
    with pytest.raises(ConfigError) as err:
        from_model_store(tmp_path / "store", QWEN, REV)
    text = str(err.value)
    assert "model.safetensors" in text and hashlib.sha256(WEIGHTS + b"!").hexdigest() in text
    assert hashlib.sha256(WEIGHTS).hexdigest() in text


def test_store_without_the_snapshot_or_at_another_commit(tmp_path: Path, verified_lock: Path) -> None:
    with pytest.raises(ConfigError, match="no snapshot of Qwen/Qwen2-7B-Instruct@f2826a00ceef"):
        from_model_store(tmp_path, QWEN, REV)
    other = "1" * 40
    store_folder(tmp_path, QWEN, other).mkdir(parents=True)
    with pytest.raises(ConfigError, match="is not the commit"):
        from_model_store(tmp_path, QWEN, other)


def test_an_unverified_entry_cannot_be_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "models.lock.json"
    write_lock({QWEN: {"revision": REV, "verified": False}}, lock)
    monkeypatch.setenv("BENCH_MODEL_LOCK", str(lock))
    _fill(tmp_path / "store")
    with pytest.raises(ConfigError, match="has no file digests"):
        from_model_store(tmp_path / "store", QWEN, REV)


def test_fetch_to_store_downloads_the_locked_commit(
    tmp_path: Path, verified_lock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id: str, *, revision: str, local_dir: Path, token: str | None = None) -> str:
        calls.append((repo_id, revision, Path(local_dir)))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / "config.json").write_bytes(CONFIG)
        (Path(local_dir) / "model.safetensors").write_bytes(WEIGHTS)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    fetched = fetch_to_store(tmp_path / "store", ["linear-bow", "qwen-7b@1x2"])
    assert calls == [(QWEN, REV, store_folder(tmp_path / "store", QWEN, REV))]
    assert fetched[0].pin["files_checked"] == 2
    with pytest.raises(ConfigError, match="a model store holds Hub LLMs only"):
        fetch_to_store(tmp_path / "store", ["linear-bow"])


def test_fetch_to_store_failure_is_a_clear_error(
    tmp_path: Path, verified_lock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    def offline(*args: Any, **kwargs: Any) -> str:
        raise OSError("offline mode is enabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ConfigError, match=r"could not fetch Qwen/Qwen2-7B-Instruct@f2826a00ceef.*needs Hub access"):
        fetch_to_store(tmp_path / "store", ["qwen-7b"])


def test_run_model_store_must_be_a_folder(tmp_path: Path, capsys: Any) -> None:
    assert main(["run", "--model-store", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "--model-store" in capsys.readouterr().err


def test_the_container_mounts_the_store_read_only(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    run = container_run(load_profile("cpu"), "sha256:abc", [], tmp_path / "r", {}, model_store=tmp_path / "store")
    assert run.volumes[str((tmp_path / "store").resolve())] == {"bind": CONTAINER_MODEL_STORE, "mode": "ro"}
    assert run.command[run.command.index("--model-store") + 1] == CONTAINER_MODEL_STORE
    with pytest.raises(ContainerError, match="no such folder"):
        container_run(load_profile("cpu"), "sha256:abc", [], tmp_path / "r", {}, model_store=tmp_path / "nope")


def test_the_committed_lock_is_what_the_image_label_hashes() -> None:
    # the lock file images record (io.bench.model-lock-sha256) is the committed one unless BENCH_MODEL_LOCK says else
    plan = build_plan(load_profile("cpu"))
    from bench.catalog.lock import lock_path

    assert plan.build_args["MODEL_LOCK_SHA256"] == hashlib.sha256(lock_path().read_bytes()).hexdigest()
    assert json.loads(lock_path().read_text())["schema_version"] == 1
