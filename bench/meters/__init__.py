"""Energy meters behind one protocol (``base.py``) and the ``MeterSet`` the runner opens windows with.

Imports stay lazy: ``import bench.meters`` loads neither codecarbon nor a device library. Adding a meter: a class
following ``base.Meter`` (optionally ``describe() -> dict``) in ``bench/meters/<name>.py``, chosen in
``build_meter_set``.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import MeterError
from bench.meters.base import COMPONENTS, ComponentEnergy, Meter, Reading, Stopwatch

#: Environment variable naming the powercap tree RAPL is read from (default ``/sys/class/powercap``).
RAPL_ROOT_ENV = "BENCH_RAPL_ROOT"

__all__ = ["COMPONENTS", "ComponentEnergy", "Meter", "MeterSet", "Reading", "WindowReading", "build_meter_set"]


@dataclass(frozen=True)
class WindowReading:
    """One metered window: its duration (s), the primary energy per component (always gpu, cpu, ram), the side
    meters' readings by name, the observers' records by name (``others``), each component's own meter window
    (``component_duration_s``: it encloses the set's), the power series (``bench.meters.series``; None: none) and,
    over several nodes, each node's reading (``nodes``: ``bench.meters.multinode``)."""

    duration_s: float
    components: dict[str, ComponentEnergy]
    side: dict[str, Reading] = field(default_factory=dict)
    component_duration_s: dict[str, float] = field(default_factory=dict)
    observed: dict[str, dict[str, Any]] = field(default_factory=dict)
    series: dict[str, Any] | None = None
    nodes: dict[str, Any] = field(default_factory=dict)

    def power_w(self, component: str) -> float | None:
        """Mean power (W) of ``component`` over its meter's own window (None where its energy is unavailable)."""
        energy = self.components[component].energy_j
        duration_s = self.component_duration_s.get(component) or self.duration_s
        return energy / duration_s if energy is not None and duration_s > 0 else None


@contextlib.contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """Python's cyclic garbage collector held off while the primary meters open or close (then restored as found).

    Each primary meter integrates from its own start to its own stop, and those enclose the set's window (the loop's
    duration): the stored energy per pass is the meter's, divided by the window's duration where a power is judged.
    A full collection lands wherever allocations cross its threshold: in these edges it stretched a meter's span past
    the window by its whole pause (0.4-0.5 s measured on a loaded 2-core machine with PyTorch in the process), so a
    0.2 s window's CPU estimate read 2-3x its TDP and the cell was invalid; its gross energy per pass was inflated
    alike. Held off here, a collection due runs inside the window (counted in its duration and in every meter's span
    alike) or after the last meter stopped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _meter_describe(meter: Any) -> dict[str, object]:
    try:
        return dict(meter.describe()) if callable(getattr(meter, "describe", None)) else {}
    except Exception as exc:  # describing must never break a run
        return {"describe_error": f"{type(exc).__name__}: {exc}"}


def _unavailable(reason: str) -> ComponentEnergy:
    return ComponentEnergy(None, "unavailable", reason=reason)


def _failed_reading(meter: Meter, duration_s: float, reason: str) -> Reading:
    return Reading(meter.name, duration_s, {c: _unavailable(reason) for c in meter.components()})


class MeterSet:
    """Primary meters (the kit's numbers) and side meters (for comparison), opened and closed together.

    Per component the first primary meter covering it wins; one no primary meter covers is ``unavailable`` with its
    reason from ``unavailable``. Side meters start first and stop last, so the primary windows are tight; a side
    meter that fails gives nulls with the reason. A primary meter that fails to start aborts the window
    (MeterError); one that fails at stop gives nulls with the reason. ``series_hz``: record each component's power
    over time at this rate (``bench.meters.series``); None records none.
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
        self.primary, self.side = list(primary), list(side or [])
        names = [m.name for m in self.primary + self.side]
        if len(set(names)) != len(names):
            raise MeterError(f"meter names must be unique in a MeterSet, got {names}")
        self._unavailable = dict(unavailable or {})
        self._side_unavailable = dict(side_unavailable or {})
        self.notes = dict(notes or {})
        owners = {c: next((m for m in self.primary if c in m.components()), None) for c in COMPONENTS}
        self._owner: dict[str, Meter] = {c: m for c, m in owners.items() if m is not None}
        self.observers: list[Any] = []
        self._started: list[Meter] = []
        self._errors: dict[str, str] = {}  # side meters and observers that failed to start
        self._stopwatch = Stopwatch()
        self._open = False
        self._recorder: Any = None
        if series_hz is not None:
            from bench.meters.series import PowerRecorder

            self._recorder = PowerRecorder(self._owner, hz=series_hz)

    def _floor(self) -> tuple[float, str | None]:
        floors = [(float(getattr(m, "min_window_s", 0.0) or 0.0), m.name) for m in self.primary]
        floor_s, name = max(floors, default=(0.0, None))
        return floor_s, name if floor_s > 0 else None

    @property
    def min_window_s(self) -> float:
        """The shortest window (s) the primary meters' numbers are trusted for: the largest ``min_window_s`` a meter
        declares (NVML: 10 s, so its 100 ms counter update is at most 1%); the runner lengthens every window to it."""
        return self._floor()[0]

    def min_window_by(self) -> str | None:
        """Name of the primary meter that sets ``min_window_s`` (None when no meter declares one)."""
        return self._floor()[1]

    def observe(self, observer: Any) -> None:
        """Open ``observer`` (``start()``, ``stop() -> dict``, ``close()``, ``name``) around every window, outside
        the meters; its record comes back in ``WindowReading.observed[observer.name]`` (``{"error": ...}`` if it
        failed). It measures no energy."""
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
                reason = self.unavailable_reason(component)
                components[component] = {"meter": None, "method": "unavailable", "reason": reason}
            else:
                method = getattr(meter, "method", None) or "reported per window"
                components[component] = {"meter": meter.name, "method": method, "detail": _meter_describe(meter)}
        side: dict[str, dict[str, object]] = {
            m.name: {"enabled": True, "components": list(m.components()), "detail": _meter_describe(m)}
            for m in self.side
        }
        side.update({name: {"enabled": False, "reason": why} for name, why in self._side_unavailable.items()})
        out = {"components": components, "side": side, "notes": dict(self.notes)}
        out.update(min_window_s=self.min_window_s, min_window_by=self.min_window_by())
        if self._recorder is not None:
            from bench.meters.series import ENCODING, MAX_POINTS

            out["power_series"] = {"hz": self._recorder.hz, "max_points": MAX_POINTS, "encoding": ENCODING}
        return out

    def start(self) -> None:
        """Open a window: observers, the series' thread, side meters, then primary meters (tight around the work)."""
        if self._open:
            raise MeterError("MeterSet.start() called twice without stop()")
        self._started, self._errors = [], {}
        for observer in self.observers:
            try:
                observer.start()
            except Exception as exc:  # observing must never abort a window
                self._errors[observer.name] = f"{type(exc).__name__}: {exc}"
        if self._recorder is not None:
            self._recorder.arm()  # its thread starts here, outside the primary meters' windows
        for meter in self.side:
            try:
                meter.start()
                self._started.append(meter)
            except Exception as exc:
                self._errors[meter.name] = f"{meter.name} failed to start: {type(exc).__name__}: {exc}"
        with _no_garbage_collection():  # between the primary meters' edges and the set's: see the function
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
            # Inside the set's window: the first read's time (and the last's, in stop) counts in its duration as in
            # its energy, never as a skew between the two. Never raises: a failed read ends the series.
            self._recorder.start()
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
        """Close the window: primary meters first (reverse start order), then side meters, then observers."""
        if not self._open:
            raise MeterError("MeterSet.stop() called without start()")
        if self._recorder is not None:
            self._recorder.stop()  # the last counter reads, while the meters are still open
        with _no_garbage_collection():
            duration_s = self._stopwatch.elapsed_s()
            self._open = False
            readings = {m.name: self._stop_one(m, duration_s) for m in reversed(self.primary)}
        side = {m.name: self._stop_one(m, duration_s) for m in reversed(self.side)}
        self._started = []
        observed: dict[str, dict[str, Any]] = {}
        for observer in reversed(self.observers):
            try:
                if observer.name not in self._errors:
                    observed[observer.name] = dict(observer.stop())
                    continue
            except Exception as exc:
                self._errors[observer.name] = f"{type(exc).__name__}: {exc}"
            observed[observer.name] = {"error": self._errors[observer.name]}
        components: dict[str, ComponentEnergy] = {}
        component_duration_s: dict[str, float] = {}
        for component in COMPONENTS:
            meter = self._owner.get(component)
            if meter is None:
                components[component] = _unavailable(self.unavailable_reason(component))
                continue
            # a meter that claimed the component but did not report it: say so, never zero
            missing = _unavailable(f"meter {meter.name} returned no {component}")
            components[component] = readings[meter.name].components.get(component) or missing
            component_duration_s[component] = readings[meter.name].duration_s
        return WindowReading(
            duration_s=duration_s,
            components=components,
            side={m.name: side[m.name] for m in self.side},  # in declaration order
            component_duration_s=component_duration_s,
            observed=observed,
            series=self._series(duration_s),
        )

    def _series(self, duration_s: float) -> dict[str, Any] | None:
        """The recorder's series of the window just closed, with a reason for each component no meter measures."""
        if self._recorder is None:
            return None
        series = self._recorder.series(duration_s)
        for component in (c for c in COMPONENTS if c not in self._owner):
            series["missing"][component] = f"not measured: {self.unavailable_reason(component)}"
        return series

    def _stop_one(self, meter: Meter, duration_s: float) -> Reading:
        if meter.name in self._errors:  # a side meter that failed to start
            return _failed_reading(meter, 0.0, self._errors[meter.name])
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
    gpu_cross_check: bool = False,
    series: bool = True,
    device: str | None = None,
) -> MeterSet:
    """The best meters this machine offers.

    A SoC (Apple Silicon, Jetson: ``bench.meters.soc``) meters what it reports. cpu: RAPL packages under
    ``rapl_root`` (None: ``$BENCH_RAPL_ROOT``, else ``/sys/class/powercap``) when readable, else TDP (``cpu_tdp_w``)
    x utilization. ram: RAPL DRAM, else 0.375 W/GB x ``ram_gb``. gpu: ``bench.meters.gpu.GpuMeter`` of the first
    vendor of ``bench.devices.VENDORS`` whose library works, over ``gpu_indices`` (None: those the framework makes
    visible), power sampled at ``gpu_sample_hz`` where a GPU has no counter; unless ``use_gpu`` is False (a CPU
    profile; None: whenever a library works). ``libraries``: vendor library modules by vendor (tests' fakes;
    ``nvml``: the NVIDIA one). Side meters: CodeCarbon (``codecarbon``) and the vendor's power at 10 Hz over the same
    GPUs (``gpu_cross_check``), each where it can run, else ``describe()`` says why. ``series``: record the power
    over time (``bench.meters.series``; False to measure its cost: ``benchmarks/measurement_overhead.py``).
    ``device``: the profile's ``[hardware] device``, for the reason a GPU is not metered (an mps profile's GPU is
    metered by the SoC meter alone, a cpu profile's is none).
    """
    primary, notes = _cpu_and_ram_meters(rapl_root, cpu_tdp_w, ram_gb)
    unavailable: dict[str, str] = {}
    libraries = {**({"nvidia": nvml} if nvml is not None else {}), **(libraries or {})}
    soc_meter, soc_why = _soc_meter(notes)
    if soc_meter is not None:  # first: it owns what it reports; meters left with nothing to own are dropped
        owned = set(soc_meter.components())
        primary = [soc_meter, *(m for m in primary if set(m.components()) - owned)]
    gpu_meter = None
    if soc_meter is None or "gpu" not in soc_meter.components():
        gpu_meter = _gpu_meter(use_gpu, gpu_indices, gpu_sample_hz, libraries, unavailable, notes)
        if device == "mps" and gpu_meter is None:  # an Apple GPU is metered with its chip, by nothing else
            unavailable["gpu"] = (
                "an mps profile's GPU is metered only through Zeus's Apple Silicon counters (the SoC meter, "
                f"bench.meters.soc); none here: {soc_why}"
            )
    if gpu_meter is not None:
        if gpu_meter.scope == "module":
            primary = _module_scope(primary, unavailable, notes)
        primary.append(gpu_meter)  # last: started last and stopped first, the tightest window around the work
    side: list[Meter] = []
    side_unavailable: dict[str, str] = {}
    if gpu_cross_check:
        _add_gpu_side_meter(gpu_meter, side, side_unavailable, unavailable, libraries)
    if codecarbon:
        from bench.meters.codecarbon import CodeCarbonMeter, codecarbon_available

        ok, why = codecarbon_available()
        if ok:
            side.append(CodeCarbonMeter(country_iso_code, codecarbon_measure_power_secs))
        else:
            side_unavailable["codecarbon"] = why
    from bench.meters.series import SERIES_HZ

    return MeterSet(
        primary,
        side,
        unavailable=unavailable,
        side_unavailable=side_unavailable,
        notes=notes,
        series_hz=SERIES_HZ if series else None,
    )


def unmetered_soc_refusal(described: Mapping[str, Any], device: str) -> str | None:
    """Why a run on a profile of ``device`` is refused with the meters ``described`` (``MeterSet.describe()``), or
    None: an mps profile's GPU is metered by the SoC meter alone, and without it the GPU's energy would be missing
    from every cell (``bench.run.session.refuse_unmetered_soc``; ``bench env`` says the same)."""
    gpu = (described.get("components") or {}).get("gpu") or {}
    if device != "mps" or gpu.get("method", "unavailable") != "unavailable":
        return None
    return (
        f"the profile runs on Apple's GPU (device = 'mps') but nothing meters it: {gpu.get('reason') or 'no SoC meter'}"
        "; so the GPU's energy would be missing "
        "from every cell. Install Zeus's Apple Silicon reader (pip install -e '.[apple]', i.e. zeus-apple-silicon, on "
        "the Mac itself, not in a container), check with `bench env`, and run again"
    )


def _cpu_and_ram_meters(
    rapl_root: str | Path | None, cpu_tdp_w: float | None, ram_gb: float | None
) -> tuple[list[Meter], dict[str, str]]:
    """The CPU and RAM meters (RAPL where readable, else the estimates) and the notes saying which and why."""
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
        with contextlib.suppress(MeterError):  # raced: unreadable between probe and open; fall back as any unusable
            rapl = RaplMeter(rapl_root)
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


def _soc_meter(notes: dict[str, str]) -> tuple[Meter | None, str]:
    """The SoC meter where Zeus finds Apple Silicon or a Jetson (noted), else None and why not."""
    from bench.meters.soc import SocMeter

    try:
        meter = SocMeter()
    except MeterError as exc:
        return None, str(exc)
    notes["soc"] = f"{meter.method} ({meter.kind}) for {', '.join(meter.components())}"
    return meter, ""


def _gpu_meter(
    use_gpu: bool | None,
    gpu_indices: list[int] | None,
    gpu_sample_hz: float,
    libraries: dict[str, Any],
    unavailable: dict[str, str],
    notes: dict[str, str],
) -> Any:
    """The GPU meter of the first vendor whose library works, noted in ``notes["gpu"]``; or None with the reason in
    ``unavailable["gpu"]`` (a CPU profile, no vendor library, no GPU). A GPU run on a MIG instance raises."""
    from bench.devices import probe_all

    found = probe_all(libraries)
    vendor = next((v for v, (ok, _) in found.items() if ok), None)
    if use_gpu is False:
        unavailable["gpu"] = "the profile runs on the CPU (device = 'cpu'), so no GPU is metered" + (
            f"; {found[vendor][1]}" if vendor else ""
        )
        return None
    if vendor is None:
        unavailable["gpu"] = "; ".join(f"{v}: {why}" for v, (_, why) in found.items())
        return None
    from bench.meters.gpu import GpuMeter

    try:
        gpu_meter = GpuMeter(gpu_indices, sample_hz=gpu_sample_hz, vendor=vendor, library=libraries.get(vendor))
    except MeterError as exc:  # e.g. no GPU visible under CUDA_VISIBLE_DEVICES, a GPU without power readings
        if use_gpu and getattr(exc, "kind", None) == "mig":
            raise  # refused before any energy is spent, never run unmetered
        unavailable["gpu"] = str(exc)
        return None
    notes["gpu"] = f"{gpu_meter.method} on GPU(s) {gpu_meter.indices} ({found[vendor][1]})"
    if gpu_meter.skipped:
        notes["gpu_skipped"] = "; ".join(f"GPU {s['index']}: {s['reason']}" for s in gpu_meter.skipped)
    return gpu_meter


def _add_gpu_side_meter(
    gpu_meter: Any, side: list[Meter], side_unavailable: dict[str, str], unavailable: dict[str, str], libraries: Any
) -> None:
    """The vendor's power sampled at 10 Hz over the primary GPU meter's GPUs, or why not."""
    from bench.meters.gpu import LIBRARY_NAMES, GpuSamplingMeter

    if gpu_meter is None:
        side_unavailable["gpu-sampling"] = f"no GPU is metered: {unavailable.get('gpu', 'no GPU meter')}"
        return
    vendor = gpu_meter.vendor
    try:
        side.append(GpuSamplingMeter(gpu_meter.indices, vendor=vendor, library=libraries.get(vendor)))
    except MeterError as exc:
        side_unavailable[f"{LIBRARY_NAMES.get(vendor, vendor)}-sampling"] = str(exc)
