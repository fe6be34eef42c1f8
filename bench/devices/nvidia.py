"""NVIDIA GPUs: through Zeus (``zeus.device.gpu.nvidia.NVIDIAGPU``, one GPU at a time by NVML index) and, for what
Zeus does not expose, through ``pynvml`` (nvidia-ml-py). The one file of ``bench/`` that imports pynvml.

Through Zeus: the energy counter (``get_total_energy_consumption``, mJ since driver load, Volta and newer), instant
power (field ``NVML_FI_DEV_POWER_INSTANT``, mW, in the scope Zeus resolves: the module on Grace Hopper, where
``nvmlDeviceGetC2cModeInfoV`` reports C2C), the power limit and its range (mW), temperature
(``nvmlDeviceGetTemperatureV``, C), persistence mode, the name, and the setters of issue 26. Through pynvml (absent
from Zeus): device count and driver, UUID and PCI bus id (to map CUDA indices), memory size, enforced power limit, MIG
mode, clocks, clocks-event reasons, violation counters, compute processes, and ``nvmlDeviceGetPowerUsage`` where the
instant field is unsupported (NVML's documentation: a 1 s average on Ampere except GA100, and newer, e.g. H100, L4;
A100 (GA100) reports instantaneous power). ``load_library`` points Zeus at the binding the kit loaded, so both call the
same library (and tests can inject ``tests/fakes/fake_pynvml.py``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from bench.devices.base import Accelerator, DeviceError, DeviceFacts, DeviceUnavailableError, Opened, released_on_error

COUNTER_METHOD = "measured:nvml-energy-counter"
SAMPLING_METHOD = "measured:nvml-power-sampling"

#: NVML's clocks event ("throttle") reason bits by the name the results store; nvidia-ml-py 13.615 defines 0x200 and
#: 0x400 only under the older names (``nvmlClocksThrottleReasonBoardLimit``, ``...Reliability``).
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
    0x200: "board_limit",
    0x400: "reliability",
}


def clocks_event_reason_names(mask: int) -> list[str]:
    """The names of the bits set in a clocks event reasons ``mask`` (unknown bits as ``bit_0x...``)."""
    unknown = mask & ~sum(CLOCKS_EVENT_REASONS)
    return [name for bit, name in CLOCKS_EVENT_REASONS.items() if mask & bit] + [
        f"bit_{1 << b:#x}" for b in range(unknown.bit_length()) if unknown >> b & 1
    ]


#: What to do about an NVML error, by pynvml's error class name less ``NVMLError_`` (the real module's and the fake's).
_HINTS = {
    "LibraryNotFound": (
        "libnvidia-ml.so.1 was not found: no NVIDIA driver is installed here, or the container was started without "
        "GPU access (docker run --gpus all, podman run --device nvidia.com/gpu=all, apptainer exec --nv)"
    ),
    "DriverNotLoaded": "the NVIDIA kernel driver is not loaded (nvidia-smi fails too); run on a GPU node",
    "LibRmVersionMismatch": (
        "the NVML library and the kernel driver differ in version (driver upgraded without a reboot, or the "
        "container's libnvidia-ml does not match the host driver)"
    ),
    "FunctionNotFound": "the installed driver is too old for this NVML call",
    "NoPermission": "this process may not open this GPU (cgroups, Slurm or the container hide it)",
    "GpuIsLost": (
        "the GPU stopped responding or fell off the bus; this window's energy is lost. Check `nvidia-smi` and the "
        "kernel log (Xid errors), then rerun the cell"
    ),
    "ResetRequired": "the GPU needs a reset (nvidia-smi -r) before it can be read",
    "Uninitialized": "NVML was used before nvmlInit or after nvmlShutdown (a bug in the kit; please report)",
    "NotSupported": "this GPU or driver does not support the query",
    "Timeout": "NVML timed out talking to the GPU",
    "InsufficientPower": "the GPU's external power cables are not connected properly",
    "NotReady": (
        "the GPU is not ready yet: the driver is still initializing it (enabling persistence mode, "
        "`nvidia-smi -pm 1`, keeps it initialized). The kit retried with a short backoff; rerun in a minute"
    ),
}
#: What the meter may do about an error (``DeviceError.kind``); any other is ``other``.
_KINDS = {"LibraryNotFound": "unavailable", "DriverNotLoaded": "unavailable", "LibRmVersionMismatch": "unavailable",
          "NotSupported": "unsupported", "FunctionNotFound": "unsupported", "NotReady": "not_ready",
          "NoPermission": "permission", "GpuIsLost": "lost"}  # fmt: skip
#: NVML_ERROR_NOT_READY: the call is retried after each of these pauses (s, 3.75 s in all), then raised.
NOT_READY_BACKOFF_S: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)


def load_library(nvml: Any = None) -> Any:
    """The pynvml module (``nvml`` when given), checked to be NVIDIA's official binding (Zeus's own test:
    ``_nvmlGetFunctionPointer``), with Zeus's NVIDIA module pointed at it. Raises DeviceUnavailableError."""
    try:
        if nvml is None:
            import pynvml as nvml  # type: ignore[import-not-found]
    except ImportError as exc:
        raise DeviceUnavailableError(f"nvidia-ml-py not installed (pip install nvidia-ml-py): {exc}") from exc
    try:
        import zeus.device.gpu.nvidia as zeus_nvidia
    except ImportError as exc:
        raise DeviceUnavailableError(f"zeus not installed (pip install zeus==0.16.0): {exc}") from exc
    if not hasattr(nvml, "_nvmlGetFunctionPointer"):
        raise DeviceUnavailableError(
            "the `pynvml` module installed is not NVIDIA's official binding: pip uninstall pynvml, then pip install "
            "nvidia-ml-py"
        )
    zeus_nvidia.pynvml = nvml
    return nvml


def call(lib: Any, what: str, function: Callable[[], Any], label: str | None = None) -> Any:
    """``function()`` (an NVML call, direct or through Zeus), retried while NVML answers NOT_READY; failures become
    DeviceError naming ``what`` on the device ``label`` and what to do."""
    for pause_s in (*NOT_READY_BACKOFF_S, None):
        try:
            return function()
        except Exception as exc:
            # the pynvml error: itself, or the cause of the Zeus error wrapping it
            error = next((e for e in (exc, exc.__cause__) if isinstance(e, lib.NVMLError)), None)
            name = type(error or exc).__name__
            if pause_s is not None and name == "NVMLError_NotReady":
                time.sleep(pause_s)
                continue
            short = name.removeprefix("NVMLError_")
            kind, hint = _KINDS.get(short, "other"), _HINTS.get(short)
            where = f"{what} on {label}" if label else what
            message = f"NVML {where} failed: {name}: {error or exc}" + (f". {hint}" if hint else "")
            kind = "unavailable" if what == "nvmlInit" else kind  # a failed init: no usable NVML here
            error_class = DeviceUnavailableError if kind == "unavailable" else DeviceError
            raise error_class(message, kind=kind, device=label, call=what, code=getattr(error, "value", None)) from exc
    raise AssertionError("unreachable")


def _text(value: object) -> str:
    """pynvml returns str for some queries and bytes for others (UUID, PCI bus id in 13.x)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _start(library: Any) -> tuple[Any, str | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """NVML initialized: the library, the driver version, every GPU NVML lists (``index``, ``handle``, ``uuid``,
    ``pci_bus_id``) and those this process may not open (``index``, ``reason``). Shut down again if it fails."""
    lib = load_library(library)
    call(lib, "nvmlInit", lib.nvmlInit)
    with released_on_error(lib.nvmlShutdown):
        count = int(call(lib, "nvmlDeviceGetCount", lib.nvmlDeviceGetCount))
        driver = None
        with contextlib.suppress(Exception):
            driver = _text(lib.nvmlSystemGetDriverVersion())
        found, skipped = _inventory(lib, count)
    return lib, driver, found, skipped


def probe(nvml: Any = None) -> tuple[bool, str]:
    """Whether NVIDIA GPUs can be metered here and why not. Never raises."""
    try:
        lib, driver, found, skipped = _start(nvml)
    except Exception as exc:
        return False, f"NVML unavailable: {exc}"
    notes = "".join(f"; GPU {s['index']} may not be opened" for s in skipped)
    for gpu in found:
        with contextlib.suppress(DeviceError):
            _refuse_mig(lib, gpu)
            continue
        notes += f"; GPU {gpu['index']} in MIG mode (runs on it are refused)"
    with contextlib.suppress(Exception):
        lib.nvmlShutdown()
    if not found and not skipped:
        return False, "NVML works but sees no GPU (check CUDA_VISIBLE_DEVICES / container GPU access)"
    return True, f"NVML {driver or 'driver ?'}: {len(found) + len(skipped)} device(s){notes}"


class NvidiaGpu(Accelerator):
    """One NVIDIA GPU, opened through Zeus (``NVIDIAGPU(index)``, ``index`` NVML's)."""

    counter_method, sampling_method, call = COUNTER_METHOD, SAMPLING_METHOD, staticmethod(call)

    def __init__(self, lib: Any, index: int, facts: DeviceFacts) -> None:
        import zeus.device.gpu.nvidia as zeus_nvidia

        self._lib, self.facts, label = lib, facts, facts.label
        self.zeus = call(lib, "NVIDIAGPU", lambda: zeus_nvidia.NVIDIAGPU(index), label)
        self.handle = self.zeus.handle
        facts.name = _text(call(lib, "nvmlDeviceGetName", self.zeus.get_name, label))
        if getattr(self.zeus, "_is_grace_hopper", False):  # Zeus read C2C mode: power fields are module scope
            facts.scope = "module"
        self._instant = True
        try:
            self.power_w()
            facts.power_source = "NVML_FI_DEV_POWER_INSTANT (instantaneous, through Zeus)"
        except DeviceError as exc:
            if exc.kind != "unsupported":
                raise
            self._instant = False
            facts.power_source = "nvmlDeviceGetPowerUsage (a 1 s average on Ampere except GA100, and newer)"
        memory = self._opt("nvmlDeviceGetMemoryInfo", lambda: lib.nvmlDeviceGetMemoryInfo(self.handle))
        facts.memory_gb = round(memory.total / 1e9, 2) if memory is not None else None
        facts.power_limit_w = self._limit_w()
        limits = self._opt("power limit constraints", self.zeus.get_power_management_limit_constraints)
        facts.power_limit_range_w = (limits[0] / 1000.0, limits[1] / 1000.0) if limits else None
        facts.persistence_mode = self._opt("persistence mode", self.zeus.get_persistence_mode)

    def _limit_w(self) -> float | None:
        """The enforced power limit (W; pynvml: Zeus reads only the management limit, the fallback)."""
        milliwatts = self._opt(
            "nvmlDeviceGetEnforcedPowerLimit", lambda: self._lib.nvmlDeviceGetEnforcedPowerLimit(self.handle)
        )
        if milliwatts is None:
            milliwatts = self._opt("power management limit", self.zeus.get_power_management_limit)
        return float(milliwatts) / 1000.0 if milliwatts is not None else None

    def energy_mj(self) -> int:
        """Energy counter, mJ since driver load (Zeus ``get_total_energy_consumption``)."""
        return int(self._call("energy counter", self.zeus.get_total_energy_consumption))

    def power_w(self) -> float:
        """Power now, W: the instant field through Zeus, else ``nvmlDeviceGetPowerUsage`` (both mW)."""
        if self._instant:
            mw = self._call("instant power", self.zeus.get_instant_power_usage)
        else:
            mw = call(self._lib, "nvmlDeviceGetPowerUsage", lambda: self._lib.nvmlDeviceGetPowerUsage(self.handle))
        return float(mw) / 1000.0

    def state(self) -> dict[str, Any]:
        """Edge telemetry: ``sm``/``mem`` clocks (MHz), ``temperature_c`` (Zeus: ``nvmlDeviceGetTemperatureV``),
        ``power_limit_w``, ``reasons`` (clocks-event bitmask) and ``reason_names``, ``violation_ns`` (power and
        thermal violation counters, ns since driver load: ``nvmlDeviceGetViolationStatus``); None where unsupported."""
        lib, handle = self._lib, self.handle
        out: dict[str, Any] = {
            key: self._opt("nvmlDeviceGetClockInfo", lambda c=clock: lib.nvmlDeviceGetClockInfo(handle, c))
            for key, clock in (("sm", lib.NVML_CLOCK_SM), ("mem", lib.NVML_CLOCK_MEM))
        }
        out["temperature_c"] = self._opt("temperature", self.zeus.get_gpu_temperature)
        out["power_limit_w"] = self._limit_w()
        # the first exists from driver 535 / pynvml 12.535; older: the throttle name
        names = ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons")
        read = (self._opt(f, lambda f=f: getattr(lib, f)(handle)) for f in names)
        out["reasons"] = next((r for r in read if r is not None), None)
        out["reason_names"] = clocks_event_reason_names(out["reasons"]) if out["reasons"] is not None else None
        violation = {
            key: self._opt("violations", lambda p=policy: lib.nvmlDeviceGetViolationStatus(handle, getattr(lib, p)))
            for key, policy in (("power", "NVML_PERF_POLICY_POWER"), ("thermal", "NVML_PERF_POLICY_THERMAL"))
        }
        out["violation_ns"] = {k: int(v.violationTime) for k, v in violation.items() if v is not None} or None
        return out

    def processes(self) -> list[tuple[int, int | None]]:
        """Compute processes (``nvmlDeviceGetComputeRunningProcesses``): host pid, used memory in bytes or None."""
        lib, handle = self._lib, self.handle
        found = call(lib, "compute processes", lambda: lib.nvmlDeviceGetComputeRunningProcesses(handle))
        pairs = [(int(p.pid), getattr(p, "usedGpuMemory", None)) for p in found]
        return [(pid, m if isinstance(m, int) and m >= 0 else None) for pid, m in pairs]

    # --- control (issue 26): the power limit and locked clocks, through Zeus's setters (mW, MHz) ----------------------

    def controller(self) -> Any:
        """The Zeus GPU that sets, built once: ``ZeusdNVIDIAGPU`` (the Zeus daemon sets, no root needed) where
        ``ZEUSD_SOCK_PATH`` or ``ZEUSD_HOST_PORT`` names one, else ``self.zeus`` (NVML directly: root). Raises
        DeviceError(kind="permission") when the daemon does not grant GPU control."""
        if getattr(self, "_controller", None) is None:
            from zeus.device.gpu.nvidia import ZeusdNVIDIAGPU
            from zeus.utils.zeusd import ZeusdClient, ZeusdConfig

            config, self._controller = ZeusdConfig.from_env(), self.zeus
            if config is not None:
                try:
                    self._controller = ZeusdNVIDIAGPU(self.facts.index, ZeusdClient(config))
                except Exception as exc:
                    raise DeviceError(
                        f"{self.facts.label}: the Zeus daemon named by ZEUSD_SOCK_PATH/ZEUSD_HOST_PORT does not grant "
                        f"GPU control: {type(exc).__name__}: {exc}",
                        kind="permission",
                        device=self.facts.label,
                        call="ZeusdNVIDIAGPU",
                    ) from exc
            self._controller._disable_sys_admin_warning = True  # the kit's preflight says what to do instead
        return self._controller

    def power_management_limit_w(self) -> float:
        """The power management limit now (W): what ``nvidia-smi -pl`` sets, and the kit restores after a cell."""
        return float(self._call("power management limit", self.zeus.get_power_management_limit)) / 1000.0

    def power_limit_constraints_w(self) -> tuple[float, float]:
        """The power limits this board allows, (min, max) W (nvidia-smi -q: "Min/Max Power Limit")."""
        low, high = self._call("power limit constraints", self.zeus.get_power_management_limit_constraints)
        return float(low) / 1000.0, float(high) / 1000.0

    def set_power_limit_w(self, power_limit_w: float) -> None:
        """Set the power management limit (W). Raises DeviceError (``permission``: not root and no daemon)."""
        ctl, milliwatts = self.controller(), round(power_limit_w * 1000)
        self._call("set power limit", lambda: ctl.set_power_management_limit(milliwatts))

    def probe_control(self) -> None:
        """Whether this process may set the power limit and clocks, changing nothing: through a daemon, its
        capabilities (checked by ``controller``); directly, NVML's answer to writing the limit in force back
        (NO_PERMISSION without root); on a board without a settable limit, CAP_SYS_ADMIN. Raises DeviceError."""
        if self.controller() is not self.zeus:
            return
        lib, handle, label = self._lib, self.handle, self.facts.label
        try:
            now_mw = self._call("power management limit", self.zeus.get_power_management_limit)
            self._call("set power limit", lambda: lib.nvmlDeviceSetPowerManagementLimit(handle, now_mw))
        except DeviceError as exc:
            from zeus.device.common import has_sys_admin

            if exc.kind != "unsupported":
                raise
            if not has_sys_admin():
                message = f"{label}: this process lacks CAP_SYS_ADMIN, which setting clocks needs"
                raise DeviceError(message, kind="permission", device=label, call="has_sys_admin") from exc

    def supported_graphics_clocks_mhz(self) -> list[int]:
        """Graphics clocks (MHz) the board supports at its highest memory clock, ascending."""
        top = max(int(m) for m in self._call("supported memory clocks", self.zeus.get_supported_memory_clocks))
        clocks = self._call("supported graphics clocks", lambda: self.zeus.get_supported_graphics_clocks(top))
        return sorted(int(c) for c in clocks)

    def lock_gpu_clocks_mhz(self, min_clock_mhz: int, max_clock_mhz: int) -> None:
        """Lock the graphics clock to [min, max] MHz (nvidia-smi -lgc)."""
        ctl = self.controller()
        self._call("set locked clocks", lambda: ctl.set_gpu_locked_clocks(int(min_clock_mhz), int(max_clock_mhz)))

    def reset_gpu_locked_clocks(self) -> None:
        """Unlock the graphics clock (nvidia-smi -rgc). NVML cannot read a lock in force: one set before is removed,
        not put back."""
        self._call("reset locked clocks", self.controller().reset_gpu_locked_clocks)


def _inventory(lib: Any, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every GPU NVML lists, with UUID and PCI bus id; those this process may not open go to the second list."""
    found: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for index in range(count):
        label = f"GPU {index}"
        try:
            handle = call(lib, "nvmlDeviceGetHandleByIndex", lambda i=index: lib.nvmlDeviceGetHandleByIndex(i), label)
            uuid = _text(call(lib, "nvmlDeviceGetUUID", lambda h=handle: lib.nvmlDeviceGetUUID(h), label))
        except DeviceError as exc:
            skipped.append({"index": index, "reason": str(exc)})
            continue
        pci = None
        with contextlib.suppress(Exception):
            pci = _text(lib.nvmlDeviceGetPciInfo(handle).busId).lower()
        found.append({"index": index, "handle": handle, "uuid": uuid, "pci_bus_id": pci})
    return found, skipped


def map_cuda_devices(inventory: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """(NVML index, CUDA index, how matched) of each GPU CUDA makes visible to this process.

    CUDA enumerates the GPUs ordered by ``CUDA_DEVICE_ORDER`` (``PCI_BUS_ID``; the default ``FASTEST_FIRST``, which
    the kit can only match on identical models, then by PCI bus id), then applies ``CUDA_VISIBLE_DEVICES`` (integers
    index that enumeration, stopping at the first invalid one; UUIDs and unique UUID prefixes match a GPU). NVML
    numbers GPUs by PCI bus id (NVML's documentation: the two may differ). ``MIG-`` entries are refused (DeviceError).
    """
    by_pci = sorted(inventory, key=lambda g: (g["pci_bus_id"] is None, g["pci_bus_id"] or "", g["index"]))
    how = "pci-bus-id"
    if os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        how += " (FASTEST_FIRST assumed equal to PCI order)"
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return [(g["index"], k, how) for k, g in enumerate(by_pci)]
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if any(p.upper().startswith("MIG-") for p in parts):
        raise DeviceError(
            f"CUDA_VISIBLE_DEVICES={value!r} selects MIG instances: NVML gives no energy per MIG instance (its counter "
            "covers the whole GPU, every instance's tenants included), so the run is refused, --force or not. "
            + _MIG_FIX.format(index="N"),
            kind="mig",
        )
    out: list[tuple[int, int, str]] = []
    for k, part in enumerate(parts):
        if part.lstrip("-").isdigit():
            if not 0 <= int(part) < len(by_pci):
                break
            gpu, matched = by_pci[int(part)], how
        else:
            wanted = part.lower() if part.lower().startswith("gpu-") else f"gpu-{part.lower()}"
            matches = [g for g in by_pci if g["uuid"].lower().startswith(wanted)]
            if len(matches) != 1:  # none or ambiguous: CUDA stops enumerating here
                break
            gpu, matched = matches[0], "uuid"
        if all(gpu["index"] != o[0] for o in out):
            out.append((gpu["index"], k, matched))
    return out


_MIG_FIX = (
    "Disable MIG mode as an administrator (sudo nvidia-smi -i {index} -mig 0, then reset the GPU: sudo nvidia-smi -i "
    "{index} -r, or reboot), or run on a whole GPU without MIG mode (CUDA_VISIBLE_DEVICES=<its index or UUID>)"
)


def _refuse_mig(lib: Any, gpu: dict[str, Any]) -> None:
    """Raise DeviceError(kind="mig") naming the GPU when NVML says MIG mode is on: NVML gives no energy per MIG
    instance, so a run on one is refused before any energy is spent, with or without --force."""
    try:
        current, _pending = lib.nvmlDeviceGetMigMode(gpu["handle"])
    except Exception:  # NotSupported on GPUs without MIG; anything else is no MIG either
        return
    if current == getattr(lib, "NVML_DEVICE_MIG_ENABLE", 1):
        label = f"GPU {gpu['index']}"
        with contextlib.suppress(Exception):
            label += f" ({_text(lib.nvmlDeviceGetName(gpu['handle']))})"
        raise DeviceError(
            f"{label} is in MIG mode: NVML gives no energy per MIG instance (its counter covers the whole GPU, every "
            "instance's tenants included), so a run on it is refused before any energy is spent, --force or not. "
            + _MIG_FIX.format(index=gpu["index"]),
            kind="mig",
            device=label,
            call="nvmlDeviceGetMigMode",
        )


def open_devices(indices: list[int] | None = None, *, library: Any = None) -> Opened:
    """Open the GPUs the run uses: ``indices`` (NVML's) or, when None, those CUDA makes visible (mapped by
    ``map_cuda_devices``). NVML stays initialized until ``opened.close()``. A GPU the process may not open is
    skipped and recorded unless the run uses it. Raises DeviceUnavailableError (no NVML, no GPU visible) and
    DeviceError (a GPU the run uses cannot be read, or is in MIG mode)."""
    lib, driver, inventory, skipped = _start(library)
    count = len(inventory) + len(skipped)
    with released_on_error(lib.nvmlShutdown):
        if indices is None:
            chosen = map_cuda_devices(inventory)
        else:
            if any(not 0 <= i < count for i in indices) or len(set(indices)) != len(indices):
                raise DeviceError(f"NVML GPU indices {indices} invalid: NVML has {count} GPU(s) (0..{count - 1})")
            chosen = [(i, None, "nvml-index (given)") for i in indices]
        if not chosen:
            raise DeviceUnavailableError(
                f"NVML sees {count} GPU(s) but none is visible to this process (CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}"
                + (f"; {len(skipped)} may not be opened: {skipped[0]['reason']}" if skipped else "")
                + ")"
            )
        by_index = {g["index"]: g for g in inventory}
        devices = []
        for index, cuda_index, matched_by in chosen:
            if index not in by_index:
                reason = next(s["reason"] for s in skipped if s["index"] == index)
                raise DeviceError(f"GPU {index}, which this run uses, cannot be opened: {reason}")
            gpu = by_index[index]
            _refuse_mig(lib, gpu)
            facts = DeviceFacts("nvidia", index, "?", gpu["uuid"], gpu["pci_bus_id"], cuda_index, matched_by)
            devices.append(NvidiaGpu(lib, index, facts))
    return Opened(devices, skipped, driver, release=lib.nvmlShutdown)
