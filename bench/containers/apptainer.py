"""An Apptainer (SIF) image from a profile's Docker image, for clusters without Docker (how the paper's runs ran).

The Docker image is exported through the SDK as a docker-archive tar (works for Docker and Podman alike, no registry
needed), then ``apptainer build OUT.sif docker-archive://TAR``. On a machine without Apptainer the archive is kept and
the exact command to finish on the cluster is printed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.containers.engine import engine_errors
from bench.errors import ContainerError

APPTAINER_BINARIES = ("apptainer", "singularity")  # SingularityCE still ships as `singularity` on older clusters


def default_sif_path(profile_name: str) -> Path:
    """``bench-<profile>.sif``, relative: ``bench image sif`` writes it in the current folder, and ``bench slurm``
    (without ``--image`` or ``[slurm] apptainer_image``) takes it from the folder it runs in, as an absolute path."""
    return Path(f"bench-{profile_name}.sif")


def sif_build_command(binary: str, archive: Path, output: Path) -> list[str]:
    """The Apptainer build line for an image archive (``--force`` replaces an older SIF of the same name)."""
    return [binary, "build", "--force", str(output), f"docker-archive://{archive}"]


def save_archive(image: Any, archive: Path) -> int:
    """Write the image as a docker-archive tar (atomically: a partial tar never looks finished); returns bytes."""
    partial = archive.with_name(archive.name + ".partial")
    size = 0
    try:
        with partial.open("wb") as out:
            for chunk in image.save(named=True):
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)  # a half-written archive of several GB helps nobody
        raise
    partial.replace(archive)
    return size


def build_sif(image: Any, tag: str, output: Path, *, keep_archive: bool = False) -> Path | None:
    """Export ``image`` and build ``output``; returns the SIF, or None when Apptainer is missing (archive kept)."""
    archive = output.with_suffix(".tar")
    print(f"bench: exporting {tag} ({image.id[:19]}) to {archive}", file=sys.stderr, flush=True)
    with engine_errors(f"exporting {tag}"):
        size = save_archive(image, archive)
    print(f"bench: wrote {archive} ({size / 1e9:.2f} GB)", file=sys.stderr)
    binary = next((b for b in APPTAINER_BINARIES if shutil.which(b)), None)
    cmd = sif_build_command(binary or "apptainer", archive, output)
    if binary is None:
        print(
            "bench: Apptainer is not installed here (neither `apptainer` nor `singularity` is on PATH). Copy the "
            f"archive to the cluster and finish there:\n  {' '.join(cmd)}",
            file=sys.stderr,
        )
        return None
    print(f"bench: {' '.join(cmd)}", file=sys.stderr, flush=True)
    status = subprocess.run(cmd, check=False).returncode
    if status != 0:
        raise ContainerError(f"`{' '.join(cmd)}` failed (exit {status}); the archive {archive} is kept for a retry")
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return output
