"""constraints/{cpu,cuda}.txt pin every dependency the images install, inside pyproject.toml's ranges.

A dependency added to pyproject.toml without `make constraints` would install unpinned in the image: this fails first.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
# The image's extra, and what the Dockerfile pins by ARG instead of the constraints file.
IMAGES = {"cpu": ("cpu", {"torch"}), "cuda": ("gpu", {"torch", "vllm"})}


def requirements(extra: str) -> list[Requirement]:
    """The kit's core dependencies plus ``extra``'s, with bench[...] self-references expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    out = [Requirement(r) for r in project["dependencies"]]
    todo, seen = [extra], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in project["optional-dependencies"][name]:
            req = Requirement(line)
            if canonicalize_name(req.name) == "bench":
                todo.extend(req.extras)
            else:
                out.append(req)
    return out


def pins(image: str) -> dict[str, str]:
    text = (REPO / "constraints" / f"{image}.txt").read_text()
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
            assert match, f"constraints/{image}.txt: {line!r} is not NAME==VERSION"
            found[canonicalize_name(match[1])] = match[2]
    return found


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_dependency_is_pinned_within_its_range(image: str) -> None:
    extra, by_arg = IMAGES[image]
    pinned = pins(image)
    for req in requirements(extra):
        name = canonicalize_name(req.name)
        if name in by_arg:
            continue
        assert name in pinned, f"{req} is not in constraints/{image}.txt: run `make constraints`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints/{image}.txt pins {name}=={pinned[name]}, outside pyproject.toml's {req}: `make constraints`"
        )
    assert not by_arg & set(pinned), "torch/vLLM are pinned by the Dockerfiles' ARGs, not twice"
