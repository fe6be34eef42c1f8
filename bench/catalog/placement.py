"""How many nodes and GPUs a model of a suite gets on a profile's nodes (the runner and ``bench slurm`` agree here)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.config import HardwareProfile
from bench.errors import ConfigError


@dataclass(frozen=True)
class Placement:
    """``nodes`` x ``gpus_per_node``: vLLM's pipeline_parallel_size x tensor_parallel_size (0 GPUs: CPU only)."""

    nodes: int
    gpus_per_node: int

    @property
    def total_gpus(self) -> int:
        """GPUs over every node."""
        return self.nodes * self.gpus_per_node

    @property
    def label(self) -> str:
        """``2x1``: nodes x GPUs per node."""
        return f"{self.nodes}x{self.gpus_per_node}"


def placement_for(spec: Any, profile: HardwareProfile, *, max_nodes: int | None = None) -> Placement:
    """The placement of model ``spec`` on ``profile``'s nodes; ConfigError when it cannot fit.

    CPU profiles: 1 node, no GPU. Traditional models on GPU profiles: one GPU (the embedder runs on it). LLMs: the
    ``model@NxG`` variant's placement, else ``gpus_needed`` for 16-bit weights (an LLM of the user's, ``hf:``, whose
    size the catalog does not know: one GPU, as a traditional model); a model needing more GPUs than one
    node has spans ``ceil(gpus / gpus per node)`` nodes, but only when the profile's ``[slurm] max_nodes`` (or
    ``max_nodes``) allows it, since the paper's two-node runs cost 1.7-2.7x the energy of one node.
    """
    from bench.catalog.models import gpus_needed

    hw = profile.hardware
    allowed = profile.slurm.max_nodes if max_nodes is None else max_nodes
    if not hw.on_gpus:  # the CPU, or an Apple GPU (mps) sharing the chip's memory: nothing to place on
        return Placement(1, 0)
    if spec.kind != "llm":
        return Placement(1, 1)
    params = spec.params
    need = gpus_needed(float(params["params_b"]), hw.gpu_memory_gb) if "params_b" in params else 1
    if "pipeline_parallel_size" in params:  # an explicit model@NxG placement
        chosen = Placement(int(params["pipeline_parallel_size"]), int(params["gpus"]))
        if chosen.gpus_per_node > hw.gpu_count:
            raise ConfigError(
                f"{spec.name}: {chosen.gpus_per_node} GPUs per node, but a node of profile {profile.name!r} has "
                f"{hw.gpu_count}"
            )
        if chosen.total_gpus < need:
            raise ConfigError(
                f"{spec.name}: {chosen.total_gpus} GPU(s) of {hw.gpu_memory_gb:g} GB cannot hold the model, it needs "
                f"{need}; use a larger placement"
            )
    elif need <= hw.gpu_count:
        chosen = Placement(1, need)
    else:
        chosen = Placement(math.ceil(need / hw.gpu_count), hw.gpu_count)
    if chosen.nodes > allowed:
        how = (
            "enable multi-node in the profile ([slurm] max_nodes = "
            f"{chosen.nodes}: vLLM pipeline parallel over Ray) or pick a profile with more or larger GPUs per node"
            if allowed == 1
            else f"raise [slurm] max_nodes to {chosen.nodes} or pick a profile with more or larger GPUs per node"
        )
        raise ConfigError(
            f"model {spec.name!r} needs {chosen.total_gpus} GPUs of {hw.gpu_memory_gb:g} GB ({chosen.nodes} nodes), "
            f"a node of profile {profile.name!r} has {hw.gpu_count} GPUs and the profile allows {allowed} node(s) per "
            f"model: {how}"
        )
    return chosen


#: What ``gpus_needed`` multiplies 16-bit weights by for the KV cache and activations (its ``overhead``).
MEMORY_OVERHEAD = 1.15


@dataclass(frozen=True)
class Fit:
    """Whether model ``model`` fits a profile's machine: its ``placement``, or None and the ``reason`` it does not
    (the memory it needs against the GPUs there, or the nodes it would take)."""

    model: str
    placement: Placement | None
    reason: str | None = None

    @property
    def fits(self) -> bool:
        """Whether the model can be placed."""
        return self.placement is not None

    def line(self) -> str:
        """``llama-3.1-8b: 1x1`` or ``llama-3.1-70b: does not fit: needs ...`` (one line, plain text)."""
        if self.placement is not None:
            return f"{self.model}: fits on {self.placement.total_gpus} GPU(s) ({self.placement.label})"
        return f"{self.model}: does not fit: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: model, placement label (None: does not fit), GPUs, reason."""
        return {
            "model": self.model,
            "placement": self.placement.label if self.placement else None,
            "gpus": self.placement.total_gpus if self.placement else None,
            "reason": self.reason,
        }


def memory_needed_gb(params_b: float, *, bytes_per_param: int = 2) -> tuple[float, float]:
    """(weights, weights x ``MEMORY_OVERHEAD``) in GB of a model of ``params_b`` billion parameters at
    ``bytes_per_param`` (2: 16-bit), as ``gpus_needed`` counts them."""
    weights = params_b * bytes_per_param
    return weights, weights * MEMORY_OVERHEAD


def model_fit(spec: Any, profile: HardwareProfile, *, max_nodes: int | None = None) -> Fit:
    """Whether ``spec`` fits ``profile``'s machine (its GPUs per node and their memory, as a run resolved them:
    ``bench.environment.resolve_profile``) within ``max_nodes`` (default the profile's ``[slurm] max_nodes``).

    The reason names the memory the model needs in 16 bit (``gpus_needed``: weights x 1.15, on a power of two of
    GPUs), the GPUs that takes, and what the machine has, e.g. "needs ~141 GB of bfloat16 weights, ~162 GB with the
    KV cache (x1.15): 2 GPUs of 80 GB; this machine has 1 x 80 GB"."""
    hw = profile.hardware
    if hw.on_gpus and not hw.gpu_memory_gb and spec.kind == "llm" and "params_b" in spec.params:
        return Fit(
            spec.name,
            None,
            f"profile {profile.name!r} gives no memory per GPU: set [hardware] gpu_memory_gb to place the LLMs",
        )
    try:
        return Fit(spec.name, placement_for(spec, profile, max_nodes=max_nodes))
    except ConfigError as exc:
        params = spec.params
        if spec.kind != "llm" or "params_b" not in params or not hw.on_gpus or not hw.gpu_memory_gb:
            return Fit(spec.name, None, str(exc))
        from bench.catalog.models import gpus_needed

        weights, total = memory_needed_gb(float(params["params_b"]))
        need = gpus_needed(float(params["params_b"]), hw.gpu_memory_gb)
        dtype = profile.llm.dtype if profile.llm.dtype in ("bfloat16", "float16") else "16-bit"
        allowed = profile.slurm.max_nodes if max_nodes is None else max_nodes
        if "pipeline_parallel_size" in params:  # an explicit model@NxG: placement_for's own message says it
            return Fit(spec.name, None, str(exc))
        return Fit(
            spec.name,
            None,
            f"needs ~{weights:.0f} GB of {dtype} weights, ~{total:.0f} GB with the KV cache and activations "
            f"(x{MEMORY_OVERHEAD:g}): {need} GPUs of {hw.gpu_memory_gb:g} GB; here {hw.gpu_count} x "
            f"{hw.gpu_memory_gb:g} GB per node, {allowed} node(s) per model",
        )


def paper_llm_fits(profile: HardwareProfile, *, max_nodes: int | None = None) -> list[Fit]:
    """``model_fit`` of each of the paper's LLMs (the catalog's LLMs with a paper label) on ``profile``'s machine, in
    the catalog's order; empty for a CPU profile (nothing is placed on GPUs there)."""
    from bench.catalog.models import list_models

    if not profile.hardware.on_gpus:
        return []
    return [model_fit(spec, profile, max_nodes=max_nodes) for spec in list_models("llm") if spec.paper_label]


def placement_problems(profile: HardwareProfile) -> list[str]:
    """What ``bench profiles validate`` says of a GPU profile's placements beyond its schema (empty: consistent): a
    suite model that cannot be placed on the profile's node (``placement_for`` within ``[slurm] max_nodes``), an LLM
    of the paper's that fits but is neither in the ``paper`` suite nor excluded, or does not fit and is not excluded
    (both where the profile has a ``paper`` suite), and an exclusion of a model that fits (a stale reason). The
    sizes are the catalog's (``gpus_needed``), the machine the profile's as written. Nothing on a CPU or mps profile
    (no model is placed there)."""
    from bench.catalog.datasets import get_dataset_spec
    from bench.catalog.models import base_model_name, get_model_spec

    problems: list[str] = []
    for suite_name, suite in profile.suites.items():  # names `bench run` would refuse, on every profile
        for what, names, lookup in (("data set", suite.datasets, get_dataset_spec), ("model", suite.models, None)):
            for name in names:
                if lookup is not None and ("/" in name or "." in name):  # a file of one's own: read at run time
                    continue
                try:
                    lookup(name) if lookup is not None else get_model_spec(name)
                except ConfigError as exc:
                    problems.append(f"suite {suite_name!r}: {what} {name}: {exc}")
    if problems or not profile.hardware.on_gpus:  # the CPU, or Apple's GPU sharing the chip's memory: no placement
        return problems
    if not profile.hardware.gpu_memory_gb:  # allowed (a schema-1 profile, gpu-check's), but nothing can be placed
        return [
            "hardware.gpu_memory_gb is 0 (not given): no model can be placed; set it to one GPU's memory in GB, as "
            "its datasheet states"
        ]
    for suite_name, suite in profile.suites.items():
        for model in suite.models:
            try:
                placement_for(get_model_spec(model), profile)
            except ConfigError as exc:
                problems.append(f"suite {suite_name!r}: {model}: {exc}")
    paper = profile.suites.get("paper")  # the paper's grid: "every LLM that fits" where a profile has one
    listed = {base_model_name(m) for m in paper.models} if paper is not None else None
    for fit in paper_llm_fits(profile):
        if fit.fits and fit.model in profile.excluded_models:
            problems.append(
                f"[excluded_models] {fit.model}: it fits ({fit.line()}) on {profile.hardware.gpu_count} x "
                f"{profile.hardware.gpu_memory_gb:g} GB per node: remove the exclusion"
            )
        if listed is None or fit.model in profile.excluded_models:
            continue
        if fit.fits and fit.model not in listed:
            problems.append(f"{fit.model} fits, but the paper suite leaves it out and [excluded_models] says not why")
        if not fit.fits:
            problems.append(f"{fit.model} does not fit ({fit.reason}); add it to [excluded_models] with the reason")
    return problems


def fits_summary(profile: HardwareProfile, fits: list[Fit]) -> list[str]:
    """What a run's header, ``bench env`` and ``bench validate`` say of ``fits``: the machine in one line, then the
    models that fit and one line per model that does not, with its reason."""
    hw = profile.hardware
    if hw.device == "mps":
        return [f"profile {profile.name!r} runs on Apple's GPU (mps), sharing the chip's memory: nothing is placed"]
    if not hw.on_gpus:
        return [f"profile {profile.name!r} runs on the CPU: no model is placed on a GPU"]
    lines = [
        f"machine of profile {profile.name!r}: {hw.gpu_count} GPU(s) of {hw.models_text()}, {hw.gpu_memory_gb:g} GB "
        "each"
    ]
    fitting = [f"{f.model} ({f.placement.label})" for f in fits if f.placement is not None]
    if fitting:
        lines.append("the paper's LLMs that fit (nodes x GPUs): " + ", ".join(fitting))
    lines += [f"does not fit: {f.model}: {f.reason}" for f in fits if f.placement is None]
    return lines
