"""Models spread over nodes, as the paper ran them: the sbatch lines that start a Ray cluster inside the Slurm
allocation (head on the first node, workers on the rest) for vLLM's pipeline parallelism across nodes, and the
``bench run`` line of a task. Plain strings, unit tested. The meters on every node live in ``bench.meters.multinode``.
"""

from __future__ import annotations

import shlex

# --- the Ray cluster inside the allocation ------------------------------------------------------------------------


def ray_start_lines(*, port: int, gpus_per_node: int, cpus_per_task: int, ray: str = "ray") -> list[str]:
    """Bash lines (for an sbatch script) that start Ray over the allocation's nodes and export RAY_ADDRESS.

    Head on the first node of ``$SLURM_JOB_NODELIST``, one worker per other node, each through ``srun`` pinned to its
    node so Slurm accounts for and cleans up the processes; ``--block`` keeps each ``srun`` step alive as long as
    the job. The script then waits until Ray sees every node before the kit starts. ``ray`` is the command that runs
    Ray (in Apptainer mode: ``apptainer exec ... ray``).
    """
    resources = f"--num-cpus={cpus_per_task} --num-gpus={gpus_per_node}"
    return [
        "# Ray cluster over the allocation: head on the first node, a worker on each other node (vLLM pipeline stages)",
        'mapfile -t BENCH_NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")',
        'BENCH_HEAD="${BENCH_NODES[0]}"',
        'BENCH_HEAD_IP=$(srun --overlap --nodes=1 --ntasks=1 -w "$BENCH_HEAD" hostname --ip-address '
        "| awk '{print $1}')",
        f'export RAY_ADDRESS="$BENCH_HEAD_IP:{port}"',
        f'srun --overlap --nodes=1 --ntasks=1 -w "$BENCH_HEAD" {ray} start --head --node-ip-address="$BENCH_HEAD_IP" '
        f"--port={port} {resources} --block &",
        "sleep 10  # the head must listen before workers connect",
        'for BENCH_NODE in "${BENCH_NODES[@]:1}"; do',
        f'    srun --overlap --nodes=1 --ntasks=1 -w "$BENCH_NODE" {ray} start --address="$RAY_ADDRESS" '
        f"{resources} --block &",
        "done",
        f'for _ in $(seq 120); do [ "$({ray} status --address="$RAY_ADDRESS" 2>/dev/null | grep -c "node_")" -ge '
        '"${#BENCH_NODES[@]}" ] && break; sleep 1; done',
    ]


def bench_run_line(bench: str, args: list[str]) -> str:
    """``bench run ...`` as one shell-quoted line."""
    return " ".join([bench, *(shlex.quote(a) for a in args)])
