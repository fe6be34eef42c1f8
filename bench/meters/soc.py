"""A system-on-chip's energy through Zeus (``zeus.device.soc.get_soc``): Apple Silicon (the ``zeus-apple-silicon``
extra: IOReport counters, mJ; ``measured:apple-ioreport``) and NVIDIA Jetson (the INA3221 rails, polled by Zeus about
every 100 ms and integrated to mJ; ``measured:jetson-ina3221``). A window is the difference of two cumulative readings.

``MAPS`` maps what the SoC reports to the kit's components. What is no kit component (Apple's Neural Engine, Jetson's
board input rail) is recorded in ``detail["extra_j"]``, never dropped; Jetson's RAM keeps its estimate (no DRAM rail).
A component not reported at open is not claimed (other meters keep it); one that stops reporting is unavailable with
the reason, never zero.
"""

from __future__ import annotations

import time
from typing import Any

from bench.devices.base import DeviceUnavailableError
from bench.meters.base import ComponentEnergy, Reading

#: Zeus measurement class -> (method label, component -> fields summed, extra name -> field)
MAPS: dict[str, tuple[str, dict[str, tuple[str, ...]], dict[str, str]]] = {
    "AppleSiliconMeasurement": (
        "measured:apple-ioreport",
        {"cpu": ("cpu_total_mj",), "gpu": ("gpu_mj", "gpu_sram_mj"), "ram": ("dram_mj",)},
        {"ane": "ane_mj"},
    ),
    "JetsonMeasurement": (
        "measured:jetson-ina3221",
        {"cpu": ("cpu_energy_mj",), "gpu": ("gpu_energy_mj",)},
        {"board_input": "total_energy_mj"},
    ),
}


class SocMeter:
    """The components a SoC reports (``MAPS``), from Zeus's cumulative counters. ``soc``: a Zeus ``SoC`` (None:
    ``get_soc()``'s). Raises DeviceUnavailableError (no Apple Silicon or Jetson, Zeus or the extra missing)."""

    def __init__(self, soc: Any = None) -> None:
        if soc is None:
            try:
                from zeus.device.soc import get_soc

                soc = get_soc()
            except Exception as exc:  # ImportError, ZeusSoCInitError
                raise DeviceUnavailableError(f"no SoC energy here (Zeus: {type(exc).__name__}: {exc})") from exc
        self._soc = soc
        first = self._soc.get_total_energy_consumption()
        kind = type(first).__name__
        if kind not in MAPS:
            raise DeviceUnavailableError(f"Zeus returned {kind}, a SoC this kit has no component map for")
        self.name = "soc"
        self.method, self._fields, self._extra = MAPS[kind]
        self.kind = kind
        self._claimed = tuple(c for c, names in self._fields.items() if getattr(first, names[0], None) is not None)
        self._start: tuple[float, Any] | None = None

    def components(self) -> tuple[str, ...]:
        """The kit components this SoC reports (checked at open)."""
        return self._claimed

    def describe(self) -> dict[str, object]:
        """What the SoC gives and how it maps to the kit's components."""
        components = {c: self._fields[c] for c in self._claimed}
        return {"soc": self.kind, "method": self.method, "components": components, "extra": self._extra}

    def start(self) -> None:
        """Open a window: the counters now."""
        self._start = (time.perf_counter(), self._soc.get_total_energy_consumption())

    def stop(self) -> Reading:
        """Close the window: the counters' differences in J per component, the extras in the detail."""
        if self._start is None:
            raise RuntimeError("SocMeter.stop() called without start()")
        (t0, m0), m1, t1 = self._start, self._soc.get_total_energy_consumption(), time.perf_counter()
        self._start = None

        def joules(field: str) -> float | None:
            a, b = getattr(m0, field, None), getattr(m1, field, None)
            return (b - a) / 1000.0 if isinstance(a, int | float) and isinstance(b, int | float) else None

        extra = {name: joules(field) for name, field in self._extra.items()}
        note = (
            f"not a kit component, recorded here: {', '.join(self._extra)} (J, from {', '.join(self._extra.values())})"
        )
        components: dict[str, ComponentEnergy] = {}
        for component in self._claimed:
            parts = {f: joules(f) for f in self._fields[component]}
            detail = {"fields": self._fields[component], "extra_j": extra, "note": note}
            total = sum(v for v in parts.values() if v is not None)
            reason = None
            if parts[self._fields[component][0]] is None:
                reason = f"{self.kind}.{self._fields[component][0]} was not reported in this window"
            elif total < 0:
                reason = f"{self.kind} counters of {component} went backwards ({total:.3f} J): the monitor restarted"
            if reason:
                components[component] = ComponentEnergy(None, "unavailable", reason=reason, detail=detail)
            else:
                components[component] = ComponentEnergy(total, self.method, detail={**detail, "parts_j": parts})
        return Reading(meter=self.name, duration_s=t1 - t0, components=components)

    def close(self) -> None:
        """Nothing to release (Zeus keeps its SoC object for the process)."""
