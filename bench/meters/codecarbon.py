"""CodeCarbon beside the kit's own meters (the paper measured with it): one ``OfflineEmissionsTracker`` per window,
machine scope as in the paper, no files, no API, no network, a quiet console; imported in ``start()`` only.

Labels: CodeCarbon mixes counters and its own estimates, so each component says which: ``measured:codecarbon`` where
it read hardware counters (RAPL, Windows EMI, Intel Power Gadget, NVML or AMD SMI, powermetrics on Apple silicon, a
Raspberry Pi's PMIC), ``estimated:codecarbon`` where it fell back to its TDP x load model or its RAM model (always on
PCs: CodeCarbon 3.x guesses 5 W per x86 DIMM, not the paper-era 0.375 W/GB). Cost: the first window in a process pays
its hardware detection (about 1.4 s on a 2-core VM), before its own window and the primary meters' open; later
windows a few ms.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from bench.errors import MeterError
from bench.meters.base import ComponentEnergy, Reading

#: kWh -> J
J_PER_KWH = 3.6e6

_INSTALL_HINT = "codecarbon is not installed: pip install codecarbon (or the kit's `cpu` / `gpu` extra)"

#: CodeCarbon CPU modes that read hardware energy/power counters; every other mode is its TDP-based estimate.
_MEASURED_CPU_MODES = {"intel_rapl", "windows_emi", "intel_power_gadget", "apple_powermetrics"}
#: CodeCarbon's per-part chip classes -> the parts it reads (measured) and through what
_CHIP_PARTS = {"AppleSiliconChip": (("cpu", "gpu"), "powermetrics"), "Raspberry": (("cpu", "ram"), "Raspberry Pi PMIC")}


def codecarbon_available() -> tuple[bool, str]:
    """Whether codecarbon can be imported (checked without importing it) and its version or the install hint."""
    from importlib.metadata import version

    try:
        if importlib.util.find_spec("codecarbon") is None:
            return False, _INSTALL_HINT
    except (ImportError, ValueError):
        return False, _INSTALL_HINT
    try:
        return True, f"codecarbon {version('codecarbon')}"
    except Exception:
        return True, "codecarbon (version unknown)"


class _Capture(logging.Handler):
    """Collects CodeCarbon's warnings during a window: its start/stop swallow exceptions and only log them."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += f" [{type(record.exc_info[1]).__name__}: {record.exc_info[1]}]"
        self.messages.append(text.strip())


class CodeCarbonMeter:
    """CodeCarbon's per-component energy for one window, converted from kWh to joules, with honest labels."""

    name = "codecarbon"

    #: Machine scope, as the paper measured.
    tracking_mode = "machine"

    def __init__(self, country_iso_code: str = "DEU", measure_power_secs: float = 15.0) -> None:
        if measure_power_secs <= 0:
            raise MeterError(f"codecarbon measure_power_secs must be positive, got {measure_power_secs}")
        self.country_iso_code = country_iso_code
        self.measure_power_secs = float(measure_power_secs)
        self._tracker: Any = None
        self._capture: _Capture | None = None
        self._last_methods: dict[str, str] | None = None

    def components(self) -> tuple[str, ...]:
        """All three: a component CodeCarbon did not see comes back as None with a reason."""
        return ("gpu", "cpu", "ram")

    def describe(self) -> dict[str, object]:
        """Configuration, and the per-component methods CodeCarbon chose in the last window (once known)."""
        ok, version = codecarbon_available()
        methods = "decided by CodeCarbon at the first window (measured:codecarbon where it reads counters)"
        return {
            "available": ok,
            "version": version,
            "country_iso_code": self.country_iso_code,
            "measure_power_secs": self.measure_power_secs,
            "tracking_mode": self.tracking_mode,
            "methods": dict(self._last_methods) if self._last_methods else methods,
        }

    # --- logging: quiet console, but keep what CodeCarbon says -------------------------------------------------

    def _attach_capture(self) -> None:
        logger = logging.getLogger("codecarbon")
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.ERROR)  # the console sees errors only
        self._capture = _Capture()
        logger.addHandler(self._capture)
        logger.setLevel(logging.WARNING)  # ... while the capture sees warnings (swallowed exceptions land there)

    def _detach_capture(self) -> list[str]:
        logger = logging.getLogger("codecarbon")
        messages: list[str] = []
        if self._capture is not None:
            logger.removeHandler(self._capture)
            messages = self._capture.messages
            self._capture = None
        logger.setLevel(logging.ERROR)
        return messages

    # --- window -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create and start a fresh offline tracker (imports codecarbon on first use)."""
        if self._tracker is not None:
            raise MeterError("CodeCarbonMeter.start() called twice without stop()")
        # Its import probes GPU libraries and logs what it finds at INFO/WARNING (amdsmi installed without ROCm: "AMD
        # GPU detected but amdsmi is not properly configured") unless told otherwise; the user's own level is kept.
        quiet = "CODECARBON_LOG_LEVEL" not in os.environ
        if quiet:
            os.environ["CODECARBON_LOG_LEVEL"] = "error"
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as exc:
            raise MeterError(f"{_INSTALL_HINT} ({exc})") from exc
        finally:
            if quiet:
                os.environ.pop("CODECARBON_LOG_LEVEL", None)
        # After the import (which sets its logger to INFO) and before the constructor (which logs at INFO/WARNING
        # before applying our log_level).
        logging.getLogger("codecarbon").setLevel(logging.ERROR)

        tracker = OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            measure_power_secs=self.measure_power_secs,
            tracking_mode=self.tracking_mode,
            project_name="bench",
            # Every argument below is explicit so a stray .codecarbon.config or CODECARBON_* variable cannot turn on
            # files, HTTP/API output, online carbon-intensity lookups, forced powers or a PUE factor.
            output_methods=[],
            emissions_endpoint=None,
            electricitymaps_api_token=None,
            api_call_interval=-1,
            log_level="error",
            allow_multiple_runs=True,  # no lock file in the temp directory
            force_cpu_power=None,
            force_ram_power=None,
            force_mode_cpu_load=False,
            rapl_include_dram=False,  # DRAM stays in ram, never folded into cpu
            rapl_prefer_psys=False,
            pue=1.0,
        )
        self._attach_capture()
        tracker.start()
        if getattr(tracker, "_start_time", None) is None:
            messages = self._detach_capture()
            raise MeterError(
                "CodeCarbon failed to start (it swallows its own exceptions): " + ("; ".join(messages) or "no message")
            )
        self._tracker = tracker

    def stop(self) -> Reading:
        """Stop the tracker and return its cpu/gpu/ram energy in joules with measured/estimated labels."""
        tracker = self._tracker
        if tracker is None:
            raise MeterError("CodeCarbonMeter.stop() called without start()")
        self._tracker = None
        try:
            tracker.stop()
        finally:
            messages = self._detach_capture()
        data = getattr(tracker, "final_emissions_data", None)
        if data is None:
            raise MeterError(
                "CodeCarbon returned no data at stop (it swallows its own exceptions): "
                + ("; ".join(messages) or "no message")
            )
        return self._reading(tracker, data, messages)

    def _reading(self, tracker: Any, data: Any, messages: list[str]) -> Reading:
        conf: dict[str, Any] = getattr(tracker, "_conf", {}) or {}
        common: dict[str, object] = {
            "codecarbon_version": data.codecarbon_version,
            "cpu_model": data.cpu_model,
            "tracking_mode": data.tracking_mode,
            "hardware": list(conf.get("hardware") or []),
            "country_iso_code": data.country_iso_code,
            "emissions_kg": data.emissions,
            "codecarbon_duration_s": data.duration,
            "measure_power_secs": self.measure_power_secs,
        }
        seen = _classify_hardware(getattr(tracker, "_hardware", []) or [])
        kwh = {"cpu": data.cpu_energy, "gpu": data.gpu_energy, "ram": data.ram_energy}
        power_w = {"cpu": data.cpu_power, "gpu": data.gpu_power, "ram": data.ram_power}
        components: dict[str, ComponentEnergy] = {}
        for component in ("gpu", "cpu", "ram"):
            if component not in seen:
                no_gpu = f"CodeCarbon found no GPU (gpu_count={data.gpu_count})"
                reason = no_gpu if component == "gpu" else f"CodeCarbon set up no {component} tracker"
                components[component] = ComponentEnergy(None, "unavailable", reason=reason, detail=common)
                continue
            measured, how = seen[component]
            detail = {**common, "codecarbon_source": how, "power_w": power_w[component]}
            if component == "gpu":
                detail.update(gpu_model=data.gpu_model, gpu_count=data.gpu_count)
            if component == "cpu" and messages:
                # Once, on cpu (not on every component): mostly its fallback notices from hardware detection.
                detail["codecarbon_warnings"] = messages
            if component == "ram":
                detail["ram_total_gib"] = data.ram_total_size  # CodeCarbon divides bytes by 1024**3
            energy_j = max(float(kwh[component] or 0.0) * J_PER_KWH, 0.0)
            method = "measured:codecarbon" if measured else "estimated:codecarbon"
            components[component] = ComponentEnergy(energy_j, method, detail=detail)
        self._last_methods = {c: e.method for c, e in components.items()}
        return Reading(meter=self.name, duration_s=float(data.duration), components=components)

    def close(self) -> None:
        """Stop a tracker left running (its timer threads) without reporting. Idempotent."""
        tracker, self._tracker = self._tracker, None
        if tracker is not None:
            try:
                tracker.stop()
            finally:
                self._detach_capture()


def _classify_hardware(hardware: list[Any]) -> dict[str, tuple[bool, str]]:
    """Map CodeCarbon's hardware objects to component -> (read hardware counters?, how).

    Introspects CodeCarbon 3.x internals (class names, ``CPU._mode``); anything unrecognized is labelled an
    estimate, never a measurement.
    """
    seen: dict[str, tuple[bool, str]] = {}
    for hw in hardware:
        kind = type(hw).__name__
        if kind == "CPU":
            mode = str(getattr(hw, "_mode", "unknown"))
            if mode in _MEASURED_CPU_MODES:
                seen["cpu"] = (True, f"cpu mode {mode}")
            else:
                tdp = getattr(hw, "_tdp", None)
                generic = " (generic)" if getattr(hw, "_is_generic_tdp", False) else ""
                seen["cpu"] = (False, f"cpu mode {mode}, TDP {tdp} W{generic}")
        elif kind == "GPU":
            seen["gpu"] = (True, "gpu via NVML/AMD SMI energy counters")
        elif kind == "RAM":
            forced = getattr(hw, "_force_ram_power", None)
            seen["ram"] = (False, f"forced {forced} W" if forced is not None else "RAM power model (per-DIMM estimate)")
        elif kind in _CHIP_PARTS:  # one object per part of the chip
            parts, via = _CHIP_PARTS[kind]
            if (part := str(getattr(hw, "chip_part", "")).lower()) in parts:
                seen[part] = (True, f"{part} via {via}")
    return seen
