"""The meter protocol: ``start()`` opens a window, ``stop()`` closes it with the energy per component (gpu, cpu, ram),
each with the method that produced it (one of ``METHODS``). A component a meter does not cover is absent from its
reading; one it covers but cannot measure has ``energy_j=None`` and a ``reason``: never a silent zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


class Ticker:
    """Calls ``tick()`` every ``period_s`` in a daemon thread named ``name`` until ``stop()`` (idempotent). ``arm()``
    starts the thread waiting (starting one can take milliseconds, which must not fall inside a window); ``go(t0)``
    sets time 0 (``clock``'s), the first tick coming at ``t0 + period_s``; ``start()`` does both, now. One that falls
    behind (a slow tick, GIL contention) skips the missed ticks instead of bursting. A tick that returns False or
    raises ends the thread; the exception is kept in ``error`` (a dying thread must not lose it)."""

    def __init__(
        self, tick: Callable[[], object], period_s: float, name: str, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._tick, self.period_s, self.name, self._clock = tick, period_s, name, clock
        self._stop, self._go = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.error: BaseException | None = None

    def arm(self) -> None:
        self.stop()
        self.error = None
        self._stop.clear()
        self._go.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def go(self, t0: float) -> None:
        self._t0 = t0
        self._go.set()

    def start(self) -> None:
        self.arm()
        self.go(self._clock())

    def _loop(self) -> None:
        self._go.wait()
        next_t = self._t0 + self.period_s
        while not self._stop.wait(max(next_t - self._clock(), 0.0)):
            try:
                if self._tick() is False:
                    return
            except BaseException as exc:
                self.error = exc
                return
            next_t += self.period_s
            if next_t < (now := self._clock()):
                next_t = now + self.period_s

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._go.set()
            self._thread.join()
            self._thread = None
