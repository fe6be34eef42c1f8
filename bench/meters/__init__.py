"""Energy meters behind one protocol (see ``base.py``) and the ``MeterSet`` the runner opens windows with.

Imports stay lazy: ``import bench.meters`` loads neither codecarbon nor pynvml; each meter module imports its
library when first used.

Adding a meter: write ``bench/meters/<name>.py`` with a class following ``base.Meter`` (optionally a
``describe() -> dict``), then choose it for its components in ``build_meter_set``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import MeterError
from bench.meters.base import COMPONENTS, ComponentEnergy, Meter, Reading, Stopwatch

#: Environment variable naming the powercap tree RAPL is read from (default ``/sys/class/powercap``).
RAPL_ROOT_ENV = "BENCH_RAPL_ROOT"

__all__ = [
    "COMPONENTS",
    "ComponentEnergy",
    "Meter",
    "MeterSet",
    "Reading",
    "WindowReading",
    "build_meter_set",
]


@dataclass(frozen=True)
class WindowReading:
    """One metered window: its duration, the chosen energy per component (always gpu, cpu, ram), side readings.

    ``components`` holds the primary numbers (one meter per component); ``side`` holds full readings of meters run
    alongside for comparison (CodeCarbon in paper-faithful mode), keyed by meter name. ``observed`` holds what the
    set's observers recorded over the window (``others``: ``bench.meters.others``), keyed by observer name.
    ``component_duration_s`` is, per component, the window of the meter that measured it: each meter's window
    encloses the set's (started before, stopped after), so a power derived from a component's energy divides by its
    own meter's window, not the set's. ``series`` is the window's power over time (``bench.meters.series``; None
    where the set records none), as ``bench.results.PowerSeries`` stores it.
    """

    duration_s: float
    components: dict[str, ComponentEnergy]
    side: dict[str, Reading] = field(default_factory=dict)
    component_duration_s: dict[str, float] = field(default_factory=dict)
    observed: dict[str, dict[str, Any]] = field(default_factory=dict)
    series: dict[str, Any] | None = None

    def power_w(self, component: str) -> float | None:
        """Mean power of ``component`` over its meter's own window (None where its energy is unavailable)."""
        energy = self.components[component].energy_j
        if energy is None:
            return None
        duration_s = self.component_duration_s.get(component) or self.duration_s
        return energy / duration_s if duration_s > 0 else None

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form."""
        return {
            "duration_s": self.duration_s,
            "components": {c: e.to_dict() for c, e in self.components.items()},
            "side": {
                name: {
                    "meter": r.meter,
                    "duration_s": r.duration_s,
                    "components": {c: e.to_dict() for c, e in r.components.items()},
                }
                for name, r in self.side.items()
            },
        }


def _meter_describe(meter: Meter) -> dict[str, object]:
    describe = getattr(meter, "describe", None)
    if callable(describe):
        try:
            return dict(describe())
        except Exception as exc:  # describing must never break a run
            return {"describe_error": f"{type(exc).__name__}: {exc}"}
    return {}


def _failed_reading(meter: Meter, duration_s: float, reason: str) -> Reading:
    return Reading(
        meter=meter.name,
        duration_s=duration_s,
        components={c: ComponentEnergy(None, "unavailable", reason=reason) for c in meter.components()},
    )


class MeterSet:
    """Primary meters (the kit's numbers) plus side-by-side meters (for comparison), opened and closed together.

    Per component the first primary meter covering it wins; a component no primary meter covers is reported as
    ``unavailable`` with the reason from ``unavailable`` (e.g. the NVML probe's message). Side meters start first
    and stop last so the primary windows are as tight as possible around the work; a side meter that fails yields a
    reading of nulls with the reason instead of aborting the window. A primary meter that fails to start aborts the
    window (MeterError); one that fails at stop yields nulls with the reason for its components.

    ``series_hz``: record each component's power over time in every window (``bench.meters.series``: one thread
    reading the owners' counters at this rate, plus the samples of sampling meters); None records none.
    """

    def __init__(
        self,
        primary: list[Meter],
        side: list[Meter] | None = None,
        *,
        unavailable: dict[str, str] | None = None,
        side_unavailable: dict[str, str] | None = None,
        notes: dict[str, str] | None = None,
        series_hz: float | None = None,
    ) -> None:
        self.primary = list(primary)
        self.side = list(side or [])
        names = [m.name for m in self.primary + self.side]
        if len(set(names)) != len(names):
            raise MeterError(f"meter names must be unique in a MeterSet, got {names}")
        self._unavailable = dict(unavailable or {})
        self._side_unavailable = dict(side_unavailable or {})
        self.notes = dict(notes or {})
        self._owner: dict[str, Meter] = {}
        for component in COMPONENTS:
            for meter in self.primary:
                if component in meter.components():
                    self._owner[component] = meter
                    break
        self.observers: list[Any] = []
        self._started: list[Meter] = []
        self._side_errors: dict[str, str] = {}
        self._stopwatch = Stopwatch()
        self._open = False
        self._recorder: Any = None
        if series_hz is not None:
            from bench.meters.series import PowerRecorder

            self._recorder = PowerRecorder(self._owner, hz=series_hz)

    @property
    def min_window_s(self) -> float:
        """The shortest window the primary meters' numbers are trusted for (0.0 when none declares a floor).

        A meter declares its floor with a ``min_window_s`` attribute (NVML: the counter's 100 ms update period must
        be at most 1% of the window, so 10 s). The runner lengthens every window to at least this, whatever the
        profile or a command-line override says, so no meter is ever read below its resolution.
        """
        return max((float(getattr(m, "min_window_s", 0.0) or 0.0) for m in self.primary), default=0.0)

    def min_window_by(self) -> str | None:
        """Name of the primary meter that sets ``min_window_s`` (None when no meter declares one)."""
        floors = [(float(getattr(m, "min_window_s", 0.0) or 0.0), m.name) for m in self.primary]
        best = max(floors, default=(0.0, None))
        return best[1] if best[0] > 0 else None

    def observe(self, observer: Any) -> None:
        """Open ``observer`` (``start()``, ``stop() -> dict``, ``close()``, a ``name``) around every window: started
        before every meter and stopped after them, so its window encloses theirs. It measures no energy; its record
        comes back in ``WindowReading.observed[observer.name]``, and one that fails yields ``{"error": ...}``."""
        self.observers.append(observer)

    def owner(self, component: str) -> Meter | None:
        """The primary meter that reports ``component`` (None when no meter covers it)."""
        return self._owner.get(component)

    def unavailable_reason(self, component: str) -> str:
        """Why ``component`` has no meter."""
        return self._unavailable.get(component, f"no meter in this set measures {component}")

    def describe(self) -> dict[str, Any]:
        """Which meter and method serve each component, and the side meters (for the results file and the CLI)."""
        components: dict[str, dict[str, object]] = {}
        for component in COMPONENTS:
            meter = self._owner.get(component)
            if meter is None:
                components[component] = {
                    "meter": None,
                    "method": "unavailable",
                    "reason": self.unavailable_reason(component),
                }
            else:
                components[component] = {
                    "meter": meter.name,
                    "method": getattr(meter, "method", None) or "reported per window",
                    "detail": _meter_describe(meter),
                }
        side: dict[str, dict[str, object]] = {
            m.name: {"enabled": True, "components": list(m.components()), "detail": _meter_describe(m)}
            for m in self.side
        }
        for name, reason in self._side_unavailable.items():
            side[name] = {"enabled": False, "reason": reason}
        return {
            "components": components,
            "side": side,
            "notes": dict(self.notes),
            "min_window_s": self.min_window_s,
            "min_window_by": self.min_window_by(),
            **({"power_series": self._series_describe()} if self._recorder is not None else {}),
        }

    def _series_describe(self) -> dict[str, Any]:
        from bench.meters.series import ENCODING, MAX_POINTS

        return {"hz": self._recorder.hz, "max_points": MAX_POINTS, "encoding": ENCODING}

    def start(self) -> None:
        """Open a window: side meters first, then primary meters (so primary windows are tight)."""
        if self._open:
            raise MeterError("MeterSet.start() called twice without stop()")
        self._started = []
        self._side_errors = {}
        self._observer_errors: dict[str, str] = {}
        for observer in self.observers:
            try:
                observer.start()
            except Exception as exc:  # observing must never abort a window
                self._observer_errors[observer.name] = f"{type(exc).__name__}: {exc}"
        if self._recorder is not None:
            self._recorder.arm()  # its thread starts here, outside the primary meters' windows
        for meter in self.side:
            try:
                meter.start()
                self._started.append(meter)
            except Exception as exc:
                self._side_errors[meter.name] = f"{meter.name} failed to start: {type(exc).__name__}: {exc}"
        for meter in self.primary:
            try:
                meter.start()
            except Exception as exc:
                self._abort()
                if isinstance(exc, MeterError):
                    raise
                raise MeterError(f"meter {meter.name} failed to start: {type(exc).__name__}: {exc}") from exc
            self._started.append(meter)
        self._stopwatch.start()
        if self._recorder is not None:
            # Inside the set's window, not between it and the meters': the first read's time (and the last's, in
            # stop) is then counted in the window's duration as in its energy, never as a skew between the two.
            self._recorder.start()  # never raises: a failed read ends the series with its reason
        self._open = True

    def _abort(self) -> None:
        """Best-effort stop of meters already started (no threads left behind), discarding their readings."""
        for meter in reversed(self._started):
            with contextlib.suppress(Exception):
                meter.stop()
        self._started = []
        if self._recorder is not None:
            self._recorder.close()

    def stop(self) -> WindowReading:
        """Close the window: primary meters first (reverse start order), then side meters."""
        if not self._open:
            raise MeterError("MeterSet.stop() called without start()")
        if self._recorder is not None:
            self._recorder.stop()  # the last counter reads, while the meters are still open
        duration_s = self._stopwatch.elapsed_s()
        self._open = False
        readings: dict[str, Reading] = {}
        for meter in reversed(self.primary):
            readings[meter.name] = self._stop_one(meter, duration_s)
        side: dict[str, Reading] = {}
        for meter in reversed(self.side):
            if meter.name in self._side_errors:
                side[meter.name] = _failed_reading(meter, 0.0, self._side_errors[meter.name])
            else:
                side[meter.name] = self._stop_one(meter, duration_s)
        side = {m.name: side[m.name] for m in self.side}  # report in declaration order
        self._started = []
        observed: dict[str, dict[str, Any]] = {}
        for observer in reversed(self.observers):
            error = getattr(self, "_observer_errors", {}).get(observer.name)
            if error is None:
                try:
                    observed[observer.name] = dict(observer.stop())
                    continue
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
            observed[observer.name] = {"error": error}

        components: dict[str, ComponentEnergy] = {}
        component_duration_s: dict[str, float] = {}
        for component in COMPONENTS:
            meter = self._owner.get(component)
            if meter is None:
                components[component] = ComponentEnergy(None, "unavailable", reason=self.unavailable_reason(component))
                continue
            energy = readings[meter.name].components.get(component)
            if energy is None:  # a meter that claimed the component but did not report it: say so, never zero
                energy = ComponentEnergy(None, "unavailable", reason=f"meter {meter.name} returned no {component}")
            components[component] = energy
            component_duration_s[component] = readings[meter.name].duration_s
        return WindowReading(
            duration_s=duration_s,
            components=components,
            side=side,
            component_duration_s=component_duration_s,
            observed=observed,
            series=self._series(duration_s),
        )

    def _series(self, duration_s: float) -> dict[str, Any] | None:
        """The recorder's series of the window just closed, with a reason for each component no meter measures."""
        if self._recorder is None:
            return None
        series = self._recorder.series(duration_s)
        for component in COMPONENTS:
            if component not in self._owner:
                series["missing"][component] = f"not measured: {self.unavailable_reason(component)}"
        return series

    @staticmethod
    def _stop_one(meter: Meter, duration_s: float) -> Reading:
        try:
            return meter.stop()
        except Exception as exc:
            return _failed_reading(meter, duration_s, f"{meter.name} failed at stop: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Close every meter and observer (threads, library handles). Idempotent."""
        for meter in [*self.primary, *self.side, *self.observers, *([self._recorder] if self._recorder else [])]:
            with contextlib.suppress(Exception):
                meter.close()
        self._open = False

    def __enter__(self) -> MeterSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_meter_set(
    *,
    rapl_root: str | Path | None = None,
    cpu_tdp_w: float | None = None,
    ram_gb: float | None = None,
    codecarbon: bool = False,
    country_iso_code: str = "DEU",
    codecarbon_measure_power_secs: float = 15.0,
    use_gpu: bool | None = None,
    gpu_indices: list[int] | None = None,
    gpu_sample_hz: float = 20.0,
    nvml: Any = None,
    libraries: dict[str, Any] | None = None,
    soc: Any = None,
    gpu_cross_check: bool = False,
    series_hz: float | None = None,
    series: bool = True,
) -> MeterSet:
    """The best meters this machine offers.

    ``rapl_root``: the powercap tree RAPL is read from; None takes the environment variable ``BENCH_RAPL_ROOT`` when
    set (a container with the host's tree mounted elsewhere, e.g. ``/host-rapl``), else ``/sys/class/powercap``.

    A SoC (Apple Silicon, Jetson: ``bench.meters.soc``, ``soc`` injects Zeus's object) meters the components it
    reports. cpu: RAPL packages when readable, else the TDP x utilization estimate. ram: RAPL DRAM when exposed, else
    0.375 W/GB x installed RAM. gpu: ``bench.meters.gpu.GpuMeter`` (energy counter, power sampling where missing) of
    the first vendor of ``bench.devices.VENDORS`` whose library works, over ``gpu_indices`` (None: the GPUs the
    framework makes visible) unless ``use_gpu`` is False; otherwise unavailable with each vendor's reason.
    ``use_gpu``: True for cuda profiles, False for cpu profiles (their runs use no GPU), None to meter GPUs whenever
    a vendor's library works (``bench env``). ``libraries`` injects vendor library modules by vendor (tests' fakes;
    ``nvml`` is ``libraries["nvidia"]``). ``codecarbon=True`` adds CodeCarbon as a side meter when it is importable;
    otherwise describe() says why. ``gpu_cross_check=True`` adds the vendor's power sampled at 10 Hz over the same
    GPUs and windows (side meter ``nvml-sampling``/``amdsmi-sampling``), or says why not.
    ``series_hz``: how often the power series reads the counters (None: ``bench.meters.series.SERIES_HZ``);
    ``series=False`` records none (to measure what recording costs: ``benchmarks/measurement_overhead.py``).
    """
    primary, notes = _cpu_and_ram_meters(rapl_root, cpu_tdp_w, ram_gb)
    unavailable: dict[str, str] = {}
    libraries = {**({"nvidia": nvml} if nvml is not None else {}), **(libraries or {})}
    soc_meter = _soc_meter(soc, notes)
    if soc_meter is not None:  # first: it owns what it reports; meters left with nothing to own are dropped
        owned = set(soc_meter.components())
        primary = [soc_meter, *(m for m in primary if set(m.components()) - owned)]
    gpu_meter = None
    if soc_meter is None or "gpu" not in soc_meter.components():
        gpu_meter = _gpu_meter(use_gpu, gpu_indices, gpu_sample_hz, libraries, unavailable, notes)
    if gpu_meter is not None:
        if getattr(gpu_meter, "scope", "gpu") == "module":
            primary = _module_scope(primary, unavailable, notes)
        # Last in the list: started last and stopped first, so the GPU window is the tightest around the work.
        primary.append(gpu_meter)

    side: list[Meter] = []
    side_unavailable: dict[str, str] = {}
    if gpu_cross_check:
        _add_gpu_side_meter(primary, side, side_unavailable, unavailable, libraries)
    if codecarbon:
        _add_codecarbon(side, side_unavailable, country_iso_code, codecarbon_measure_power_secs)
    from bench.meters.series import SERIES_HZ

    return MeterSet(
        primary,
        side,
        unavailable=unavailable,
        side_unavailable=side_unavailable,
        notes=notes,
        series_hz=(SERIES_HZ if series_hz is None else series_hz) if series else None,
    )


def _cpu_and_ram_meters(
    rapl_root: str | Path | None, cpu_tdp_w: float | None, ram_gb: float | None
) -> tuple[list[Meter], dict[str, str]]:
    """The CPU and RAM meters (RAPL where readable, else the estimates) and the notes saying which and why.

    ``rapl_root`` None: ``$BENCH_RAPL_ROOT`` when set (noted), else ``/sys/class/powercap``. ``cpu_tdp_w`` (W) and
    ``ram_gb`` (GB) feed the estimates; None lets them detect their own."""
    from bench.meters.estimate import CpuEstimateMeter, RamEstimateMeter
    from bench.meters.rapl import DEFAULT_POWERCAP_ROOT, RaplMeter

    meters: list[Meter] = []
    notes: dict[str, str] = {}
    if rapl_root is None:
        rapl_root = os.environ.get(RAPL_ROOT_ENV) or DEFAULT_POWERCAP_ROOT
        if os.environ.get(RAPL_ROOT_ENV):
            notes["rapl_root"] = f"{RAPL_ROOT_ENV}={rapl_root}"
    rapl_ok, rapl_reason = RaplMeter.probe(rapl_root)
    rapl: RaplMeter | None = None
    if rapl_ok:
        try:
            rapl = RaplMeter(rapl_root)
        except MeterError:  # raced: became unreadable between probe and open; fall back like any unusable RAPL
            rapl = None
    if rapl is not None:
        meters.append(rapl)
        notes["rapl"] = rapl_reason
    else:
        meters.append(CpuEstimateMeter(cpu_tdp_w))
        notes["cpu"] = f"estimated: RAPL is not usable ({rapl_reason})"
    if rapl is None or "ram" not in rapl.components():
        meters.append(RamEstimateMeter(ram_gb))
        notes["ram"] = "estimated: no RAPL DRAM domain on this machine"
    return meters, notes


def _module_scope(primary: list[Meter], unavailable: dict[str, str], notes: dict[str, str]) -> list[Meter]:
    """A Grace Hopper/Blackwell module's power covers GPU, Grace CPU and memory: drop the CPU and RAM estimates
    (they would count Grace twice) and say where those components are; measured RAPL stays (not on Grace)."""
    kept = [m for m in primary if not m.name.endswith("estimate")]
    for component in ("cpu", "ram"):
        if not any(component in m.components() for m in kept):
            unavailable[component] = "included in the GPU's module-scope reading (Grace Hopper/Blackwell superchip)"
            notes[component] = "module scope: counted in the gpu component"
    return kept


def _soc_meter(soc: Any, notes: dict[str, str]) -> Meter | None:
    """The SoC meter where Zeus finds Apple Silicon or a Jetson (noted), else None."""
    from bench.meters.soc import SocMeter

    try:
        meter = SocMeter(soc)
    except MeterError:
        return None
    notes["soc"] = f"{meter.method} ({meter.kind}) for {', '.join(meter.components())}"
    return meter


def _gpu_meter(
    use_gpu: bool | None,
    gpu_indices: list[int] | None,
    gpu_sample_hz: float,
    libraries: dict[str, Any],
    unavailable: dict[str, str],
    notes: dict[str, str],
) -> Meter | None:
    """The GPU meter of the first vendor whose library works, over ``gpu_indices`` (``gpu_sample_hz`` Hz power
    sampling where a GPU has no energy counter), noted in ``notes["gpu"]``; or None with the reason in
    ``unavailable["gpu"]`` (a CPU profile, no vendor library, no GPU)."""
    from bench.devices import VENDORS, vendor_module

    found = {v: vendor_module(v).probe(libraries.get(v)) for v in VENDORS}
    vendor = next((v for v, (ok, _) in found.items() if ok), None)
    why_not = "; ".join(f"{v}: {why}" for v, (_, why) in found.items())
    if use_gpu is False:
        unavailable["gpu"] = "the profile runs on the CPU (device = 'cpu'), so no GPU is metered" + (
            f"; {found[vendor][1]}" if vendor else ""
        )
        return None
    if vendor is None:
        unavailable["gpu"] = why_not
        return None
    from bench.meters.gpu import GpuMeter

    try:
        gpu_meter = GpuMeter(gpu_indices, sample_hz=gpu_sample_hz, vendor=vendor, library=libraries.get(vendor))
    except MeterError as exc:  # e.g. no GPU visible under CUDA_VISIBLE_DEVICES, a GPU without power readings
        if use_gpu and getattr(exc, "kind", None) == "mig":
            raise  # a GPU run on a MIG instance is refused before any energy is spent, never run unmetered
        unavailable["gpu"] = str(exc)
        return None
    notes["gpu"] = f"{gpu_meter.method} on GPU(s) {gpu_meter.indices} ({found[vendor][1]})"
    if gpu_meter.skipped:
        notes["gpu_skipped"] = "; ".join(f"GPU {s['index']}: {s['reason']}" for s in gpu_meter.skipped)
    return gpu_meter


def _add_codecarbon(
    side: list[Meter], side_unavailable: dict[str, str], country_iso_code: str, measure_power_secs: float
) -> None:
    """CodeCarbon as a side meter when it is importable (``measure_power_secs`` s between its readings), else why
    not in ``side_unavailable["codecarbon"]``."""
    from bench.meters.codecarbon import CodeCarbonMeter, codecarbon_available

    ok, why = codecarbon_available()
    if ok:
        side.append(CodeCarbonMeter(country_iso_code=country_iso_code, measure_power_secs=measure_power_secs))
    else:
        side_unavailable["codecarbon"] = why


def _add_gpu_side_meter(
    primary: list[Meter],
    side: list[Meter],
    side_unavailable: dict[str, str],
    unavailable: dict[str, str],
    libraries: dict[str, Any],
) -> None:
    """The vendor's power sampled at 10 Hz over the primary GPU meter's GPUs, or why not."""
    from bench.meters.gpu import LIBRARY_NAMES, GpuMeter, GpuSamplingMeter

    gpu_meter = next((m for m in primary if isinstance(m, GpuMeter)), None)
    if gpu_meter is None:
        side_unavailable["gpu-sampling"] = f"no GPU is metered: {unavailable.get('gpu', 'no GPU meter')}"
        return
    vendor = gpu_meter.vendor
    try:
        side.append(GpuSamplingMeter(gpu_meter.indices, vendor=vendor, library=libraries.get(vendor)))
    except MeterError as exc:
        side_unavailable[f"{LIBRARY_NAMES.get(vendor, vendor)}-sampling"] = str(exc)
