"""Power over time within a metered window: one background thread, a compact series per component.

Per component (its primary meter): **counters** (RAPL, NVML's energy counter, the estimates' running integrals): the
meter's ``energy_so_far_j()`` (J, thread-safe) read every ``1 / hz`` s (``SERIES_HZ``) for all meters together;
**samples** (GPU power sampled where there is no counter): the meter's own ``power_samples()`` after the window,
integrated by the trapezoidal rule. A meter with neither has no series, with the reason.

Encoding (``bench.results.PowerSeries``, ``ENCODING``): ``[0, window_s]`` (s since the meter set opened the window)
cut into ``n`` equal bins of ``interval_s``; ``watts[k]`` is the mean power over bin ``k`` from the cumulative energy
interpolated linearly at the edges, to ``DIGITS`` significant digits, so ``sum(watts) * interval_s`` is the window's
energy. ``n`` is at most ``MAX_POINTS``, and bins are no finer than the source: the read period, at least
``COUNTER_BINS`` counter updates (NVML: >= 1 s), the sample period; a constant is one bin. Sizes and overhead:
docs/concepts/measurement.md, "Power over time".
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.meters.base import Ticker

#: How often the counters are read (Hz). The issue asks for 1 Hz or faster; 10 Hz resolves a 2 s cpu window.
SERIES_HZ = 10.0
#: Most bins per component per cell: a 1-hour LLM window keeps 6 s bins (600 numbers).
MAX_POINTS = 600
#: A counter's bins span at least this many of its updates (quantization at most 1 / COUNTER_BINS of a bin).
COUNTER_BINS = 10
#: The encoding's name, stored with every series.
ENCODING = "mean-power-bins-v1"
#: Significant digits the watts keep.
DIGITS = 3


def round_sig(value: float, digits: int = DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (0.0 stays 0.0)."""
    return float(f"{value:.{digits}g}")


def cumulative_from_samples(samples: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Power samples ``(t_s, W)`` as cumulative energy ``(t_s, J)`` by the trapezoidal rule (starting at 0 J)."""
    steps = ((pa + pb) / 2.0 * (tb - ta) for (ta, pa), (tb, pb) in itertools.pairwise(samples))
    return list(zip((t for t, _ in samples), itertools.accumulate(steps, initial=0.0), strict=False))


def encode(curves: Sequence[Sequence[tuple[float, float]]], window_s: float, min_interval_s: float) -> dict[str, Any]:
    """Mean power per bin of the sum of cumulative-energy ``curves`` (each ``(t_s, J)``, times increasing) over
    ``[0, window_s]``: ``{"t0_s", "interval_s", "watts"}`` (see the module's encoding). Bins are at least
    ``min_interval_s`` wide and at most ``MAX_POINTS`` many. Raises ValueError without a curve of two points or with
    ``window_s <= 0``."""
    import numpy as np

    if window_s <= 0:
        raise ValueError(f"a power series needs a window longer than 0 s, got {window_s}")
    usable = [c for c in curves if len(c) >= 2]
    if not usable:
        raise ValueError("a power series needs at least two readings of its source")
    n = int(window_s / min_interval_s) if min_interval_s > 0 else MAX_POINTS
    n = min(max(n, 1), MAX_POINTS)
    interval_s = window_s / n
    edges = np.linspace(0.0, window_s, n + 1)
    energy = np.zeros(n + 1)
    for curve in usable:
        times = np.fromiter((t for t, _ in curve), float)
        joules = np.fromiter((e for _, e in curve), float)
        energy += np.interp(edges, times, joules)  # constant beyond the first and last reading
    watts = np.maximum(np.diff(energy) / interval_s, 0.0)
    # interval_s to 9 significant digits: exact to a nanosecond over any window the kit runs, and 10 bytes not 20
    return {"t0_s": 0.0, "interval_s": round_sig(interval_s, 9), "watts": [round_sig(float(w)) for w in watts]}


class PowerRecorder:
    """Reads the counters of the meters that own each component, in one background thread, during a window.

    ``owners``: component -> the primary meter reporting it (``MeterSet.owner``). ``hz``: reads per second
    (``SERIES_HZ``). Times are ``time.perf_counter``'s, the meters' clock too, so NVML samples and counter reads
    share one time axis. Use: ``arm()`` before the meters open (the thread starts and waits:
    starting a thread takes up to milliseconds on a busy machine, which must not fall inside the meters' windows),
    ``start()`` once they are open (time 0 and the first read), ``stop()`` before they close (the last read),
    ``series(window_s)`` after they closed (it adds the samples of sampling meters). Reading never fails a window: an
    error ends the series with its reason.
    """

    def __init__(self, owners: Mapping[str, Any], *, hz: float = SERIES_HZ) -> None:
        if not 1.0 <= hz <= 1000.0:
            raise ValueError(f"power series rate must be 1 to 1000 Hz (the issue asks for at least 1 Hz), got {hz}")
        self.owners = {c: m for c, m in owners.items() if m is not None}
        self.hz = float(hz)
        self._clock = time.perf_counter
        owners = dict.fromkeys(self.owners.values())  # each meter once, in order
        self._counting = [m for m in owners if callable(getattr(m, "energy_so_far_j", None))]
        self._reads: dict[str, list[tuple[float, float]]] = {}
        self._error: str | None = None
        self._t0 = 0.0
        self._ticker = Ticker(self._read_or_end, 1.0 / self.hz, "bench-power-series")
        self._lock = threading.Lock()

    def _read(self) -> None:
        for meter in self._counting:
            before = self._clock()
            values = meter.energy_so_far_j()
            t = (before + self._clock()) / 2.0 - self._t0  # the middle of the read: a slow read errs by half of it
            with self._lock:
                for component, joules in values.items():
                    if self.owners.get(component) is meter:
                        self._reads.setdefault(component, []).append((t, float(joules)))

    def _read_or_end(self) -> bool:
        """One read; False, the series ended with its reason, where it failed (a description never fails a window)."""
        try:
            self._read()
            return True
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            return False

    def arm(self) -> None:
        """Start the thread, waiting for ``start`` (call before the meters open)."""
        self._ticker.stop()
        self._reads, self._error = {}, None
        if self._counting:
            self._ticker.arm()

    def start(self) -> None:
        """Time 0 of the window and the first reading; the thread (``arm`` first) reads from here on."""
        self._t0 = self._clock()
        if self._counting and not self._read_or_end():
            self._ticker.stop()
            return
        self._ticker.go(self._t0)

    def stop(self) -> None:
        """Stop the thread and take the last reading (the window's end), while the meters are still open."""
        self._ticker.stop()
        if self._counting and self._error is None:
            self._read_or_end()

    def series(self, window_s: float) -> dict[str, Any]:
        """The window's series as ``bench.results.PowerSeries`` stores it: per component the encoded watts, with
        the method, where they came from, the reads and the bin floor; ``missing`` says why a component has none."""
        components: dict[str, Any] = {}
        missing: dict[str, str] = {}
        for component, meter in self.owners.items():
            curves: list[list[tuple[float, float]]] = []
            sources: list[str] = []
            floor_s = 0.0
            reads = self._reads.get(component, [])
            if meter in self._counting:
                if self._error is not None:
                    missing[component] = f"reading {getattr(meter, 'name', '?')} failed: {self._error}"
                    continue
                if len(reads) >= 2:
                    curves.append(reads)
                    sources.append("counter")
                    period = float(getattr(meter, "counter_period_s", 0.0) or 0.0)
                    floor_s = max(floor_s, 1.0 / self.hz, COUNTER_BINS * period)
            samples_of = getattr(meter, "power_samples", None)
            if callable(samples_of):
                with contextlib.suppress(Exception):
                    for device_samples in samples_of().get(component, []):
                        if len(device_samples) >= 2:
                            curves.append(cumulative_from_samples(device_samples))
                            span = device_samples[-1][0] - device_samples[0][0]
                            floor_s = max(floor_s, span / (len(device_samples) - 1))
                            if "samples" not in sources:
                                sources.append("samples")
            if not curves:
                missing[component] = (
                    "fewer than two readings in the window"
                    if meter in self._counting or callable(samples_of)
                    else f"{getattr(meter, 'name', '?')} neither reads a counter nor samples power during a window"
                )
                continue
            try:
                encoded = encode(curves, window_s, floor_s)
            except ValueError as exc:
                missing[component] = str(exc)
                continue
            method, source = getattr(meter, "method", None) or "?", "+".join(sources)
            components[component] = {"method": method, "source": source, **encoded, "reads": len(reads) or None}
        out = {"encoding": ENCODING, "window_s": round_sig(window_s, 9), "hz": self.hz}
        return {**out, "components": components, "missing": missing}

    def close(self) -> None:
        """Stop the thread if a window is still open. Idempotent."""
        self._ticker.stop()
