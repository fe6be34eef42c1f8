"""NVIDIA GPU energy via NVML. For now only the probe; the meter (energy counter, power-sampling fallback) comes later.

pynvml (package ``nvidia-ml-py``) is imported lazily so ``import bench.meters`` works on machines without it.
"""

from __future__ import annotations

import contextlib


def nvml_probe() -> tuple[bool, str]:
    """Whether NVML is usable here and why not. Never raises.

    Returns (True, "NVML <driver>: N device(s)") or (False, reason): library not installed, nvmlInit failed (no
    driver, no GPU, container without the NVIDIA runtime), or zero devices visible.
    """
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return False, "nvidia-ml-py not installed"
    except Exception as exc:  # a broken install must not take the kit down
        return False, f"pynvml import failed: {type(exc).__name__}: {exc}"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError has one subclass per error code; all mean "no usable NVML here"
        return False, f"NVML unavailable (nvmlInit failed: {exc}); no NVIDIA driver or GPU visible"
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            driver = driver.decode() if isinstance(driver, bytes) else str(driver)
        except Exception:
            driver = "driver ?"
    except Exception as exc:
        return False, f"NVML initialized but counting devices failed: {exc}"
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    if count == 0:
        return False, "NVML works but sees no GPU (check CUDA_VISIBLE_DEVICES / container GPU access)"
    return True, f"NVML {driver}: {count} device(s)"
