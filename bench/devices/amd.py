"""AMD GPUs (Instinct MI200/MI300, ROCm 6.2+): through Zeus (``zeus.device.gpu.amd.AMDGPU``, one GPU at a time by HIP
index) and, for what Zeus does not expose or gets wrong, through ``amdsmi``. The one file of ``bench/`` that imports
amdsmi.

Through Zeus: the energy counter (``amdsmi_get_energy_count``'s accumulator x ``counter_resolution`` uJ, in mJ), power
(``current_socket_power``, whole W; ``average_socket_power`` where the board reports only that), the power cap and its
range (uW -> mW), the name. Through amdsmi: the GPU list and each GPU's HIP index (amd-smi numbers GPUs by PCI BDF, HIP
may not), UUID, BDF, VRAM (bytes), clocks (MHz), the hotspot temperature (C: Zeus 0.16 divides amdsmi's degrees by
1000 again) and the processes on the GPU. Persistence mode, clocks-event reasons and violation counters do not exist
here (None). The counter is judged when the meter opens (``bench.meters.gpu``): amdsmi's is wrong on some boards
(ROCm/amdsmi#38).

MI250/MI250X: each module is two GCDs (two GPUs to HIP and amdsmi), whose power and energy both dies' together are
reported on the even GCD (``dual_die_partners``); how a run's GCDs are then labelled: ``_open_chosen``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from bench.devices.base import Accelerator, DeviceError, DeviceFacts, DeviceUnavailableError, Opened, released_on_error

COUNTER_METHOD = "measured:amdsmi-energy-counter"
SAMPLING_METHOD = "measured:amdsmi-power-sampling"
#: amdsmi status codes (``amdsmi_wrapper.AMDSMI_STATUS_*``) -> what the meter may do about them, and a hint
_KINDS = {2: "unsupported", 10: "permission", 34: "unavailable", 45: "unavailable", 51: "unavailable"}
#: amdsmi_get_power_info's power fields (whole W, "N/A" where the board lacks one)
_POWER_FIELDS = ("socket_power", "current_socket_power", "average_socket_power")
_HINTS = {
    2: "this GPU or driver does not support the query",
    10: "this process may not open this GPU (cgroups, Slurm, or a container started without /dev/kfd and /dev/dri)",
    32: "amdsmi was used before amdsmi_init (a bug in the kit; please report)",
    34: "the amdgpu kernel driver is not loaded; run on a GPU node with ROCm",
}


def load_library(amdsmi: Any = None) -> Any:
    """The amdsmi module (``amdsmi`` when given) with Zeus's AMD module pointed at it. DeviceUnavailableError."""
    if amdsmi is None:
        try:
            with contextlib.redirect_stdout(None):  # amdsmi prints when libamd_smi.so is missing
                import amdsmi  # type: ignore[import-not-found]
        except Exception as exc:  # ImportError; OSError/KeyError: libamd_smi.so missing; AttributeError: version
            raise DeviceUnavailableError(
                f"amdsmi unusable ({type(exc).__name__}: {exc}): install ROCm 6.2+ and the amdsmi matching it"
            ) from exc
    try:
        import zeus.device.gpu.amd as zeus_amd
    except ImportError as exc:
        raise DeviceUnavailableError(f"zeus not installed (pip install zeus==0.16.0): {exc}") from exc
    zeus_amd.amdsmi = amdsmi
    zeus_amd._hip_to_amdsmi_handle.cache_clear()  # cached per process: a new library, a new map
    return amdsmi


def call(lib: Any, what: str, function: Callable[[], Any], label: str | None = None) -> Any:
    """``function()`` (amdsmi, direct or through Zeus); failures become DeviceError naming the call and device."""
    try:
        return function()
    except Exception as exc:
        error = next((e for e in (exc, exc.__cause__) if isinstance(e, lib.AmdSmiLibraryException)), None)
        code = error.get_error_code() if error is not None else None
        default = "unsupported" if "NotSupported" in type(exc).__name__ else "other"
        kind = "unavailable" if what == "amdsmi_init" else _KINDS.get(code, default)  # type: ignore[arg-type]
        hint = _HINTS.get(code, "")  # type: ignore[arg-type]
        message = f"amdsmi {what}{f' on {label}' if label else ''} failed: {type(exc).__name__}: {exc}"
        error_class = DeviceUnavailableError if kind == "unavailable" else DeviceError
        message += f". {hint}" if hint else ""
        raise error_class(message, kind=kind, device=label, call=what, code=code) from exc


def _inventory(lib: Any) -> list[dict[str, Any]]:
    """Every GPU amdsmi lists (amd-smi index = BDF order) with its HIP index."""
    handles = call(lib, "amdsmi_get_processor_handles", lib.amdsmi_get_processor_handles)
    return [
        {
            "index": i,
            "handle": h,
            "hip": int(call(lib, "enumeration info", lambda h=h: lib.amdsmi_get_gpu_enumeration_info(h))["hip_id"]),
        }
        for i, h in enumerate(handles)
    ]


def dual_die_partners(lib: Any, by_hip: dict[int, dict[str, Any]]) -> dict[int, int]:
    """MI250/MI250X GCD pairs: odd HIP index -> its even partner, which reports the module's power and energy for
    both dies. Zeus's rule (``zeus.device.gpu.amd.AMDGPUs``, 0.16, which sets ``_is_dual_die_odd_chiplet``): "MI250"
    in the name, an odd HIP index, no power of its own (0 W or "N/A": rocm-smi's "N/A (Secondary die)",
    ROCm/rocm_smi_lib#160), the partner at HIP index - 1. Never raises (a GPU that cannot be asked is no pair)."""

    def asks(h: int, what: str) -> Any:
        return getattr(lib, f"amdsmi_get_{what}")(by_hip[h]["handle"])

    out: dict[int, int] = {}
    for h in (h for h in by_hip if h % 2 and h - 1 in by_hip):
        with contextlib.suppress(Exception):
            names = [str(asks(g, "gpu_asic_info")["market_name"]) for g in (h - 1, h)]
            power = asks(h, "power_info")
            silent = not any(isinstance(power.get(k), int) and power[k] > 0 for k in _POWER_FIELDS)
            if silent and all("MI250" in n for n in names):
                out[h] = h - 1
    return out


def probe(amdsmi: Any = None) -> tuple[bool, str]:
    """Whether AMD GPUs can be metered here and why not, and the MI250/MI250X GCD pairs found. Never raises."""
    lib = None
    try:
        lib = load_library(amdsmi)
        call(lib, "amdsmi_init", lambda: lib.amdsmi_init(lib.AmdSmiInitFlags.INIT_AMD_GPUS))
        inventory = _inventory(lib)
        count, pairs = len(inventory), dual_die_partners(lib, {g["hip"]: g for g in inventory})
    except Exception as exc:
        return False, f"amdsmi unavailable: {exc}"
    finally:
        with contextlib.suppress(Exception):
            lib.amdsmi_shut_down()  # type: ignore[union-attr]
    hips = ", ".join(f"{even}+{odd}" for odd, even in sorted(pairs.items()))
    extra = f"; MI250/MI250X GCD pairs (HIP) {hips}: each module's power on its even GCD, both dies" if pairs else ""
    return (True, f"amdsmi: {count} GPU(s){extra}") if count else (False, "amdsmi works but sees no AMD GPU")


class AmdGpu(Accelerator):
    """One AMD GPU, opened through Zeus (``AMDGPU(hip_index)``). ``read_hip``: the GPU whose power and energy (and
    power cap) stand for this one's (an MI250X GCD's even partner: the module's); its own handle for the rest."""

    counter_method, sampling_method, call = COUNTER_METHOD, SAMPLING_METHOD, staticmethod(call)

    def __init__(self, lib: Any, hip_index: int, facts: DeviceFacts, read_hip: int | None = None) -> None:
        import zeus.device.gpu.amd as zeus_amd

        self._lib, self.facts, label = lib, facts, facts.label
        read = hip_index if read_hip is None else read_hip
        self.zeus = call(lib, "AMDGPU", lambda: zeus_amd.AMDGPU(read), label)
        self.handle = zeus_amd._hip_to_amdsmi_handle()[hip_index]
        facts.name = str(call(lib, "amdsmi_get_gpu_asic_info", self.zeus.get_name, label))
        power = call(lib, "amdsmi_get_power_info", lambda: lib.amdsmi_get_power_info(self.zeus.handle), label)
        # Zeus's own check (AMDGPUs): "N/A" where the board lacks the field; MI300X reports only the current power
        self.zeus._supports_instant_power_usage = isinstance(power["current_socket_power"], int)
        self.zeus._supports_average_power_usage = isinstance(power["average_socket_power"], int)
        self._instant = self.zeus._supports_instant_power_usage
        facts.power_source = "current_socket_power (W, through Zeus)" if self._instant else "average_socket_power (W)"
        facts.uuid = self._opt("uuid", lambda: lib.amdsmi_get_gpu_device_uuid(self.handle))
        facts.pci_bus_id = self._opt("bdf", lambda: lib.amdsmi_get_gpu_device_bdf(self.handle))
        vram = self._opt("VRAM", lambda: lib.amdsmi_get_gpu_memory_total(self.handle, lib.AmdSmiMemoryType.VRAM))
        facts.memory_gb = round(vram / 1e9, 2) if vram else None
        facts.power_limit_w = self._limit_w()
        limits = self._opt("power cap range", self.zeus.get_power_management_limit_constraints)
        facts.power_limit_range_w = (limits[0] / 1e3, limits[1] / 1e3) if limits else None

    def _limit_w(self) -> float | None:
        milliwatts = self._opt("power cap", self.zeus.get_power_management_limit)
        return milliwatts / 1e3 if milliwatts is not None else None

    def energy_mj(self) -> int:
        """Energy counter, mJ since driver load (Zeus: accumulator x resolution uJ / 1000)."""
        return int(self._read("energy counter", self.zeus.get_total_energy_consumption))

    def power_w(self) -> float:
        """Power now, W (whole watts, as amdsmi reports them)."""
        read = self.zeus.get_instant_power_usage if self._instant else self.zeus.get_average_power_usage
        return float(self._read("power", read)) / 1e3

    def _read(self, what: str, function: Callable[[], Any]) -> Any:
        if self.facts.counted_in is not None:  # never a silent zero for the second GCD of an MI250X module
            raise DeviceError(f"{self.facts.label} is counted in GPU {self.facts.counted_in}'s reading, not read alone")
        return self._call(what, function)

    def state(self) -> dict[str, Any]:
        """Edge telemetry: ``sm`` (GFX) and ``mem`` clocks (MHz), ``temperature_c`` (hotspot), ``power_limit_w``."""
        lib, clk = self._lib, self._lib.AmdSmiClkType
        hotspot = (lib.AmdSmiTemperatureType.HOTSPOT, lib.AmdSmiTemperatureMetric.CURRENT)  # C (Zeus 0.16: C / 1000)
        clocks = {
            k: self._opt("clock", lambda t=t: lib.amdsmi_get_clock_info(self.handle, t))
            for k, t in (("sm", clk.GFX), ("mem", clk.MEM))
        }
        return {
            **{k: (v or {}).get("clk") for k, v in clocks.items()},
            "temperature_c": self._opt("temperature", lambda: lib.amdsmi_get_temp_metric(self.handle, *hotspot)),
            "power_limit_w": self._limit_w(),
            "reasons": None,
            "violation_ns": None,
        }

    def processes(self) -> list[tuple[int, int | None]]:
        """Processes on the GPU (``amdsmi_get_gpu_process_list``): pid, VRAM held in bytes."""
        found = call(self._lib, "process list", lambda: self._lib.amdsmi_get_gpu_process_list(self.handle))
        return [(int(p["pid"]), int(p["mem"]) if isinstance(p.get("mem"), int) else None) for p in found]


def _visible_hip(hips: list[int]) -> list[int]:
    """HIP indices this process sees, in its device order: HIP_VISIBLE_DEVICES, else CUDA_VISIBLE_DEVICES (as ROCm
    PyTorch honours it), integers only; else every GPU by HIP index."""
    value = os.environ.get("HIP_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    if value is None:
        return sorted(hips)
    out: list[int] = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        if not part.isdigit() or int(part) not in hips:
            break  # as HIP: enumeration stops at the first entry that names no GPU
        out.append(int(part))
    return out


def open_devices(indices: list[int] | None = None, *, library: Any = None) -> Opened:
    """Open the GPUs the run uses: ``indices`` (amd-smi's) or, when None, those HIP makes visible. amdsmi stays
    initialized until ``opened.close()``. Raises DeviceUnavailableError and DeviceError."""
    lib = load_library(library)
    call(lib, "amdsmi_init", lambda: lib.amdsmi_init(lib.AmdSmiInitFlags.INIT_AMD_GPUS))
    with released_on_error(lib.amdsmi_shut_down):
        inventory = _inventory(lib)
        by_hip = {g["hip"]: g for g in inventory}
        if indices is None:
            chosen = [(by_hip[h]["index"], h, k, "hip-id") for k, h in enumerate(_visible_hip(list(by_hip)))]
        else:
            if any(not 0 <= i < len(inventory) for i in indices):
                raise DeviceError(f"amd-smi GPU indices {indices} invalid: amdsmi lists {len(inventory)} GPU(s)")
            chosen = [(i, inventory[i]["hip"], None, "amd-smi index (given)") for i in indices]
        if not chosen:
            raise DeviceUnavailableError(f"amdsmi sees {len(inventory)} GPU(s) but none is visible to this process")
        driver = None
        with contextlib.suppress(Exception):
            driver = lib.amdsmi_get_gpu_driver_info(inventory[0]["handle"])["driver_version"]
        devices = _open_chosen(lib, chosen, by_hip)
    return Opened(devices, [], driver, release=lib.amdsmi_shut_down)


def _open_chosen(lib: Any, chosen: list[tuple[int, int, int | None, str]], by_hip: dict[int, Any]) -> list[AmdGpu]:
    """The chosen GPUs opened, an MI250/MI250X GCD labelled with what its module's reading covers (``scope``
    ``gcd-pair``): a second GCD whose partner the run uses too is ``counted_in`` it, never read; one used alone is
    read through its partner (the other die's draw included), and says so."""
    partners, used = dual_die_partners(lib, by_hip), {hip for _, hip, _, _ in chosen}
    devices = []
    for index, hip, cuda, how in chosen:
        facts = DeviceFacts("amd", index, "?", cuda_index=cuda, matched_by=how)
        even = partners.get(hip)  # set on the second GCD of a module
        alone = even is not None and even not in used
        devices.append(AmdGpu(lib, hip, facts, read_hip=even if alone else None))
        if even is not None and not alone:
            facts.counted_in = by_hip[even]["index"]
            note = f"counted in GPU {facts.counted_in}'s reading, not read alone"
        elif alone:
            note = f"read on its first GCD (HIP {even}), with that GCD's draw (not in this run)"
        elif hip % 2 == 0 and "MI250" in facts.name:
            both = partners.get(hip + 1) == hip and hip + 1 in used
            other = f"GPU {by_hip[hip + 1]['index']} counted here" if both else None
            note = other or "with the other GCD's draw (not in this run)"
        else:
            continue
        first = hip - hip % 2
        facts.scope = "gcd-pair"
        facts.scope_note = f"MI250/MI250X module of HIP GCDs {first}+{first + 1}, both dies: {note}"
    return devices
