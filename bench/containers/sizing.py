"""What an image bakes in, and how big its model weights are, before anything is built.

An image bakes only the models of the chosen suite (default: the profile's ``default`` suite) or of the models named;
``bench image build`` prints this plan and refuses one whose weights exceed ``IMAGE_WEIGHTS_LIMIT_GB`` unless given
``--yes``. Larger models go into a model store instead (``bench models fetch --store DIR``, ``bench run --model-store
DIR``), which needs no image of its own.

The estimate, per Hub LLM: the summed size of its weight files (``*.safetensors``, ``*.bin``) from the model lock when
the entry is verified (the Hub's own file metadata), else parameters x bytes per parameter: ``params_b`` from the
catalog (``bench.catalog.models``) x ``CHECKPOINT_BYTES_PER_PARAM`` (the paper runs 16-bit checkpoints). Decimal GB
(1e9 bytes). Package models (SmolLM2) and the embedder are small and not counted; neither are the software layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.config import HardwareProfile

#: Model weights (decimal GB) an image may bake without ``--yes``: 60 GB holds e.g. the 8B-32B LLMs of one suite or
#: two; the paper suite's 11 LLMs are about 765 GB, which no registry or build disk takes comfortably.
IMAGE_WEIGHTS_LIMIT_GB = 60.0
#: Bytes per parameter of the Hub checkpoints the paper runs (bfloat16/float16 safetensors).
CHECKPOINT_BYTES_PER_PARAM = 2
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class BakedModel:
    """One Hub LLM an image bakes: its catalog name, Hub id, locked commit and estimated weights (GB, 1e9 bytes)."""

    name: str
    hub_id: str
    revision: str | None
    weights_gb: float
    basis: str  # "lock file sizes" or "<params_b>B params x 2 bytes"


@dataclass
class ImagePlan:
    """The models an image of ``profile`` bakes (chosen by ``choice``), and their weights against the limit."""

    profile: str
    choice: str  # e.g. "suite paper" or "models qwen-7b,phi-3.5-mini"
    models: list[str]
    baked: list[BakedModel] = field(default_factory=list)
    limit_gb: float = IMAGE_WEIGHTS_LIMIT_GB

    @property
    def weights_gb(self) -> float:
        """Total estimated weights of the baked Hub LLMs, decimal GB."""
        return sum(m.weights_gb for m in self.baked)

    @property
    def over_limit(self) -> bool:
        """Whether the weights exceed the limit (the build then needs --yes)."""
        return self.weights_gb > self.limit_gb

    def describe(self) -> list[str]:
        """The plan as lines for a terminal: one per baked LLM, then the total against the limit."""
        lines = [f"image of profile {self.profile}, {self.choice}: {len(self.models)} model(s)"]
        for m in self.baked:
            pin = f"@{m.revision[:12]}" if m.revision else " (not locked)"
            lines.append(f"  {m.name:18s} {m.hub_id}{pin}: {m.weights_gb:7.1f} GB ({m.basis})")
        if not self.baked:
            lines.append("  no Hub LLM: no model weights beyond the embedder and package models")
        lines.append(
            f"  estimated model weights: {self.weights_gb:.1f} GB (limit {self.limit_gb:g} GB, "
            "IMAGE_WEIGHTS_LIMIT_GB in bench/containers/sizing.py; software layers not counted)"
        )
        return lines


def estimate_weights_gb(hub_id: str, params_b: float, entry: dict | None) -> tuple[float, str]:
    """(GB, basis) of one Hub LLM's weights: the lock's file sizes when verified, else params x 2 bytes."""
    files = (entry or {}).get("files") or {}
    sizes = [meta.get("size") for name, meta in files.items() if name.endswith(_WEIGHT_SUFFIXES)]
    if sizes and all(isinstance(s, int) for s in sizes):
        return sum(sizes) / 1e9, "lock file sizes"
    return params_b * CHECKPOINT_BYTES_PER_PARAM, f"{params_b:g}B params x {CHECKPOINT_BYTES_PER_PARAM} bytes"


def plan_image(profile: HardwareProfile, *, suite: str | None = None, models: list[str] | None = None) -> ImagePlan:
    """What an image of ``profile`` bakes: ``models`` if given, else suite ``suite``, else the profile's default suite.

    Raises ConfigError for an unknown suite or model (``bench.catalog.fetch.select_models``).
    """
    from bench.catalog.fetch import hub_llms, select_models
    from bench.catalog.lock import load_lock
    from bench.catalog.models import MODELS

    if not models and not suite:
        suite = "default"
    names = select_models(profile, suite=suite, models=models)
    choice = f"models {','.join(names)}" if models else f"suite {suite}"
    lock = load_lock()
    plan = ImagePlan(profile.name, choice, names)
    for name, hub_id in hub_llms(names):
        entry = lock.get(hub_id)
        gb, basis = estimate_weights_gb(hub_id, float(MODELS[name].params["params_b"]), entry)
        plan.baked.append(BakedModel(name, hub_id, entry["revision"] if entry else None, gb, basis))
    return plan
