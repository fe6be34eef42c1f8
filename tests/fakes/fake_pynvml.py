"""A fake ``pynvml`` (nvidia-ml-py) so the NVML meter can be tested on machines without an NVIDIA GPU.

Shaped like the real module: the same function names and signatures for what the kit calls, the same constants, and
the same error classes. ``NVMLError(code)`` returns the matching subclass (``NVMLError_NotSupported``,
``NVMLError_LibraryNotFound``, ...), built by the same rule pynvml uses, so ``except pynvml.NVMLError_NotSupported``
works the same against both. ``tests/unit/test_meters_nvml.py`` checks the names against the installed pynvml.

What it simulates:
- GPUs whose power follows a ``PowerTrace`` (constant, or piecewise-linear points replayed in the fake's time);
- the total-energy counter (mJ, Volta and newer) as the exact integral of that trace, optionally updated only every
  ``counter_period_s`` like real hardware (about 100 ms), or missing (``energy_counter=False``: pre-Volta GPUs raise
  ``NVMLError_NotSupported``);
- ``nvmlDeviceGetPowerUsage`` (mW), instantaneous or averaged over ``power_average_s`` (recent drivers average over
  1 s on A100/H100);
- NVML's init reference count (device calls before ``nvmlInit`` or after the last ``nvmlShutdown`` raise
  ``NVMLError_Uninitialized``, as the real library does);
- errors injected per function (``fake.errors`` for library-wide calls, ``gpu.errors`` per device), any NVML code;
- the compute processes on each GPU (``FakeGpu.processes``: pid and used memory, as pynvml's friendly objects);
- temperature (``FakeGpu.temperature_c``) and the current clocks event (throttle) reasons bitmask
  (``FakeGpu.clocks_event_reasons``, pynvml's ``nvmlClocksEventReason*`` bits), both settable during a test.

Install it where code does ``import pynvml``: ``monkeypatch.setitem(sys.modules, "pynvml", fake)``; or pass it to
``GpuMeter(library=fake)``.
"""

from __future__ import annotations

import bisect
import ctypes
import itertools
import math
import string
import threading
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- constants, as in pynvml ------------------------------------------------------------------------------------

NVML_SUCCESS = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3
NVML_TEMPERATURE_GPU = 0
NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
NVML_DEVICE_MIG_DISABLE = 0x0
NVML_DEVICE_MIG_ENABLE = 0x1
NVML_DEVICE_ARCH_PASCAL = 4
NVML_DEVICE_ARCH_VOLTA = 5
NVML_DEVICE_ARCH_AMPERE = 7
NVML_DEVICE_ARCH_HOPPER = 9
NVML_PERF_POLICY_POWER = 0
NVML_PERF_POLICY_THERMAL = 1
NVML_FI_DEV_POWER_AVERAGE = 185
NVML_FI_DEV_POWER_INSTANT = 186
NVML_POWER_SCOPE_GPU = 0
NVML_POWER_SCOPE_MODULE = 1
NVML_POWER_SCOPE_MEMORY = 2
NVML_VALUE_TYPE_UNSIGNED_INT = 1
nvmlTemperature_v1 = 0x1000008

#: pynvml's clocks event (formerly "throttle") reason bits, same names and values
nvmlClocksEventReasonGpuIdle = 0x1
nvmlClocksEventReasonApplicationsClocksSetting = 0x2
nvmlClocksEventReasonSwPowerCap = 0x4
nvmlClocksEventReasonHwSlowdown = 0x8
nvmlClocksEventReasonSyncBoost = 0x10
nvmlClocksEventReasonSwThermalSlowdown = 0x20
nvmlClocksEventReasonHwThermalSlowdown = 0x40
nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x80
nvmlClocksEventReasonDisplayClockSetting = 0x100
nvmlClocksEventReasonNone = 0x0
#: defined by nvidia-ml-py 13.615 only under the deprecated throttle names
nvmlClocksThrottleReasonBoardLimit = 0x200
nvmlClocksThrottleReasonReliability = 0x400


class c_nvmlValue_t(ctypes.Union):
    """pynvml's ``c_nvmlValue_t``, field for field."""

    _fields_ = [
        ("dVal", ctypes.c_double),
        ("uiVal", ctypes.c_uint),
        ("ulVal", ctypes.c_ulong),
        ("ullVal", ctypes.c_ulonglong),
        ("sllVal", ctypes.c_longlong),
        ("siVal", ctypes.c_int),
        ("usVal", ctypes.c_ushort),
    ]


class c_nvmlFieldValue_t(ctypes.Structure):
    """pynvml's ``c_nvmlFieldValue_t`` (what ``nvmlDeviceGetFieldValues`` returns an array of), field for field."""

    _fields_ = [
        ("fieldId", ctypes.c_uint32),
        ("scopeId", ctypes.c_uint32),
        ("timestamp", ctypes.c_int64),
        ("latencyUsec", ctypes.c_int64),
        ("valueType", ctypes.c_uint),
        ("nvmlReturn", ctypes.c_uint),
        ("value", c_nvmlValue_t),
    ]


class c_nvmlViolationTime_t(ctypes.Structure):
    """pynvml's ``c_nvmlViolationTime_t``: ``referenceTime`` (CPU timestamp, us), ``violationTime`` (ns)."""

    _fields_ = [("referenceTime", ctypes.c_ulonglong), ("violationTime", ctypes.c_ulonglong)]


#: Every NVML return code pynvml 13.x knows (name -> value), from which the error classes are generated.
ERROR_CODES: dict[str, int] = {
    "NVML_ERROR_UNINITIALIZED": 1,
    "NVML_ERROR_INVALID_ARGUMENT": 2,
    "NVML_ERROR_NOT_SUPPORTED": 3,
    "NVML_ERROR_NO_PERMISSION": 4,
    "NVML_ERROR_ALREADY_INITIALIZED": 5,
    "NVML_ERROR_NOT_FOUND": 6,
    "NVML_ERROR_INSUFFICIENT_SIZE": 7,
    "NVML_ERROR_INSUFFICIENT_POWER": 8,
    "NVML_ERROR_DRIVER_NOT_LOADED": 9,
    "NVML_ERROR_TIMEOUT": 10,
    "NVML_ERROR_IRQ_ISSUE": 11,
    "NVML_ERROR_LIBRARY_NOT_FOUND": 12,
    "NVML_ERROR_FUNCTION_NOT_FOUND": 13,
    "NVML_ERROR_CORRUPTED_INFOROM": 14,
    "NVML_ERROR_GPU_IS_LOST": 15,
    "NVML_ERROR_RESET_REQUIRED": 16,
    "NVML_ERROR_OPERATING_SYSTEM": 17,
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": 18,
    "NVML_ERROR_IN_USE": 19,
    "NVML_ERROR_MEMORY": 20,
    "NVML_ERROR_NO_DATA": 21,
    "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED": 22,
    "NVML_ERROR_INSUFFICIENT_RESOURCES": 23,
    "NVML_ERROR_FREQ_NOT_SUPPORTED": 24,
    "NVML_ERROR_ARGUMENT_VERSION_MISMATCH": 25,
    "NVML_ERROR_DEPRECATED": 26,
    "NVML_ERROR_NOT_READY": 27,
    "NVML_ERROR_GPU_NOT_FOUND": 28,
    "NVML_ERROR_INVALID_STATE": 29,
    "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED": 30,
    "NVML_ERROR_UNKNOWN": 999,
}
globals().update(ERROR_CODES)

_ERROR_STRINGS = {
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    5: "Already Initialized",
    6: "Not Found",
    9: "Driver Not Loaded",
    10: "Timeout",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    15: "GPU is lost",
    16: "GPU requires restart",
    18: "RM has detected an NVML/RM version mismatch.",
    999: "Unknown Error",
}


class NVMLError(Exception):
    """Base NVML error; ``NVMLError(code)`` returns the subclass for ``code`` (as pynvml does)."""

    _valClassMapping: dict[int, type[NVMLError]] = {}  # noqa: RUF012  (pynvml's own attribute name and shape)
    value: int

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return _ERROR_STRINGS.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NVMLError) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _error_class_name(constant: str) -> str:
    """NVML_ERROR_ALREADY_INITIALIZED -> NVMLError_AlreadyInitialized (pynvml's rule)."""
    return "NVMLError_" + string.capwords(constant.replace("NVML_ERROR_", ""), "_").replace("_", "")


def _make_error_classes() -> dict[str, type[NVMLError]]:
    classes: dict[str, type[NVMLError]] = {}
    for constant, code in ERROR_CODES.items():

        def new(cls: type[NVMLError], *args: object, _code: int = code) -> NVMLError:
            return NVMLError.__new__(cls, _code)

        cls = type(_error_class_name(constant), (NVMLError,), {"__new__": new, "__module__": __name__})
        NVMLError._valClassMapping[code] = cls
        classes[cls.__name__] = cls
    return classes


ERROR_CLASSES = _make_error_classes()
globals().update(ERROR_CLASSES)


# --- power traces -----------------------------------------------------------------------------------------------


class PowerTrace:
    """Power over time as piecewise-linear points ``(t_s, power_w)`` (constant before the first and after the last).

    Two points at the same time make a step. ``energy_j(a, b)`` is the exact integral, which is what a perfect energy
    counter would report and what the tests compare the meter's numbers against.
    """

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        if not points:
            raise ValueError("a power trace needs at least one point")
        pts = [(float(t), float(p)) for t, p in points]
        if any(b[0] < a[0] for a, b in itertools.pairwise(pts)):
            raise ValueError("power trace times must not decrease")
        if any(p < 0 for _, p in pts):
            raise ValueError("power cannot be negative")
        self.points = pts
        self._times = [t for t, _ in pts]

    @classmethod
    def constant(cls, power_w: float) -> PowerTrace:
        return cls([(0.0, power_w)])

    def power_w(self, t: float) -> float:
        """Power at time ``t`` (after a step, the new value)."""
        pts = self.points
        i = bisect.bisect_right(self._times, t)  # points at or before t; at a step both sides count, so "after"
        if i == 0:
            return pts[0][1]
        if i == len(pts):
            return pts[-1][1]
        (ta, pa), (tb, pb) = pts[i - 1], pts[i]  # ta <= t < tb, so tb > ta
        return pa + (pb - pa) * (t - ta) / (tb - ta)

    def energy_j(self, a: float, b: float) -> float:
        """Exact integral of the trace from ``a`` to ``b`` seconds, in joules."""
        if b <= a:
            return 0.0
        pts = self.points
        total = 0.0
        t_first, p_first = pts[0]
        if a < t_first:
            total += p_first * (min(b, t_first) - a)
        t_last, p_last = pts[-1]
        if b > t_last:
            total += p_last * (b - max(a, t_last))
        for (ta, pa), (tb, pb) in itertools.pairwise(pts):
            lo, hi = max(a, ta), min(b, tb)
            if hi <= lo:
                continue
            slope = (pb - pa) / (tb - ta)
            total += (pa + slope * (lo - ta) + pa + slope * (hi - ta)) / 2.0 * (hi - lo)
        return total

    def with_step(self, t: float, power_w: float) -> PowerTrace:
        """This trace up to ``t``, then constant ``power_w`` (a step at ``t``)."""
        kept = [(tt, p) for tt, p in self.points if tt <= t]
        return PowerTrace([*kept, (t, self.power_w(t)), (t, power_w)])

    def shifted(self, dt_s: float) -> PowerTrace:
        return PowerTrace([(t + dt_s, p) for t, p in self.points])


# --- devices ----------------------------------------------------------------------------------------------------


@dataclass
class FakeGpu:
    """One simulated GPU. Mutate ``trace`` / ``errors`` during a test to change what the next calls see."""

    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str | None = None  # default: GPU-<index>-fake...
    power_w: float = 60.0  # initial constant power (ignored when ``trace`` is given)
    trace: PowerTrace | None = None
    power_limit_w: float | None = 400.0  # None: the limit query is not supported
    memory_total_bytes: int = 80 * 10**9
    energy_counter: bool = True  # False: pre-Volta, nvmlDeviceGetTotalEnergyConsumption -> NotSupported
    power_reading: bool = True  # False: nvmlDeviceGetPowerUsage and the power fields -> NotSupported
    counter_period_s: float = 0.0  # 0: counter continuous; 0.1: updated every 100 ms like current hardware
    counter_base_mj: int = 4_200_000_000  # counters count from driver load, so they start far from zero
    power_average_s: float = 0.0  # 0: instantaneous; 1.0: mean over the last second (A100/H100, drivers >= 530)
    sm_clock_mhz: int | None = 1410
    mem_clock_mhz: int | None = 1593
    temperature_c: int | None = 45  # None: the query is not supported
    clocks_event_reasons: int | None = 0  # bitmask of nvmlClocksEventReason*; None: not supported
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used GPU memory in bytes or None)
    architecture: int = NVML_DEVICE_ARCH_AMPERE  # nvmlDeviceGetArchitecture (Zeus: counter from Volta on)
    instant_power_field: bool = True  # False: NVML_FI_DEV_POWER_INSTANT answers NOT_SUPPORTED (older drivers)
    c2c_module: bool = False  # Grace Hopper: nvmlDeviceGetC2cModeInfoV says C2C; fields read in module scope
    module_extra_w: float = 0.0  # Grace CPU + memory power that module-scope readings and the counter add
    mig_mode: int | None = NVML_DEVICE_MIG_DISABLE  # None: nvmlDeviceGetMigMode NOT_SUPPORTED (no MIG on the GPU)
    persistence_mode: int = NVML_FEATURE_ENABLED
    power_limit_range_w: tuple[float, float] = (100.0, 400.0)
    pci_bus_id: str | None = None  # default 00000000:<0x18 + index>:00.0
    violation_ns: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})  # NVML_PERF_POLICY_* -> ns
    counter_stuck: bool = False  # the counter never moves (seen on virtualized GPUs)
    counter_scale: float = 1.0  # the counter counts this many times the true energy (a broken counter)
    no_access: bool = False  # nvmlDeviceGetHandleByIndex -> NO_PERMISSION (cgroups, Slurm, containers)
    errors: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code raised on every call
    # function name -> how many more calls raise its ``errors`` code (absent: every call); e.g. NOT_READY twice
    errors_left: dict[str, int] = field(default_factory=dict)
    # filled by the fake:
    index: int = -1
    power_reads: list[tuple[float, float]] = field(default_factory=list)  # (t_s, W as returned)
    counter_reads: list[tuple[float, int]] = field(default_factory=list)  # (t_s, mJ as returned)
    # --- control (issue 26): NVML's setters need root (CAP_SYS_ADMIN); without it they raise NO_PERMISSION ---
    control_permission: bool = False  # True: the process may set the power limit and lock clocks (root, as NVML asks)
    default_power_limit_w: float | None = None  # nvmlDeviceGetPowerManagementDefaultLimit; default: power_limit_w
    locked_clocks_mhz: tuple[int, int] | None = None  # the graphics clock lock in force (None: not locked)
    supported_graphics_clocks_mhz: list[int] | None = None  # default: 210 MHz up to sm_clock_mhz by 15 MHz
    control_log: list[tuple[str, Any]] = field(default_factory=list)  # (setter, value) in call order

    def __post_init__(self) -> None:
        if self.trace is None:
            self.trace = PowerTrace.constant(self.power_w)
        if self.default_power_limit_w is None:
            self.default_power_limit_w = self.power_limit_w
        if self.supported_graphics_clocks_mhz is None:
            self.supported_graphics_clocks_mhz = list(range(210, (self.sm_clock_mhz or 1410) + 1, 15))


def _raise_injected(errors: dict[str, int], left: dict[str, int], function: str) -> None:
    """Raise the error injected for ``function``; with a count in ``left``, only that many more times."""
    code = errors[function]
    if function in left:
        left[function] -= 1
        if left[function] <= 0:
            del left[function]
            del errors[function]
    raise NVMLError(code)


@dataclass(frozen=True)
class FakeHandle:
    """Stands in for pynvml's ``c_nvmlDevice_t`` pointer; only passed back to the library."""

    index: int


@dataclass
class FakeProcessInfo:
    """Shaped like pynvml's friendly object for ``c_nvmlProcessInfo_v3_t`` (``usedGpuMemory`` None where NVML does
    not know it, as pynvml maps NVML_VALUE_NOT_AVAILABLE)."""

    pid: int
    usedGpuMemory: int | None
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


@dataclass
class FakeMemory:
    total: int
    free: int
    used: int


class FakePynvml(types.ModuleType):
    """A module object shaped like ``pynvml`` over a list of ``FakeGpu``.

    ``clock`` (default ``time.perf_counter``, the clock the meter uses too) drives counters and traces; the fake's
    time ``now()`` is seconds since it was created, and traces are expressed in that time.
    """

    NVMLError = NVMLError
    NVML_SUCCESS = NVML_SUCCESS
    NVML_CLOCK_GRAPHICS = NVML_CLOCK_GRAPHICS
    NVML_CLOCK_SM = NVML_CLOCK_SM
    NVML_CLOCK_MEM = NVML_CLOCK_MEM
    NVML_CLOCK_VIDEO = NVML_CLOCK_VIDEO
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    nvmlClocksEventReasonGpuIdle = nvmlClocksEventReasonGpuIdle
    nvmlClocksEventReasonApplicationsClocksSetting = nvmlClocksEventReasonApplicationsClocksSetting
    nvmlClocksEventReasonSwPowerCap = nvmlClocksEventReasonSwPowerCap
    nvmlClocksEventReasonHwSlowdown = nvmlClocksEventReasonHwSlowdown
    nvmlClocksEventReasonSyncBoost = nvmlClocksEventReasonSyncBoost
    nvmlClocksEventReasonSwThermalSlowdown = nvmlClocksEventReasonSwThermalSlowdown
    nvmlClocksEventReasonHwThermalSlowdown = nvmlClocksEventReasonHwThermalSlowdown
    nvmlClocksEventReasonHwPowerBrakeSlowdown = nvmlClocksEventReasonHwPowerBrakeSlowdown
    nvmlClocksEventReasonDisplayClockSetting = nvmlClocksEventReasonDisplayClockSetting
    nvmlClocksEventReasonNone = nvmlClocksEventReasonNone

    def __init__(
        self,
        gpus: Sequence[FakeGpu] = (),
        *,
        driver: str = "550.54.15",
        clock: Callable[[], float] = time.perf_counter,
        init_error: int | None = None,
    ) -> None:
        super().__init__("pynvml", "fake pynvml for tests (tests/fakes/fake_pynvml.py)")
        self.gpus = list(gpus)
        for i, gpu in enumerate(self.gpus):
            gpu.index = i
            if gpu.uuid is None:
                gpu.uuid = f"GPU-{i:08d}-fake-4a5b-8c9d-{i:012x}"
            if gpu.pci_bus_id is None:
                gpu.pci_bus_id = f"00000000:{0x18 + i:02X}:00.0"
        self.driver = driver
        self.clock = clock
        self.t0 = clock()
        self.init_error = init_error  # raised by nvmlInit (e.g. NVML_ERROR_LIBRARY_NOT_FOUND)
        self.errors: dict[str, int] = {}
        self.errors_left: dict[str, int] = {}  # as FakeGpu.errors_left, for library-wide calls (nvmlInit too)
        self.init_count = 0  # NVML's reference count
        self.init_calls = 0
        self.calls: list[tuple[str, int | None]] = []
        self._lock = threading.Lock()
        for name, value in ERROR_CODES.items():
            setattr(self, name, value)
        for name, value in list(globals().items()):  # the constants, as module attributes of pynvml
            if name.startswith(("NVML_", "nvmlClocks", "nvmlTemperature")) and isinstance(value, int):
                setattr(self, name, value)
        for name, cls in ERROR_CLASSES.items():
            setattr(self, name, cls)

    # --- helpers for tests ---------------------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the fake was created, in the clock the traces use."""
        return self.clock() - self.t0

    def replay(self, index: int, points: Sequence[tuple[float, float]], *, start_s: float | None = None) -> None:
        """Make GPU ``index`` follow ``points`` (times relative to ``start_s``, default now)."""
        start = self.now() if start_s is None else start_s
        self.gpus[index].trace = PowerTrace(points).shifted(start)

    def set_power(self, index: int, power_w: float) -> None:
        """Step GPU ``index`` to ``power_w`` now."""
        gpu = self.gpus[index]
        assert gpu.trace is not None
        gpu.trace = gpu.trace.with_step(self.now(), power_w)

    def true_energy_j(self, index: int, a_s: float, b_s: float) -> float:
        """The exact energy GPU ``index`` drew between fake times ``a_s`` and ``b_s``."""
        trace = self.gpus[index].trace
        assert trace is not None
        return trace.energy_j(a_s, b_s)

    # --- internals -----------------------------------------------------------------------------------------------

    def _enter(self, function: str, handle: FakeHandle | None = None, *, needs_init: bool = True) -> FakeGpu | None:
        with self._lock:
            self.calls.append((function, handle.index if handle is not None else None))
        if function in self.errors:
            _raise_injected(self.errors, self.errors_left, function)
        if needs_init and self.init_count <= 0:
            raise NVMLError(ERROR_CODES["NVML_ERROR_UNINITIALIZED"])
        if handle is None:
            return None
        if not isinstance(handle, FakeHandle) or not 0 <= handle.index < len(self.gpus):
            raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
        gpu = self.gpus[handle.index]
        if function in gpu.errors:
            _raise_injected(gpu.errors, gpu.errors_left, function)
        return gpu

    # --- library ---------------------------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.nvmlInitWithFlags(0)

    def nvmlInitWithFlags(self, flags: int) -> None:
        self._enter("nvmlInit", needs_init=False)
        self.init_calls += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.init_count -= 1

    def nvmlErrorString(self, result: int) -> str:
        return _ERROR_STRINGS.get(result, "Unknown Error")

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def _nvmlGetFunctionPointer(self, name: str) -> Callable[..., Any]:
        """pynvml's lookup of a C function (Zeus checks it exists to tell the official binding from others)."""
        function = getattr(self, name, None)
        if not callable(function):
            raise NVMLError(ERROR_CODES["NVML_ERROR_FUNCTION_NOT_FOUND"])
        return function

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= int(index) < len(self.gpus):
            raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
        if self.gpus[int(index)].no_access:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NO_PERMISSION"])
        return FakeHandle(int(index))

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> FakeHandle:
        self._enter("nvmlDeviceGetHandleByUUID")
        wanted = uuid.decode() if isinstance(uuid, bytes) else uuid
        for gpu in self.gpus:
            if gpu.uuid == wanted:
                return FakeHandle(gpu.index)
        raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_FOUND"])

    # --- device queries --------------------------------------------------------------------------------------------

    def nvmlDeviceGetIndex(self, handle: FakeHandle) -> int:
        gpu = self._enter("nvmlDeviceGetIndex", handle)
        assert gpu is not None
        return gpu.index

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        gpu = self._enter("nvmlDeviceGetName", handle)
        assert gpu is not None
        return gpu.name  # pynvml >= 11.5 decodes names to str

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> bytes:
        gpu = self._enter("nvmlDeviceGetUUID", handle)
        assert gpu is not None and gpu.uuid is not None
        return gpu.uuid.encode()  # pynvml 13.x returns the UUID as bytes (no str conversion on this one)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: int | None = None) -> FakeMemory:
        gpu = self._enter("nvmlDeviceGetMemoryInfo", handle)
        assert gpu is not None
        return FakeMemory(total=gpu.memory_total_bytes, free=gpu.memory_total_bytes, used=0)

    def _limit_mw(self, function: str, handle: FakeHandle) -> int:
        gpu = self._enter(function, handle)
        assert gpu is not None
        if gpu.power_limit_w is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return round(gpu.power_limit_w * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._limit_mw("nvmlDeviceGetEnforcedPowerLimit", handle)

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeHandle) -> int:
        return self._limit_mw("nvmlDeviceGetPowerManagementLimit", handle)

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, type: int) -> int:
        gpu = self._enter("nvmlDeviceGetClockInfo", handle)
        assert gpu is not None
        value = {NVML_CLOCK_SM: gpu.sm_clock_mhz, NVML_CLOCK_GRAPHICS: gpu.sm_clock_mhz}.get(type)
        if type == NVML_CLOCK_MEM:
            value = gpu.mem_clock_mhz
        if value is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return int(value)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[FakeProcessInfo]:
        gpu = self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        assert gpu is not None
        return [FakeProcessInfo(pid=pid, usedGpuMemory=memory) for pid, memory in gpu.processes]

    def nvmlDeviceGetTemperatureV(self, handle: FakeHandle, sensor: int, version: int = nvmlTemperature_v1) -> int:
        if version != nvmlTemperature_v1:
            raise NVMLError(ERROR_CODES["NVML_ERROR_ARGUMENT_VERSION_MISMATCH"])
        return self.nvmlDeviceGetTemperature(handle, sensor, _name="nvmlDeviceGetTemperatureV")

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int, _name: str = "nvmlDeviceGetTemperature") -> int:
        """Deprecated in nvidia-ml-py 13 (removed in CUDA 14): the kit calls ``nvmlDeviceGetTemperatureV``."""
        gpu = self._enter(_name, handle)
        assert gpu is not None
        if gpu.temperature_c is None or sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return int(gpu.temperature_c)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeHandle) -> int:
        gpu = self._enter("nvmlDeviceGetCurrentClocksEventReasons", handle)
        assert gpu is not None
        if gpu.clocks_event_reasons is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return int(gpu.clocks_event_reasons)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: FakeHandle) -> int:
        """The pre-12.2 name of ``nvmlDeviceGetCurrentClocksEventReasons`` (same bits)."""
        gpu = self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        assert gpu is not None
        if gpu.clocks_event_reasons is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return int(gpu.clocks_event_reasons)

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        """Power in milliwatts (an integer, as NVML reports it)."""
        gpu = self._enter("nvmlDeviceGetPowerUsage", handle)
        assert gpu is not None and gpu.trace is not None
        if not gpu.power_reading:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        t = self.now()
        mw = round(self._power_at(gpu, t, average=True, module=False) * 1000)
        with self._lock:
            gpu.power_reads.append((t, mw / 1000))
        return mw

    def _power_at(self, gpu: FakeGpu, t: float, *, average: bool, module: bool) -> float:
        assert gpu.trace is not None
        if average and gpu.power_average_s > 0:
            power = gpu.trace.energy_j(t - gpu.power_average_s, t) / gpu.power_average_s
        else:
            power = gpu.trace.power_w(t)
        return power + (gpu.module_extra_w if module else 0.0)

    def nvmlDeviceGetFieldValues(self, handle: FakeHandle, fieldIds: Sequence[Any]) -> Any:
        """An array of ``c_nvmlFieldValue_t``, each with its own ``nvmlReturn`` (as NVML answers per field): power
        fields in mW (``uiVal``); the instant field NOT_SUPPORTED where the board lacks it, the module scope
        NOT_SUPPORTED off Grace Hopper."""
        gpu = self._enter("nvmlDeviceGetFieldValues", handle)
        assert gpu is not None
        values = (c_nvmlFieldValue_t * len(fieldIds))()
        t = self.now()
        for i, spec in enumerate(fieldIds):
            field_id, scope = spec if isinstance(spec, tuple) else (spec, 0)
            value = values[i]
            value.fieldId, value.scopeId, value.timestamp = field_id, scope, int(time.time() * 1e6)
            value.valueType = NVML_VALUE_TYPE_UNSIGNED_INT
            known = field_id in (NVML_FI_DEV_POWER_INSTANT, NVML_FI_DEV_POWER_AVERAGE)
            supported = known and gpu.power_reading
            supported = supported and (field_id != NVML_FI_DEV_POWER_INSTANT or gpu.instant_power_field)
            supported = supported and (
                scope == NVML_POWER_SCOPE_GPU or (scope == NVML_POWER_SCOPE_MODULE and gpu.c2c_module)
            )
            if not supported:
                value.nvmlReturn = ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"]
                continue
            average = field_id == NVML_FI_DEV_POWER_AVERAGE
            power = self._power_at(gpu, t, average=average, module=scope == NVML_POWER_SCOPE_MODULE)
            value.nvmlReturn = NVML_SUCCESS
            value.value.uiVal = round(power * 1000)
            with self._lock:
                gpu.power_reads.append((t, round(power * 1000) / 1000))
        return values

    def nvmlDeviceGetC2cModeInfoV(self, handle: FakeHandle) -> Any:
        """Grace Hopper's chip-to-chip link (``isC2cEnabled``); NOT_SUPPORTED on other GPUs."""
        gpu = self._enter("nvmlDeviceGetC2cModeInfoV", handle)
        assert gpu is not None
        if not gpu.c2c_module:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return types.SimpleNamespace(isC2cEnabled=1)

    def nvmlDeviceGetArchitecture(self, handle: FakeHandle) -> int:
        gpu = self._enter("nvmlDeviceGetArchitecture", handle)
        assert gpu is not None
        return gpu.architecture

    def nvmlDeviceGetPersistenceMode(self, handle: FakeHandle) -> int:
        gpu = self._enter("nvmlDeviceGetPersistenceMode", handle)
        assert gpu is not None
        return gpu.persistence_mode

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: FakeHandle) -> list[int]:
        gpu = self._enter("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        assert gpu is not None
        return [round(gpu.power_limit_range_w[0] * 1000), round(gpu.power_limit_range_w[1] * 1000)]

    def nvmlDeviceGetMigMode(self, handle: FakeHandle) -> list[int]:
        """[current, pending] MIG mode; NOT_SUPPORTED on GPUs without MIG."""
        gpu = self._enter("nvmlDeviceGetMigMode", handle)
        assert gpu is not None
        if gpu.mig_mode is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return [gpu.mig_mode, gpu.mig_mode]

    def nvmlDeviceGetViolationStatus(self, handle: FakeHandle, perfPolicyType: int) -> c_nvmlViolationTime_t:
        gpu = self._enter("nvmlDeviceGetViolationStatus", handle)
        assert gpu is not None
        if perfPolicyType not in gpu.violation_ns:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return c_nvmlViolationTime_t(int(time.time() * 1e6), gpu.violation_ns[perfPolicyType])

    def nvmlDeviceGetPciInfo(self, handle: FakeHandle) -> Any:
        """Like pynvml's ``c_nvmlPciInfo_t`` where the kit reads it: ``busId`` as bytes."""
        gpu = self._enter("nvmlDeviceGetPciInfo", handle)
        assert gpu is not None and gpu.pci_bus_id is not None
        return types.SimpleNamespace(busId=gpu.pci_bus_id.encode(), busIdLegacy=gpu.pci_bus_id[4:].encode())

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        """Energy since driver load in millijoules (an integer), updated every ``counter_period_s``."""
        gpu = self._enter("nvmlDeviceGetTotalEnergyConsumption", handle)
        assert gpu is not None and gpu.trace is not None
        if not gpu.energy_counter:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        t = self.now()
        t_counted = math.floor(t / gpu.counter_period_s) * gpu.counter_period_s if gpu.counter_period_s > 0 else t
        true_j = gpu.trace.energy_j(0.0, t_counted) + (gpu.module_extra_w * t_counted if gpu.c2c_module else 0.0)
        mj = gpu.counter_base_mj + (0 if gpu.counter_stuck else math.floor(true_j * 1000 * gpu.counter_scale))
        with self._lock:
            gpu.counter_reads.append((t, mj))
        return mj

    # --- setters (issue 26) ------------------------------------------------------------------------------------

    def _control(self, function: str, handle: FakeHandle) -> FakeGpu:
        """A setter's entry: NO_PERMISSION unless the GPU grants control (NVML's setters need root)."""
        gpu = self._enter(function, handle)
        assert gpu is not None
        if not gpu.control_permission:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NO_PERMISSION"])
        return gpu

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: FakeHandle) -> int:
        """The board's default power limit (mW)."""
        gpu = self._enter("nvmlDeviceGetPowerManagementDefaultLimit", handle)
        assert gpu is not None
        if gpu.default_power_limit_w is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return round(gpu.default_power_limit_w * 1000)

    def nvmlDeviceSetPowerManagementLimit(self, handle: FakeHandle, limit: int) -> None:
        """As NVML: root only (NO_PERMISSION), in mW, INVALID_ARGUMENT outside the constraints, NOT_SUPPORTED where
        the board has no settable limit."""
        gpu = self._control("nvmlDeviceSetPowerManagementLimit", handle)
        if gpu.power_limit_w is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        low, high = (round(w * 1000) for w in gpu.power_limit_range_w)
        if not low <= int(limit) <= high:
            raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
        gpu.power_limit_w = int(limit) / 1000.0
        gpu.control_log.append(("power_limit_mw", int(limit)))

    def nvmlDeviceGetSupportedMemoryClocks(self, handle: FakeHandle) -> list[int]:
        gpu = self._enter("nvmlDeviceGetSupportedMemoryClocks", handle)
        assert gpu is not None
        if gpu.mem_clock_mhz is None:
            raise NVMLError(ERROR_CODES["NVML_ERROR_NOT_SUPPORTED"])
        return [int(gpu.mem_clock_mhz)]

    def nvmlDeviceGetSupportedGraphicsClocks(self, handle: FakeHandle, memoryClockMHz: int) -> list[int]:
        """Graphics clocks (MHz) supported at ``memoryClockMHz``, highest first as NVML lists them; INVALID_ARGUMENT for
        a memory clock the board does not support."""
        gpu = self._enter("nvmlDeviceGetSupportedGraphicsClocks", handle)
        assert gpu is not None
        if int(memoryClockMHz) != gpu.mem_clock_mhz:
            raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
        return sorted(gpu.supported_graphics_clocks_mhz or [], reverse=True)

    def nvmlDeviceSetGpuLockedClocks(self, handle: FakeHandle, minGpuClockMHz: int, maxGpuClockMHz: int) -> None:
        """As NVML: root only; INVALID_ARGUMENT for min > max or a clock outside the supported range. The SM clock then
        reads the lock's upper bound."""
        gpu = self._control("nvmlDeviceSetGpuLockedClocks", handle)
        clocks = gpu.supported_graphics_clocks_mhz or []
        low, high = int(minGpuClockMHz), int(maxGpuClockMHz)
        if low > high or not clocks or low < min(clocks) or high > max(clocks):
            raise NVMLError(ERROR_CODES["NVML_ERROR_INVALID_ARGUMENT"])
        gpu.locked_clocks_mhz = (low, high)
        gpu.sm_clock_mhz = high
        gpu.control_log.append(("locked_clocks_mhz", (low, high)))

    def nvmlDeviceResetGpuLockedClocks(self, handle: FakeHandle) -> None:
        gpu = self._control("nvmlDeviceResetGpuLockedClocks", handle)
        gpu.locked_clocks_mhz = None
        gpu.sm_clock_mhz = max(gpu.supported_graphics_clocks_mhz or [gpu.sm_clock_mhz or 0])
        gpu.control_log.append(("locked_clocks_mhz", None))


def fake_gpus(count: int, **kwargs: Any) -> list[FakeGpu]:
    """``count`` identical fake GPUs (keyword arguments as ``FakeGpu``'s)."""
    return [FakeGpu(**kwargs) for _ in range(count)]
