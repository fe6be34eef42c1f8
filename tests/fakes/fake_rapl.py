"""A powercap RAPL tree whose ``energy_uj`` counters advance with time, as the kernel's do.

``FakeRapl(root)`` writes ``intel-rapl:0`` (package-0, component cpu) and, with ``dram=True``, ``intel-rapl:0:2``
(dram, component ram) under ``root``, each following a ``PowerTrace`` (``tests/fakes/fake_pynvml.py``) in the fake's
time (seconds since it was created, on ``clock``, default ``time.perf_counter``: the meters' clock). Reads of
``energy_uj`` return the integral of the trace in microjoules from ``base_uj``, updated every ``update_period_s``
(about 1 ms on real parts) and wrapped at ``max_energy_range_uj`` as the hardware wraps. ``install(monkeypatch)``
routes the meter's single sysfs read (``bench.meters.rapl._read_text``) through the fake; every other attribute is
read from the files written here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.meters import rapl
from tests.fakes.fake_pynvml import PowerTrace

#: A real Intel package's range (uJ).
MAX_RANGE_UJ = 262_143_328_850


class FakeRapl:
    """A fake powercap tree under ``root`` with time-driven counters (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        cpu: PowerTrace | None = None,
        dram: PowerTrace | None = None,
        clock: Callable[[], float] = time.perf_counter,
        update_period_s: float = 0.001,
        base_uj: int = 123_456_789,
        max_energy_range_uj: int = MAX_RANGE_UJ,
    ) -> None:
        self.root = Path(root)
        self.traces: dict[str, PowerTrace] = {"intel-rapl:0": cpu or PowerTrace.constant(15.0)}
        self._zone(self.root / "intel-rapl:0", "package-0", max_energy_range_uj)
        if dram is not None:
            self.traces["intel-rapl:0:2"] = dram
            self._zone(self.root / "intel-rapl:0:2", "dram", max_energy_range_uj)
        self.clock = clock
        self.t0 = clock()
        self.update_period_s = update_period_s
        self.base_uj = base_uj
        self.max_energy_range_uj = max_energy_range_uj
        self.reads: list[tuple[str, float, int]] = []  # (zone, fake time, value returned)

    @staticmethod
    def _zone(path: Path, name: str, max_range: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_range}\n")
        (path / "energy_uj").write_text("0\n")

    def now(self) -> float:
        """Seconds since the fake was created."""
        return self.clock() - self.t0

    def set_power(self, zone: str, power_w: float) -> None:
        """Step ``zone`` (e.g. ``intel-rapl:0``) to ``power_w`` now."""
        self.traces[zone] = self.traces[zone].with_step(self.now(), power_w)

    def energy_uj(self, zone: str) -> int:
        """The counter's value now: the trace's integral since creation, quantized to the update period, wrapped."""
        t = self.now()
        if self.update_period_s > 0:
            t = math.floor(t / self.update_period_s) * self.update_period_s
        value = (self.base_uj + math.floor(self.traces[zone].energy_j(0.0, t) * 1e6)) % self.max_energy_range_uj
        self.reads.append((zone, t, value))
        return value

    def read_text(self, path: Path) -> str:
        """``bench.meters.rapl._read_text`` through the fake: counters from the traces, other files from disk."""
        if path.name == "energy_uj" and path.parent.name in self.traces:
            return str(self.energy_uj(path.parent.name))
        return path.read_text(encoding="ascii").strip()

    def install(self, monkeypatch: Any) -> FakeRapl:
        """Route the RAPL meter's reads through this fake for the test (pytest's ``monkeypatch``)."""
        monkeypatch.setattr(rapl, "_read_text", self.read_text)
        return self
