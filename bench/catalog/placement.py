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
    if hw.device == "cpu":
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
