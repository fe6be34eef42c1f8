"""NVIDIA GPU energy via NVML (package ``nvidia-ml-py``, imported as ``pynvml``).

Two methods, chosen per GPU when the meter is built:

- ``measured:nvml-energy-counter``: the difference of ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the
  driver loaded; Volta and newer) between the window's start and stop. Exact up to the counter's update period (about
  100 ms on current GPUs), which is why GPU windows last at least ``DEFAULT_MIN_WINDOW_S`` (10 s: one update is then
  at most 1% of the window).
- ``measured:nvml-power-sampling``: where the counter is missing (``NVMLError_NotSupported``, or
  ``NVMLError_FunctionNotFound`` on old drivers), a background thread reads ``nvmlDeviceGetPowerUsage`` (milliwatts)
  at ``sample_hz`` (>= 10 Hz) and integrates with the trapezoidal rule. One sample is taken synchronously at each
  window edge, so the integral spans the window itself, not the nearest ticks. Less exact than the counter: recent
  drivers report a 1 s moving average of power on A100/H100, so fast steps are smeared over about a second.

Component ``gpu`` is the sum over the GPUs the run uses (CUDA_VISIBLE_DEVICES respected); ``detail["gpus"]`` holds one
record per GPU (index, name, uuid, driver, power limit, energy, method, average power) so the validator can check every
GPU against its own power limit, and the GPU's state at the window's start and end (``_start``/``_end`` keys): SM and
memory clocks (MHz), temperature (C, ``nvmlDeviceGetTemperature``), the enforced power limit (W) and the clocks event
("throttle") reasons (``nvmlDeviceGetCurrentClocksEventReasons``, the bitmask and its names, ``CLOCKS_EVENT_REASONS``).
Each is None where the GPU or driver does not support the query; telemetry never fails a window. Read at the edges
only: a throttle event inside the window and gone by its end is not seen.

No NVML (library or driver missing, no GPU) is a normal state: ``nvml_probe`` says why without raising, and the meter
raises ``NvmlUnavailableError`` (a ``MeterError``), which ``build_meter_set`` records as the reason the gpu component is
unavailable. NVML failures during a window raise ``NvmlDeviceError`` naming the GPU, the call and what to do.

pynvml is imported lazily so ``import bench.meters`` works on machines without it; tests inject a fake module shaped
like pynvml (``tests/fakes/fake_pynvml.py``) through the ``nvml`` parameter.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.errors import MeterError
from bench.meters.base import ComponentEnergy, Reading

ENERGY_COUNTER_METHOD = "measured:nvml-energy-counter"
POWER_SAMPLING_METHOD = "measured:nvml-power-sampling"

#: How often NVML refreshes the total-energy counter on current NVIDIA GPUs (Volta through Hopper): about 100 ms.
COUNTER_UPDATE_PERIOD_S = 0.1
#: The largest share of a window that one counter update (the quantization step) may be.
MAX_QUANTIZATION = 0.01
#: Shortest GPU window: one counter update is then at most MAX_QUANTIZATION of it (0.1 s / 1% = 10 s). Power
#: sampling uses the same floor: its edges are smeared by the driver's averaging, which a long window dilutes.
DEFAULT_MIN_WINDOW_S = COUNTER_UPDATE_PERIOD_S / MAX_QUANTIZATION
#: Sampling rate bounds: below 10 Hz short bursts are missed; above 1 kHz NVML's own refresh is the limit anyway.
MIN_SAMPLE_HZ = 10.0
MAX_SAMPLE_HZ = 1000.0
#: NVML's clocks event ("throttle") reason bits (``nvmlClocksEventReason*`` in pynvml; the same values under the older
#: ``nvmlClocksThrottleReason*`` names), by the name the results store.
CLOCKS_EVENT_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def clocks_event_reason_names(mask: int) -> list[str]:
    """The names of the bits set in a clocks event reasons ``mask`` (unknown bits as ``bit_0x...``)."""
    names = [name for bit, name in CLOCKS_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCKS_EVENT_REASONS)
    bit = 1
    while unknown >= bit:
        if unknown & bit:
            names.append(f"bit_{bit:#x}")
        bit <<= 1
    return names


#: A counter that stands still for this many update periods on a powered GPU is broken, not merely quantized.
_STUCK_PERIODS = 5

#: What to do about an NVML error, by pynvml's error class name (the same names in the real module and the fake).
_HINTS = {
    "NVMLError_LibraryNotFound": (
        "libnvidia-ml.so.1 was not found: no NVIDIA driver is installed here, or the container was started without "
        "GPU access (docker run --gpus all, podman run --device nvidia.com/gpu=all, apptainer exec --nv)"
    ),
    "NVMLError_DriverNotLoaded": "the NVIDIA kernel driver is not loaded (nvidia-smi fails too); run on a GPU node",
    "NVMLError_LibRmVersionMismatch": (
        "the NVML library and the kernel driver differ in version (driver upgraded without a reboot, or the "
        "container's libnvidia-ml does not match the host driver)"
    ),
    "NVMLError_FunctionNotFound": "the installed driver is too old for this NVML call",
    "NVMLError_NoPermission": "this user may not make this NVML query (check access to /dev/nvidia*)",
    "NVMLError_GpuIsLost": (
        "the GPU stopped responding or fell off the bus; this window's energy is lost. Check `nvidia-smi` and the "
        "kernel log (Xid errors), then rerun the cell"
    ),
    "NVMLError_ResetRequired": "the GPU needs a reset (nvidia-smi -r) before it can be read",
    "NVMLError_Uninitialized": "NVML was used before nvmlInit or after nvmlShutdown (a bug in the kit; please report)",
    "NVMLError_NotSupported": "this GPU or driver does not support the query",
    "NVMLError_Timeout": "NVML timed out talking to the GPU",
    "NVMLError_InsufficientPower": "the GPU's external power cables are not connected properly",
    "NVMLError_NotReady": (
        "the GPU is not ready yet: the driver is still initializing it (just after boot, a driver load or a GPU "
        "reset; enabling persistence mode, `nvidia-smi -pm 1`, keeps it initialized). The kit retried with a short "
        "backoff; rerun in a minute if it persists"
    ),
}
#: Errors that mean "no usable NVML on this machine" rather than "this GPU misbehaved".
_UNAVAILABLE = {"NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded", "NVMLError_LibRmVersionMismatch"}
#: Errors that mean "this query does not exist here": the energy counter falls back to power sampling.
_NOT_SUPPORTED = {"NVMLError_NotSupported", "NVMLError_FunctionNotFound"}
#: NVML_ERROR_NOT_READY (27): the driver is still initializing the GPU. Such calls are retried after each of these
#: pauses (seconds, 3.75 s in all); an energy counter still not ready then falls back to power sampling, with the
#: reason.
NOT_READY_BACKOFF_S: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
_NOT_READY = "NVMLError_NotReady"


def _call_when_ready(nvml: Any, function: str, *args: Any) -> Any:
    """``nvml.<function>(*args)``, retried after each pause of ``NOT_READY_BACKOFF_S`` while NVML answers NOT_READY
    (the last error is raised when it still does). Other errors are raised at once."""
    for pause_s in (*NOT_READY_BACKOFF_S, None):
        try:
            return getattr(nvml, function)(*args)
        except Exception as exc:
            if pause_s is None or type(exc).__name__ != _NOT_READY:
                raise
            time.sleep(pause_s)
    raise AssertionError("unreachable")


class NvmlError(MeterError):
    """An NVML call failed. ``function``, ``code`` (NVML return code) and ``gpu_index`` say where, when known."""

    def __init__(
        self, message: str, *, function: str | None = None, code: int | None = None, gpu_index: int | None = None
    ) -> None:
        super().__init__(message)
        self.function = function
        self.code = code
        self.gpu_index = gpu_index


class NvmlUnavailableError(NvmlError):
    """No usable NVML here: library or driver missing, or no GPU visible. A normal state on CPU machines."""


class NvmlDeviceError(NvmlError):
    """A GPU could not be read: lost, needs a reset, no permission, or supports neither counter nor power readings."""


def _text(value: object) -> str:
    """pynvml returns str for some queries and bytes for others (UUID in 13.x); normalize."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _is_nvml_error(nvml: Any, exc: BaseException) -> bool:
    base = getattr(nvml, "NVMLError", None)
    return isinstance(base, type) and isinstance(exc, base)


def _translate(exc: BaseException, function: str, gpu: _Gpu | None = None) -> NvmlError:
    """A typed error with a message that says which call on which GPU failed and what to do about it."""
    kind = type(exc).__name__
    where = f"{function} on GPU {gpu.index} ({gpu.name})" if gpu is not None else function
    hint = _HINTS.get(kind)
    message = f"NVML {where} failed: {kind}: {exc}" + (f". {hint}" if hint else "")
    cls = NvmlUnavailableError if kind in _UNAVAILABLE else NvmlDeviceError
    return cls(
        message,
        function=function,
        code=getattr(exc, "value", None),
        gpu_index=gpu.index if gpu is not None else None,
    )


def _import_pynvml() -> Any:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError as exc:
        raise NvmlUnavailableError(f"nvidia-ml-py not installed (pip install nvidia-ml-py): {exc}") from exc
    return pynvml


def nvml_probe(nvml: Any = None) -> tuple[bool, str]:
    """Whether NVML is usable here and why not. Never raises.

    ``nvml``: a module shaped like pynvml (tests inject a fake); default imports pynvml.
    Returns (True, "NVML <driver>: N device(s)") or (False, reason): library not installed, nvmlInit failed (no
    driver, no GPU, container without the NVIDIA runtime), or zero devices visible.
    """
    if nvml is None:
        try:
            import pynvml  # type: ignore[import-not-found]
        except ImportError:
            return False, "nvidia-ml-py not installed"
        except Exception as exc:  # a broken install must not take the kit down
            return False, f"pynvml import failed: {type(exc).__name__}: {exc}"
        nvml = pynvml
    try:
        _call_when_ready(nvml, "nvmlInit")
    except Exception as exc:  # NVMLError has one subclass per error code; all mean "no usable NVML here"
        hint = _HINTS.get(type(exc).__name__)
        return False, f"NVML unavailable (nvmlInit failed: {exc}); " + (hint or "no NVIDIA driver or GPU visible")
    try:
        count = int(nvml.nvmlDeviceGetCount())
        try:
            driver = _text(nvml.nvmlSystemGetDriverVersion())
        except Exception:
            driver = "driver ?"
    except Exception as exc:
        return False, f"NVML initialized but counting devices failed: {exc}"
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    if count == 0:
        return False, "NVML works but sees no GPU (check CUDA_VISIBLE_DEVICES / container GPU access)"
    return True, f"NVML {driver}: {count} device(s)"


def visible_gpu_indices(nvml: Any, count: int) -> list[int]:
    """NVML indices of the GPUs CUDA_VISIBLE_DEVICES lets this process use (all ``count`` when it is unset).

    Integer form: as CUDA reads it, enumeration stops at the first invalid entry (negative or >= ``count``), so
    ``0,7,1`` on a 3-GPU node is GPU 0 only. (``bench.environment._visible_indices``, which records the environment,
    skips an out-of-range entry instead of stopping; the two agree on every valid setting.) UUID form
    (``GPU-8932f937,...``, unique prefixes allowed, as CUDA accepts them) is resolved against the devices' UUIDs and
    also stops at the first entry that matches no device. MIG instances (``MIG-...``) are refused: NVML's energy
    counter covers the whole physical GPU, other tenants included. An empty value hides every GPU.
    """
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return list(range(count))
    parts = [p.strip() for p in value.split(",") if p.strip()]
    out: list[int] = []
    if all(p.lstrip("-").isdigit() for p in parts):
        for part in parts:
            index = int(part)
            if not 0 <= index < count:
                break
            if index not in out:
                out.append(index)
        return out
    if any(p.upper().startswith("MIG-") for p in parts):
        raise NvmlUnavailableError(
            f"CUDA_VISIBLE_DEVICES={value!r} selects MIG instances: NVML's energy counter covers the whole physical "
            "GPU (other MIG tenants included), so per-instance GPU energy cannot be measured; run on whole GPUs"
        )
    uuids: list[str] = []
    for index in range(count):
        try:
            uuids.append(_text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(index))).lower())
        except Exception as exc:
            if _is_nvml_error(nvml, exc):
                raise _translate(exc, f"nvmlDeviceGetUUID({index})") from exc
            raise
    for part in parts:
        wanted = part.lower() if part.lower().startswith("gpu-") else f"gpu-{part.lower()}"
        matches = [i for i, u in enumerate(uuids) if u.startswith(wanted)]
        if len(matches) != 1:  # none or ambiguous: CUDA stops enumerating here
            break
        if matches[0] not in out:
            out.append(matches[0])
    return out


def integrate_trapezoid_j(samples: Sequence[tuple[float, float]]) -> float:
    """Energy in joules of power samples ``(t_s, power_w)`` (times increasing) by the trapezoidal rule."""
    total = 0.0
    for (ta, pa), (tb, pb) in itertools.pairwise(samples):
        total += (pa + pb) / 2.0 * (tb - ta)
    return total


@dataclass
class _Gpu:
    """A GPU the meter reads, with the facts that do not change during a session."""

    index: int
    handle: Any
    name: str
    uuid: str | None
    power_limit_w: float | None
    memory_gb: float | None
    has_counter: bool
    #: why the energy counter is not used although the GPU may have one (e.g. still NOT_READY after the retries)
    counter_fallback_reason: str | None = None

    @property
    def method(self) -> str:
        return ENERGY_COUNTER_METHOD if self.has_counter else POWER_SAMPLING_METHOD


class NvmlMeter:
    """GPU energy (component ``gpu``) of the GPUs this run uses, by energy counter or, where missing, power sampling.

    ``indices``: NVML device indices to meter; None takes those CUDA_VISIBLE_DEVICES makes visible (all when unset).
    ``sample_hz``: power sampling rate for GPUs without the energy counter (10 to 1000 Hz).
    ``nvml``: a module shaped like pynvml (tests inject a fake); default imports pynvml.
    ``min_window_s``: the shortest window this meter's numbers are trusted for (default ``DEFAULT_MIN_WINDOW_S``);
    the runner lengthens windows to it.
    ``cross_check``: also sample power on GPUs that have the counter and record the sampled energy beside the counter
    energy in each GPU's detail (to compare the two methods on real hardware).
    ``clock``: monotonic seconds (the fake NVML uses the same clock to advance its counters).

    Raises NvmlUnavailableError when NVML cannot be used at all, NvmlDeviceError when a chosen GPU cannot be read.
    NVML stays initialized until ``close()`` (nvmlInit is reference-counted, so other users are unaffected).
    """

    name = "nvml"

    def __init__(
        self,
        indices: list[int] | None = None,
        *,
        sample_hz: float = 20.0,
        nvml: Any = None,
        min_window_s: float | None = None,
        cross_check: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not MIN_SAMPLE_HZ <= sample_hz <= MAX_SAMPLE_HZ:
            raise MeterError(
                f"NVML sample_hz must be between {MIN_SAMPLE_HZ:g} and {MAX_SAMPLE_HZ:g} Hz, got {sample_hz:g}"
            )
        self.sample_hz = float(sample_hz)
        self.min_window_s = float(DEFAULT_MIN_WINDOW_S if min_window_s is None else min_window_s)
        if self.min_window_s < 0:
            raise MeterError(f"NVML min_window_s must not be negative, got {self.min_window_s}")
        self.cross_check = cross_check
        self._clock = clock
        self._nvml = nvml if nvml is not None else _import_pynvml()
        self._initialized = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._sampler_error: BaseException | None = None
        self._samples: dict[int, list[tuple[float, float]]] = {}
        self._last_samples: dict[int, list[tuple[float, float]]] = {}
        self._start_mj: dict[int, tuple[float, int]] = {}
        self._clocks_start: dict[int, dict[str, int | None]] = {}
        self._edge_start: dict[int, float] = {}
        self._t_start = 0.0
        self._gpus: list[_Gpu] = []
        self.driver: str | None = None

        try:
            self._call("nvmlInit")
        except NvmlError as exc:  # whatever the code, a failed init means no usable NVML on this machine
            raise NvmlUnavailableError(
                f"NVML unavailable: {exc}", function="nvmlInit", code=exc.code
            ) from exc.__cause__
        self._initialized = True
        try:
            count = int(self._call("nvmlDeviceGetCount"))
            with contextlib.suppress(NvmlDeviceError):
                self.driver = _text(self._call("nvmlSystemGetDriverVersion"))
            chosen = visible_gpu_indices(self._nvml, count) if indices is None else list(indices)
            if not chosen:
                raise NvmlUnavailableError(
                    f"NVML sees {count} GPU(s) but none is visible to this process "
                    f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
                )
            bad = [i for i in chosen if not 0 <= i < count]
            if bad or len(set(chosen)) != len(chosen):
                raise MeterError(f"NVML GPU indices {chosen} invalid: NVML has {count} GPU(s) (0..{count - 1})")
            self._gpus = [self._open_gpu(i) for i in chosen]
        except BaseException:
            self.close()
            raise

    # --- NVML calls -------------------------------------------------------------------------------------------------

    def _call(self, function: str, *args: Any, gpu: _Gpu | None = None) -> Any:
        """Call ``nvml.<function>(*args)`` (retried while NOT_READY); NVML errors become typed errors naming the call
        and the GPU."""
        try:
            return _call_when_ready(self._nvml, function, *args)
        except Exception as exc:
            if _is_nvml_error(self._nvml, exc):
                raise _translate(exc, function, gpu) from exc
            raise NvmlDeviceError(
                f"NVML {function} failed unexpectedly: {type(exc).__name__}: {exc}", function=function
            ) from exc

    def _open_gpu(self, index: int) -> _Gpu:
        handle = self._call("nvmlDeviceGetHandleByIndex", index)
        name = _text(self._call("nvmlDeviceGetName", handle))
        gpu = _Gpu(index, handle, name, None, None, None, has_counter=True)
        with contextlib.suppress(NvmlDeviceError):
            gpu.uuid = _text(self._call("nvmlDeviceGetUUID", handle, gpu=gpu))
        with contextlib.suppress(NvmlDeviceError):
            gpu.memory_gb = round(self._call("nvmlDeviceGetMemoryInfo", handle, gpu=gpu).total / 1e9, 2)
        # The enforced limit is what the board obeys (min of the management limit and others); older bindings or
        # drivers may only have the management limit.
        for function in ("nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerManagementLimit"):
            try:
                gpu.power_limit_w = float(self._call(function, handle, gpu=gpu)) / 1000.0
                break
            except NvmlDeviceError:
                continue
        try:
            self._read_counter(gpu)
        except NvmlDeviceError as exc:
            if self._not_ready(exc):
                gpu.counter_fallback_reason = f"{exc}; falling back to power sampling at {self.sample_hz:g} Hz"
            elif not self._not_supported(exc):
                raise
            gpu.has_counter = False
            try:
                self._read_power_w(gpu)
            except NvmlDeviceError as exc2:
                if not self._not_supported(exc2):
                    raise
                raise NvmlDeviceError(
                    f"GPU {index} ({name}) reports neither an energy counter nor its power draw through NVML, so it "
                    "cannot be metered; hide it with CUDA_VISIBLE_DEVICES or run a CPU profile",
                    function="nvmlDeviceGetPowerUsage",
                    code=exc2.code,
                    gpu_index=index,
                ) from exc2
        return gpu

    @staticmethod
    def _not_ready(exc: NvmlError) -> bool:
        cause = exc.__cause__
        return cause is not None and type(cause).__name__ == _NOT_READY

    @staticmethod
    def _not_supported(exc: NvmlError) -> bool:
        cause = exc.__cause__
        return cause is not None and type(cause).__name__ in _NOT_SUPPORTED

    def _read_counter(self, gpu: _Gpu) -> int:
        """Total energy since driver load, in millijoules."""
        return int(self._call("nvmlDeviceGetTotalEnergyConsumption", gpu.handle, gpu=gpu))

    def _read_power_w(self, gpu: _Gpu) -> float:
        """Current power draw in watts (NVML reports milliwatts)."""
        return float(self._call("nvmlDeviceGetPowerUsage", gpu.handle, gpu=gpu)) / 1000.0

    def _read_clocks(self, gpu: _Gpu) -> dict[str, Any]:
        """The GPU's state at a window edge: SM and memory clocks (MHz), temperature (C), enforced power limit (W),
        clocks event reasons (bitmask); None where unsupported (telemetry describes the run, it never fails a
        window)."""
        out: dict[str, Any] = {}
        for key, kind in (("sm", "NVML_CLOCK_SM"), ("mem", "NVML_CLOCK_MEM")):
            try:
                out[key] = int(self._call("nvmlDeviceGetClockInfo", gpu.handle, getattr(self._nvml, kind), gpu=gpu))
            except (NvmlError, AttributeError):
                out[key] = None
        try:
            sensor = getattr(self._nvml, "NVML_TEMPERATURE_GPU", 0)
            out["temperature_c"] = int(self._call("nvmlDeviceGetTemperature", gpu.handle, sensor, gpu=gpu))
        except (NvmlError, AttributeError):
            out["temperature_c"] = None
        try:
            out["power_limit_w"] = float(self._call("nvmlDeviceGetEnforcedPowerLimit", gpu.handle, gpu=gpu)) / 1000.0
        except (NvmlError, AttributeError):
            out["power_limit_w"] = None
        out["reasons"] = None
        # The event-reasons call exists from driver 535 / pynvml 12.535; older ones only know the throttle name.
        for function in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            if not callable(getattr(self._nvml, function, None)):
                continue
            try:
                out["reasons"] = int(self._call(function, gpu.handle, gpu=gpu))
                break
            except NvmlError:
                continue
        return out

    # --- sampling -----------------------------------------------------------------------------------------------

    def _sampled(self) -> list[_Gpu]:
        return [g for g in self._gpus if not g.has_counter or self.cross_check]

    def _sample_once(self) -> dict[int, float]:
        """Read the power of every sampled GPU; returns the timestamp of each reading."""
        times: dict[int, float] = {}
        for gpu in self._sampled():
            before = self._clock()
            power_w = self._read_power_w(gpu)
            # Timestamp at the middle of the call: NVML reads take tens of microseconds, the midpoint halves the error.
            t = (before + self._clock()) / 2.0
            self._samples[gpu.index].append((t, power_w))  # list.append is atomic: the sampler thread appends too
            times[gpu.index] = t
        return times

    def _sample_loop(self) -> None:
        period_s = 1.0 / self.sample_hz
        next_t = self._clock() + period_s  # the window's edge samples are taken by start() and stop() themselves
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
        """NVML indices of the GPUs this meter reads."""
        return [g.index for g in self._gpus]

    @property
    def method(self) -> str:
        """The component's method: the counter when every GPU has it, else power sampling (the weaker one wins)."""
        return ENERGY_COUNTER_METHOD if all(g.has_counter for g in self._gpus) else POWER_SAMPLING_METHOD

    def components(self) -> tuple[str, ...]:
        """``("gpu",)``."""
        return ("gpu",)

    def describe(self) -> dict[str, object]:
        """The GPUs read, how, and the facts a reviewer needs to trust the numbers."""
        names = {g.name for g in self._gpus}
        order = os.environ.get("CUDA_DEVICE_ORDER")
        notes = []
        if len(names) > 1 and order != "PCI_BUS_ID":
            # NVML numbers GPUs by PCI bus; CUDA by default puts the fastest first. With mixed models the two
            # numberings can differ, so integer CUDA_VISIBLE_DEVICES may name other GPUs than the ones metered.
            notes.append("mixed GPU models and CUDA_DEVICE_ORDER is not PCI_BUS_ID: set CUDA_DEVICE_ORDER=PCI_BUS_ID")
        return {
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "uuid": g.uuid,
                    "memory_gb": g.memory_gb,
                    "power_limit_w": g.power_limit_w,
                    "method": g.method,
                    **({"counter_fallback_reason": g.counter_fallback_reason} if g.counter_fallback_reason else {}),
                }
                for g in self._gpus
            ],
            "gpu_count": len(self._gpus),
            "driver": self.driver,
            "sample_hz": self.sample_hz,
            "min_window_s": self.min_window_s,
            "counter_update_period_s": COUNTER_UPDATE_PERIOD_S,
            "cross_check": self.cross_check,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "cuda_device_order": order,
            "notes": notes,
        }

    def start(self) -> None:
        """Open a window: clocks, counters, a first power sample, and the sampler thread where needed."""
        if self._running:
            raise MeterError("NvmlMeter.start() called twice without stop()")
        if not self._initialized:
            raise MeterError("NvmlMeter is closed")
        self._stop_event.clear()
        self._sampler_error = None
        self._samples = {g.index: [] for g in self._sampled()}
        self._clocks_start = {g.index: self._read_clocks(g) for g in self._gpus}
        if self._samples:
            # Started before the edge readings (thread start-up takes a while on a busy machine); its first tick is
            # one period away, so the edge sample below still comes first.
            self._thread = threading.Thread(target=self._sample_loop, name="bench-nvml-sampler", daemon=True)
            self._thread.start()
        try:
            self._t_start = self._clock()
            self._start_mj = {}
            for gpu in self._gpus:
                if gpu.has_counter:
                    self._start_mj[gpu.index] = (self._clock(), self._read_counter(gpu))
            self._edge_start = self._sample_once()  # the first sample sits on the window's start edge
        except BaseException:
            self._join_sampler()
            raise
        self._running = True

    def stop(self) -> Reading:
        """Close the window: the edge readings first (counters, a last power sample), then stop the sampler."""
        if not self._running:
            raise MeterError("NvmlMeter.stop() called without start()")
        self._running = False
        end_mj: dict[int, tuple[float, int]] = {}
        edge_end: dict[int, float] = {}
        try:
            for gpu in self._gpus:
                if gpu.has_counter:
                    end_mj[gpu.index] = (self._clock(), self._read_counter(gpu))
            t_stop = self._clock()
            if self._samples:
                edge_end = self._sample_once()  # the last sample sits on the window's end edge
        finally:
            self._join_sampler()
        if self._sampler_error is not None:
            error = self._sampler_error
            self._sampler_error = None
            if isinstance(error, NvmlError):
                raise error
            raise NvmlDeviceError(f"NVML power sampler failed: {type(error).__name__}: {error}") from error
        for index, samples in self._samples.items():
            # Keep the window [start edge, end edge]: the sampler may have ticked just outside it while the edges
            # were being read; two threads appended, so order by time.
            lo, hi = self._edge_start[index], edge_end[index]
            self._samples[index] = sorted(s for s in samples if lo <= s[0] <= hi)
        self._last_samples = {i: [(t - self._t_start, p) for t, p in samples] for i, samples in self._samples.items()}

        records: list[dict[str, object]] = []
        total_j = 0.0
        for gpu in self._gpus:
            record = self._gpu_record(gpu, end_mj.get(gpu.index))
            total_j += float(record["energy_j"])  # type: ignore[arg-type]
            records.append(record)
        duration_s = t_stop - self._t_start
        detail: dict[str, object] = {
            "gpus": records,
            "gpu_count": len(records),
            "driver": self.driver,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        return Reading(
            meter=self.name,
            duration_s=duration_s,
            components={"gpu": ComponentEnergy(total_j, self.method, detail=detail)},
        )

    def _gpu_record(self, gpu: _Gpu, end: tuple[float, int] | None) -> dict[str, object]:
        """Energy, average power and context of one GPU over the window just closed."""
        clocks_end = self._read_clocks(gpu)
        clocks_start = self._clocks_start.get(gpu.index, {})
        record: dict[str, object] = {
            "index": gpu.index,
            "name": gpu.name,
            "uuid": gpu.uuid,
            "driver": self.driver,
            "power_limit_w": gpu.power_limit_w,
            "method": gpu.method,
            "sm_clock_mhz_start": clocks_start.get("sm"),
            "sm_clock_mhz_end": clocks_end.get("sm"),
            "mem_clock_mhz_start": clocks_start.get("mem"),
            "mem_clock_mhz_end": clocks_end.get("mem"),
        }
        for edge, state in (("start", clocks_start), ("end", clocks_end)):
            reasons = state.get("reasons")
            record[f"temperature_c_{edge}"] = state.get("temperature_c")
            record[f"power_limit_w_{edge}"] = state.get("power_limit_w")
            record[f"clocks_event_reasons_{edge}"] = reasons
            record[f"clocks_event_reason_names_{edge}"] = (
                clocks_event_reason_names(reasons) if isinstance(reasons, int) else None
            )
        samples = self._samples.get(gpu.index, [])
        sampled_j = integrate_trapezoid_j(samples) if len(samples) >= 2 else None
        sampled_span_s = samples[-1][0] - samples[0][0] if len(samples) >= 2 else 0.0
        if gpu.has_counter:
            assert end is not None
            (t0, start_mj), (t1, end_mj) = self._start_mj[gpu.index], end
            if end_mj < start_mj:
                raise NvmlDeviceError(
                    f"energy counter of GPU {gpu.index} ({gpu.name}) went backwards ({start_mj} -> {end_mj} mJ): the "
                    "driver was reloaded or the GPU reset during the window; rerun the cell",
                    function="nvmlDeviceGetTotalEnergyConsumption",
                    gpu_index=gpu.index,
                )
            span_s = t1 - t0
            if end_mj == start_mj and span_s >= _STUCK_PERIODS * COUNTER_UPDATE_PERIOD_S:
                raise NvmlDeviceError(
                    f"energy counter of GPU {gpu.index} ({gpu.name}) did not advance over {span_s:.2f} s although a "
                    "powered GPU always draws power: the counter is broken or virtualized; rerun without it",
                    function="nvmlDeviceGetTotalEnergyConsumption",
                    gpu_index=gpu.index,
                )
            energy_j = (end_mj - start_mj) / 1000.0
            record["counter_update_period_s"] = COUNTER_UPDATE_PERIOD_S
            if self.cross_check and sampled_j is not None:
                record["sampled_energy_j"] = sampled_j
                record["sampled_power_w"] = sampled_j / sampled_span_s if sampled_span_s > 0 else None
        else:
            if sampled_j is None:
                raise NvmlDeviceError(f"no power samples of GPU {gpu.index} ({gpu.name}) in this window")
            if gpu.counter_fallback_reason:
                record["counter_fallback_reason"] = gpu.counter_fallback_reason
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
        """Energy of the GPUs with the counter since ``start`` (J, ``{"gpu": ...}``; empty when none has it), the
        counters read now; for the power series (``bench.meters.series``). NVML calls are thread-safe. Raises
        MeterError outside a window, NvmlDeviceError when a counter cannot be read."""
        if not self._running:
            raise MeterError("NvmlMeter.energy_so_far_j() called outside a window")
        counted = [g for g in self._gpus if g.has_counter]
        if not counted:
            return {}
        return {"gpu": sum(self._read_counter(g) - self._start_mj[g.index][1] for g in counted) / 1000.0}

    def power_samples(self) -> dict[str, list[list[tuple[float, float]]]]:
        """The last window's power samples of the GPUs metered by sampling (no energy counter), one list per GPU of
        (seconds since the window opened, W); empty when every GPU has the counter. For the power series."""
        sampled = [g.index for g in self._gpus if not g.has_counter]
        lists = [list(self._last_samples[i]) for i in sampled if i in self._last_samples]
        return {"gpu": lists} if lists else {}

    def samples(self) -> dict[int, list[tuple[float, float]]]:
        """The last window's power samples per GPU index, as (seconds since the window opened, watts).

        Kept in memory only (not in results): for recording real traces to replay through the fake NVML in tests.
        """
        return {i: list(s) for i, s in self._last_samples.items()}

    def close(self) -> None:
        """Stop the sampler if a window is open and shut NVML down (reference-counted). Idempotent."""
        self._join_sampler()
        self._running = False
        if self._initialized:
            self._initialized = False
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()


class NvmlSamplingMeter(NvmlMeter):
    """NVML power sampled at ``sample_hz`` (default 10 Hz) on every GPU, whether it has the energy counter or not.

    A side meter for comparing methods over the primary ``NvmlMeter``'s window (``bench.meters.gpu_side_meters``):
    its energy is the trapezoidal integral of ``nvmlDeviceGetPowerUsage`` (mW), labelled
    ``measured:nvml-power-sampling``. It declares no window floor (only primary meters set one).
    """

    name = "nvml-sampling"

    def __init__(
        self,
        indices: list[int] | None = None,
        *,
        sample_hz: float = 10.0,
        nvml: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(indices, sample_hz=sample_hz, nvml=nvml, min_window_s=0.0, clock=clock)
        for gpu in self._gpus:
            gpu.has_counter = False
