"""What metering a second node through Ray costs at the window's edges (issue 8).

A multi-node window opens every remote node's meters (a Ray actor call each), then the local ones, and closes them in
the same order; the local start is the reference edge. The remote calls therefore widen the edges: this measures by
how much, against the local meter set alone, in the same run.

1. Starts a two-node Ray cluster on this machine (`ray start --head`, then a second `ray start --address`), as a
   multi-node Slurm task does over its nodes.
2. Opens and closes --windows empty windows (CPU and RAM meters, as on this GPU-less machine) with the local meter
   set alone, then with the two-node set, interleaved; prints the median time of start() and of stop() for each,
   the extra time the second node adds per edge, and that extra as a share of the 10 s window the kit uses where
   GPU counters meter.

    python benchmarks/multinode_overhead.py [--windows 50]

Needs Ray (`pip install -e '.[multinode]'`). Every number is measured here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench.meters import build_meter_set
from bench.meters.multinode import connect_ray_nodes
from tests.ray_cluster import two_node_cluster

GPU_WINDOW_S = 10.0  # the kit's minimum window where NVML's energy counter meters (bench.meters.gpu)


def _edges_ms(meters: object) -> tuple[float, float]:
    t0 = time.perf_counter()
    meters.start()  # type: ignore[attr-defined]
    t1 = time.perf_counter()
    meters.stop()  # type: ignore[attr-defined]
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=50, help="windows per configuration (default 50)")
    args = parser.parse_args()
    kwargs = {"cpu_tdp_w": 65.0, "codecarbon": False, "use_gpu": False}
    t0 = time.perf_counter()
    with two_node_cluster() as address:
        print(f"two-node Ray cluster up in {time.perf_counter() - t0:.1f} s at {address}")
        os.environ["RAY_ADDRESS"] = address
        local = build_meter_set(**kwargs)
        nodes = connect_ray_nodes(build_meter_set(**kwargs), kwargs, expected_nodes=2)
        _edges_ms(nodes)  # the first call waits for the remote actor to start: not part of a window's cost
        timings: dict[str, list[tuple[float, float]]] = {"local": [], "two nodes": []}
        for _ in range(args.windows):  # interleaved, so drift of the machine hits both alike
            timings["local"].append(_edges_ms(local))
            timings["two nodes"].append(_edges_ms(nodes))
        local.close()
        nodes.close()
        import ray

        ray.shutdown()  # leave the cluster before it is stopped (else Ray reports its raylets as killed)
    medians = {k: (statistics.median(s for s, _ in v), statistics.median(e for _, e in v)) for k, v in timings.items()}
    print(f"{args.windows} empty windows each (CPU and RAM meters), median ms:")
    for name, (start_ms, stop_ms) in medians.items():
        print(f"  {name:9s}  start {start_ms:7.3f}   stop {stop_ms:7.3f}")
    extra_start = medians["two nodes"][0] - medians["local"][0]
    extra_stop = medians["two nodes"][1] - medians["local"][1]
    share = (extra_start + extra_stop) / (GPU_WINDOW_S * 1000)
    print(f"the second node adds {extra_start:.3f} ms at the start edge and {extra_stop:.3f} ms at the stop edge:")
    print(f"  {share:.4%} of a {GPU_WINDOW_S:g} s window")
    return 0


if __name__ == "__main__":
    sys.exit(main())
