"""The profile of the machine in front of the user: a profile in the profiles folder that matches what the kit
detects, else one made from it (``bench profiles init`` writes it as TOML, ``--profile auto`` uses it unwritten).

A profile made here takes its measurement, LLM and container settings from the shipped one-GPU profile
(``CUDA_TEMPLATE``) or ``cpu``, and its hardware from the machine: the GPU model exactly as NVML names it, the GPUs
found, their memory as NVML reports it (GiB, rounded down to 0.1), their enforced power limit; its ``paper`` suite
holds the paper's LLMs that fit that memory and ``[excluded_models]`` the others, each with the reason
(``bench.catalog.placement.model_fit``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from bench.config import (
    DEFAULT_PROFILES_DIR,
    PROFILE_SCHEMA_VERSION,
    HardwareProfile,
    list_profiles,
    load_profile,
    profiles_dir,
)
from bench.environment import MachineInfo, check_profile, gpu_memory_gib, resolve_profile
from bench.errors import ConfigError

#: The shipped profile a GPU machine's profile starts from: one GPU, vLLM as the paper served, 10 s windows.
CUDA_TEMPLATE = "l4"

#: GPUs without bfloat16 (compute capability below 8.0: Volta, Turing, Pascal), matched by whole words of the NVML
#: name: a profile made for one serves in float16 (NVIDIA's compute capability table: developer.nvidia.com/cuda-gpus).
NO_BF16_GPUS: tuple[str, ...] = ("V100", "V100S", "T4", "P100", "P40", "P4", "K80", "M60", "TITAN V", "TITAN RTX")

#: Words of a GPU name (AMD SMI's market name, e.g. "AMD Instinct MI300X") that make it an AMD GPU: its profile runs on
#: device ``rocm`` in the ROCm image.
AMD_GPU_WORDS = ("AMD", "INSTINCT", "RADEON")


def is_amd_gpu(name: str) -> bool:
    """Whether the GPU called ``name`` is AMD's (``AMD_GPU_WORDS``, whole words)."""
    from bench.config import gpu_name_words

    return any(word in AMD_GPU_WORDS for word in gpu_name_words(name))


#: The prefix of a profile made from the machine (``local-l40s``): never the name of a shipped profile.
LOCAL_PREFIX = "local-"


def local_name(machine: MachineInfo) -> str:
    """The name of ``machine``'s own profile: ``local-`` and its GPU model's words less the vendor's (``NVIDIA L40S``
    -> ``local-l40s``, ``NVIDIA H100 80GB HBM3`` -> ``local-h100-80gb-hbm3``), ``local-cpu`` without a GPU."""
    if not machine.gpus:
        return f"{LOCAL_PREFIX}cpu"
    words = [w for w in re.split(r"[^a-z0-9]+", machine.gpus[0].name.lower()) if w]
    words = [w for w in words if w not in {"nvidia", "tesla", "amd", "geforce", "quadro"}] or ["gpu"]
    return LOCAL_PREFIX + "-".join(words)


def find_profile(machine: MachineInfo, directory: Path | None = None) -> HardwareProfile | None:
    """The profile of the profiles folder that ``machine`` matches (``check_profile``), resolved to it
    (``resolve_profile``), or None. GPU profiles come before CPU ones, and among them the one naming the GPU most
    closely (most words in its ``gpu_models``: a ``local-l40s`` made for "NVIDIA L40S" before a class profile).
    Profiles that do not load are skipped (``bench profiles validate`` names them)."""
    from bench.config import gpu_name_words

    candidates: list[tuple[int, str, HardwareProfile]] = []
    for name in list_profiles(directory):
        try:
            profile = load_profile(name, directory)
        except ConfigError:
            continue
        if check_profile(profile, machine):
            continue
        hw = profile.hardware
        if hw.device == "cpu" and (machine.gpus or (name != "cpu" and not name.startswith(LOCAL_PREFIX))):
            continue  # a GPU machine gets a GPU profile; a special CPU profile (cpu-vllm) is asked for by name
        # GPU profiles by how closely they name the GPU; an Apple profile (mps, matched by the OS) before cpu
        closeness = max((len(gpu_name_words(m)) for m in hw.gpu_models), default=1) if hw.on_gpus else 0
        closeness = 1 if hw.device == "mps" else closeness
        candidates.append((closeness, name, profile))
    if not candidates:
        return None
    _, _, best = max(candidates, key=lambda c: (c[0], c[1].startswith(LOCAL_PREFIX), c[1]))
    return resolve_profile(best, machine)


def profile_from_machine(machine: MachineInfo, *, name: str | None = None) -> HardwareProfile:
    """A profile made from ``machine`` (see the module docstring), named ``name`` or ``local_name(machine)``.

    Raises ConfigError for a name that is a shipped profile's, and for a machine whose GPUs are not all one model
    (make one profile per model, with CUDA_VISIBLE_DEVICES selecting it)."""
    from bench.catalog.models import list_models
    from bench.catalog.placement import model_fit

    if name is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise ConfigError(
            f"--name {name!r}: a profile name is lower-case letters, digits, '-' and '_', beginning with a letter or "
            f"digit (it is also the file name), e.g. {local_name(machine)}"
        )
    name = name or local_name(machine)
    if name in _shipped():
        raise ConfigError(f"profile name {name!r} is a shipped profile's; choose another (e.g. {local_name(machine)})")
    if not machine.gpus:
        base = load_profile("cpu", DEFAULT_PROFILES_DIR)
        return HardwareProfile.model_validate(
            {**base.model_dump(mode="json"), "name": name, "description": f"This machine ({machine.cpu_model})"}
        )
    models = sorted({g.name for g in machine.gpus})
    if len(models) > 1:
        raise ConfigError(
            f"this machine has GPUs of {len(models)} models ({', '.join(models)}); a profile takes one: select one "
            "model's GPUs with CUDA_VISIBLE_DEVICES and run `bench profiles init` again"
        )
    gpus = machine.gpus
    memory_gb = math.floor(min(gpu_memory_gib(g) for g in gpus) * 10) / 10
    limits = [g.power_limit_w for g in gpus if g.power_limit_w]
    template = load_profile(CUDA_TEMPLATE, DEFAULT_PROFILES_DIR).model_dump(mode="json")
    device = "rocm" if is_amd_gpu(models[0]) else "cuda"
    hardware = {
        "device": device,
        "gpu_models": models,
        "gpu_count": len(gpus),
        "gpu_count_min": 1,
        "gpu_memory_gb": memory_gb,
        **({"gpu_max_power_w": max(limits)} if limits else {}),
    }
    from bench.config import gpu_model_matches

    dtype = "float16" if any(gpu_model_matches(m, models[0]) for m in NO_BF16_GPUS) else "bfloat16"
    draft = {
        **template,
        **({"schema_version": PROFILE_SCHEMA_VERSION} if device == "rocm" else {}),  # rocm came with schema 3
        "name": name,
        "description": f"This machine: {len(gpus)} x {models[0]}, {memory_gb:g} GiB each (made by bench profiles init)",
        "hardware": hardware,
        "container": {
            **template["container"],
            **({"dockerfile": "Dockerfile.rocm", "build_args": {}} if device == "rocm" else {}),
            "image": f"bench:{device}-{name}",
        },
        "llm": {**template["llm"], "dtype": dtype},
        "suites": {k: v for k, v in template["suites"].items() if k in ("default", "offline")},
        "excluded_models": {},
        "slurm": {**template["slurm"], "max_nodes": 1},
    }
    profile = HardwareProfile.model_validate(draft)
    fits = [model_fit(spec, profile, max_nodes=1) for spec in list_models("llm") if spec.paper_label]
    traditional = list(template["suites"]["paper"]["models"])
    traditional = [m for m in traditional if not any(m == f.model for f in fits)]
    draft["suites"]["paper"] = {
        **template["suites"]["paper"],
        "description": "The paper's grid on its four public data sets: six traditional models and the paper's LLMs "
        "that fit this machine's GPUs; plus the fine-tuned setfit and finetune-head (not in the paper)",
        "models": traditional + [f.model for f in fits if f.fits],
    }
    draft["excluded_models"] = {f.model: str(f.reason) for f in fits if not f.fits}
    return HardwareProfile.model_validate(draft)


def auto_profile(machine: MachineInfo, directory: Path | None = None) -> tuple[HardwareProfile, str]:
    """``--profile auto``: (the profile of this machine, how it was chosen): the matching profile of the profiles
    folder (``find_profile``), else one made from the machine (``profile_from_machine``), not written."""
    found = find_profile(machine, directory)
    if found is not None:
        return found, f"this machine matches profile {found.name!r} ({directory or profiles_dir()})"
    made = profile_from_machine(machine)
    return made, f"no profile matches this machine: made {made.name!r} from it (write it with `bench profiles init`)"


def profile_toml(profile: HardwareProfile, machine: MachineInfo) -> str:
    """``profile`` as the TOML ``bench profiles init`` writes: a header saying what was detected and how to use and
    change it, then the profile (``tomli_w``; nothing left out, every default written, so it reads as it runs)."""
    import tomli_w

    from bench.catalog.placement import fits_summary, paper_llm_fits

    data = _without_none(profile.model_dump(mode="json"))
    gpus = ", ".join(f"{g.index}: {g.name}, {gpu_memory_gib(g):.1f} GiB, {g.power_limit_w} W" for g in machine.gpus)
    header = [
        f"Made by `bench profiles init` from this machine ({machine.hostname}): {machine.cpu_model}, "
        f"{machine.ram_gb:.0f} GB RAM; GPUs: {gpus or 'none'} ({machine.nvml_status}).",
        "Run with `bench run --profile NAME` (NAME: this file's name, when it is in the profiles folder) or",
        "`--profile PATH`. Edit it as any profile (README: 'Your machine's profile'); `bench profiles validate PATH`",
        "checks it. gpu_memory_gb is what NVML reports, in GiB (rounded down); placements use it.",
        *fits_summary(profile, paper_llm_fits(profile, max_nodes=1)),
    ]
    comment = "\n".join("# " + line for line in header)
    return comment + "\n" + tomli_w.dumps(data, multiline_strings=False)


def write_profile(profile: HardwareProfile, machine: MachineInfo, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``profile`` to ``path`` (``profile_toml``) and read it back (``load_profile_file``: what is written
    loads). Raises ConfigError for an existing file without ``overwrite``, or a file name other than the profile's."""
    from bench.config import load_profile_file

    if path.suffix != ".toml" or path.stem != profile.name:
        raise ConfigError(f"{path}: a profile file is named after its profile: {profile.name}.toml")
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists; pass --force to replace it, or --name another")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile_toml(profile, machine), encoding="utf-8")
    load_profile_file(path)
    return path


def _shipped() -> set[str]:
    """The names of the profiles that ship with the kit (not ``local-*``)."""
    return {n for n in list_profiles(DEFAULT_PROFILES_DIR) if not n.startswith(LOCAL_PREFIX)}


def _without_none(value: Any) -> Any:
    """``value`` without None entries (TOML has no null: an unset optional key is left out, as in the shipped
    files)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
