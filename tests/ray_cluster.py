"""A two-node Ray cluster on this machine, started with `ray start` as a multi-node Slurm task starts one: the head,
then a second node joining it with its own CUDA_VISIBLE_DEVICES and GPU count (as a GPU node's Slurm step has them).

Used by tests/integration/test_ray_multinode.py and benchmarks/multinode_overhead.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

GPU_NODE_DEVICES = "1,3"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_cli() -> str:
    """The `ray` command of this interpreter's environment."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if not ray:
        raise RuntimeError("the ray command is missing although ray imports")
    return ray


@contextlib.contextmanager
def two_node_cluster() -> Iterator[str]:
    """Start the cluster, yield its address (for RAY_ADDRESS), stop its processes (and no other cluster's) after."""
    ray_bin = ray_cli()
    # Short: Ray puts unix sockets under it, and their paths must stay under 108 bytes.
    temp = tempfile.mkdtemp(prefix="bray")
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 1024 * 1024), "--disable-usage-stats"]
    head = [ray_bin, "start", "--head", "--port", str(port), "--temp-dir", temp, "--include-dashboard=false"]
    worker = [ray_bin, "start", "--address", address, "--num-gpus", "2"]
    try:
        for cmd, extra_env in ((head + common, {}), (worker + common, {"CUDA_VISIBLE_DEVICES": GPU_NODE_DEVICES})):
            done = subprocess.run(cmd, env={**env, **extra_env}, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}")
        status = ""
        for _ in range(60):  # until the head sees both nodes
            status = subprocess.run(
                [ray_bin, "status", "--address", address], env=env, capture_output=True, text=True, timeout=60
            ).stdout
            if status.count(" node_") >= 2:
                break
        if status.count(" node_") < 2:
            raise RuntimeError(f"Ray does not see two nodes:\n{status}")
        yield address
    finally:
        _stop(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _stop(temp: str) -> None:
    """Stop this cluster's processes only (`ray stop` would stop every Ray cluster of the user on the machine): the
    ones started with our temp dir in their command line, and everything they spawned (workers, agents)."""
    import psutil

    roots = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and temp in " ".join(proc.info["cmdline"] or []):
                roots.append(proc)
    procs = {p.pid: p for p in roots}
    for root in roots:
        with contextlib.suppress(psutil.Error):
            procs.update({c.pid: c for c in root.children(recursive=True)})
    for proc in procs.values():
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
