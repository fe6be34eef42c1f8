"""The model lock: the exact Hugging Face Hub commit of every Hub model the kit runs.

The catalog names models by Hub id; which commit runs is decided once, on a machine with Hub access, by
``bench models lock`` (it asks the Hub for each model's current commit and writes ``models.lock.json``). Runs and
images use only locked revisions; a Hub model without a lock entry refuses to load and says how to lock it. No
revision is ever invented or guessed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.fsutil import atomic_write_bytes, now_iso

LOCK_SCHEMA_VERSION = 1
_SHA = re.compile(r"^[0-9a-f]{40}$")


def lock_path() -> Path:
    """The lock file: $BENCH_MODEL_LOCK, else ``models.lock.json`` beside this module."""
    return Path(os.environ.get("BENCH_MODEL_LOCK", Path(__file__).resolve().parent / "models.lock.json"))


def load_lock(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Hub id -> {revision, locked_at}. A missing file is an empty lock; a malformed one is an error naming it."""
    path = path or lock_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); rerun `bench models lock`") from None
    if data.get("schema_version") != LOCK_SCHEMA_VERSION or not isinstance(data.get("models"), dict):
        raise ConfigError(f"{path}: not a model lock of schema_version {LOCK_SCHEMA_VERSION}")
    for hub_id, entry in data["models"].items():
        if not _SHA.match(str(entry.get("revision", ""))):
            raise ConfigError(f"{path}: {hub_id}: revision must be a 40-hex commit, got {entry.get('revision')!r}")
    return data["models"]


def locked_revision(hub_id: str, path: Path | None = None) -> str | None:
    """The locked commit of ``hub_id``, or None."""
    entry = load_lock(path).get(hub_id)
    return entry["revision"] if entry else None


def lock_sha256(path: Path | None = None) -> str | None:
    """sha256 of the lock file (images and results record it), or None without a lock."""
    import hashlib

    path = path or lock_path()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def write_lock(models: dict[str, dict[str, Any]], path: Path | None = None) -> Path:
    """Write the lock atomically (sorted, one entry per Hub id)."""
    path = path or lock_path()
    body = {"schema_version": LOCK_SCHEMA_VERSION, "models": dict(sorted(models.items()))}
    atomic_write_bytes(path, (json.dumps(body, indent=1) + "\n").encode("utf-8"))
    return path


def resolve_revisions(hub_ids: list[str], *, token: str | None = None) -> dict[str, dict[str, Any]]:
    """Ask the Hub for the current commit of each id (needs network; gated models need a token with access)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConfigError(
            "`bench models lock` asks the Hugging Face Hub for commits: unset HF_HUB_OFFLINE and run "
            "it on a machine with Hub access"
        )
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
        out[hub_id] = {"revision": info.sha, "locked_at": now}
    return out
