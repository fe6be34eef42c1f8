"""A fake ``amdsmi`` (AMD SMI's Python binding, ROCm 6.2+) so the AMD device file is tested without an AMD GPU.

Shaped like the installed ``amdsmi`` 7.0.2 where the kit and Zeus (``zeus.device.gpu.amd``) call it: the same
function names and signatures, dictionaries with the same keys, ``"N/A"`` where the library reports 0xFFFF (a power
field the board lacks), the same exceptions (``AmdSmiLibraryException(err_code)`` with ``get_error_code`` and
``get_error_info``; ``AmdSmiParameterException`` for a handle that is not one) and the same status codes
(``AMDSMI_STATUS_*`` of ``amdsmi_wrapper``). ``tests/unit/test_devices_amd.py`` checks the names against the
installed package's source (its import needs libamd_smi.so, absent here).

Units and values as amdsmi reports them, each checked against its source:

- ``amdsmi_get_energy_count``: ``energy_accumulator`` (ticks), ``counter_resolution`` (uJ per tick, a C float) and
  ``timestamp`` (amdsmi 7.0.2 ``amdsmi_interface.py``); the energy is their product in uJ. The resolution is 15.3 on
  every ASIC, MI300X included: ROCm/amdsmi ``rocm_smi/src/rocm_smi.cc``, ``kEnergyCounterResolution = 15.3F``
  ("hard-coded for now since all ASICs have same resolution"), and the rocm-smi output in ROCm/amdsmi#38 (65628 ticks
  = 1004108.41 uJ). (The kernel's gpu_metrics unit is 2^-16 J = 15.259 uJ; the library reports 15.3, so the fake does.)
- ``amdsmi_get_power_info``: ``socket_power``, ``current_socket_power`` (MI300+), ``average_socket_power`` (MI200 and
  earlier) in whole W, "N/A" where the field is 0xFFFF (amdsmi 7.0.2 source; ``amdsmi_power_info_t`` in the ROCm 7.0
  AMD SMI reference); ``power_limit`` in uW although that reference says W (ROCm/amdsmi#174: the hwmon ``power1_cap``
  it reads is in uW, and the amd-smi CLI converts it from micro).
- ``amdsmi_get_power_cap_info``: uW (``amdsmi_power_cap_info_t``: "Units uW"). MI300X's cap is 750 W (rocm-smi's
  PwrCap in ROCm/legacy-rocm-build#5231); the minimum of its range (0 W here) is not checked against a board.
- ``amdsmi_get_gpu_memory_total``: bytes; MI300X: 196,592 MiB (rocminfo's pool of 201,310,208 KB in
  ROCm/legacy-rocm-build#4414).
- ``amdsmi_get_temp_metric``: degrees C. ``amdsmi.h`` says millidegrees, but ``src/amd_smi/amd_smi.cc`` divides
  rocm-smi's millidegrees by 1000 (``*temperature /= 1000``); Zeus 0.16's ``get_gpu_temperature`` divides again, so
  the kit reads it through amdsmi itself.
- clocks in MHz. Calls before ``amdsmi_init`` raise NOT_INIT.
"""

from __future__ import annotations

import ctypes
import math
import time
import types
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

#: amdsmi_wrapper's status codes the fake raises (same values)
AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_NOT_FOUND = 31
AMDSMI_STATUS_NOT_INIT = 32
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34
_INFO = {
    1: "AMDSMI_STATUS_INVAL - Invalid parameters",
    2: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    10: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    31: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    32: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
    34: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
}


class AmdSmiException(Exception):
    """Base smi exception class"""


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _INFO.get(err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred")

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_info(self, detailed: bool = True) -> str:
        return self.err_info if detailed else self.err_info.split(" - ")[0]

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, receivedValue: Any, expectedType: Any, msg: str | None = None) -> None:
        super().__init__(msg)
        self.err_code = None
        self.actualType = type(receivedValue)


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1
    INIT_AMD_GPUS = 2


class AmdSmiClkType(IntEnum):
    SYS = 0
    GFX = 0
    MEM = 4


class AmdSmiTemperatureType(IntEnum):
    EDGE = 0
    HOTSPOT = 1


class AmdSmiTemperatureMetric(IntEnum):
    CURRENT = 0


class AmdSmiMemoryType(IntEnum):
    VRAM = 0


NA = "N/A"


@dataclass
class FakeAmdGpu:
    """One simulated AMD GPU (defaults: an MI300X). ``hip_id``: the HIP runtime's index (may differ from amd-smi's
    BDF order). ``average_power``: False makes ``average_socket_power`` "N/A" (as on MI300X)."""

    name: str = "AMD Instinct MI300X"
    power_w: int = 300
    power_cap_w: int = 750
    power_cap_range_w: tuple[int, int] = (0, 750)
    vram_bytes: int = 196_592 * 2**20  # amd-smi static: 196592 MB
    hip_id: int | None = None
    bdf: str | None = None
    current_power: bool = True
    average_power: bool = False
    energy_counter: bool = True
    counter_resolution_uj: float = 15.3  # C float; ctypes gives 15.300000190734863
    counter_scale: float = 1.0
    temperature_c: int = 45
    gfx_clock_mhz: int = 2100
    mem_clock_mhz: int = 1300
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, VRAM bytes)
    errors: dict[str, int] = field(default_factory=dict)  # function -> status raised
    index: int = -1


class FakeHandle:
    """Stands in for ``amdsmi_processor_handle`` (a ctypes void pointer)."""

    def __init__(self, index: int) -> None:
        self.index = index


class FakeAmdsmi(types.ModuleType):
    """A module object shaped like ``amdsmi`` over a list of ``FakeAmdGpu``."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiParameterException = AmdSmiParameterException
    AmdSmiInitFlags = AmdSmiInitFlags
    AmdSmiClkType = AmdSmiClkType
    AmdSmiTemperatureType = AmdSmiTemperatureType
    AmdSmiTemperatureMetric = AmdSmiTemperatureMetric
    AmdSmiMemoryType = AmdSmiMemoryType

    def __init__(self, gpus: list[FakeAmdGpu], *, init_error: int | None = None) -> None:
        super().__init__("amdsmi")
        self.gpus = gpus
        for i, gpu in enumerate(gpus):
            gpu.index = i
            gpu.hip_id = i if gpu.hip_id is None else gpu.hip_id
            gpu.bdf = gpu.bdf or f"0000:{0x05 + 0x10 * i:02x}:00.0"
        self.init_error = init_error
        self.init_count = 0
        self.t0 = time.perf_counter()

    def _gpu(self, function: str, handle: Any = None) -> FakeAmdGpu:
        if self.init_count <= 0:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        if not isinstance(handle, FakeHandle):
            raise AmdSmiParameterException(handle, ctypes.c_void_p)
        gpu = self.gpus[handle.index]
        if function in gpu.errors:
            raise AmdSmiLibraryException(gpu.errors[function])
        return gpu

    def amdsmi_init(self, flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        if not isinstance(flag, AmdSmiInitFlags):
            raise AmdSmiParameterException(flag, AmdSmiInitFlags)
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self.init_count += 1

    def amdsmi_shut_down(self) -> None:
        if self.init_count <= 0:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        self.init_count -= 1

    def amdsmi_get_processor_handles(self) -> list[FakeHandle]:
        if self.init_count <= 0:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        return [FakeHandle(i) for i in range(len(self.gpus))]

    def amdsmi_get_gpu_enumeration_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_gpu_enumeration_info", processor_handle)
        return {
            "drm_render": 128 + gpu.index,
            "drm_card": gpu.index,
            "hsa_id": 2 + gpu.index,
            "hip_id": gpu.hip_id,
            "hip_uuid": f"GPU-{gpu.index:016x}",
        }

    def amdsmi_get_gpu_asic_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_gpu_asic_info", processor_handle)
        return {
            "market_name": gpu.name,
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "device_id": "0x74a1",
            "target_graphics_version": "gfx942",
            "asic_serial": "0x0000000000000000",
        }

    def amdsmi_get_gpu_device_uuid(self, processor_handle: Any) -> str:
        return f"{self._gpu('amdsmi_get_gpu_device_uuid', processor_handle).index:02x}ff74a1-0000-1000-80ab-0000000000"

    def amdsmi_get_gpu_device_bdf(self, processor_handle: Any) -> str:
        return str(self._gpu("amdsmi_get_gpu_device_bdf", processor_handle).bdf)

    def amdsmi_get_gpu_memory_total(self, processor_handle: Any, mem_type: AmdSmiMemoryType) -> int:
        return self._gpu("amdsmi_get_gpu_memory_total", processor_handle).vram_bytes

    def amdsmi_get_power_info(self, processor_handle: Any) -> dict[str, Any]:
        """Watts, whole numbers (``power_limit``: uW); "N/A" where the board reports 0xFFFF."""
        gpu = self._gpu("amdsmi_get_power_info", processor_handle)
        watts = round(gpu.power_w)
        return {
            "socket_power": watts,
            "current_socket_power": watts if gpu.current_power else NA,
            "average_socket_power": watts if gpu.average_power else NA,
            "gfx_voltage": NA,
            "soc_voltage": NA,
            "mem_voltage": NA,
            "power_limit": gpu.power_cap_w * 10**6,  # uW, ROCm/amdsmi#174
        }

    def amdsmi_get_power_cap_info(self, processor_handle: Any) -> dict[str, int]:
        """Microwatts."""
        gpu = self._gpu("amdsmi_get_power_cap_info", processor_handle)
        lo, hi = gpu.power_cap_range_w
        return {
            "power_cap": gpu.power_cap_w * 10**6,
            "default_power_cap": gpu.power_cap_w * 10**6,
            "dpm_cap": 0,
            "min_power_cap": lo * 10**6,
            "max_power_cap": hi * 10**6,
        }

    def amdsmi_get_energy_count(self, processor_handle: Any) -> dict[str, Any]:
        """The accumulator in ticks of ``counter_resolution`` uJ since the driver loaded, and a timestamp (ns)."""
        gpu = self._gpu("amdsmi_get_energy_count", processor_handle)
        if not gpu.energy_counter:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        resolution = ctypes.c_float(gpu.counter_resolution_uj).value
        true_uj = gpu.power_w * (time.perf_counter() - self.t0) * 1e6 * gpu.counter_scale
        return {
            "energy_accumulator": 10**9 + math.floor(true_uj / resolution),
            "counter_resolution": resolution,
            "timestamp": time.time_ns(),
        }

    def amdsmi_get_temp_metric(self, processor_handle: Any, sensor_type: Any, metric: Any) -> int:
        return self._gpu("amdsmi_get_temp_metric", processor_handle).temperature_c

    def amdsmi_get_clock_info(self, processor_handle: Any, clock_type: AmdSmiClkType) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_clock_info", processor_handle)
        mhz = gpu.mem_clock_mhz if clock_type == AmdSmiClkType.MEM else gpu.gfx_clock_mhz
        return {"clk": mhz, "min_clk": 500, "max_clk": mhz, "clk_locked": NA, "clk_deep_sleep": NA}

    def amdsmi_get_gpu_process_list(self, processor_handle: Any) -> list[dict[str, Any]]:
        gpu = self._gpu("amdsmi_get_gpu_process_list", processor_handle)
        return [
            {
                "name": "python",
                "pid": pid,
                "mem": mem,
                "engine_usage": {"gfx": 0, "enc": 0},
                "memory_usage": {"gtt_mem": 0, "cpu_mem": 0, "vram_mem": mem},
                "cu_occupancy": NA,
            }
            for pid, mem in gpu.processes
        ]

    def amdsmi_get_gpu_driver_info(self, processor_handle: Any) -> dict[str, str]:
        self._gpu("amdsmi_get_gpu_driver_info", processor_handle)
        return {"driver_name": "amdgpu", "driver_version": "6.10.5", "driver_date": "2015/01/01 00:00"}
