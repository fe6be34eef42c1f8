"""A metered window around repeated work (the loop rule), shared by a cell's inference window (``bench.run.cell``)
and the calibration job (``bench.calibration``, whose reader reports and the leaderboard use: hence outside the run
path). The one place where a backend meets the meters (they know nothing of each other: ``tests/unit/
test_architecture.py``): the work runs whole until the window lasts ``min_window_s`` (or ``max_loops``), synchronized
at both edges; energies per pass, gross and net of idle power (``per_pass``); the others observer's record
(``other_load``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from bench.results import EnergyValue, OtherLoad, Window


def measure_window(
    backend: Any, texts: Sequence[str], meter_set: Any, min_window_s: float, max_loops: int
) -> tuple[list[int], Window, Any]:
    """One metered window: whole-set inference, repeated until ``min_window_s`` (s) or ``max_loops``.

    Returns (the last pass's predictions, the window, the meter set's reading). Raises RuntimeError when repeated
    passes predict differently (accuracy would depend on the loop count)."""
    # Synchronize before opening (queued warm-up work must not land in the window) and before closing (the window
    # must contain all the work it started): on a GPU, kernels run asynchronously to the Python that launched them.
    for observer in getattr(meter_set, "observers", []):  # the others observer counts the backend's own contexts
        if hasattr(observer, "own_contexts_per_gpu"):
            observer.own_contexts_per_gpu = int(getattr(backend, "cuda_contexts_per_gpu", 1))
    backend.synchronize()
    meter_set.start()
    started = time.perf_counter()
    first, loops = backend.predict(texts), 1
    predictions = first
    while time.perf_counter() - started < min_window_s and loops < max_loops:
        predictions, loops = backend.predict(texts), loops + 1
    backend.synchronize()
    reading = meter_set.stop()
    if first != predictions:
        # Greedy inference must be deterministic; if it is not, accuracy would depend on the loop count.
        raise RuntimeError("predictions differ between repeated passes of the same window (non-deterministic model)")
    window = Window(
        duration_s=reading.duration_s,
        loops=loops,
        min_window_s=min_window_s,
        max_loops_reached=loops >= max_loops and reading.duration_s < min_window_s,
    )
    return predictions, window, reading


def per_pass(
    components: dict[str, Any],
    loops: int,
    duration_s: float,
    idle_power_w: dict[str, float | None] | None,
    window_s: dict[str, float] | None = None,
) -> dict[str, EnergyValue]:
    """Window energies divided by the loop count; net = gross - idle power x the per-pass time it was integrated over.

    ``window_s``: per component, the window its meter integrated over (a hair longer than the set's ``duration_s``
    x loops, since each meter starts before and stops after it); idle is subtracted over that same span so that a
    constant draw nets to zero exactly rather than to the start/stop skew. Without it, ``duration_s`` per pass."""
    out = {}
    for component, ce in components.items():
        energy = None if ce.energy_j is None else ce.energy_j / loops
        idle_w = (idle_power_w or {}).get(component)
        own_s = (window_s or {}).get(component)
        span_s = own_s / loops if own_s else duration_s
        net = energy - idle_w * span_s if energy is not None and idle_w is not None else None
        out[component] = EnergyValue(
            energy_j=energy, net_energy_j=net, method=ce.method, reason=ce.reason, detail=dict(ce.detail)
        )
    return out


def other_load(reading: Any) -> OtherLoad | None:
    """The ``others`` observer's record of a window (``bench.meters.others``) as stored; None where the meter set
    observes nothing (multi-node windows). Over the whole window, not per pass: a share needs no dividing."""
    record = (getattr(reading, "observed", None) or {}).get("others")
    if record is None:
        return None
    if "error" in record:
        return OtherLoad(
            wall_s=reading.duration_s, logical_cpus=os.cpu_count() or 1, note=f"observer failed: {record['error']}"
        )
    return OtherLoad.model_validate(record)
