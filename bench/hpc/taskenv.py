"""What a Slurm task knows about itself (job and array ids, nodes, GPUs it was given), recorded in each session."""

from __future__ import annotations

import os
import socket
from typing import Any

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
