"""Accelerator energy (component ``gpu``) through the device layer (``bench.devices``: Zeus plus the vendor's library).

Two methods per GPU, chosen when the meter opens; the labels are the vendor's (``measured:nvml-energy-counter`` /
``measured:nvml-power-sampling`` for NVIDIA):

- energy counter: the difference of the device's counter (mJ since the driver loaded) between the window's edges.
  Exact up to its update period (about 100 ms on NVIDIA GPUs), which is why GPU windows last at least
  ``DEFAULT_MIN_WINDOW_S`` (10 s: one update is then at most 1% of the window). Checked when the meter opens
  (``counter_probe_s``): a counter that does not move, moves backwards or disagrees with power by more than
  ``PLAUSIBLE_RATIO`` is not used, and the GPU falls back to power sampling with the reason recorded.
- power sampling: where the counter is missing or failed that check, a background thread reads the device's power
  (W; NVIDIA: the instant field where the board has it, as the plain call averages over 1 s on H100 and L4) at
  ``sample_hz`` and integrates with the trapezoidal rule, one sample taken synchronously at each window edge.

Component ``gpu`` is the sum over the GPUs the run uses (CUDA indices mapped to the vendor's, and how, in each
record); ``detail["gpus"]`` holds one record per GPU: identity, scope (``gpu``, or ``module`` on Grace Hopper: GPU,
Grace CPU and memory together), power limit, energy, method, the state at the window's edges (clocks, temperature,
power limit, clocks-event reasons) and the time the GPU was held back by power or heat inside the window
(``throttled_power_s``/``throttled_thermal_s``, from NVML's violation counters read at both edges).

No device library, no GPU: the meter raises ``DeviceUnavailableError``; a GPU that cannot be read raises
``DeviceError`` naming it, the call and what to do (both ``MeterError``).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.devices import DeviceError, vendor_module
from bench.errors import MeterError
from bench.meters.base import ComponentEnergy, Reading

#: How often NVML refreshes the total-energy counter on current NVIDIA GPUs (Volta through Hopper): about 100 ms.
COUNTER_UPDATE_PERIOD_S = 0.1
#: The largest share of a window that one counter update (the quantization step) may be.
MAX_QUANTIZATION = 0.01
#: Shortest GPU window: one counter update is then at most MAX_QUANTIZATION of it (0.1 s / 1% = 10 s).
DEFAULT_MIN_WINDOW_S = COUNTER_UPDATE_PERIOD_S / MAX_QUANTIZATION
#: Sampling rate bounds: below 10 Hz short bursts are missed; above 1 kHz NVML's own refresh is the limit anyway.
MIN_SAMPLE_HZ = 10.0
MAX_SAMPLE_HZ = 1000.0
#: How long the meter watches each counter when it opens (s): five updates, so a counter that never moves shows.
COUNTER_PROBE_S = 0.5
#: A counter whose energy over the probe is off the power readings' by more than this factor is not trusted
#: (a good one is within one update, 20% of a 0.5 s probe; the power reading itself may lag by its averaging).
PLAUSIBLE_RATIO = 2.0
#: The meter's name per vendor: its library's (``min_window_by`` and the side meters name it).
LIBRARY_NAMES = {"nvidia": "nvml", "amd": "amdsmi"}
#: A counter that stands still for this many update periods on a powered GPU is broken, not merely quantized.
_STUCK_PERIODS = 5


def integrate_trapezoid_j(samples: Sequence[tuple[float, float]]) -> float:
    """Energy in joules of power samples ``(t_s, power_w)`` (times increasing) by the trapezoidal rule."""
    return sum((pa + pb) / 2.0 * (tb - ta) for (ta, pa), (tb, pb) in itertools.pairwise(samples))


def counter_problem(energy_j: float, power_w: float, span_s: float) -> str | None:
    """Why a counter that moved ``energy_j`` over ``span_s`` while power read ``power_w`` (mean of the readings)
    cannot be trusted, or None. Too short a span (under five updates) is not judged."""
    if energy_j < 0:
        return f"went backwards by {-energy_j:.3f} J"
    if span_s < _STUCK_PERIODS * COUNTER_UPDATE_PERIOD_S or power_w <= 0:
        return None
    if energy_j == 0:
        return f"did not move over {span_s:.2f} s while the GPU drew {power_w:.1f} W"
    ratio = energy_j / (power_w * span_s)
    if not 1 / PLAUSIBLE_RATIO <= ratio <= PLAUSIBLE_RATIO:
        return f"counted {energy_j / span_s:.1f} W over {span_s:.2f} s while power read {power_w:.1f} W"
    return None


@dataclass
class _Gpu:
    """A metered device and how it is metered."""

    device: Any
    has_counter: bool = True
    #: why the counter is not used although the device may have one (not ready, stuck, implausible)
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

    ``indices``: the vendor library's device indices (NVML's); None takes those the framework makes visible
    (CUDA_VISIBLE_DEVICES mapped by UUID or PCI bus id). ``sample_hz``: power sampling rate (10 to 1000 Hz).
    ``library``: the vendor's library module (tests inject a fake; ``nvml`` is its older name); default imports it.
    ``vendor``: a key of ``bench.devices.VENDORS``; the meter is named after its library (``nvml``, ``amdsmi``).
    ``min_window_s``: the shortest trusted window (default ``DEFAULT_MIN_WINDOW_S``). ``cross_check``: also sample
    power on GPUs with the counter, recorded beside it. ``counter_probe_s``: how long each counter is checked at
    open (``COUNTER_PROBE_S`` when None). ``clock``: monotonic seconds.
    """

    def __init__(
        self,
        indices: list[int] | None = None,
        *,
        sample_hz: float = 20.0,
        nvml: Any = None,
        vendor: str = "nvidia",
        library: Any = None,
        min_window_s: float | None = None,
        cross_check: bool = False,
        counter_probe_s: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not MIN_SAMPLE_HZ <= sample_hz <= MAX_SAMPLE_HZ:
            raise MeterError(
                f"GPU sample_hz must be between {MIN_SAMPLE_HZ:g} and {MAX_SAMPLE_HZ:g} Hz, got {sample_hz:g}"
            )
        self.sample_hz = float(sample_hz)
        self.min_window_s = float(DEFAULT_MIN_WINDOW_S if min_window_s is None else min_window_s)
        if self.min_window_s < 0:
            raise MeterError(f"GPU min_window_s must not be negative, got {self.min_window_s}")
        self.cross_check = cross_check
        self._clock = clock
        self._running = False
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._sampler_error: BaseException | None = None
        self._samples: dict[int, list[tuple[float, float]]] = {}
        self._last_samples: dict[int, list[tuple[float, float]]] = {}
        self._start_mj: dict[int, tuple[float, int]] = {}
        self._state_start: dict[int, dict[str, Any]] = {}
        self._edge_start: dict[int, float] = {}
        self._t_start = 0.0
        self.vendor = vendor
        self.name = getattr(self, "name", None) or LIBRARY_NAMES.get(vendor, vendor)
        self._opened = vendor_module(vendor).open_devices(indices, library=library if library is not None else nvml)
        self.driver: str | None = self._opened.driver
        self.skipped = list(self._opened.skipped)
        self._gpus = [_Gpu(d) for d in self._opened.devices]
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
                first[gpu.index] = (self._clock(), gpu.device.energy_mj(), gpu.device.power_w())
            except DeviceError as exc:
                if exc.kind not in ("unsupported", "not_ready"):
                    raise
                gpu.has_counter = False
                if exc.kind == "not_ready":
                    gpu.counter_fallback_reason = f"{exc}; falling back to power sampling at {self.sample_hz:g} Hz"
                self._check_power(gpu)
        if not first:
            return
        pause_s = probe_s - (self._clock() - min(t for t, _, _ in first.values()))
        if pause_s > 0:
            time.sleep(pause_s)
        for gpu in self._gpus:
            if gpu.index not in first:
                continue
            t0, e0, p0 = first[gpu.index]
            e1, p1 = gpu.device.energy_mj(), gpu.device.power_w()
            problem = counter_problem((e1 - e0) / 1000.0, (p0 + p1) / 2.0, self._clock() - t0)
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
            raise DeviceError(
                f"{gpu.device.facts.label} reports neither an energy counter nor its power draw, so it cannot be "
                "metered; hide it with CUDA_VISIBLE_DEVICES or run a CPU profile",
                kind="unsupported",
                device=gpu.device.facts.label,
            ) from exc

    # --- sampling -----------------------------------------------------------------------------------------------

    def _sampled(self) -> list[_Gpu]:
        return [g for g in self._gpus if not g.has_counter or self.cross_check]

    def _sample_once(self) -> dict[int, float]:
        """Read the power of every sampled GPU; returns the timestamp of each reading."""
        times: dict[int, float] = {}
        for gpu in self._sampled():
            before = self._clock()
            power_w = gpu.device.power_w()
            t = (before + self._clock()) / 2.0  # the call's midpoint halves the timestamp's error
            self._samples[gpu.index].append((t, power_w))  # list.append is atomic: the sampler thread appends too
            times[gpu.index] = t
        return times

    def _sample_loop(self) -> None:
        period_s = 1.0 / self.sample_hz
        next_t = self._clock() + period_s  # the edge samples are taken by start() and stop() themselves
        while not self._stop_event.wait(max(next_t - self._clock(), 0.0)):
            try:
                self._sample_once()
            except BaseException as exc:  # stop() reports it; a dying thread must not lose it
                self._sampler_error = exc
                return
            next_t += period_s
            now = self._clock()
            if next_t < now:  # fell behind (a slow call, GIL contention): skip missed ticks instead of bursting
                next_t = now + period_s

    def _join_sampler(self) -> None:
        if self._thread is not None:
            self._stop_event.set()
            self._thread.join()
            self._thread = None

    # --- the meter protocol ---------------------------------------------------------------------------------------

    @property
    def gpu_count(self) -> int:
        """How many GPUs this meter reads."""
        return len(self._gpus)

    @property
    def indices(self) -> list[int]:
        """The vendor library's indices of the GPUs this meter reads."""
        return [g.index for g in self._gpus]

    @property
    def devices(self) -> list[Any]:
        """The open devices (``bench.devices.base.Accelerator``)."""
        return [g.device for g in self._gpus]

    @property
    def method(self) -> str:
        """The component's method: the counter when every GPU has it, else power sampling (the weaker one wins)."""
        weakest = next((g for g in self._gpus if not g.has_counter), self._gpus[0])
        return weakest.method

    def components(self) -> tuple[str, ...]:
        """``("gpu",)``."""
        return ("gpu",)

    def _facts(self, gpu: _Gpu) -> dict[str, Any]:
        f = gpu.device.facts
        out = {
            "index": f.index,
            "name": f.name,
            "uuid": f.uuid,
            "vendor": f.vendor,
            "pci_bus_id": f.pci_bus_id,
            "cuda_index": f.cuda_index,
            "matched_by": f.matched_by,
            "scope": f.scope,
            "memory_gb": f.memory_gb,
            "power_limit_w": f.power_limit_w,
            "power_limit_range_w": list(f.power_limit_range_w) if f.power_limit_range_w else None,
            "persistence_mode": f.persistence_mode,
            "power_source": f.power_source,
            "method": gpu.method,
        }
        if gpu.counter_fallback_reason:
            out["counter_fallback_reason"] = gpu.counter_fallback_reason
        return out

    def describe(self) -> dict[str, object]:
        """The GPUs read, how, those skipped, and the facts a reviewer needs to trust the numbers."""
        return {
            "gpus": [self._facts(g) for g in self._gpus],
            "gpu_count": len(self._gpus),
            "skipped_gpus": self.skipped,
            "scope": self.scope,
            "driver": self.driver,
            "sample_hz": self.sample_hz,
            "min_window_s": self.min_window_s,
            "counter_update_period_s": COUNTER_UPDATE_PERIOD_S,
            "cross_check": self.cross_check,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        }

    @property
    def scope(self) -> str:
        """``module`` when any GPU reports module power (Grace Hopper/Blackwell: GPU, CPU and memory), else ``gpu``."""
        return "module" if any(g.device.facts.scope == "module" for g in self._gpus) else "gpu"

    def start(self) -> None:
        """Open a window: edge state, counters, a first power sample, and the sampler thread where needed."""
        if self._running:
            raise MeterError("GpuMeter.start() called twice without stop()")
        if self._opened.release is None:
            raise MeterError("GpuMeter is closed")
        self._stop_event.clear()
        self._sampler_error = None
        self._samples = {g.index: [] for g in self._sampled()}
        self._state_start = {g.index: g.device.state() for g in self._gpus}
        if self._samples:
            # started before the edge readings; its first tick is one period away, so the edge sample comes first
            self._thread = threading.Thread(target=self._sample_loop, name="bench-gpu-sampler", daemon=True)
            self._thread.start()
        try:
            self._t_start = self._clock()
            self._start_mj = {g.index: (self._clock(), g.device.energy_mj()) for g in self._gpus if g.has_counter}
            self._edge_start = self._sample_once()
        except BaseException:
            self._join_sampler()
            raise
        self._running = True

    def stop(self) -> Reading:
        """Close the window: the edge readings first (counters, a last power sample), then stop the sampler."""
        if not self._running:
            raise MeterError("GpuMeter.stop() called without start()")
        self._running = False
        try:
            end_mj = {g.index: (self._clock(), g.device.energy_mj()) for g in self._gpus if g.has_counter}
            t_stop = self._clock()
            edge_end = self._sample_once() if self._samples else {}
        finally:
            self._join_sampler()
        if self._sampler_error is not None:
            error, self._sampler_error = self._sampler_error, None
            if isinstance(error, MeterError):
                raise error
            raise DeviceError(f"GPU power sampler failed: {type(error).__name__}: {error}") from error
        for index, samples in self._samples.items():
            # keep [start edge, end edge]: the sampler may have ticked just outside; two threads appended, so sort
            lo, hi = self._edge_start[index], edge_end[index]
            self._samples[index] = sorted(s for s in samples if lo <= s[0] <= hi)
        self._last_samples = {i: [(t - self._t_start, p) for t, p in s] for i, s in self._samples.items()}
        records = [self._gpu_record(g, end_mj.get(g.index)) for g in self._gpus]
        detail: dict[str, object] = {
            "gpus": records,
            "gpu_count": len(records),
            "scope": self.scope,
            "driver": self.driver,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            **({"skipped_gpus": self.skipped} if self.skipped else {}),
        }
        total_j = sum(float(r["energy_j"]) for r in records)  # type: ignore[arg-type]
        return Reading(
            meter=self.name,
            duration_s=t_stop - self._t_start,
            components={"gpu": ComponentEnergy(total_j, self.method, detail=detail)},
        )

    def _edges(self, gpu: _Gpu, record: dict[str, Any]) -> None:
        """The state at both edges into ``record``, and the time held back inside the window (violation counters)."""
        start, end = self._state_start.get(gpu.index, {}), gpu.device.state()
        for edge, state in (("start", start), ("end", end)):
            record[f"sm_clock_mhz_{edge}"] = state.get("sm")
            record[f"mem_clock_mhz_{edge}"] = state.get("mem")
            record[f"temperature_c_{edge}"] = state.get("temperature_c")
            record[f"power_limit_w_{edge}"] = state.get("power_limit_w")
            record[f"clocks_event_reasons_{edge}"] = state.get("reasons")
            record[f"clocks_event_reason_names_{edge}"] = state.get("reason_names")
        v0, v1 = start.get("violation_ns") or {}, end.get("violation_ns") or {}
        for kind in ("power", "thermal"):
            ok = kind in v0 and kind in v1 and v1[kind] >= v0[kind]
            record[f"throttled_{kind}_s"] = (v1[kind] - v0[kind]) / 1e9 if ok else None

    def _gpu_record(self, gpu: _Gpu, end: tuple[float, int] | None) -> dict[str, object]:
        """Energy, average power and context of one GPU over the window just closed."""
        record: dict[str, Any] = {**self._facts(gpu), "driver": self.driver}
        self._edges(gpu, record)
        samples = self._samples.get(gpu.index, [])
        sampled_j = integrate_trapezoid_j(samples) if len(samples) >= 2 else None
        sampled_span_s = samples[-1][0] - samples[0][0] if len(samples) >= 2 else 0.0
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
            if self.cross_check and sampled_j is not None:
                record["sampled_energy_j"] = sampled_j
                record["sampled_power_w"] = sampled_j / sampled_span_s if sampled_span_s > 0 else None
        else:
            if sampled_j is None:
                raise DeviceError(f"no power samples of {label} in this window", device=label)
            energy_j, span_s = sampled_j, sampled_span_s
            record["samples"] = len(samples)
            record["sample_hz_target"] = self.sample_hz
            record["sample_hz"] = (len(samples) - 1) / span_s if span_s > 0 else None
        record["energy_j"] = energy_j
        record["duration_s"] = span_s
        record["power_w"] = energy_j / span_s if span_s > 0 else None
        return record

    @property
    def counter_period_s(self) -> float:
        """How often the energy counter moves (s): the power series' bins span at least ten of its updates."""
        return COUNTER_UPDATE_PERIOD_S

    def energy_so_far_j(self) -> dict[str, float]:
        """Energy of the GPUs with the counter since ``start`` (J, ``{"gpu": ...}``; empty when none has it), for the
        power series (``bench.meters.series``). Raises MeterError outside a window."""
        if not self._running:
            raise MeterError("GpuMeter.energy_so_far_j() called outside a window")
        counted = [g for g in self._gpus if g.has_counter]
        if not counted:
            return {}
        return {"gpu": sum(g.device.energy_mj() - self._start_mj[g.index][1] for g in counted) / 1000.0}

    def power_samples(self) -> dict[str, list[list[tuple[float, float]]]]:
        """The last window's power samples of the GPUs metered by sampling, one list per GPU of (seconds since the
        window opened, W); empty when every GPU has the counter. For the power series."""
        lists = [list(self._last_samples[g.index]) for g in self._gpus if not g.has_counter]
        return {"gpu": lists} if lists else {}

    def samples(self) -> dict[int, list[tuple[float, float]]]:
        """The last window's power samples per GPU index (s since the window opened, W); in memory only."""
        return {i: list(s) for i, s in self._last_samples.items()}

    def close(self) -> None:
        """Stop the sampler and release the devices and their library. Idempotent."""
        self._join_sampler()
        self._running = False
        self._opened.close()


class GpuSamplingMeter(GpuMeter):
    """Power sampled at ``sample_hz`` (default 10 Hz) on every GPU, whether it has the energy counter or not.

    A side meter for comparing methods over the primary ``GpuMeter``'s window (``bench.meters.gpu_side_meters``),
    labelled with the vendor's sampling method. It declares no window floor (only primary meters set one).
    """

    def __init__(self, indices: list[int] | None = None, *, sample_hz: float = 10.0, nvml: Any = None, **kw: Any):
        self.name = f"{LIBRARY_NAMES.get(kw.get('vendor', 'nvidia'), 'gpu')}-sampling"
        super().__init__(indices, sample_hz=sample_hz, nvml=nvml, min_window_s=0.0, counter_probe_s=0.0, **kw)
        for gpu in self._gpus:
            gpu.has_counter = False
