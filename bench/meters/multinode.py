"""Meters on every node of a multi-node run, aggregated as the paper did: energy summed over nodes, duration the
maximum. ``NodesMeterSet``: a ``MeterSet`` look-alike over the local set and a handle per other node (tested without
Ray); ``connect_ray_nodes`` puts a meter actor on every other node of a running Ray cluster (``bench slurm`` starts
one: ``bench.hpc.multinode``) and is the one that imports Ray.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from bench.errors import MeterError
from bench.meters import WindowReading
from bench.meters.base import COMPONENTS, ComponentEnergy, Reading

#: The meter actor asks Ray for no GPU (it must not take one from vLLM); whether Ray then empties CUDA_VISIBLE_DEVICES
#: in it (its GPUs unmetered) has changed across versions (Ray 2.60 kept "1,3" either way:
#: tests/integration/test_ray_multinode.py). This keeps it as the node's ``ray start`` (its Slurm step) had it.
METER_ACTOR_RUNTIME_ENV: dict[str, Any] = {"env_vars": {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}}


def node_gpu_indices(environ: Mapping[str, str]) -> list[int] | None:
    """The GPUs to meter on a remote node: None (CUDA_VISIBLE_DEVICES decides) where it is set and not empty, else
    those Slurm gave the step or the job there (SLURM_STEP_GPUS, else SLURM_JOB_GPUS: NVML indices), else None (the
    meter reports what it sees: no GPU is a reason, never a zero)."""
    if environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return None
    for key in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        parts = [p.strip() for p in environ.get(key, "").split(",") if p.strip()]
        if parts and all(p.isdigit() for p in parts):
            return [int(p) for p in parts]
    return None


def _sum_component(component: str, per_node: dict[str, ComponentEnergy]) -> ComponentEnergy:
    """One component over nodes: the sum when every node measured it, else null naming the node(s) that did not."""
    missing = {host: ce for host, ce in per_node.items() if ce.energy_j is None}
    methods = sorted({ce.method for ce in per_node.values()})
    detail: dict[str, object] = {
        "aggregation": "sum over nodes",
        "nodes": {host: {"energy_j": ce.energy_j, "method": ce.method} for host, ce in per_node.items()},
    }
    nested = ((host, g) for host, ce in per_node.items() for g in ce.detail.get("gpus") or [])  # type: ignore
    gpus = [{**g, "node": host} for host, g in nested if isinstance(g, dict)]
    if gpus:
        detail["gpus"] = gpus  # every GPU of every node, so the GPU count and per-GPU sum checks see them all
    method = next((m for m in methods if m != "unavailable"), methods[0])  # a measured one over "unavailable"
    if len(methods) > 1:
        detail["methods"] = methods
    if missing:
        # A sum without one node's share would read as a (too low) measurement: never report it as one.
        reasons = "; ".join(f"{host}: {ce.reason}" for host, ce in missing.items())
        return ComponentEnergy(None, "unavailable" if len(missing) == len(per_node) else method, reasons, detail)
    return ComponentEnergy(sum(ce.energy_j or 0.0 for ce in per_node.values()), method, None, detail)


def _sum_all(per_node: dict[str, Any]) -> dict[str, ComponentEnergy]:
    """Each component that every node's reading reports, summed over the nodes (``_sum_component``)."""
    return {
        c: _sum_component(c, {host: r.components[c] for host, r in per_node.items()})
        for c in COMPONENTS
        if all(c in r.components for r in per_node.values())
    }


def aggregate_nodes(readings: dict[str, Any]) -> WindowReading:
    """The paper's multi-node aggregation: energy summed over every node's meters, duration the maximum, each node's
    reading in ``nodes``. A component's ``component_duration_s`` is the span the summed power (each node's over its
    own window) integrates to the summed energy over: the power-weighted mean of the node windows, so subtracting
    idle power over it nets a constant draw on every node to zero."""
    if not readings:
        raise MeterError("no node readings to aggregate")
    side: dict[str, Reading] = {}
    for name in sorted({name for r in readings.values() for name in getattr(r, "side", {})}):
        per_node = {host: r.side[name] for host, r in readings.items() if name in r.side}
        if len(per_node) == len(readings):  # a side meter that did not run everywhere has no comparable total
            duration_s = max(sr.duration_s for sr in per_node.values())
            side[name] = Reading(next(iter(per_node.values())).meter, duration_s, _sum_all(per_node))
    components, spans = _sum_all(readings), {}
    for component, energy in components.items():
        powers = [reading.power_w(component) for reading in readings.values()]
        if energy.energy_j is not None and None not in powers and sum(powers) > 0:  # type: ignore[arg-type]
            spans[component] = energy.energy_j / sum(powers)  # type: ignore[arg-type]
    duration_s = max(r.duration_s for r in readings.values())
    return WindowReading(duration_s, components, side, component_duration_s=spans, nodes=dict(readings))


class NodesMeterSet:
    """The local meter set plus one handle per other node, opened and closed together; readings aggregated."""

    def __init__(self, local: Any, local_host: str, remotes: dict[str, Any]) -> None:
        if local_host in remotes:
            # Readings are keyed by node: two under one name would silently drop one node's energy from the sum.
            raise MeterError(f"two nodes named {local_host!r}: name each node uniquely (see node_names)")
        self.local = local
        self.local_host = local_host
        self.remotes = dict(remotes)

    @property
    def min_window_s(self) -> float:
        """The local meters' floor (every node runs the same meter kinds)."""
        return float(self.local.min_window_s)

    def min_window_by(self) -> str | None:
        """The local meter that sets the floor."""
        return self.local.min_window_by()

    def describe(self) -> dict[str, Any]:
        """The local meters' description plus the nodes whose meters are summed."""
        return {**self.local.describe(), "nodes": [self.local_host, *self.remotes], "aggregation": "sum; duration max"}

    def start(self) -> None:
        """Open the window on every node (remotes first: the local start is the window's reference edge)."""
        for remote in self.remotes.values():
            remote.start()
        self.local.start()

    def stop(self) -> WindowReading:
        """Close every node's window and aggregate."""
        readings = {self.local_host: self.local.stop()}
        for host, remote in self.remotes.items():
            readings[host] = remote.stop()
        return aggregate_nodes(readings)

    def close(self) -> None:
        """Close the local meters (remote actors end with the Ray cluster)."""
        self.local.close()


def connect_ray_nodes(local: Any, meter_kwargs: dict[str, Any], *, expected_nodes: int) -> NodesMeterSet:
    """Put a meter actor on every other node of the running Ray cluster (RAY_ADDRESS) and return the node set.

    Refuses to run with fewer nodes than the allocation has: a sum over some of the nodes is not the paper's number.
    """
    import socket

    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError as exc:
        raise MeterError(f"multi-node metering needs Ray (pip install -e '.[multinode]'): {exc}") from None

    address = os.environ.get("RAY_ADDRESS") or "auto"
    try:
        _reachable(address)  # ray.init retries an address nobody listens on for minutes
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        raise MeterError(
            f"--nodes {expected_nodes} meters every node through a running Ray cluster, and none answers at "
            f"{address!r} ({type(exc).__name__}: {str(exc).splitlines()[0]}). `bench slurm` starts one in a "
            "multi-node task; by hand: `ray start --head` on one node, `ray start --address=<head>:6379` on the "
            "others, then RAY_ADDRESS=<head>:6379 bench run ..."
        ) from None
    here = ray.get_runtime_context().get_node_id()
    others = [n for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here]
    if len(others) + 1 < expected_nodes:
        raise MeterError(f"Ray sees {len(others) + 1} node(s), the allocation has {expected_nodes}")

    @ray.remote(num_cpus=0)
    class _RemoteMeters:  # one per node, pinned there
        def __init__(self, kwargs: dict[str, Any]) -> None:
            import os

            from bench.meters import build_meter_set
            from bench.meters.multinode import node_gpu_indices

            kwargs = dict(kwargs)
            if kwargs.get("use_gpu") and kwargs.get("gpu_indices") is None:
                kwargs["gpu_indices"] = node_gpu_indices(os.environ)
            self.meters = build_meter_set(**kwargs)

        def start(self) -> None:
            self.meters.start()

        def stop(self) -> Any:
            return self.meters.stop()

    me = next((n for n in ray.nodes() if n["NodeID"] == here), {"NodeID": here})
    names = node_names([{"NodeManagerHostname": socket.gethostname(), **me}, *others])
    remotes: dict[str, Any] = {}
    for node, name in zip(others, names[1:], strict=True):
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        actor = _RemoteMeters.options(scheduling_strategy=strategy, runtime_env=METER_ACTOR_RUNTIME_ENV).remote(
            meter_kwargs
        )
        remotes[name] = SimpleNamespace(  # what NodesMeterSet calls, each a blocking call to the actor
            actor=actor, start=lambda a=actor: ray.get(a.start.remote()), stop=lambda a=actor: ray.get(a.stop.remote())
        )
    return NodesMeterSet(local, names[0], remotes)


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Raise ConnectionError unless something listens at a ``host:port`` Ray address ("auto" and URLs pass)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"nothing listens at {address} ({exc.strerror or exc})") from None


def node_names(nodes: list[dict[str, Any]]) -> list[str]:
    """A unique name per Ray node (``ray.nodes()`` entries, this node first): its host name, or, where several nodes
    share one (two raylets on one machine), the host name with the node's IP and the start of its id."""
    hosts = [str(n.get("NodeManagerHostname") or n.get("NodeManagerAddress") or "node") for n in nodes]
    out = []
    for host, node in zip(hosts, nodes, strict=True):
        if hosts.count(host) == 1:
            out.append(host)
        else:
            where = node.get("NodeManagerAddress") or "?"
            out.append(f"{host} ({where}, node {str(node.get('NodeID', ''))[:8]})")
    return out
