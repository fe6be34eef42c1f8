"""Run ``bench run`` inside a profile's image: GPUs passed through, reports/ mounted, RAPL visible, image id recorded.

``choose_where`` decides container or host (``--engine auto``: the container when an engine answers) and says why;
``run_in_container`` builds the image when it is missing, starts the container through the Docker SDK, streams its
output to this terminal, and returns its exit status. The run inside is the same ``bench run`` as on the host, so a
result from either place has the same schema; ``environment.software.container_image_id`` tells them apart.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import HardwareProfile
from bench.containers.engine import Engine, NoEngine, detect_engine, engine_errors
from bench.containers.image import ContainerError, build_image, build_plan, check_image, find_image, preflight_build

# Inside both images: the working directory, where results go, and where host files are mounted.
CONTAINER_WORKDIR = "/work"
CONTAINER_REPORTS = "/work/reports"
CONTAINER_INPUTS = "/work/inputs"
CONTAINER_MODEL_STORE = "/work/model-store"  # a host model store, read-only (`bench run --model-store`)
POWERCAP = "/sys/class/powercap"


@dataclass
class Where:
    """Where a run goes: ``engine`` set for the container, None for the host, with the reason for people."""

    engine: Engine | None
    reason: str


def choose_where(mode: str, profile: HardwareProfile) -> Where:
    """``host``, ``container`` (an engine is required) or ``auto`` (container when an engine answers)."""
    if mode == "host":
        return Where(None, "asked for the host (--engine host)")
    if os.environ.get("BENCH_IMAGE_ID"):
        # Already inside the kit's image (a launcher set this): never nest a container.
        return Where(None, f"already inside image {os.environ.get('BENCH_IMAGE', '?')}")
    if mode == "auto" and profile.hardware.device == "mps":
        # Containers on macOS run in a Linux VM without Metal: Apple's GPU is reachable from the host only.
        return Where(None, "profile runs on Apple's GPU (mps), which containers on macOS cannot use")
    found = detect_engine()
    if isinstance(found, NoEngine):
        if mode == "container":
            raise ContainerError(
                f"--engine container: {found.reason}. Start Docker (or `podman system service` with DOCKER_HOST "
                "pointing at its socket), or run on the host with --engine host"
            )
        return Where(None, found.reason)
    return Where(found, f"{found.describe()} answers")


#: The device files AMD GPUs reach a container through (ROCm's container docs: the kernel fusion driver and the
#: render nodes), given as ``--device``; no runtime is needed.
AMD_DEVICE_FILES = ("/dev/kfd", "/dev/dri")


def preflight_gpu(engine: Engine, profile: HardwareProfile, dev: Path = Path("/dev")) -> None:
    """A GPU profile needs its GPUs in the container: NVIDIA's container runtime for cuda, the AMD driver's device
    files (``AMD_DEVICE_FILES``) on this host for rocm; say so before any build or pull starts. An Apple GPU (mps)
    does not reach containers on macOS at all: its profiles run on the host."""
    hw = profile.hardware
    if hw.device == "mps":
        raise ContainerError(
            f"profile {profile.name!r} runs on Apple's GPU (mps), which no container on macOS can use (Docker and "
            "Podman run Linux VMs without Metal): run on the host with --engine host (`make setup` and `bench run`)"
        )
    if hw.device == "rocm":
        missing = [name for name in AMD_DEVICE_FILES if not (dev / Path(name).name).exists()]
        if missing:
            raise ContainerError(
                f"profile {profile.name!r} needs {hw.gpu_count} AMD GPU(s) in the container, but this host has no "
                f"{' or '.join(missing)} (the amdgpu driver of ROCm is not loaded). Install ROCm's driver, or run on "
                "the host with --engine host"
            )
        return
    if profile.hardware.gpu_count and engine.nvidia is None:
        raise ContainerError(
            f"profile {profile.name!r} needs {profile.hardware.gpu_count} NVIDIA GPU(s) in the container, but "
            f"{engine.describe()} has no NVIDIA runtime (no `nvidia` runtime in `docker info`, no CDI spec in "
            "/etc/cdi or /var/run/cdi, no nvidia-container-toolkit on PATH). Install the NVIDIA Container Toolkit "
            "(https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/), or run on the host with "
            "--engine host"
        )


#: /dev/shm of a CPU container whose LLMs run on vLLM (see ``ContainerRun.shm_size``).
VLLM_CPU_SHM_SIZE = "1g"


@dataclass
class ContainerRun:
    """The container's side of a ``bench run``: its arguments, mounts and environment (built before starting)."""

    image: str
    command: list[str]
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    gpus: bool = False
    #: AMD GPUs: given as device files (``AMD_DEVICE_FILES``) and the video group instead of NVIDIA's device request
    amd: bool = False
    user: str | None = None
    #: /dev/shm size for a CPU profile serving LLMs with vLLM (its engine core and worker exchange through a
    #: shared-memory ring of about 160 MiB; the engines' default /dev/shm is 64 MB). GPU runs share the host's IPC.
    shm_size: str | None = None

    def sdk_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create``."""
        from docker.types import DeviceRequest

        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": self.command,
            "volumes": self.volumes,
            "environment": self.environment,
            "working_dir": CONTAINER_WORKDIR,
            "tty": sys.stdout.isatty(),  # a terminal gets the live progress bar; logs get plain lines
            "detach": True,
            # The image is offline by construction (models baked in, HF_HUB_OFFLINE=1); no network proves it, and
            # keeps a run from fetching anything that would make it differ between machines.
            "network_mode": "none",
        }
        if self.user:
            kwargs["user"] = self.user
        if self.gpus and self.amd:
            # As ROCm documents `docker run --device /dev/kfd --device /dev/dri --group-add video`: every GPU.
            kwargs["devices"] = [f"{name}:{name}:rwm" for name in AMD_DEVICE_FILES]
            kwargs["group_add"] = ["video"]
            kwargs["ipc_mode"] = "host"
        elif self.gpus:
            # Every GPU (count=-1), as `docker run --gpus all`; vLLM's workers share tensors through /dev/shm.
            kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
            kwargs["ipc_mode"] = "host"
        elif self.shm_size:
            kwargs["shm_size"] = self.shm_size
        return kwargs


def container_run(
    profile: HardwareProfile,
    image_id: str,
    run_args: list[str],
    reports_dir: Path,
    data_paths: dict[str, str],
    profile_path: Path | None = None,
    *,
    datasets: list[str] | None = None,
    models: list[str] | None = None,
    model_store: Path | None = None,
) -> ContainerRun:
    """Translate a host ``bench run`` into the container's: host paths become mounts, the results land in reports_dir.

    ``run_args`` are the run options other than --profile/--reports-dir/--data/--dataset/--model/--model-store
    (passed through unchanged). ``datasets`` and ``models``: the --dataset and --model values; a file
    (``[NAME=]PATH``) or a local model folder (``clf:``/``hf:`` + path) is mounted read-only and named by its place
    inside, a data set keeping its name (the file's stem unless NAME= is given); a value naming no file here is passed
    on as a data set's name (the run inside resolves it, or says it is neither). ``model_store``: a model store of
    the host, mounted read-only at ``CONTAINER_MODEL_STORE``; the run inside loads Hub LLMs from it and checks each
    file against the image's model lock. Raises ContainerError for a model folder or store that does not exist.
    """
    reports_dir.mkdir(parents=True, exist_ok=True)
    volumes = {str(reports_dir.resolve()): {"bind": CONTAINER_REPORTS, "mode": "rw"}}
    if Path(POWERCAP).is_dir():  # RAPL counters: read-only, so the CPU meter inside measures this machine
        volumes[POWERCAP] = {"bind": POWERCAP, "mode": "ro"}
    command = ["run", "--reports-dir", CONTAINER_REPORTS]
    if profile_path is not None:  # a profile from a TOML file of the host, not one of the image's
        inside = f"{CONTAINER_INPUTS}/profile-{profile_path.name}"
        volumes[str(profile_path.resolve())] = {"bind": inside, "mode": "ro"}
        command += ["--profile", inside]
    else:
        command += ["--profile", profile.name]
    for i, (name, path) in enumerate(sorted(data_paths.items())):
        host = Path(path)
        if not host.is_file():
            raise ContainerError(f"--data {name}={path}: no such file (it is mounted into the container)")
        inside = f"{CONTAINER_INPUTS}/data-{i}-{host.name}"
        volumes[str(host.resolve())] = {"bind": inside, "mode": "ro"}
        command += ["--data", f"{name}={inside}"]
    for i, value in enumerate(datasets or []):
        name, sep, path = value.partition("=")
        host = Path(path if sep else value).expanduser()
        if not host.is_file():  # a data set's name (of the suite or the catalog): the run inside resolves it
            command += ["--dataset", value]
            continue
        bind = volumes.setdefault(
            str(host.resolve()), {"bind": f"{CONTAINER_INPUTS}/dataset-{i}-{host.name}", "mode": "ro"}
        )
        command += ["--dataset", f"{name if sep else host.stem}={bind['bind']}"]  # a file named twice: one mount
    for i, value in enumerate(models or []):
        command += ["--model", _mounted_model(value, i, volumes)]
    if model_store is not None:
        if not model_store.is_dir():
            raise ContainerError(f"--model-store {model_store}: no such folder (it is mounted into the container)")
        volumes[str(model_store.resolve())] = {"bind": CONTAINER_MODEL_STORE, "mode": "ro"}
        command += ["--model-store", CONTAINER_MODEL_STORE]
    environment = {
        "BENCH_IMAGE_ID": image_id,
        "HF_HUB_OFFLINE": "1",
        "HOME": "/tmp",  # the host's uid below may have no home in the image
    }
    # Results belong to whoever ran `make bench`, not to the image's user (POSIX hosts only).
    user = f"{os.getuid()}:{os.getgid()}" if hasattr(os, "getuid") else None
    return ContainerRun(
        image=image_id,
        command=[*command, *run_args],
        volumes=volumes,
        environment=environment,
        gpus=bool(profile.hardware.gpu_count),
        amd=profile.hardware.device == "rocm",
        user=user,
        shm_size=VLLM_CPU_SHM_SIZE if profile.llm.backend == "vllm" and not profile.hardware.gpu_count else None,
    )


def ensure_image(engine: Engine, profile: HardwareProfile, *, build: bool = True) -> Any:
    """The profile's image, built first when the engine does not have it (and ``build``)."""
    image = find_image(engine, profile.container.image)
    if image is None:
        if not build:
            raise ContainerError(
                f"{engine.describe()} has no image {profile.container.image}: `make image PROFILE={profile.name}`"
            )
        plan = build_plan(profile)
        preflight_build(profile, plan)
        print(f"bench: {engine.describe()} has no image {profile.container.image}: building it", file=sys.stderr)
        image = build_image(engine, plan)
    for warning in check_image(image, profile):
        print(f"bench: warning: {warning}", file=sys.stderr)
    return image


def _stream(container: Any, *, tty: bool) -> None:
    """Copy the container's stdout to ours and its stderr to ours (with a TTY they are one stream already).

    Kept apart so that ``bench run --json`` in the container still prints only the document on stdout.
    """
    import threading

    def pump(stdout: bool) -> None:
        target = sys.stdout.buffer if stdout else sys.stderr.buffer
        for chunk in container.logs(stream=True, follow=True, stdout=stdout, stderr=not stdout):
            target.write(chunk)
            target.flush()

    if tty:
        pump(True)
        return
    errors = threading.Thread(target=pump, args=(False,), daemon=True)
    errors.start()
    pump(True)
    errors.join(timeout=10)


def run_in_container(engine: Engine, profile: HardwareProfile, spec_of: Any) -> int:
    """Build the image if needed, run ``spec_of(image_id)`` (a ContainerRun) in it, stream it, return its status."""
    preflight_gpu(engine, profile)
    image = ensure_image(engine, profile)
    spec: ContainerRun = spec_of(image.id)
    print(
        f"bench: running in container {profile.container.image} ({image.id[:19]}) on {engine.describe()}; "
        f"results in {next(iter(spec.volumes))}",
        file=sys.stderr,
        flush=True,
    )
    kwargs = spec.sdk_kwargs()
    with engine_errors(f"creating a container from {profile.container.image}"):
        container = engine.client.containers.create(**kwargs)
    started = time.time()
    try:
        with engine_errors(f"starting the container of {profile.container.image}"):
            container.start()
        try:
            with engine_errors("streaming the container's output"):
                _stream(container, tty=bool(kwargs["tty"]))
        except KeyboardInterrupt:
            # The run inside keeps its finished cells when interrupted (like Ctrl-C on the host): pass it on.
            print("bench: interrupting the container (its finished cells are kept)", file=sys.stderr)
            container.kill(signal=int(signal.SIGINT))
            container.wait(timeout=120)
            raise
        with engine_errors("waiting for the container"):
            status = int(container.wait().get("StatusCode", 1))
    finally:
        try:
            container.remove(force=True)
        except Exception as exc:  # a leftover stopped container is untidy, not a failed run
            print(f"bench: warning: container {container.id[:12]} not removed ({exc})", file=sys.stderr)
        # The run printed its paths as the container sees them (also when interrupted); say where they are here.
        reports = next(iter(spec.volumes))
        for results in sorted(Path(reports).glob("*/results.json")):
            if results.stat().st_mtime >= started:
                print(f"bench: on this machine: {results}", file=sys.stderr)
    return status


def _mounted_model(value: str, index: int, volumes: dict[str, dict[str, str]]) -> str:
    """A --model value as the container sees it: a local folder of a ``clf:``/``hf:`` model mounted read-only under
    the inputs folder (its pin, the folder's sha256, is the same inside); anything else unchanged."""
    from bench.catalog.models import is_user_model, user_model_ref

    if not is_user_model(value):
        return value
    prefix, ref, _, local = user_model_ref(value)
    if not local:
        return value  # a Hub model: the image's cache (or --model-store) has it, or the run says how to fetch it
    host = Path(ref).expanduser()
    if not host.is_dir():
        raise ContainerError(f"--model {value}: no such folder ({host.absolute()}; it is mounted into the container)")
    bind = volumes.setdefault(
        str(host.resolve()), {"bind": f"{CONTAINER_INPUTS}/model-{index}-{host.name}", "mode": "ro"}
    )
    return f"{prefix}:{bind['bind']}"
