"""Accelerators behind one interface (``bench.devices.base.Accelerator``), one file per vendor.

Adding a vendor: write ``bench/devices/<vendor>.py`` with ``probe(library=None) -> (ok, reason)`` and
``open_devices(indices=None, *, library=None) -> base.Opened``, then add one line to ``VENDORS``. The vendor's own
library (``pynvml``, ``amdsmi``) is imported in its file only; device access goes through Zeus's device classes.
Modules are imported lazily: ``import bench.devices`` loads neither Zeus nor a vendor library.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.devices.base import Accelerator, DeviceError, DeviceFacts, DeviceUnavailableError, Opened

#: vendor name -> module; probed in this order, the first with devices meters the run's GPUs.
VENDORS: dict[str, str] = {
    "nvidia": "bench.devices.nvidia",
    "amd": "bench.devices.amd",
}

__all__ = ["VENDORS", "Accelerator", "DeviceError", "DeviceFacts", "DeviceUnavailableError", "Opened", "probe_all",
           "vendor_module"]  # fmt: skip


def vendor_module(vendor: str) -> Any:
    """The module of ``vendor`` (a key of ``VENDORS``)."""
    return importlib.import_module(VENDORS[vendor])


def probe_all(libraries: dict[str, Any] | None = None) -> dict[str, tuple[bool, str]]:
    """Per vendor, whether its devices can be metered here and why not (library missing, no device, no
    permission, MIG, module scope). ``libraries``: injected library modules by vendor (tests). Never raises."""
    out: dict[str, tuple[bool, str]] = {}
    for vendor in VENDORS:
        try:
            out[vendor] = vendor_module(vendor).probe((libraries or {}).get(vendor))
        except Exception as exc:  # a broken vendor file must not take `bench env` down
            out[vendor] = (False, f"probe failed: {type(exc).__name__}: {exc}")
    return out
