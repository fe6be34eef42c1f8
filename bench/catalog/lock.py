"""The model lock: the exact Hugging Face Hub commit of every Hub model the kit runs.

The catalog names models by Hub id; which commit runs is written in ``models.lock.json`` beside this module, and that
file is committed, so two users of one checkout run the same revisions. Each entry holds:

- ``revision``: a 40-hex commit of the Hub repository;
- ``sources``: where the commit was found (public code that pins it, Hub cache paths
  ``models--org--name/snapshots/<sha>`` in public scripts); never invented or guessed;
- ``verified``: false until ``bench models lock --verify`` asked the Hub that the commit exists (a machine with Hub
  access); then ``files`` holds each file of the snapshot as the Hub's metadata gives it: ``sha256`` (the LFS
  object's, for weights) or ``git_blob_sha1`` (small files kept in git), and ``size`` in bytes.

``bench models lock`` (without ``--verify``) writes the Hub's *current* commit of each model instead, with
``sources`` naming the Hub. Runs and images accept an unverified entry, with a warning in the results and the report.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.fsutil import atomic_write_bytes, file_digest, file_sha256, now_iso

LOCK_SCHEMA_VERSION = 1
_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: How an entry's file digests are named in ``files``: the LFS object's sha256, or git's blob id (sha1 of
#: ``b"blob <size>\0" + content``) for files the Hub keeps in git.
DIGEST_KINDS = ("sha256", "git_blob_sha1")


def lock_path() -> Path:
    """The lock file: $BENCH_MODEL_LOCK, else ``models.lock.json`` beside this module (the committed one)."""
    return Path(os.environ.get("BENCH_MODEL_LOCK", Path(__file__).resolve().parent / "models.lock.json"))


def _check_entry(path: Path, hub_id: str, entry: Any) -> None:
    """Raise ConfigError naming the file, the entry and the field when an entry is malformed."""
    where = f"{path}: models[{hub_id!r}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object with a 'revision', got {type(entry).__name__}")
    if not _SHA.match(str(entry.get("revision", ""))):
        raise ConfigError(
            f"{where}: revision must be a 40-hex commit, got {entry.get('revision')!r}; "
            "rerun `bench models lock` or fix the entry"
        )
    if "verified" in entry and not isinstance(entry["verified"], bool):
        raise ConfigError(f"{where}: verified must be true or false, got {entry['verified']!r}")
    sources = entry.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, dict) and s.get("where") for s in sources):
        raise ConfigError(f"{where}: sources must be a list of objects with a 'where' (URL, repo+path or note)")
    files = entry.get("files", {})
    if not isinstance(files, dict):
        raise ConfigError(f"{where}: files must be an object (file name -> digest), got {type(files).__name__}")
    for name, meta in files.items():
        if not isinstance(meta, dict) or not any(k in meta for k in DIGEST_KINDS):
            raise ConfigError(f"{where}: files[{name!r}] needs one of {DIGEST_KINDS}, got {meta!r}")
        if "sha256" in meta and not _SHA256.match(str(meta["sha256"])):
            raise ConfigError(f"{where}: files[{name!r}].sha256 must be 64 hex digits, got {meta['sha256']!r}")
        if "git_blob_sha1" in meta and not _SHA.match(str(meta["git_blob_sha1"])):
            raise ConfigError(
                f"{where}: files[{name!r}].git_blob_sha1 must be 40 hex digits, got {meta['git_blob_sha1']!r}"
            )
    if entry.get("verified") and not files:
        raise ConfigError(f"{where}: verified is true but files is empty; rerun `bench models lock --verify`")


def load_lock(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Hub id -> entry (see the module doc). A missing file is an empty lock; a malformed one is a ConfigError
    naming the file, the entry and the field."""
    path = path or lock_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); rerun `bench models lock`") from None
    if (
        not isinstance(data, dict)
        or data.get("schema_version") != LOCK_SCHEMA_VERSION
        or not isinstance(data.get("models"), dict)
    ):
        raise ConfigError(f"{path}: not a model lock of schema_version {LOCK_SCHEMA_VERSION}")
    for hub_id, entry in data["models"].items():
        _check_entry(path, hub_id, entry)
    return data["models"]


def locked_revision(hub_id: str, path: Path | None = None) -> str | None:
    """The locked commit of ``hub_id``, or None."""
    entry = load_lock(path).get(hub_id)
    return entry["revision"] if entry else None


def lock_sha256(path: Path | None = None) -> str | None:
    """sha256 of the lock file (images and results record it), or None without a lock."""
    path = path or lock_path()
    return file_sha256(path) if path.is_file() else None


def write_lock(models: dict[str, dict[str, Any]], path: Path | None = None, *, note: str | None = None) -> Path:
    """Write the lock atomically (sorted, one entry per Hub id), keeping the file's ``note`` unless one is given."""
    path = path or lock_path()
    if note is None and path.is_file():
        try:
            note = json.loads(path.read_text(encoding="utf-8")).get("note")
        except (json.JSONDecodeError, AttributeError):
            note = None
    body: dict[str, Any] = {"schema_version": LOCK_SCHEMA_VERSION}
    if note:
        body["note"] = note
    body["models"] = dict(sorted(models.items()))
    atomic_write_bytes(path, (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def unverified(hub_ids: list[str], path: Path | None = None) -> list[tuple[str, str]]:
    """(Hub id, revision) of each of ``hub_ids`` whose lock entry is not verified against the Hub."""
    lock = load_lock(path)
    return [(h, lock[h]["revision"]) for h in dict.fromkeys(hub_ids) if h in lock and not lock[h].get("verified")]


def unverified_warnings(hub_ids: list[str], path: Path | None = None) -> list[str]:
    """One warning per unverified lock entry among ``hub_ids``, for a run's or an image's warnings."""
    return [
        f"model lock: {hub_id}@{revision[:12]} is not verified against the Hub (its commit comes from the public "
        f"sources listed in {(path or lock_path()).name}); `bench models lock --verify` on a machine with Hub "
        "access checks it and records each file's sha256"
        for hub_id, revision in unverified(hub_ids, path)
    ]


def _require_online(what: str) -> None:
    """ConfigError when HF_HUB_OFFLINE is set: ``what`` needs the Hub."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise ConfigError(
            f"{what} asks the Hugging Face Hub, but HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']} forbids the "
            "network: run it on a machine with Hub access and HF_HUB_OFFLINE unset (gated models such as Llama "
            "need HF_TOKEN with access granted)"
        )


def resolve_revisions(hub_ids: list[str], *, token: str | None = None) -> dict[str, dict[str, Any]]:
    """Ask the Hub for the current commit of each id (needs network; gated models need a token with access)."""
    _require_online("`bench models lock`")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    now = now_iso()
    out = {}
    for hub_id in hub_ids:
        try:
            info = api.model_info(hub_id)
        except Exception as exc:
            raise ConfigError(
                f"could not resolve {hub_id} on the Hub: {exc}. Gated models (Llama) need HF_TOKEN with access granted."
            ) from None
        out[hub_id] = {
            "revision": info.sha,
            "locked_at": now,
            "sources": [{"where": f"https://huggingface.co/{hub_id}", "note": "the Hub's main branch at locked_at"}],
            "verified": False,
        }
    return out


def files_from_model_info(info: Any) -> dict[str, dict[str, Any]]:
    """File name -> digest and size from a ``huggingface_hub.hf_api.ModelInfo`` fetched with ``files_metadata=True``.

    LFS files (weights) give their object's ``sha256``; files kept in git give ``git_blob_sha1`` (their blob id).
    Raises ConfigError when the Hub's answer has no file metadata (a ``model_info`` call without files_metadata).
    """
    files: dict[str, dict[str, Any]] = {}
    for sibling in info.siblings or []:
        if sibling.lfs is not None and getattr(sibling.lfs, "sha256", None):
            files[sibling.rfilename] = {"sha256": sibling.lfs.sha256, "size": sibling.lfs.size}
        elif sibling.blob_id:
            files[sibling.rfilename] = {"git_blob_sha1": sibling.blob_id, "size": sibling.size}
        else:
            raise ConfigError(
                f"{info.id}@{info.sha}: the Hub gave no digest for {sibling.rfilename!r} (was model_info called "
                "with files_metadata=True?)"
            )
    return dict(sorted(files.items()))


def verify_lock(
    hub_ids: list[str] | None = None, *, api: Any = None, token: str | None = None, path: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Check each locked commit on the Hub and record its files' digests; set ``verified: true`` and rewrite the lock.

    ``api``: an object with huggingface_hub's ``HfApi.model_info(repo_id, revision=, files_metadata=)`` (default: a
    real ``HfApi``). Raises ConfigError when offline (HF_HUB_OFFLINE), when an id is not in the lock, when a commit
    does not exist (naming the entry and its sources), or when the Hub answers with another commit.
    """
    path = path or lock_path()
    lock = load_lock(path)
    if not lock:
        raise ConfigError(f"{path}: no model lock to verify; it ships with the checkout (restore it from git)")
    ids = hub_ids or list(lock)
    missing = [h for h in ids if h not in lock]
    if missing:
        raise ConfigError(f"{path}: no entry for {', '.join(missing)}; known: {', '.join(sorted(lock))}")
    if api is None:
        _require_online("`bench models lock --verify`")
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    now = now_iso()
    for hub_id in ids:
        entry = lock[hub_id]
        revision = entry["revision"]
        try:
            info = api.model_info(hub_id, revision=revision, files_metadata=True)
        except Exception as exc:  # RevisionNotFoundError, RepositoryNotFoundError, GatedRepoError, network errors
            where = "; ".join(s["where"] for s in entry.get("sources", [])) or "no sources recorded"
            raise ConfigError(
                f"{path}: {hub_id}@{revision} could not be verified on the Hub ({type(exc).__name__}: {exc}). "
                f"The commit came from: {where}. If the Hub has no such commit, replace the entry's revision "
                "(`bench models lock --model ID` writes the current one); gated models need HF_TOKEN with access."
            ) from None
        if info.sha != revision:
            raise ConfigError(f"{path}: {hub_id}: asked the Hub for commit {revision}, it answered {info.sha}")
        entry["files"] = files_from_model_info(info)
        entry["verified"] = True
        entry["verified_at"] = now
    write_lock(lock, path)
    return lock


# --- checking files against the lock -----------------------------------------------------------------------------


def git_blob_sha1(path: Path) -> str:
    """git's blob id of a file: sha1 over ``b"blob <size>\\0"`` and the content (what the Hub calls blob_id)."""
    return file_digest(path, algorithm="sha1", prefix=f"blob {path.stat().st_size}\0".encode())


def check_snapshot(folder: Path, hub_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Check every file the lock lists for ``hub_id`` against ``folder`` before anything loads it.

    Returns what was checked (for the results): ``{"files_checked": n, "digests": {...}}``. Raises ConfigError naming
    the file and both digests on a mismatch, naming a file the lock lists but the folder lacks, and when the entry
    has no file digests (unverified: nothing to check against; `bench models lock --verify` records them).
    """
    files = entry.get("files") or {}
    if not files:
        raise ConfigError(
            f"model store {folder}: the lock entry of {hub_id}@{entry['revision'][:12]} has no file digests (it is "
            "not verified), so the store's files cannot be checked. Run `bench models lock --verify` on a machine "
            "with Hub access and commit the lock, or run without --model-store."
        )
    checked: dict[str, str] = {}
    for name, meta in sorted(files.items()):
        target = folder / name
        if not target.is_file():
            raise ConfigError(
                f"model store {folder}: {name} of {hub_id}@{entry['revision'][:12]} is missing; fetch it again with "
                "`bench models fetch --store DIR`"
            )
        if "sha256" in meta:
            kind, want, got = "sha256", meta["sha256"], file_sha256(target)
        else:
            kind, want, got = "git_blob_sha1", meta["git_blob_sha1"], git_blob_sha1(target)
        if got != want:
            raise ConfigError(
                f"model store {folder}: {name} has {kind} {got}, the lock says {want} for {hub_id}@"
                f"{entry['revision'][:12]}: the file is damaged or from another revision; delete it and fetch "
                "again with `bench models fetch --store DIR`"
            )
        checked[name] = got
    return {"files_checked": len(checked), "digests": checked}
