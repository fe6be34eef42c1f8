"""Labelled estimates for machines without energy counters (no RAPL, e.g. most VMs and containers).

- ``CpuEstimateMeter``: energy = TDP x system-wide CPU utilization x duration (``estimated:tdp-utilization``).
- ``RamEstimateMeter``: energy = 0.375 W per GB of machine RAM x duration (``estimated:ram-0.375W/GB``), the flat
  rule CodeCarbon 2.x used and the paper's numbers therefore contain (CodeCarbon 3.x switched to a per-DIMM model).

Both are estimates by construction and say so in their method label; they are never reported as measurements.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import platform
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.errors import MeterError
from bench.meters.base import ComponentEnergy, Reading, Stopwatch

#: Fallback CPU power when neither a profile nor CodeCarbon's table gives a TDP: 4 W per logical CPU. This is the
#: per-thread constant CodeCarbon 3.x itself falls back to for CPUs it does not know (DEFAULT_POWER_PER_CORE), and it
#: scales with what the OS shows us: a 2-vCPU cloud slice gets 8 W rather than a whole 64-core package's 200+ W,
#: while a desktop with 16 threads gets 64 W, close to typical desktop TDPs.
DEFAULT_W_PER_LOGICAL_CPU = 4.0

#: The paper's RAM rule: CodeCarbon's flat 3 W per 8 GB = 0.375 W per GB of machine RAM.
DEFAULT_RAM_W_PER_GB = 0.375


# --- CPU model and TDP lookup -----------------------------------------------------------------------------------


def cpu_model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo ("model name"), else what ``platform`` knows, else "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_packages() -> int:
    """Number of physical CPU packages (sockets) from sysfs topology; 1 when it cannot be read."""
    ids: set[str] = set()
    base = Path("/sys/devices/system/cpu")
    try:
        for f in base.glob("cpu[0-9]*/topology/physical_package_id"):
            ids.add(f.read_text().strip())
    except OSError:
        pass
    return max(1, len(ids))


def _is_virtualized() -> bool:
    """True when /proc/cpuinfo shows the ``hypervisor`` flag: a table TDP is then the whole host chip's, not ours."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"^flags\s*:.*\bhypervisor\b", text, flags=re.MULTILINE))


def codecarbon_cpu_table_path() -> Path | None:
    """Path of CodeCarbon's bundled CPU power table, found without importing codecarbon (its import is heavy)."""
    try:
        spec = importlib.util.find_spec("codecarbon")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "hardware" / "cpu_power.csv"
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=4)
def _load_cpu_table(path: Path) -> tuple[tuple[str, float], ...]:
    rows: list[tuple[str, float]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                rows.append((row["Name"].strip(), float(row["TDP"])))
            except (KeyError, TypeError, ValueError):
                continue
    return tuple(rows)


def _normalize_model(name: str) -> str:
    """Strip decorations the way CodeCarbon does before matching: (R), (TM), " CPU @ 2.50GHz", "N-Core Processor"."""
    s = name.replace("(R)", " ").replace("(TM)", " ").replace("(tm)", " ")
    s = re.sub(r"\s+CPU\s*@.*$", "", s)
    s = re.sub(r"\s*@\s*\d+(\.\d+)?\s*GHz", "", s, flags=re.IGNORECASE)
    s = re.sub(r"\b\d+-Core\b", " ", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(CPU|Processor)\b", " ", s, flags=re.IGNORECASE)
    return " ".join(s.split())


def _tokens(name: str) -> frozenset[str]:
    return frozenset(t for t in re.split(r"[^0-9a-z]+", name.lower()) if t)


def match_cpu_tdp(model: str, table: tuple[tuple[str, float], ...]) -> tuple[str, float] | None:
    """Find ``model`` in a (name, TDP W) table, as CodeCarbon does: exact (case-insensitive), then token subset.

    Token rule (CodeCarbon's token_set_ratio == 100): a table name whose tokens are all in the model's (prefer the
    most specific such name), else a unique table name containing all of the model's tokens. Ambiguity (several
    equally good names with different TDPs) returns None rather than a guess: "AMD EPYC" alone names no chip.
    """
    wanted = _normalize_model(model)
    by_lower = {n.lower(): (n, w) for n, w in table}
    for candidate in (model.strip().lower(), wanted.lower()):
        if candidate in by_lower:
            return by_lower[candidate]
    model_tokens = _tokens(wanted)
    if not model_tokens:
        return None
    # A table name inside the model's name: the most specific (most tokens) wins. Only names with a digit count,
    # so a bare vendor/family word can never match.
    inside = [(n, w) for n, w in table if any(c.isdigit() for c in n) and _tokens(n) and _tokens(n) <= model_tokens]
    if inside:
        best_len = max(len(_tokens(n)) for n, _ in inside)
        best = [(n, w) for n, w in inside if len(_tokens(n)) == best_len]
        if len({w for _, w in best}) == 1:
            return best[0]
        return None
    # The model's name inside a table name (the model string is abbreviated): only when unambiguous.
    if any(c.isdigit() for c in wanted):
        containing = [(n, w) for n, w in table if model_tokens <= _tokens(n)]
        if containing and len({w for _, w in containing}) == 1:
            return containing[0]
    return None


@dataclass(frozen=True)
class TdpResolution:
    """The CPU power assumed by the estimate and where it came from."""

    tdp_w: float
    source: str  # "profile", "codecarbon-cpu-table:<name>", or "default"
    cpu_model: str
    packages: int


def resolve_cpu_tdp(tdp_w: float | None = None, cpu_model: str | None = None) -> TdpResolution:
    """Resolve the machine's total CPU TDP in watts: explicit value, else CodeCarbon's table x sockets, else default."""
    model = cpu_model if cpu_model is not None else cpu_model_name()
    packages = _cpu_packages()
    if tdp_w is not None:
        if tdp_w <= 0:
            raise MeterError(f"cpu TDP must be positive, got {tdp_w} W (profile field cpu_tdp_w)")
        return TdpResolution(float(tdp_w), "profile", model, packages)
    table_path = codecarbon_cpu_table_path()
    if table_path is not None:
        try:
            match = match_cpu_tdp(model, _load_cpu_table(table_path))
        except OSError:
            match = None
        if match is not None:
            # The table is per chip; a multi-socket machine has one per package.
            return TdpResolution(match[1] * packages, f"codecarbon-cpu-table:{match[0]}", model, packages)
    logical = os.cpu_count() or 1
    return TdpResolution(DEFAULT_W_PER_LOGICAL_CPU * logical, "default", model, packages)


# --- CPU utilization --------------------------------------------------------------------------------------------


def _total_s(times: Any) -> float:
    # On Linux guest/guest_nice are already included in user/nice; adding them would count them twice.
    return float(sum(times)) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _busy_s(times: Any) -> float:
    # iowait is idle time spent waiting on I/O: the cores are not computing.
    return _total_s(times) - times.idle - getattr(times, "iowait", 0.0)


def busy_fraction(before: Any, after: Any) -> float:
    """System-wide busy fraction (0..1) over all logical CPUs between two ``psutil.cpu_times()`` snapshots."""
    total = _total_s(after) - _total_s(before)
    if total <= 0:
        return 0.0
    return min(max((_busy_s(after) - _busy_s(before)) / total, 0.0), 1.0)


class CpuEstimateMeter:
    """CPU energy estimated as TDP x mean system-wide utilization x window duration.

    ``tdp_w`` is the machine's total CPU TDP (all sockets); None resolves it (CodeCarbon table, else default).
    Utilization comes from ``psutil.cpu_times()`` at start and stop: no sampling thread, exact mean over the window.
    """

    name = "cpu-estimate"
    method = "estimated:tdp-utilization"
    #: CPU times count in clock ticks (10 ms on Linux): the power-series bin floor follows from it.
    counter_period_s = 0.01

    def __init__(self, tdp_w: float | None = None) -> None:
        self.tdp = resolve_cpu_tdp(tdp_w)
        self._logical_cpus = os.cpu_count() or 1
        self._virtualized = _is_virtualized()
        self._before: Any = None
        self._stopwatch = Stopwatch()

    def components(self) -> tuple[str, ...]:
        """``("cpu",)``."""
        return ("cpu",)

    def describe(self) -> dict[str, object]:
        """The assumptions behind the estimate (for results and the CLI)."""
        return {
            "tdp_w": self.tdp.tdp_w,
            "tdp_source": self.tdp.source,
            "cpu_model": self.tdp.cpu_model,
            "cpu_packages": self.tdp.packages,
            "logical_cpus": self._logical_cpus,
            "virtualized": self._virtualized,
        }

    def start(self) -> None:
        """Open a window: snapshot the system CPU times."""
        import psutil

        self._before = psutil.cpu_times()
        self._stopwatch.start()

    def energy_so_far_j(self) -> dict[str, float]:
        """The estimate for the window so far (J): TDP x busy fraction since ``start`` x elapsed time, with the CPU
        times read now, so at ``stop`` it equals the window's energy; for the power series (``bench.meters.series``).
        Raises MeterError outside a window."""
        import psutil

        before = self._before
        if before is None:
            raise MeterError("CpuEstimateMeter.energy_so_far_j() called outside a window")
        return {"cpu": self.tdp.tdp_w * busy_fraction(before, psutil.cpu_times()) * self._stopwatch.elapsed_s()}

    def stop(self) -> Reading:
        """Close the window: energy = TDP x busy fraction x duration."""
        import psutil

        if self._before is None:
            raise MeterError("CpuEstimateMeter.stop() called without start()")
        after = psutil.cpu_times()
        duration_s = self._stopwatch.elapsed_s()
        utilization = busy_fraction(self._before, after)
        self._before = None
        detail = {**self.describe(), "mean_utilization": utilization, "power_w": self.tdp.tdp_w * utilization}
        energy = ComponentEnergy(self.tdp.tdp_w * utilization * duration_s, self.method, detail=detail)
        return Reading(meter=self.name, duration_s=duration_s, components={"cpu": energy})

    def close(self) -> None:
        """Nothing to release."""


class RamEstimateMeter:
    """RAM energy estimated as ``w_per_gb`` x installed RAM (GB, 1e9 bytes) x window duration (the paper's rule)."""

    name = "ram-estimate"
    method = "estimated:ram-0.375W/GB"
    #: A constant has no time resolution: its power series is one bin over the whole window (``bench.meters.series``).
    counter_period_s = math.inf

    def __init__(self, total_gb: float | None = None, w_per_gb: float = DEFAULT_RAM_W_PER_GB) -> None:
        if total_gb is None:
            import psutil

            total_gb = psutil.virtual_memory().total / 1e9
        if total_gb <= 0 or w_per_gb <= 0:
            raise MeterError(f"RAM estimate needs positive total_gb and w_per_gb, got {total_gb} GB, {w_per_gb} W/GB")
        self.total_gb = float(total_gb)
        self.w_per_gb = float(w_per_gb)
        self._stopwatch = Stopwatch()
        self._running = False

    @property
    def power_w(self) -> float:
        """Constant RAM power assumed, in watts."""
        return self.total_gb * self.w_per_gb

    def components(self) -> tuple[str, ...]:
        """``("ram",)``."""
        return ("ram",)

    def describe(self) -> dict[str, object]:
        """The assumptions behind the estimate."""
        return {"total_gb": self.total_gb, "w_per_gb": self.w_per_gb, "power_w": self.power_w}

    def start(self) -> None:
        """Open a window."""
        self._stopwatch.start()
        self._running = True

    def energy_so_far_j(self) -> dict[str, float]:
        """Power x time since ``start`` (J), for the power series; raises MeterError outside a window."""
        if not self._running:
            raise MeterError("RamEstimateMeter.energy_so_far_j() called outside a window")
        return {"ram": self.power_w * self._stopwatch.elapsed_s()}

    def stop(self) -> Reading:
        """Close the window: energy = power x duration."""
        if not self._running:
            raise MeterError("RamEstimateMeter.stop() called without start()")
        self._running = False
        duration_s = self._stopwatch.elapsed_s()
        energy = ComponentEnergy(self.power_w * duration_s, self.method, detail=self.describe())
        return Reading(meter=self.name, duration_s=duration_s, components={"ram": energy})

    def close(self) -> None:
        """Nothing to release."""
