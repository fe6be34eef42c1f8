"""``bench image build|status|sif``: a profile's container image. Light at import (argparse only)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _engine() -> Any:
    from bench.containers.engine import NoEngine, detect_engine
    from bench.containers.image import ContainerError

    found = detect_engine()
    if isinstance(found, NoEngine):
        raise ContainerError(
            f"{found.reason}. Building and exporting images needs Docker (or Podman's service: "
            "`podman system service` and DOCKER_HOST=unix://<its socket>); without one, run on the host: "
            "`make bench` falls back to it by itself"
        )
    return found


def _size_plan(profile: Any, args: argparse.Namespace) -> Any:
    """Print what the image bakes and its estimated weights (and the default suite's when another was chosen);
    ContainerError above the limit without --yes (printed, not raised, with --dry-run)."""
    from bench.catalog.fetch import hub_llms
    from bench.catalog.lock import unverified
    from bench.containers.image import ContainerError
    from bench.containers.sizing import plan_image

    sizing = plan_image(profile, suite=args.suite, models=args.models)
    for line in sizing.describe():
        print(line)
    if args.models or (args.suite or "default") != "default":
        default = plan_image(profile)
        print(f"  (the default suite's image: {default.weights_gb:.1f} GB of model weights)")
    unchecked = unverified([hub_id for _, hub_id in hub_llms(sizing.models)])
    if unchecked:
        print(
            f"  warning: {len(unchecked)} model lock entr{'y is' if len(unchecked) == 1 else 'ies are'} not verified "
            f"against the Hub ({', '.join(h for h, _ in unchecked)}); the image accepts them, runs record a warning; "
            "`bench models lock --verify` on a machine with Hub access checks them"
        )
    if sizing.over_limit:
        refusal = (
            f"refusing to build: the image would bake {sizing.weights_gb:.1f} GB of model weights, above the "
            f"{sizing.limit_gb:g} GB limit. Bake fewer models (`make image PROFILE={profile.name} SUITE=... ` or "
            "MODELS=a,b), keep large models in a model store (`bench models fetch --store DIR`, then `bench run "
            "--model-store DIR`), or pass --yes to build it anyway"
        )
        if args.dry_run:
            print(f"  {refusal}" if not args.yes else "  above the limit, but --yes was given: it would build")
        elif not args.yes:
            raise ContainerError(refusal)
    return sizing


def cmd_image(args: argparse.Namespace) -> int:
    """Build a profile's image, show whether it is there, or convert it to an Apptainer SIF."""
    from bench.config import load_profile
    from bench.containers.image import (
        LABEL_LOCK,
        LABEL_PROFILE,
        LABEL_REVISION,
        build_image,
        build_plan,
        check_image,
        find_image,
        parse_build_args,
        preflight_build,
    )

    profile = load_profile(args.profile)
    tag = profile.container.image
    if args.action == "build":
        sizing = _size_plan(profile, args)
        plan = build_plan(
            profile, parse_build_args(args.build_arg), args.build_flag, suite=args.suite, models=args.models
        )
        preflight_build(profile, plan, sizing.models)  # before the engine is even asked: a missing lock fails fast
        if args.dry_run:
            import shlex

            print(f"dry run: {shlex.join(plan.command())}")
            return 0
        engine = _engine()
        image = build_image(engine, plan, no_cache=args.no_cache)
        print(f"built {tag}: {image.id} ({image.attrs.get('Size', 0) / 1e9:.2f} GB) on {engine.describe()}")
        return 0
    engine = _engine()
    image = find_image(engine, tag)
    if args.action == "status":
        print(f"engine: {engine.describe()}; NVIDIA GPUs: {engine.nvidia or 'not available to containers'}")
        if image is None:
            print(f"image {tag}: not built (`make image PROFILE={profile.name}`)")
            return 1
        labels = image.labels or {}
        print(f"image {tag}: {image.id} ({image.attrs.get('Size', 0) / 1e9:.2f} GB)")
        for key in (LABEL_PROFILE, LABEL_REVISION, LABEL_LOCK):
            print(f"  {key} = {labels.get(key, '(none)')}")
        for warning in check_image(image, profile):
            print(f"  warning: {warning}")
        return 0
    from bench.containers.apptainer import build_sif, default_sif_path
    from bench.containers.image import ContainerError

    if image is None:
        raise ContainerError(f"{engine.describe()} has no image {tag}: `make image PROFILE={profile.name}` first")
    check_image(image, profile)
    output = Path(args.output) if args.output else default_sif_path(profile.name)
    sif = build_sif(image, tag, output, keep_archive=args.keep_archive)
    if sif is None:
        return 1  # the archive is written and the command to finish printed; the SIF itself is not there
    print(f"wrote {sif}")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``bench image`` on the main parser's subcommands."""
    p = sub.add_parser("image", help="build a profile's container image, show it, or convert it to Apptainer (SIF)")
    p.add_argument("action", choices=["build", "status", "sif"])
    p.add_argument("--profile", default="cpu", help="hardware profile name or TOML path (default: cpu)")
    p.add_argument("--build-arg", action="append", metavar="KEY=VALUE", help="build: extra build argument (repeatable)")
    p.add_argument(
        "--build-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="build: passed verbatim to the engine's build command, e.g. --build-flag=--network=host",
    )
    p.add_argument("--no-cache", action="store_true", help="build: do not reuse cached layers")
    p.add_argument("--suite", help="build: bake the models of this suite of the profile (default: its default suite)")
    p.add_argument(
        "--models",
        action="append",
        metavar="A,B",
        help="build: bake these catalog models instead of a suite's (comma-separated, repeatable)",
    )
    p.add_argument(
        "--yes", action="store_true", help="build: build even when the model weights exceed the size limit (60 GB)"
    )
    p.add_argument("--dry-run", action="store_true", help="build: print what would be baked, its size and the command")
    p.add_argument("-o", "--output", help="sif: where to write the SIF (default: ./bench-<profile>.sif)")
    p.add_argument("--keep-archive", action="store_true", help="sif: keep the docker-archive tar next to the SIF")
    p.set_defaults(func=cmd_image)
