"""Capture the machine and software a run happens on (and, under Slurm, the job and GPUs a task was given), and
check it against the hardware profile.

Everything here reads, nothing changes the machine. NVML is optional: no driver or no GPU is a normal state.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
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


def check_profile(profile: HardwareProfile, machine: MachineInfo) -> list[str]:
    """Return every way the machine differs from what the profile expects (empty list: it matches)."""
    hw = profile.hardware
    problems: list[str] = []
    if hw.device == "cuda":
        pattern = re.compile(hw.gpu_model_pattern or ".", re.IGNORECASE)
        matching = [g for g in machine.gpus if pattern.search(g.name)]
        seen = ", ".join(sorted({g.name for g in machine.gpus})) or f"no GPU ({machine.nvml_status})"
        if not matching:
            problems.append(
                f"profile {profile.name!r} expects {hw.gpu_count} GPU(s) matching "
                f"/{hw.gpu_model_pattern}/, this machine has: {seen}"
            )
        elif len(matching) < hw.gpu_count:
            problems.append(
                f"profile {profile.name!r} expects {hw.gpu_count} GPU(s) matching "
                f"/{hw.gpu_model_pattern}/, this machine has {len(matching)} ({seen})"
            )
        small = [g for g in matching if hw.gpu_memory_gb and g.memory_gb < 0.9 * hw.gpu_memory_gb]
        if small:
            problems.append(
                f"profile {profile.name!r} expects {hw.gpu_memory_gb:g} GB per GPU, GPU(s) "
                f"{[g.index for g in small]} have {min(g.memory_gb for g in small):.1f} GB"
            )
    if hw.min_ram_gb and machine.ram_gb < hw.min_ram_gb:
        problems.append(
            f"profile {profile.name!r} expects at least {hw.min_ram_gb:g} GB RAM, "
            f"this machine has {machine.ram_gb:.1f} GB"
        )
    return problems


def enforce_profile(profile: HardwareProfile, machine: MachineInfo, *, force: bool) -> list[str]:
    """Raise HardwareMismatchError on a mismatch unless ``force``; return the (forced) mismatches to record."""
    problems = check_profile(profile, machine)
    if problems and not force:
        raise HardwareMismatchError(
            "this machine does not match the hardware profile:\n  - "
            + "\n  - ".join(problems)
            + "\nPick the profile of this machine (`bench profiles list`), or pass --force to run anyway "
            "(the mismatch is recorded in the results and shown in the report)."
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
