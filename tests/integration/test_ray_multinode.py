"""Multi-node metering on a real Ray cluster: two raylets on this machine, started with `ray start` as the Slurm
script starts them on two nodes (head, then a worker joining it), the worker with its own CUDA_VISIBLE_DEVICES and
`--num-gpus` as a GPU node's Slurm step has them.

What this proves for real (no GPU here, so CPU and RAM meters stand in for NVML): meter actors land on the other node
(NodeAffinity), see that node's environment (the GPUs it would meter), open and close with the local window, and
their energy is summed with each node kept apart in the cell; and `bench run --nodes 2` runs end to end through it.
Skipped without Ray, except in CI (CI=true), where Ray is part of the setup and a missing one is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.meters import build_meter_set
from bench.meters.multinode import METER_ACTOR_RUNTIME_ENV, connect_ray_nodes, node_gpu_indices
from bench.results import load_results
from tests.ray_cluster import GPU_NODE_DEVICES, free_port, two_node_cluster

REPO = Path(__file__).resolve().parents[2]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A two-node Ray cluster on loopback; yields its address (RAY_ADDRESS)."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        message = f"Ray is not installed ({exc}): pip install -e '.[multinode]'"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    with two_node_cluster() as address:
        yield address


@pytest.fixture
def on_cluster(ray_cluster: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster)
    yield ray_cluster
    import ray

    ray.shutdown()  # the driver connection of this test; the cluster stays for the next


def test_meter_actors_on_the_other_node_see_its_gpus_and_are_summed(on_cluster: str) -> None:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    kwargs = {"cpu_tdp_w": 65.0, "ram_gb": 16.0, "codecarbon": False, "use_gpu": False}
    meters = connect_ray_nodes(build_meter_set(**kwargs), kwargs, expected_nodes=2)
    try:
        # Both raylets share this host name: each node keeps a name of its own, or one's energy would be dropped.
        assert len(meters.remotes) == 1 and len(set(meters.describe()["nodes"])) == 2
        meters.start()
        reading = meters.stop()
        meters.start()
        reading = meters.stop()  # a second window on the same actors
    finally:
        meters.close()
    assert len(reading.nodes) == 2
    ram = [node.components["ram"].energy_j for node in reading.nodes.values()]
    assert all(e is not None and e > 0 for e in ram)
    assert reading.components["ram"].energy_j == pytest.approx(sum(ram))
    # 16 GB x 0.375 W/GB on each node, each over its own window: the summed power is the two nodes' 12 W.
    assert reading.power_w("ram") == pytest.approx(2 * 16.0 * 0.375)
    assert reading.duration_s == max(node.duration_s for node in reading.nodes.values())

    # What a GPU node's meter actor would meter: the devices of that node's `ray start` step, kept by the actor.
    @ray.remote(num_cpus=0)
    def environment() -> tuple[str | None, list[int] | None]:
        return os.environ.get("CUDA_VISIBLE_DEVICES"), node_gpu_indices(os.environ)

    gpu_node = next(n for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU") == 2.0)
    strategy = NodeAffinitySchedulingStrategy(node_id=gpu_node["NodeID"], soft=False)
    seen = ray.get(environment.options(scheduling_strategy=strategy, runtime_env=METER_ACTOR_RUNTIME_ENV).remote())
    assert seen == (GPU_NODE_DEVICES, None)  # None: CUDA_VISIBLE_DEVICES decides, as on the node itself


def test_bench_run_on_two_nodes_sums_both_and_validates(ray_cluster: str, tmp_path: Path) -> None:
    env = dict(os.environ, RAY_ADDRESS=ray_cluster, HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0")
    args = ["--profile", "cpu", "--suite", "smoke", "--repetitions", "1", "--no-codecarbon", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", *args, "--nodes", "2", "--reports-dir", str(tmp_path), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = tmp_path / json.loads(done.stdout)["run_id"] / "results.json"
    checked = subprocess.run(
        [sys.executable, "-m", "bench.cli", "validate", str(results)], cwd=REPO, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    doc = load_results(results)
    assert doc.settings["nodes"] == 2 and len(doc.meters["nodes"]) == 2
    for cell in doc.cells:
        assert cell.status == "ok" and cell.nodes is not None and len(cell.nodes) == 2
        ram = cell.energy["ram"]
        assert ram.energy_j == pytest.approx(sum(n.energy_j["ram"] or 0.0 for n in cell.nodes), rel=1e-9)
        assert len({n.host for n in cell.nodes}) == 2
        # A constant estimate on each node, each over a window of its own: the net is zero, not the edge skew.
        assert ram.net_energy_j == pytest.approx(0.0, abs=1e-9 * ram.energy_j)
    # The idle baseline is of both nodes too: twice one node's constant RAM estimate.
    one_node_w = float(doc.meters["components"]["ram"]["detail"]["power_w"])
    assert doc.idle[0].power_w["ram"] == pytest.approx(2 * one_node_w, rel=1e-6)


def test_no_ray_cluster_is_a_clear_error_and_leaves_no_run(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = dict(os.environ, RAY_ADDRESS=f"127.0.0.1:{free_port()}", HF_HUB_OFFLINE="1")  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", "--suite", "smoke", "--nodes", "2", "--reports-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "running Ray cluster, and none answers at" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # refused before a run folder was made
