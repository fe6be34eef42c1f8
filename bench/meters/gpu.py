"""Accelerator energy (component ``gpu``) through the device layer (``bench.devices``: Zeus plus the vendor's library).

Per GPU, chosen when the meter opens, labelled with the vendor's methods (NVIDIA: ``measured:nvml-energy-counter`` /
``measured:nvml-power-sampling``):

- energy counter: its difference (mJ) between the window's edges; exact up to its update period (about 100 ms on
  NVIDIA), hence windows of at least ``DEFAULT_MIN_WINDOW_S``. Watched for ``COUNTER_PROBE_S`` at open: one that
  does not move, moves backwards or is off power by more than ``PLAUSIBLE_RATIO`` is not used (the reason recorded);
- power sampling: where there is no trusted counter, a thread reads power (W; NVIDIA: the instant field where the
  board has it) at ``sample_hz``, integrated by the trapezoidal rule, with a sample taken at each window edge.

``gpu`` is the sum over the GPUs the run uses; ``detail["gpus"]`` has a record per GPU: identity and how its CUDA
index was matched, scope (``module`` on Grace Hopper, ``gcd-pair`` on an MI250X module: both GCDs), limits, energy,
method, the state at both edges and the time held back by power or heat inside the window
(``throttled_power_s``/``throttled_thermal_s``, violation counters). A GPU counted in another's reading (an MI250X's
second GCD beside its first) is recorded ``counted_in`` it, with no energy of its own, and never read.
Errors: ``DeviceUnavailableError`` (no library, no GPU), ``DeviceError`` naming the GPU, the call and what to do.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.devices import DeviceError, vendor_module
from bench.errors import MeterError
from bench.meters.base import ComponentEnergy, Reading, Ticker

#: How often NVML refreshes the energy counter on current NVIDIA GPUs (Volta through Hopper), s.
COUNTER_UPDATE_PERIOD_S = 0.1
#: Shortest GPU window, s: one counter update is then at most 1% of it.
DEFAULT_MIN_WINDOW_S = COUNTER_UPDATE_PERIOD_S / 0.01
#: Sampling rates allowed, Hz: below 10 short bursts are missed; above 1 kHz NVML's own refresh is the limit.
MIN_SAMPLE_HZ, MAX_SAMPLE_HZ = 10.0, 1000.0
#: How long each counter is watched when the meter opens, s (five updates: a counter that never moves shows).
COUNTER_PROBE_S = 0.5
#: A counter off the power readings by more than this factor over the probe is not trusted.
PLAUSIBLE_RATIO = 2.0
#: The meter's name per vendor: its library's.
LIBRARY_NAMES = {"nvidia": "nvml", "amd": "amdsmi"}
#: A counter still for this many update periods on a powered GPU is broken, not merely quantized.
_STUCK_PERIODS = 5
#: ``Accelerator.state()`` keys -> the record's field names (``_start``/``_end`` appended).
_EDGE_FIELDS = {"sm": "sm_clock_mhz", "mem": "mem_clock_mhz", "temperature_c": "temperature_c",
                "power_limit_w": "power_limit_w", "reasons": "clocks_event_reasons",
                "reason_names": "clocks_event_reason_names"}  # fmt: skip


def integrate_trapezoid_j(samples: Sequence[tuple[float, float]]) -> float:
    """Energy (J) of power samples ``(t_s, power_w)`` (times increasing) by the trapezoidal rule."""
    return sum((pa + pb) / 2.0 * (tb - ta) for (ta, pa), (tb, pb) in itertools.pairwise(samples))


def counter_problem(energy_j: float, power_w: float, span_s: float) -> str | None:
    """Why a counter that moved ``energy_j`` over ``span_s`` while power read ``power_w`` cannot be trusted, or
    None. A span under five updates is not judged."""
    if energy_j < 0:
        return f"went backwards by {-energy_j:.3f} J"
    if span_s < _STUCK_PERIODS * COUNTER_UPDATE_PERIOD_S or power_w <= 0:
        return None
    if energy_j == 0:
        return f"did not move over {span_s:.2f} s while the GPU drew {power_w:.1f} W"
    if not 1 / PLAUSIBLE_RATIO <= energy_j / (power_w * span_s) <= PLAUSIBLE_RATIO:
        return f"counted {energy_j / span_s:.1f} W over {span_s:.2f} s while power read {power_w:.1f} W"
    return None


@dataclass
class _Gpu:
    """A metered device; ``counter_fallback_reason``: why its counter is not used (not ready, stuck, implausible)."""

    device: Any
    has_counter: bool = True
    counter_fallback_reason: str | None = None

    @property
    def index(self) -> int:
        return int(self.device.facts.index)

    @property
    def method(self) -> str:
        return self.device.counter_method if self.has_counter else self.device.sampling_method


class GpuMeter:
    """GPU energy (component ``gpu``) of the GPUs this run uses, by energy counter or, where missing or untrusted,
    power sampling.

    ``indices``: the vendor library's (NVML's); None takes those the framework makes visible (mapped by UUID or PCI
    bus id). ``sample_hz``: 10 to 1000 Hz. ``vendor``: a key of ``bench.devices.VENDORS``; ``library``: its module
    (tests' fakes), default imported. ``min_window_s``: the shortest trusted window
    (``DEFAULT_MIN_WINDOW_S``). ``counter_probe_s``: how long counters are checked at open (``COUNTER_PROBE_S``).
    """

    #: How often the energy counter moves (s): the power series' bins span at least ten of its updates.
    counter_period_s = COUNTER_UPDATE_PERIOD_S

    def __init__(
        self,
        indices: list[int] | None = None,
        *,
        sample_hz: float = 20.0,
        vendor: str = "nvidia",
        library: Any = None,
        min_window_s: float | None = None,
        counter_probe_s: float | None = None,
    ) -> None:
        if not MIN_SAMPLE_HZ <= sample_hz <= MAX_SAMPLE_HZ:
            raise MeterError(f"GPU sample_hz must be {MIN_SAMPLE_HZ:g} to {MAX_SAMPLE_HZ:g} Hz, got {sample_hz:g}")
        self.sample_hz = float(sample_hz)
        self.min_window_s = float(DEFAULT_MIN_WINDOW_S if min_window_s is None else min_window_s)
        if self.min_window_s < 0:
            raise MeterError(f"GPU min_window_s must not be negative, got {self.min_window_s}")
        self._running = False
        # the edge samples are taken by start() and stop() themselves, the sampler's first tick one period later
        self._sampler = Ticker(self._sample_once, 1.0 / self.sample_hz, "bench-gpu-sampler")
        self._samples: dict[int, list[tuple[float, float]]] = {}
        self._last_samples: dict[int, list[tuple[float, float]]] = {}
        self._start_mj: dict[int, tuple[float, int]] = {}
        self._state_start: dict[int, dict[str, Any]] = {}
        self.vendor = vendor
        self.name = getattr(self, "name", None) or LIBRARY_NAMES.get(vendor, vendor)
        self._opened = vendor_module(vendor).open_devices(indices, library=library)
        self.driver: str | None = self._opened.driver
        self.skipped = list(self._opened.skipped)
        self._gpus = [_Gpu(d) for d in self._opened.devices if d.facts.counted_in is None]
        self._counted = [d for d in self._opened.devices if d.facts.counted_in is not None]  # in another's reading
        try:
            self._choose_methods(COUNTER_PROBE_S if counter_probe_s is None else counter_probe_s)
        except BaseException:
            self.close()
            raise

    def _choose_methods(self, probe_s: float) -> None:
        """Per GPU: the counter where it exists and passes the probe, else power sampling (with the reason)."""
        first: dict[int, tuple[float, int, float]] = {}
        for gpu in self._gpus:
            try:
                first[gpu.index] = (time.perf_counter(), gpu.device.energy_mj(), gpu.device.power_w())
            except DeviceError as exc:
                if exc.kind not in ("unsupported", "not_ready"):
                    raise
                gpu.has_counter = False
                if exc.kind == "not_ready":
                    gpu.counter_fallback_reason = f"{exc}; falling back to power sampling at {self.sample_hz:g} Hz"
                self._check_power(gpu)
        if first and (pause_s := probe_s - (time.perf_counter() - min(t for t, _, _ in first.values()))) > 0:
            time.sleep(pause_s)
        for gpu in (g for g in self._gpus if g.index in first):
            t0, e0, p0 = first[gpu.index]
            e1, p1 = gpu.device.energy_mj(), gpu.device.power_w()
            problem = counter_problem((e1 - e0) / 1000.0, (p0 + p1) / 2.0, time.perf_counter() - t0)
            if problem:
                gpu.has_counter = False
                gpu.counter_fallback_reason = (
                    f"energy counter of {gpu.device.facts.label} {problem} when the meter opened: not trusted; "
                    f"power sampled at {self.sample_hz:g} Hz instead"
                )

    def _check_power(self, gpu: _Gpu) -> None:
        try:
            gpu.device.power_w()
        except DeviceError as exc:
            if exc.kind != "unsupported":
                raise
            label = gpu.device.facts.label
            raise DeviceError(
                f"{label} reports neither an energy counter nor its power draw, so it cannot be metered; hide it with "
                "CUDA_VISIBLE_DEVICES or run a CPU profile",
                kind="unsupported",
                device=label,
            ) from exc

    # --- sampling -----------------------------------------------------------------------------------------------

    def _sample_once(self) -> dict[int, float]:
        """Read the power of every sampled GPU; returns the timestamp of each reading."""
        times: dict[int, float] = {}
        for gpu in self._gpus:
            if not gpu.has_counter:
                before = time.perf_counter()
                power_w = gpu.device.power_w()
                t = (before + time.perf_counter()) / 2.0  # the call's midpoint halves the timestamp's error
                self._samples[gpu.index].append((t, power_w))  # atomic: the sampler thread appends too
                times[gpu.index] = t
        return times

    # --- the meter protocol ---------------------------------------------------------------------------------------

    @property
    def indices(self) -> list[int]:
        """The vendor library's indices of the GPUs this meter covers (those counted in another's reading too)."""
        return [d.facts.index for d in self.devices]

    @property
    def devices(self) -> list[Any]:
        """The open devices (``bench.devices.base.Accelerator``), those counted in another's reading too."""
        return list(self._opened.devices)

    @property
    def method(self) -> str:
        """The counter's label when every GPU has it, else power sampling's (the weaker one wins)."""
        return next((g for g in self._gpus if not g.has_counter), self._gpus[0]).method

    @property
    def scope(self) -> str:
        """``module`` when any GPU reports module power (Grace Hopper/Blackwell: GPU, CPU and memory), else
        ``gcd-pair`` when any reads an MI250X module (both GCDs), else ``gpu``."""
        scopes = {g.device.facts.scope for g in self._gpus}
        return next((s for s in ("module", "gcd-pair") if s in scopes), "gpu")

    def components(self) -> tuple[str, ...]:
        """``("gpu",)``."""
        return ("gpu",)

    def _facts(self, gpu: _Gpu) -> dict[str, Any]:
        out = {**dataclasses.asdict(gpu.device.facts), "method": gpu.method}
        if out["power_limit_range_w"]:
            out["power_limit_range_w"] = list(out["power_limit_range_w"])
        if gpu.counter_fallback_reason:
            out["counter_fallback_reason"] = gpu.counter_fallback_reason
        return out

    def _detail(self, gpus: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "gpus": gpus,
            "gpu_count": len(gpus),
            "scope": self.scope,
            "driver": self.driver,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            **({"skipped_gpus": self.skipped} if self.skipped else {}),
        }

    def describe(self) -> dict[str, object]:
        """The GPUs read, how, those skipped, and the facts a reviewer needs to trust the numbers."""
        return {
            **self._detail([self._facts(g) for g in self._gpus] + [self._counted_record(d) for d in self._counted]),
            "skipped_gpus": self.skipped,
            "sample_hz": self.sample_hz,
            "min_window_s": self.min_window_s,
            "counter_update_period_s": COUNTER_UPDATE_PERIOD_S,
            "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        }

    def start(self) -> None:
        """Open a window: edge state, counters, a first power sample, and the sampler thread where needed."""
        if self._running:
            raise MeterError("GpuMeter.start() called twice without stop()")
        if self._opened.release is None:
            raise MeterError("GpuMeter is closed")
        self._samples = {g.index: [] for g in self._gpus if not g.has_counter}
        self._state_start = {d.facts.index: d.state() for d in self.devices}
        if self._samples:  # started before the edge readings; its first tick is one period away
            self._sampler.start()
        try:
            self._t_start = time.perf_counter()
            self._start_mj = {g.index: (time.perf_counter(), g.device.energy_mj()) for g in self._gpus if g.has_counter}
            self._edge_start = self._sample_once()
        except BaseException:
            self._sampler.stop()
            raise
        self._running = True

    def stop(self) -> Reading:
        """Close the window: the edge readings first (counters, a last power sample), then stop the sampler."""
        if not self._running:
            raise MeterError("GpuMeter.stop() called without start()")
        self._running = False
        try:
            end_mj = {g.index: (time.perf_counter(), g.device.energy_mj()) for g in self._gpus if g.has_counter}
            t_stop = time.perf_counter()
            edge_end = self._sample_once()
        finally:
            self._sampler.stop()
        if (error := self._sampler.error) is not None:
            self._sampler.error = None
            if isinstance(error, MeterError):
                raise error
            raise DeviceError(f"GPU power sampler failed: {type(error).__name__}: {error}") from error
        for index, samples in self._samples.items():
            # keep [start edge, end edge]: the sampler may have ticked just outside; two threads appended, so sort
            lo, hi = self._edge_start[index], edge_end[index]
            self._samples[index] = sorted(s for s in samples if lo <= s[0] <= hi)
        self._last_samples = {i: [(t - self._t_start, p) for t, p in s] for i, s in self._samples.items()}
        records = [self._gpu_record(g, end_mj.get(g.index)) for g in self._gpus]
        total_j = sum(float(r["energy_j"]) for r in records)
        records += [self._edges(d, self._counted_record(d)) for d in self._counted]
        gpu = ComponentEnergy(total_j, self.method, detail=self._detail(records))
        return Reading(meter=self.name, duration_s=t_stop - self._t_start, components={"gpu": gpu})

    def _counted_record(self, device: Any) -> dict[str, Any]:
        """A device counted in another's reading: its facts, no energy of its own (not a 0 W reading)."""
        return {**self._facts(_Gpu(device)), "method": None, "energy_j": None, "power_w": None}

    def _edges(self, device: Any, record: dict[str, Any]) -> dict[str, Any]:
        """The state at both edges into ``record``, and the time held back inside the window (violation counters)."""
        start, end = self._state_start.get(device.facts.index, {}), device.state()
        for edge, state in (("start", start), ("end", end)):
            record.update({f"{name}_{edge}": state.get(key) for key, name in _EDGE_FIELDS.items()})
        v0, v1 = start.get("violation_ns") or {}, end.get("violation_ns") or {}
        for kind in ("power", "thermal"):
            ok = kind in v0 and kind in v1 and v1[kind] >= v0[kind]
            record[f"throttled_{kind}_s"] = (v1[kind] - v0[kind]) / 1e9 if ok else None
        return record

    def _gpu_record(self, gpu: _Gpu, end: tuple[float, int] | None) -> dict[str, Any]:
        """Energy, average power and context of one GPU over the window just closed."""
        record: dict[str, Any] = {**self._facts(gpu), "driver": self.driver}
        self._edges(gpu.device, record)
        label = gpu.device.facts.label
        if gpu.has_counter:
            assert end is not None
            (t0, start_mj), (t1, end_mj) = self._start_mj[gpu.index], end
            span_s, energy_j = t1 - t0, (end_mj - start_mj) / 1000.0
            if energy_j < 0 or (energy_j == 0 and span_s >= _STUCK_PERIODS * COUNTER_UPDATE_PERIOD_S):
                how = "went backwards (driver reloaded or GPU reset)" if energy_j < 0 else "did not move"
                raise DeviceError(
                    f"energy counter of {label} {how} over this {span_s:.2f} s window ({start_mj} -> {end_mj} mJ); "
                    "rerun the cell",
                    device=label,
                    call="energy counter",
                )
            record["counter_update_period_s"] = COUNTER_UPDATE_PERIOD_S
        else:
            samples = self._samples[gpu.index]
            if len(samples) < 2:
                raise DeviceError(f"no power samples of {label} in this window", device=label)
            energy_j, span_s = integrate_trapezoid_j(samples), samples[-1][0] - samples[0][0]
            record["samples"] = len(samples)
            record["sample_hz_target"] = self.sample_hz
            record["sample_hz"] = (len(samples) - 1) / span_s if span_s > 0 else None
        record.update(energy_j=energy_j, duration_s=span_s, power_w=energy_j / span_s if span_s > 0 else None)
        return record

    def energy_so_far_j(self) -> dict[str, float]:
        """Energy (J) of the GPUs with the counter since ``start`` (``{"gpu": ...}``; empty when none has it), for
        the power series (``bench.meters.series``). Raises MeterError outside a window."""
        if not self._running:
            raise MeterError("GpuMeter.energy_so_far_j() called outside a window")
        counted = [g for g in self._gpus if g.has_counter]
        if not counted:
            return {}
        return {"gpu": sum(g.device.energy_mj() - self._start_mj[g.index][1] for g in counted) / 1000.0}

    def power_samples(self) -> dict[str, list[list[tuple[float, float]]]]:
        """The last window's power samples of the GPUs metered by sampling, one list per GPU of (s since the window
        opened, W); empty when every GPU has the counter. For the power series."""
        return {"gpu": list(self._last_samples.values())} if self._last_samples else {}

    def close(self) -> None:
        """Stop the sampler and release the devices and their library. Idempotent."""
        self._sampler.stop()
        self._running = False
        self._opened.close()


class GpuSamplingMeter(GpuMeter):
    """Power sampled at ``sample_hz`` (default 10 Hz) on every GPU, counter or not: the side meter that checks the
    primary ``GpuMeter`` over its window (``build_meter_set(gpu_cross_check=True)``), labelled with the vendor's
    sampling method. It sets no window floor (only primary meters do)."""

    def __init__(self, indices: list[int] | None = None, *, sample_hz: float = 10.0, **kw: Any):
        self.name = f"{LIBRARY_NAMES.get(kw.get('vendor', 'nvidia'), 'gpu')}-sampling"
        super().__init__(indices, sample_hz=sample_hz, min_window_s=0.0, counter_probe_s=0.0, **kw)
        for gpu in self._gpus:
            gpu.has_counter = False
