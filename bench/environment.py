"""Capture the machine and software a run happens on (and, under Slurm, the job and GPUs a task was given), and
check it against the hardware profile.

Everything here reads, nothing changes the machine. NVML is optional: no driver or no GPU is a normal state.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import __version__
from bench.config import HardwareProfile
from bench.errors import HardwareMismatchError
from bench.meters.estimate import cpu_model_name

#: Libraries whose versions go into every result (those not installed are recorded as None).
TRACKED_LIBRARIES = (
    "numpy",
    "scikit-learn",
    "xgboost",
    "xgboost-cpu",
    "torch",
    "transformers",
    "sentence-transformers",
    "datasets",
    "codecarbon",
    "nvidia-ml-py",
    "zeus",
    "amdsmi",
    "vllm",
    "pydantic",
)


@dataclass
class GpuInfo:
    """One GPU as NVML reports it."""

    index: int
    name: str
    memory_gb: float
    power_limit_w: float | None
    uuid: str | None = None


@dataclass
class MachineInfo:
    """What the kit found on this machine."""

    hostname: str
    os: str
    python: str
    cpu_model: str
    logical_cpus: int
    ram_gb: float
    gpus: list[GpuInfo] = field(default_factory=list)
    gpu_driver: str | None = None
    cuda_visible_devices: str | None = None
    nvml_status: str = "not probed"
    rapl_status: str = "not probed"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "hostname": self.hostname,
            "os": self.os,
            "python": self.python,
            "cpu_model": self.cpu_model,
            "logical_cpus": self.logical_cpus,
            "ram_gb": round(self.ram_gb, 2),
            "gpus": [vars(g) for g in self.gpus],
            "gpu_driver": self.gpu_driver,
            "cuda_visible_devices": self.cuda_visible_devices,
            "nvml_status": self.nvml_status,
            "rapl_status": self.rapl_status,
        }


def _probe_gpus() -> tuple[list[GpuInfo], str | None, str]:
    """The GPUs this process uses, through the device layer (``bench.devices``: CUDA indices mapped to NVML's by
    UUID or PCI bus id; a GPU the process may not open is listed as skipped). Never raises."""
    from bench.devices import VENDORS, vendor_module

    found = {v: vendor_module(v).probe() for v in VENDORS}
    vendor = next((v for v, (ok, _) in found.items() if ok), None)
    if vendor is None:
        return [], None, "; ".join(f"{v}: {why}" for v, (_, why) in found.items())
    why = found[vendor][1]
    try:
        opened = vendor_module(vendor).open_devices()
    except Exception as exc:  # no GPU visible, MIG mode, a GPU the run uses that cannot be read: say so
        return [], None, str(exc)
    try:
        facts = [d.facts for d in opened.devices]
        gpus = [GpuInfo(f.index, f.name, f.memory_gb or 0.0, f.power_limit_w, f.uuid) for f in facts]
        skipped = "".join(f"; GPU {s['index']} skipped: {s['reason']}" for s in opened.skipped)
        return gpus, opened.driver, f"ok: {why}, {len(gpus)} visible{skipped}"
    finally:
        opened.close()


def _visible_indices(count: int) -> list[int]:
    """Indices allowed by CUDA_VISIBLE_DEVICES (integer form only; UUID form keeps all, recorded as given)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None or value.strip() == "":
        return list(range(count)) if value is None else []
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if all(p.lstrip("-").isdigit() for p in parts):
        out = []
        for p in parts:
            i = int(p)
            if i < 0 or i >= count:  # CUDA stops at the first invalid index: "0,7,1" on 4 GPUs is GPU 0 only
                break
            out.append(i)
        return out
    return list(range(count))


def detect_machine() -> MachineInfo:
    """Read the machine: CPU, RAM, GPUs (NVML), RAPL availability."""
    import psutil

    from bench.meters.rapl import RaplMeter

    gpus, driver, nvml_status = _probe_gpus()
    rapl_ok, rapl_reason = RaplMeter.probe("/sys/class/powercap")
    return MachineInfo(
        hostname=platform.node(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        cpu_model=cpu_model_name(),
        logical_cpus=os.cpu_count() or 1,
        ram_gb=psutil.virtual_memory().total / 1e9,
        gpus=gpus,
        gpu_driver=driver,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        nvml_status=nvml_status,
        rapl_status="ok" if rapl_ok else rapl_reason,
    )


#: Bytes in a GiB: datasheets' "80 GB" of GPU memory are 80 x 2^30 bytes, NVML reports bytes.
_GIB = 2**30


def gpu_memory_gib(gpu: GpuInfo) -> float:
    """``gpu``'s total memory in GiB (``GpuInfo.memory_gb`` is NVML's byte count / 1e9)."""
    return gpu.memory_gb * 1e9 / _GIB


def memory_size_of(profile: HardwareProfile, gpu: GpuInfo) -> float | None:
    """The memory size [GB, datasheet] of the profile's that ``gpu`` is: the largest of ``memory_sizes_gb`` whose
    ``MEMORY_VARIANT_SHARE`` (90%) the GPU's total reaches (an H100 80GB HBM3 reports 81,559 MiB = 79.6 GiB: the
    80 GB size, not the 94 GB one). None when it reaches none, or the profile names no size."""
    from bench.config import MEMORY_VARIANT_SHARE

    found = gpu_memory_gib(gpu)
    sizes = [size for size in profile.hardware.memory_sizes_gb if found >= MEMORY_VARIANT_SHARE * size]
    return max(sizes) if sizes else None


def matching_gpus(profile: HardwareProfile, machine: MachineInfo) -> list[GpuInfo]:
    """The machine's GPUs of the profile's model (``HardwareSpec.accepts_gpu``)."""
    return [g for g in machine.gpus if profile.hardware.accepts_gpu(g.name)]


def check_profile(profile: HardwareProfile, machine: MachineInfo) -> list[str]:
    """Return every way the machine differs from what the profile expects (empty list: it matches).

    A GPU profile wants at least ``min_gpus`` GPUs of one of its ``gpu_models`` (whole words of the NVML name), each
    with one of its memory sizes (``memory_size_of``); more GPUs than ``gpu_count`` are fine (a run uses and records
    those it finds)."""
    hw = profile.hardware
    problems: list[str] = []
    if hw.on_gpus:
        matching = matching_gpus(profile, machine)
        seen = ", ".join(sorted({g.name for g in machine.gpus})) or f"no GPU ({machine.nvml_status})"
        wanted = f"{hw.min_gpus} GPU(s)" if hw.min_gpus == hw.gpu_count else f"at least {hw.min_gpus} GPU(s)"
        if not matching:
            problems.append(
                f"profile {profile.name!r} expects {wanted} of model {hw.models_text()}, this machine has: {seen}. "
                "Make a profile of this machine with `bench profiles init`, or run with --profile auto"
            )
        elif len(matching) < hw.min_gpus:
            problems.append(
                f"profile {profile.name!r} expects {wanted} of model {hw.models_text()}, this machine has "
                f"{len(matching)} ({seen})"
            )
        small = [g for g in matching if hw.memory_sizes_gb and memory_size_of(profile, g) is None]
        if small:
            sizes = " or ".join(f"{size:g}" for size in hw.memory_sizes_gb)
            problems.append(
                f"profile {profile.name!r} expects {sizes} GB per GPU (datasheet sizes; NVML reports at least "
                f"{MEMORY_SHARE_PERCENT}% of one), GPU(s) {[g.index for g in small]} have "
                f"{min(gpu_memory_gib(g) for g in small):.1f} GiB. Make a profile of this machine with "
                "`bench profiles init`, or add its size to [hardware] gpu_memory_variants_gb"
            )
    if hw.device == "mps" and not machine.os.startswith("Darwin"):
        problems.append(
            f"profile {profile.name!r} runs on Apple's GPU (device 'mps'), which only macOS on Apple Silicon has; "
            f"this machine runs {machine.os} ({machine.cpu_model}). Pick this machine's profile (--profile auto)"
        )
    if hw.min_ram_gb and machine.ram_gb < hw.min_ram_gb:
        problems.append(
            f"profile {profile.name!r} expects at least {hw.min_ram_gb:g} GB RAM, "
            f"this machine has {machine.ram_gb:.1f} GB"
        )
    return problems


def accelerator_facts(device: str) -> dict[str, Any]:
    """What the run's device is as PyTorch sees it, for the run's environment: the profile's ``device`` (cpu, cuda,
    rocm, mps), PyTorch's name for it (``torch_device``: rocm runs on ``cuda``), PyTorch's version and build
    (``torch.version.cuda``; ``torch.version.hip``, set by the ROCm build), whether it sees a CUDA/HIP GPU, and whether
    Apple's ``mps`` is built and available (``torch.backends.mps``). PyTorch is imported for a device other than cpu
    (the run needs it there); on cpu its facts are read only when something imported it already. A missing PyTorch
    is ``torch: None``; never raises."""
    import sys

    from bench.config import torch_device

    facts: dict[str, Any] = {"device": device, "torch_device": torch_device(device)}
    torch = sys.modules.get("torch")
    if torch is None and device != "cpu":
        try:
            import torch  # type: ignore[no-redef]
        except ImportError:
            torch = None
    if torch is None:
        facts["torch"] = None
        return facts
    version = getattr(torch, "version", None)
    mps = getattr(getattr(torch, "backends", None), "mps", None)

    def read(call: Any) -> Any:
        try:
            return call()
        except Exception as exc:  # a broken driver: recorded, not raised
            return f"{type(exc).__name__}: {exc}"

    facts.update(
        torch=getattr(torch, "__version__", None),
        torch_cuda=getattr(version, "cuda", None),
        torch_hip=getattr(version, "hip", None),
        cuda_available=read(torch.cuda.is_available) if hasattr(torch, "cuda") else False,
        mps_built=read(mps.is_built) if mps is not None and hasattr(mps, "is_built") else False,
        mps_available=read(mps.is_available) if mps is not None else False,
    )
    return facts


def accelerator_problems(facts: dict[str, Any]) -> list[str]:
    """How the PyTorch of ``facts`` (``accelerator_facts``) cannot run the profile's device: a ROCm profile on a
    CUDA build (``torch.version.cuda`` set, ``torch.version.hip`` not) or the reverse, an mps profile where
    ``torch.backends.mps.is_available()`` is false. A CPU build on a GPU profile is not one (the fake-GPU runs and the
    traditional models run there; a model that needs the GPU fails on its own), nor is a missing PyTorch."""
    device, problems = facts.get("device"), []
    if facts.get("torch") is None:
        return problems
    hip, cuda = facts.get("torch_hip"), facts.get("torch_cuda")
    if device == "rocm" and cuda and not hip:
        problems.append(
            f"profile device 'rocm' runs on PyTorch's ROCm build; this PyTorch ({facts['torch']}) is a CUDA build "
            f"(torch.version.cuda = {cuda}, torch.version.hip = None): run in the ROCm image (Dockerfile.rocm) or "
            "install PyTorch for ROCm (pip install torch --index-url https://download.pytorch.org/whl/rocm<version>)"
        )
    if device == "cuda" and hip:
        problems.append(
            f"profile device 'cuda' is NVIDIA's; this PyTorch ({facts['torch']}) is a ROCm build (torch.version.hip "
            f"= {hip}): use a profile with device = 'rocm' for AMD GPUs (--profile auto, or `bench profiles init`)"
        )
    if device == "mps" and facts.get("mps_available") is not True:
        built = facts.get("mps_built")
        problems.append(
            f"profile device 'mps' is Apple's GPU, and this PyTorch ({facts['torch']}) cannot use it "
            f"(torch.backends.mps.is_available() is false, is_built() {built}): run on an Apple Silicon Mac, macOS "
            "12.3 or newer, with an arm64 Python, on the host (containers on macOS have no GPU)"
        )
    return problems


#: ``MEMORY_VARIANT_SHARE`` as a percentage, for messages.
MEMORY_SHARE_PERCENT = 90


def resolve_profile(profile: HardwareProfile, machine: MachineInfo, *, count: bool = True) -> HardwareProfile:
    """``profile`` as this machine runs it: a GPU profile's ``gpu_count`` set to the GPUs of its model found here
    (``count``; not for a Slurm task, which is given its GPUs by ``--gpus``) and its ``gpu_memory_gb`` to their memory
    size (``memory_size_of``, the smallest GPU's; a profile naming no size: their memory in GiB as NVML reports it,
    rounded down to 0.1), so that placements, the results' profile and their validation use
    the machine's facts. Unchanged for a CPU profile and for a machine that does not match (a forced run)."""
    hw = profile.hardware
    if not hw.on_gpus or check_profile(profile, machine):
        return profile
    matching = matching_gpus(profile, machine)
    sizes = [memory_size_of(profile, g) for g in matching]
    update: dict[str, Any] = {}
    if count and len(matching) != hw.gpu_count:
        update["gpu_count"] = len(matching)
        if hw.gpu_count_min is not None and hw.gpu_count_min > len(matching):  # pragma: no cover - checked above
            update["gpu_count_min"] = len(matching)
    known = [s for s in sizes if s is not None]
    if known and min(known) != hw.gpu_memory_gb:
        update["gpu_memory_gb"] = min(known)
    elif not hw.memory_sizes_gb and matching:  # a profile that names no size: what NVML reports, GiB rounded down
        update["gpu_memory_gb"] = math.floor(min(gpu_memory_gib(g) for g in matching) * 10) / 10
    if not update:
        return profile
    hardware = hw.model_copy(update=update)
    # validated again: a count below gpu_count_min, say, must fail here and not in a later reader
    return type(profile).model_validate({**profile.model_dump(mode="json"), "hardware": hardware.model_dump()})


def enforce_profile(
    profile: HardwareProfile, machine: MachineInfo, *, force: bool, extra: list[str] | None = None
) -> list[str]:
    """Raise HardwareMismatchError on a mismatch unless ``force``; return the (forced) mismatches to record.
    ``extra``: more mismatches found by the caller (``accelerator_problems``: PyTorch's build against the device)."""
    problems = check_profile(profile, machine) + list(extra or [])
    if problems and not force:
        raise HardwareMismatchError(
            "this machine does not match the hardware profile:\n  - "
            + "\n  - ".join(problems)
            + "\nPick the profile of this machine (`bench profiles list`), make one (`bench profiles init`, or "
            "--profile auto), or pass --force to run anyway (the mismatch is recorded in the results and shown in "
            "the report)."
        )
    return problems


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that affect results (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(repo: Path | None = None) -> str | None:
    """The kit's git commit (with '-dirty' if the tree has changes), or None outside a checkout."""
    where = repo or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("BENCH_GIT_COMMIT")
    return f"{sha}-dirty" if dirty else sha


def software_manifest() -> dict[str, Any]:
    """Kit version, git commit, container image id (set by the image / launcher), library versions."""
    return {
        "kit_version": __version__,
        "git_commit": git_commit(),
        "container_image_id": os.environ.get("BENCH_IMAGE_ID"),
        "container_image": os.environ.get("BENCH_IMAGE"),
        "libraries": library_versions(),
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE"),
    }


# --- what a Slurm task knows about itself ------------------------------------------------------------------------

#: Variables Slurm sets in a batch step that say which task ran where; CUDA_VISIBLE_DEVICES is the GPUs it got.
SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_NUM_NODES",
    "SLURM_JOB_PARTITION",
    "SLURM_CLUSTER_NAME",
    "SLURM_CPUS_PER_TASK",
    "SLURM_GPUS_ON_NODE",
    "SLURM_JOB_GPUS",
    "CUDA_VISIBLE_DEVICES",
    "BENCH_SLURM_TASK",
    "BENCH_SLURM_LOG",
)


def slurm_environment(environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The Slurm facts of this process (None outside a Slurm job), with the host name."""
    env = os.environ if environ is None else environ
    if "SLURM_JOB_ID" not in env:
        return None
    record: dict[str, Any] = {name.lower(): env[name] for name in SLURM_VARIABLES if name in env}
    record["host"] = socket.gethostname()
    return record
