"""Find the container engine: a Docker Engine API (Docker, or Podman's compatible service) through the Docker SDK.

``detect_engine`` never raises for an engine that is absent or broken: it returns an ``Engine`` or the reason there is
none, so ``make bench`` can say why it runs on the host. The SDK (the ``docker`` package) is imported here only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where the NVIDIA Container Toolkit leaves its traces: a registered runtime, a CDI spec, or its hook on PATH.
_CDI_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")
_NVIDIA_TOOLS = ("nvidia-container-runtime-hook", "nvidia-container-runtime", "nvidia-ctk")


@dataclass(frozen=True)
class Engine:
    """An engine that answered: the SDK client, what it is, where it listens, and whether it can pass GPUs."""

    client: Any  # docker.DockerClient
    name: str  # "Docker Engine - Community", "Podman Engine", ...
    version: str
    host: str  # e.g. unix:///var/run/docker.sock
    nvidia: str | None  # how NVIDIA GPUs reach containers ("runtime nvidia", "CDI spec ...", ...), None: they cannot

    @property
    def is_podman(self) -> bool:
        """Podman's Docker-compatible service (builds go through the podman CLI, see ``build``)."""
        return "podman" in self.name.lower()

    def describe(self) -> str:
        """One line for people: ``Docker Engine - Community 28.2.2 at unix:///var/run/docker.sock``."""
        return f"{self.name} {self.version} at {self.host}"


@dataclass(frozen=True)
class NoEngine:
    """Why no engine is usable (shown when ``make bench`` falls back to the host)."""

    reason: str


def nvidia_support(info: dict[str, Any], cdi_dirs: tuple[str, ...] = _CDI_SPEC_DIRS) -> str | None:
    """How NVIDIA GPUs can reach this engine's containers, from ``docker info`` and the host; None when they cannot."""
    runtimes = info.get("Runtimes") or {}
    if "nvidia" in runtimes:
        return "runtime nvidia"
    for folder in cdi_dirs:
        specs = sorted(Path(folder).glob("nvidia*.yaml")) + sorted(Path(folder).glob("nvidia*.json"))
        if specs:
            return f"CDI spec {specs[0]}"
    for tool in _NVIDIA_TOOLS:
        if shutil.which(tool):
            return f"NVIDIA Container Toolkit ({tool})"
    return None


def detect_engine(timeout_s: float = 5.0) -> Engine | NoEngine:
    """Ask the engine that DOCKER_HOST (or the default socket) names whether it answers, and what it is."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        from bench.extras import install_hint

        return NoEngine(f"the Docker SDK for Python is not installed: {install_hint('docker')} (`make setup` does it)")
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=max(1, round(timeout_s)))
        client.ping()
        version = client.version()
        info = client.info()
    except DockerException as exc:
        return NoEngine(f"no container engine answers at {host} ({_first_line(exc)})")
    except Exception as exc:  # requests/urllib3 errors that the SDK does not wrap
        return NoEngine(f"no container engine answers at {host} ({type(exc).__name__}: {_first_line(exc)})")
    # It answered within the short timeout; from here on calls may rightly take long (a silent log stream during a
    # long cell, exporting a multi-GB image), so no read timeout.
    client.api.timeout = None
    components = version.get("Components") or [{}]
    name = str(components[0].get("Name") or version.get("Platform", {}).get("Name") or "Docker Engine")
    return Engine(
        client=client,
        name=name,
        version=str(version.get("Version", "?")),
        host=host,
        nvidia=nvidia_support(info),
    )


@contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Turn the SDK's errors (the daemon's refusals, a dropped socket) into a ContainerError saying what failed.

    E.g. a GPU request the daemon cannot serve answers ``could not select device driver "" with capabilities:
    [[gpu]]``: the user gets that sentence and what the kit was doing, not a traceback.
    """
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    from bench.errors import BenchError, ContainerError

    try:
        yield
    except BenchError:
        raise
    except DockerException as exc:
        explanation = getattr(exc, "explanation", None) or _first_line(exc)
        raise ContainerError(f"{doing}: the engine refused: {explanation}") from None
    except RequestException as exc:
        raise ContainerError(f"{doing}: lost the engine ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    """The cause in words: the SDK wraps the socket error several levels deep in its message."""
    text = str(exc).strip() or type(exc).__name__
    if "FileNotFoundError" in text or "No such file or directory" in text:
        return "no socket there: Docker is not installed or not running"
    if "PermissionError" in text or "Permission denied" in text:
        return "permission denied on the socket: add yourself to the `docker` group, or use rootless Docker/Podman"
    if "ConnectionRefusedError" in text or "Connection refused" in text:
        return "connection refused: the engine is not running"
    return text.splitlines()[0][:300]
