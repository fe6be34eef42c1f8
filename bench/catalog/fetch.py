"""Fetch exactly the models a profile needs (for baking into images or into a model store), and lock Hub revisions.

``bench models fetch --profile X [--suite S | --model M ...]`` walks the chosen suite (default: every suite of the
profile) or models: the embedder it pins, each LLM's weights (package models are converted, Hub models downloaded at
their locked commit), so that a run of that profile afterwards is offline (``HF_HUB_OFFLINE=1``).

``bench models fetch --store DIR`` writes each chosen Hub LLM's locked snapshot to ``DIR/<org>--<name>/<commit>/``
instead (``huggingface_hub.snapshot_download(revision=commit, local_dir=...)``); ``bench run --model-store DIR`` reads
it there and checks every file against the lock before a cell loads it (``bench.catalog.lock.check_snapshot``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.catalog.lock import load_lock, resolve_revisions, write_lock
from bench.catalog.models import ENTRY_BACKENDS, MODELS, base_model_name
from bench.catalog.resolve import resolve_gguf, resolve_model, store_folder
from bench.config import HardwareProfile
from bench.errors import ConfigError


@dataclass(frozen=True)
class Fetched:
    """One model made available locally: what, from where, and its pin."""

    name: str
    kind: str
    pin: dict[str, Any]


def profile_models(profile: HardwareProfile) -> list[str]:
    """Every model of every suite of the profile, in first-seen order."""
    return list(dict.fromkeys(m for suite in profile.suites.values() for m in suite.models))


def select_models(profile: HardwareProfile, *, suite: str | None = None, models: list[str] | None = None) -> list[str]:
    """The models chosen by ``models`` (catalog names, placements allowed), else by suite ``suite``, else every suite's.

    Raises ConfigError naming an unknown suite (with the profile's suites) or an unknown model (with close matches),
    and when both are given (say which: a suite or models).
    """
    from bench.catalog.models import get_model_spec

    if suite and models:
        raise ConfigError("give a suite (--suite) or models (--model/MODELS=a,b), not both")
    if models:
        names = [m.strip() for item in models for m in item.split(",") if m.strip()]
        for name in names:
            get_model_spec(name)  # unknown names fail here, with close matches
        return list(dict.fromkeys(names))
    if suite:
        if suite not in profile.suites:
            raise ConfigError(
                f"profile {profile.name!r} has no suite {suite!r}; its suites: {', '.join(sorted(profile.suites))}"
            )
        return list(dict.fromkeys(profile.suites[suite].models))
    return profile_models(profile)


def hub_llms(names: list[str]) -> list[tuple[str, str]]:
    """(base name, Hub id) of each catalog LLM among ``names`` that comes from the Hub (placements collapse to one)."""
    out = []
    for name in names:
        base = base_model_name(name)
        spec = MODELS.get(base)
        if spec is not None and spec.kind == "llm" and not str(spec.params["model"]).startswith("package:"):
            out.append((base, str(spec.params["model"])))
    return list(dict.fromkeys(out))


def fetch_to_store(store: Path, names: list[str], *, token: str | None = None) -> list[Fetched]:
    """Download the locked snapshot of each Hub LLM among ``names`` into ``store`` and check it against the lock.

    Uses ``huggingface_hub.snapshot_download(repo_id, revision=<locked commit>, local_dir=store_folder(...))``.
    Raises ConfigError when a model has no lock entry, when the download fails (offline, gated without a token,
    unknown commit) and when a verified entry's file digests do not match what arrived.
    """
    from bench.catalog.lock import check_snapshot

    lock = load_lock()
    chosen = hub_llms(names)
    if not chosen:
        raise ConfigError(f"none of {', '.join(names)} is a Hub LLM: a model store holds Hub LLMs only")
    fetched = []
    for name, hub_id in chosen:
        entry = lock.get(hub_id)
        if entry is None:
            raise ConfigError(
                f"model {name} ({hub_id}) has no entry in the model lock: `bench models lock --model ...`"
            )
        folder = store_folder(store, hub_id, entry["revision"])
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(hub_id, revision=entry["revision"], local_dir=folder, token=token)
        except Exception as exc:
            raise ConfigError(
                f"could not fetch {hub_id}@{entry['revision'][:12]} into {folder}: {type(exc).__name__}: {exc}. "
                "Fetching needs Hub access (HF_HUB_OFFLINE unset; gated models need HF_TOKEN with access)."
            ) from None
        pin: dict[str, Any] = {"source": "model-store", "hub_id": hub_id, "revision": entry["revision"]}
        pin["path"] = str(folder)
        if entry.get("files"):
            pin["files_checked"] = check_snapshot(folder, hub_id, entry)["files_checked"]
        else:
            pin["files_checked"] = 0  # unverified entry: nothing to check against yet
        fetched.append(Fetched(name, "llm", pin))
    return fetched


def hub_model_ids() -> list[str]:
    """The Hub ids of every catalog LLM (package and local models have no Hub revision)."""
    ids = [str(s.params["model"]) for s in MODELS.values() if s.kind == "llm"]
    return [i for i in ids if not i.startswith("package:")]


def lock_models(hub_ids: list[str] | None = None, *, token: str | None = None) -> dict[str, dict[str, Any]]:
    """Resolve the current Hub commit of the given (default: all catalog) LLMs and merge them into the lock file."""
    current = load_lock()
    current.update(resolve_revisions(hub_ids or hub_model_ids(), token=token))
    write_lock(current)
    return current


def unlocked_models(profile: HardwareProfile, names: list[str] | None = None) -> list[tuple[str, str]]:
    """(name, Hub id) of each Hub LLM of ``names`` (default: every model of the profile) without a locked revision
    (package models need none)."""
    lock = load_lock()
    out = []
    for name in names if names is not None else profile_models(profile):
        spec = MODELS.get(base_model_name(name))  # a placement variant needs its base model's lock
        if spec is None or spec.kind != "llm":
            continue
        model = str(spec.params["model"])
        if not model.startswith("package:") and not (lock.get(model) or {}).get("revision"):
            out.append((base_model_name(name), model))
    return list(dict.fromkeys(out))


def fetch_profile(profile: HardwareProfile, *, only: list[str] | None = None) -> list[Fetched]:
    """Make every model of ``only`` (default: every model the profile's suites use) available locally (the Hugging
    Face cache); ConfigError names what is missing and why."""
    from bench.catalog.embedders import get_embedder_spec, resolve_embedder_path

    names = only or profile_models(profile)
    lock = load_lock()
    fetched: list[Fetched] = []
    needs_embedder = False
    for name in names:
        spec = MODELS.get(base_model_name(name))  # a placement variant fetches its base model
        if spec is None:
            raise ConfigError(f"profile {profile.name!r} uses unknown model {name!r}")
        if spec.kind in ("traditional", "finetuned"):
            needs_embedder = needs_embedder or "embedder" in spec.params
            continue
        model = str(spec.params["model"])
        revision = None if model.startswith("package:") else (lock.get(model) or {}).get("revision")
        if not model.startswith("package:") and revision is None:
            raise ConfigError(
                f"model {name} ({model}) has no locked revision: run `bench models lock` on a machine with Hub "
                "access and commit bench/catalog/models.lock.json"
            )
        if spec.backend in ENTRY_BACKENDS.values():  # a GGUF entry: only its one file
            _, pin = resolve_gguf(model, revision, spec.params.get("gguf_file"))
        else:
            _, pin = resolve_model(model, revision)
        fetched.append(Fetched(name, "llm", pin))
    if needs_embedder:
        _, pin = resolve_embedder_path(get_embedder_spec(profile.embedder))
        fetched.append(Fetched(profile.embedder, "embedder", pin))
    return fetched
