"""The meter protocol: ``start()`` opens a window, ``stop()`` closes it with the energy per component (gpu, cpu, ram),
each with the method that produced it (one of ``METHODS``). A component a meter does not cover is absent from its
reading; one it covers but cannot measure has ``energy_j=None`` and a ``reason``: never a silent zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Component = Literal["gpu", "cpu", "ram"]
COMPONENTS: tuple[Component, ...] = ("gpu", "cpu", "ram")

#: The method labels a component energy may carry. Prefix says measured vs estimated.
METHODS = (
    "measured:nvml-energy-counter",
    "measured:nvml-power-sampling",
    "measured:amdsmi-energy-counter",
    "measured:amdsmi-power-sampling",
    "measured:apple-ioreport",
    "measured:jetson-ina3221",
    "measured:nvidia-smi-polling",  # results stored by the nvidia-smi side meter (removed): still read
    "measured:rapl",
    "estimated:tdp-utilization",
    "estimated:ram-0.375W/GB",
    "measured:codecarbon",
    "estimated:codecarbon",
    "unavailable",
)


@dataclass(frozen=True)
class ComponentEnergy:
    """Energy (J) of one component over one window; None with a ``reason`` where it could not be measured.
    ``detail``: the method's facts (RAPL domains read, TDP assumed, mean utilization, ...)."""

    energy_j: float | None
    method: str
    reason: str | None = None
    detail: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown energy method {self.method!r}; expected one of {METHODS}")
        if self.energy_j is None and not self.reason:
            raise ValueError("a component without energy must say why (reason)")
        if self.energy_j is not None and self.energy_j < 0:
            raise ValueError(f"negative energy {self.energy_j} J for method {self.method}")

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form, as stored in results."""
        return {"energy_j": self.energy_j, "method": self.method, "reason": self.reason, "detail": dict(self.detail)}


@dataclass(frozen=True)
class Reading:
    """What one meter returns for one window: wall-clock duration and per-component energy."""

    meter: str
    duration_s: float
    components: dict[str, ComponentEnergy]


@runtime_checkable
class Meter(Protocol):
    """An energy source. ``start``/``stop`` bracket one window; a meter may be reused for many windows."""

    name: str

    def components(self) -> tuple[str, ...]:
        """The components this meter reports (a subset of COMPONENTS)."""

    def start(self) -> None:
        """Open a window. Raises MeterError if the meter cannot read at all."""

    def stop(self) -> Reading:
        """Close the window opened by ``start`` and return its reading."""

    def close(self) -> None:
        """Release resources (threads, library handles). Idempotent."""


class Stopwatch:
    """Monotonic wall clock for a window (perf_counter: the highest-resolution clock Python has)."""

    def __init__(self) -> None:
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed_s(self) -> float:
        if self._t0 is None:
            raise RuntimeError("stopwatch not started")
        return time.perf_counter() - self._t0
