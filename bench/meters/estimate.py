"""Labelled estimates for machines without energy counters (no RAPL: most VMs and containers), never reported as
measurements: ``CpuEstimateMeter`` (TDP x system-wide CPU utilization x duration, ``estimated:tdp-utilization``) and
``RamEstimateMeter`` (0.375 W per GB of RAM x duration, ``estimated:ram-0.375W/GB``: the flat rule of CodeCarbon 2.x,
which the paper's numbers contain; CodeCarbon 3.x switched to a per-DIMM model).
"""

from __future__ import annotations

import contextlib
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

#: CPU power when neither a profile nor CodeCarbon's table gives a TDP: 4 W per logical CPU, CodeCarbon 3.x's own
#: fallback (DEFAULT_POWER_PER_CORE); it scales with what the OS shows (a 2-vCPU slice 8 W, 16 threads 64 W).
DEFAULT_W_PER_LOGICAL_CPU = 4.0
#: The paper's RAM rule: CodeCarbon's flat 3 W per 8 GB = 0.375 W per GB of machine RAM.
DEFAULT_RAM_W_PER_GB = 0.375


# --- CPU model and TDP lookup -----------------------------------------------------------------------------------


def _cpuinfo() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    return ""


def cpu_model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo ("model name"), else what ``platform`` knows, else "unknown"."""
    found = re.search(r"^model name\s*:\s*(.*)$", _cpuinfo(), flags=re.MULTILINE | re.IGNORECASE)
    return found.group(1).strip() if found else platform.processor() or platform.machine() or "unknown"


def _cpu_packages() -> int:
    """Number of physical CPU packages (sockets) from sysfs topology; 1 when it cannot be read."""
    with contextlib.suppress(OSError):
        files = Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/physical_package_id")
        return max(1, len({f.read_text().strip() for f in files}))
    return 1


def _is_virtualized() -> bool:
    """True when /proc/cpuinfo shows the ``hypervisor`` flag: a table TDP is then the whole host chip's, not ours."""
    return bool(re.search(r"^flags\s*:.*\bhypervisor\b", _cpuinfo(), flags=re.MULTILINE))


def codecarbon_cpu_table_path() -> Path | None:
    """Path of CodeCarbon's bundled CPU power table, found without importing codecarbon (its import is heavy)."""
    try:
        spec = importlib.util.find_spec("codecarbon")
    except (ImportError, ValueError):
        return None
    for location in (spec and spec.submodule_search_locations) or []:
        if (candidate := Path(location) / "data" / "hardware" / "cpu_power.csv").is_file():
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


def _unique_tdp(rows: list[tuple[str, float]]) -> tuple[str, float] | None:
    return rows[0] if rows and len({w for _, w in rows}) == 1 else None


def match_cpu_tdp(model: str, table: tuple[tuple[str, float], ...]) -> tuple[str, float] | None:
    """Find ``model`` in a (name, TDP W) table, as CodeCarbon does: exact (case-insensitive), then token subset.

    Token rule (CodeCarbon's token_set_ratio == 100): the most specific table name (with a digit) whose tokens are
    all in the model's, else a table name containing all of the model's tokens. Equally good names with different
    TDPs give None rather than a guess: "AMD EPYC" alone names no chip.
    """
    wanted = _normalize_model(model)
    by_lower = {n.lower(): (n, w) for n, w in table}
    for candidate in (model.strip().lower(), wanted.lower()):
        if candidate in by_lower:
            return by_lower[candidate]
    model_tokens = _tokens(wanted)
    if not model_tokens:
        return None
    inside = [(n, w) for n, w in table if any(c.isdigit() for c in n) and _tokens(n) and _tokens(n) <= model_tokens]
    if inside:
        best_len = max(len(_tokens(n)) for n, _ in inside)
        return _unique_tdp([(n, w) for n, w in inside if len(_tokens(n)) == best_len])
    if any(c.isdigit() for c in wanted):  # the model's name abbreviated inside a table name
        return _unique_tdp([(n, w) for n, w in table if model_tokens <= _tokens(n)])
    return None


@dataclass(frozen=True)
class TdpResolution:
    """The CPU power assumed by the estimate and where it came from."""

    tdp_w: float
    source: str  # "profile", "codecarbon-cpu-table:<name>", or "default"
    cpu_model: str
    packages: int


def resolve_cpu_tdp(tdp_w: float | None = None, cpu_model: str | None = None) -> TdpResolution:
    """The machine's total CPU TDP (W): ``tdp_w``, else CodeCarbon's table x sockets, else the default. MeterError
    for a TDP not above 0."""
    model = cpu_model if cpu_model is not None else cpu_model_name()
    packages = _cpu_packages()
    if tdp_w is not None:
        if tdp_w <= 0:
            raise MeterError(f"cpu TDP must be positive, got {tdp_w} W (profile field cpu_tdp_w)")
        return TdpResolution(float(tdp_w), "profile", model, packages)
    table_path = codecarbon_cpu_table_path()
    try:
        match = match_cpu_tdp(model, _load_cpu_table(table_path)) if table_path else None
    except OSError:
        match = None
    if match is not None:  # the table is per chip: a multi-socket machine has one per package
        return TdpResolution(match[1] * packages, f"codecarbon-cpu-table:{match[0]}", model, packages)
    return TdpResolution(DEFAULT_W_PER_LOGICAL_CPU * (os.cpu_count() or 1), "default", model, packages)


# --- CPU utilization and the meters --------------------------------------------------------------------------------


def busy_cpu_s(times: Any) -> float:
    """Busy CPU time (s) in a ``psutil.cpu_times()`` record: every field but idle and iowait (time waiting on I/O:
    the cores are not computing), guest time once (Linux counts it inside user and nice too)."""
    total = sum(float(getattr(times, f)) for f in getattr(times, "_fields", ()))
    total -= float(getattr(times, "guest", 0.0)) + float(getattr(times, "guest_nice", 0.0))
    return total - float(getattr(times, "idle", 0.0)) - float(getattr(times, "iowait", 0.0))


def busy_fraction(before: Any, after: Any) -> float:
    """System-wide busy fraction (0..1) over all logical CPUs between two ``psutil.cpu_times()`` snapshots."""
    busy = busy_cpu_s(after) - busy_cpu_s(before)
    total = busy + after.idle - before.idle + getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0)
    return min(max(busy / total, 0.0), 1.0) if total > 0 else 0.0


class _Estimate:
    """Power x time over a window, one component: ``_power_w(start_mark, now_mark)`` and ``_mark()`` say which.
    ``energy_so_far_j`` (J, for the power series) and ``stop`` read the same; MeterError outside a window."""

    name: str
    method: str
    component: str

    def __init__(self) -> None:
        self._stopwatch = Stopwatch()
        self._start: Any = None

    def components(self) -> tuple[str, ...]:
        """The one component."""
        return (self.component,)

    def _mark(self) -> Any:
        return True

    def _power_w(self, start: Any, now: Any) -> tuple[float, dict[str, object]]:
        raise NotImplementedError

    def start(self) -> None:
        """Open a window."""
        self._start = self._mark()
        self._stopwatch.start()

    def energy_so_far_j(self) -> dict[str, float]:
        """The estimate for the window so far (J), for the power series."""
        if self._start is None:
            raise MeterError(f"{type(self).__name__}.energy_so_far_j() called outside a window")
        power_w, _ = self._power_w(self._start, self._mark())
        return {self.component: power_w * self._stopwatch.elapsed_s()}

    def stop(self) -> Reading:
        """Close the window: energy = power x duration."""
        if self._start is None:
            raise MeterError(f"{type(self).__name__}.stop() called without start()")
        now, duration_s = self._mark(), self._stopwatch.elapsed_s()
        (power_w, detail), self._start = self._power_w(self._start, now), None
        energy = ComponentEnergy(power_w * duration_s, self.method, detail={**self.describe(), **detail})
        return Reading(meter=self.name, duration_s=duration_s, components={self.component: energy})

    def close(self) -> None:
        """Nothing to release."""


class CpuEstimateMeter(_Estimate):
    """CPU energy: TDP x mean system-wide utilization (``psutil.cpu_times()`` at both edges: exact mean, no thread) x
    duration. ``tdp_w``: the machine's total CPU TDP (all sockets); None resolves it (``resolve_cpu_tdp``)."""

    name, method, component = "cpu-estimate", "estimated:tdp-utilization", "cpu"
    #: CPU times count in clock ticks (10 ms on Linux): the power-series bin floor follows from it.
    counter_period_s = 0.01

    def __init__(self, tdp_w: float | None = None) -> None:
        super().__init__()
        self.tdp = resolve_cpu_tdp(tdp_w)
        self._logical_cpus = os.cpu_count() or 1
        self._virtualized = _is_virtualized()

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

    def _mark(self) -> Any:
        import psutil

        return psutil.cpu_times()

    def _power_w(self, start: Any, now: Any) -> tuple[float, dict[str, object]]:
        utilization = busy_fraction(start, now)
        power_w = self.tdp.tdp_w * utilization
        return power_w, {"mean_utilization": utilization, "power_w": power_w}


class RamEstimateMeter(_Estimate):
    """RAM energy: ``w_per_gb`` x installed RAM (GB, 1e9 bytes; None: this machine's) x duration (the paper's rule)."""

    name, method, component = "ram-estimate", "estimated:ram-0.375W/GB", "ram"
    #: A constant has no time resolution: its power series is one bin over the whole window (``bench.meters.series``).
    counter_period_s = math.inf

    def __init__(self, total_gb: float | None = None, w_per_gb: float = DEFAULT_RAM_W_PER_GB) -> None:
        super().__init__()
        if total_gb is None:
            import psutil

            total_gb = psutil.virtual_memory().total / 1e9
        if total_gb <= 0 or w_per_gb <= 0:
            raise MeterError(f"RAM estimate needs positive total_gb and w_per_gb, got {total_gb} GB, {w_per_gb} W/GB")
        self.total_gb, self.w_per_gb = float(total_gb), float(w_per_gb)

    @property
    def power_w(self) -> float:
        """Constant RAM power assumed, W."""
        return self.total_gb * self.w_per_gb

    def describe(self) -> dict[str, object]:
        """The assumptions behind the estimate."""
        return {"total_gb": self.total_gb, "w_per_gb": self.w_per_gb, "power_w": self.power_w}

    def _power_w(self, start: Any, now: Any) -> tuple[float, dict[str, object]]:
        return self.power_w, {}
