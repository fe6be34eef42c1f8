"""Build a profile's image, find it, and check it before anything expensive happens.

The build goes through the engine's own CLI (``docker build``, or ``podman --url ... build`` for Podman's service),
not the Docker SDK: the SDK's build API drives the classic builder, which refuses the ``RUN --mount`` (local torch
wheel, bind-mounted so it never stays in a layer) and ``--secret`` (Hugging Face token for gated models) that both
Dockerfiles rely on. Everything else (detection, inspection, running) goes through the SDK.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import SOURCE_ROOT, __version__
from bench.config import HardwareProfile
from bench.containers.engine import Engine, engine_errors
from bench.errors import ConfigError, ContainerError

REPO_ROOT = SOURCE_ROOT
# Labels every image of the kit carries (set from build args in both Dockerfiles).
LABEL_PROFILE = "io.bench.profile"
LABEL_LOCK = "io.bench.model-lock-sha256"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_VERSION = "org.opencontainers.image.version"
#: The build args that switch a GPU Dockerfile's GPU-only layers off for a check build on a machine without the GPU
#: base (Dockerfile.cuda, Dockerfile.rocm).
GPU_LAYER_ARGS = ("CUDA_LAYERS", "ROCM_LAYERS")


@dataclass
class BuildPlan:
    """Everything ``docker build`` needs for one profile: file, tag, build args, secrets, context."""

    profile: str
    dockerfile: Path
    tag: str
    build_args: dict[str, str]
    context: Path = REPO_ROOT
    secrets: list[str] = field(default_factory=list)  # --secret specs, e.g. "id=hf_token,env=HF_TOKEN"
    extra_flags: list[str] = field(default_factory=list)

    @property
    def gpu(self) -> bool:
        """Whether this is a GPU image: Dockerfile.cuda or Dockerfile.rocm (their GPU layers are on unless
        ``CUDA_LAYERS=0`` / ``ROCM_LAYERS=0``, ``GPU_LAYER_ARGS``)."""
        return self.dockerfile.name != "Dockerfile.cpu"

    @property
    def gpu_layers(self) -> bool:
        """Whether the GPU-only layers (vLLM's GPU build, the model download) are built: not when a check build
        switches them off (``CUDA_LAYERS=0``, ``ROCM_LAYERS=0``)."""
        return self.gpu and all(self.build_args.get(arg) != "0" for arg in GPU_LAYER_ARGS)

    def command(self, engine: Engine | None = None, no_cache: bool = False) -> list[str]:
        """The build command line for ``engine`` (podman remote for Podman's service, else the docker CLI)."""
        if engine is not None and engine.is_podman:
            cmd = ["podman", "--url", engine.host, "build"]
        else:
            cmd = ["docker", "build", "--progress=plain"]
        cmd += ["-f", str(self.dockerfile), "-t", self.tag]
        for key, value in self.build_args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        for secret in self.secrets:
            cmd += ["--secret", secret]
        if no_cache:
            cmd.append("--no-cache")
        return [*cmd, *self.extra_flags, str(self.context)]


def parse_build_args(values: list[str] | None) -> dict[str, str]:
    """``K=V`` strings from ``--build-arg`` into a dict; a malformed one is an error naming it."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--build-arg {item!r}: expected KEY=VALUE, e.g. --build-arg CUDA_LAYERS=0")
        out[key] = value
    return out


def build_plan(
    profile: HardwareProfile,
    overrides: dict[str, str] | None = None,
    extra_flags: list[str] | None = None,
    *,
    suite: str | None = None,
    models: list[str] | None = None,
) -> BuildPlan:
    """The build of ``profile``'s image: its Dockerfile and tag, the kit's provenance build args, what it bakes
    (``SUITE`` or ``MODELS``; see ``bench.containers.sizing``), then overrides."""
    from bench.catalog.lock import lock_sha256
    from bench.environment import git_commit

    dockerfile = REPO_ROOT / profile.container.dockerfile
    if not dockerfile.is_file():
        raise ConfigError(
            f"profile {profile.name!r}: [container] dockerfile {profile.container.dockerfile!r} not found at "
            f"{dockerfile}; name one of the Dockerfiles at the top of the checkout"
        )
    args = {
        "PROFILE": profile.name,
        "BENCH_VERSION": __version__,
        "MODEL_LOCK_SHA256": lock_sha256() or "none",
        "GIT_COMMIT": git_commit() or "unknown",
        "SUITE": "" if models else (suite or "default"),
        "MODELS": ",".join(models or []),
        **profile.container.build_args,
        **(overrides or {}),
    }
    plan = BuildPlan(profile.name, dockerfile, profile.container.image, args, extra_flags=list(extra_flags or []))
    if plan.gpu and os.environ.get("HF_TOKEN"):
        # Gated models (Llama) need a token; it reaches the build as a secret, never as an argument or a layer.
        # Without one the secret is left out (the Dockerfile's mount is optional) and ungated models still load.
        plan.secrets.append("id=hf_token,env=HF_TOKEN")
    return plan


def preflight_build(profile: HardwareProfile, plan: BuildPlan, names: list[str] | None = None) -> None:
    """Refuse a build that would fail late: a GPU image needs every Hub model it bakes (``names``, default: every
    model of the profile) locked."""
    if not plan.gpu_layers:
        return  # CPU models ship in PyPI packages; CUDA_LAYERS=0 / ROCM_LAYERS=0 fetch no models
    from bench.catalog.fetch import unlocked_models
    from bench.catalog.lock import lock_path

    missing = unlocked_models(profile, names)
    if missing:
        names = ", ".join(f"{name} ({hub_id})" for name, hub_id in missing)
        raise ContainerError(
            f"the {profile.name} image bakes in its models at their locked Hub revisions, but {lock_path()} has no "
            f"entry for {len(missing)} of them: {names}. Create the lock on a machine with Hugging Face Hub access: "
            f"`HF_HUB_OFFLINE=0 bench models lock` (gated models need HF_TOKEN), commit "
            "bench/catalog/models.lock.json, then build again."
        )


def find_image(engine: Engine, tag: str) -> Any | None:
    """The engine's image called ``tag`` (docker.models.images.Image), or None when it has none."""
    from docker.errors import ImageNotFound

    with engine_errors(f"looking up image {tag}"):
        try:
            return engine.client.images.get(tag)
        except ImageNotFound:
            return None


def check_image(image: Any, profile: HardwareProfile) -> list[str]:
    """Warnings about an existing image (built from another commit); an error when it is another profile's image."""
    labels = image.labels or {}
    built_for = labels.get(LABEL_PROFILE)
    if built_for and built_for != profile.name:
        raise ContainerError(
            f"image {profile.container.image} ({image.id[:19]}) was built for profile {built_for!r}, not "
            f"{profile.name!r}: rebuild it with `make image PROFILE={profile.name}`"
        )
    from bench.environment import git_commit

    warnings = []
    here, there = git_commit(), labels.get(LABEL_REVISION)
    if here and there and there != "unknown" and here != there:
        warnings.append(
            f"image {profile.container.image} was built from commit {_short(there)}, this checkout is at "
            f"{_short(here)}: "
            f"the run uses the image's kit; `make image PROFILE={profile.name}` rebuilds it"
        )
    return warnings


def _short(commit: str) -> str:
    """A commit as people read it: 12 hex digits, keeping the ``-dirty`` mark (uncommitted changes)."""
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def build_image(engine: Engine, plan: BuildPlan, *, no_cache: bool = False) -> Any:
    """Run the build, streaming its output, and return the built image; ContainerError when it fails."""
    cmd = plan.command(engine, no_cache=no_cache)
    print(f"bench: building {plan.tag} for profile {plan.profile}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    try:
        status = subprocess.run(cmd, check=False).returncode
    except FileNotFoundError:
        raise ContainerError(
            f"`{cmd[0]}` is not on PATH: the engine at {engine.host} answers, but building needs its CLI "
            f"({'podman' if engine.is_podman else 'the docker CLI with BuildKit'})"
        ) from None
    if status != 0:
        raise ContainerError(f"building {plan.tag} failed (exit {status}); the build's output is above")
    image = find_image(engine, plan.tag)
    if image is None:
        raise ContainerError(f"the build said it succeeded, but the engine has no image {plan.tag}")
    return image
