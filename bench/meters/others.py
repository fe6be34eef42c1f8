"""What else ran on the machine during a window: CPU time outside the run's process tree, processes on its GPUs.

Not an energy meter: the ``MeterSet`` opens it around every window and idle baseline (``MeterSet.observe``) and hands
its record back in ``WindowReading.observed["others"]``, stored as ``Cell.others`` / ``IdleBaseline.others``
(``bench.results.OtherLoad``). Machine-scope energy (RAPL packages, CodeCarbon, a GPU's board counter) counts what
others draw, so ``bench.validation`` flags a window they shared (the profile's ``measurement.max_other_cpu_share``).

CPU: the share of others is ``(busy(end) - busy(start) - (own(end) - own(start))) / (wall_s x logical CPUs)``, busy
from ``psutil.cpu_times()`` (``bench.meters.estimate.busy_cpu_s``), own the user + system time of the run's process,
its reaped children and every live descendant. Both count in clock ticks (``SC_CLK_TCK``: 10 ms);
``resolution_share`` is the quantization bound (a tick per CPU and two per own process, over wall x CPUs), and a
window under ``MIN_JUDGED_S`` is stored but not judged (``judged`` False, with a note).

GPUs: the compute processes of each metered GPU (the GPU meter's open devices) at both edges. A pid of the run's
tree is ``own``; one not visible in this PID namespace (NVML reports host pids; a container sees its own) is stored
with ``own`` None and counted: more of them on a GPU, at one edge, than the run's own CUDA contexts there not seen by
pid (``own_contexts_per_gpu``, from the backend's ``cuda_contexts_per_gpu``; 1 by default) is another tenant
(``gpu_other_tenants``, flagged); equal counts stay unflagged. A failure leaves ``gpu_processes`` None with
``gpu_note``; it never breaks a window. psutil is imported when an observer is built.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from bench.meters.estimate import busy_cpu_s

#: The shortest window whose share of others is judged (s): 100 clock ticks, one tick about 1% of it.
MIN_JUDGED_S = 1.0
#: PIDs NVML returns when the driver and the binding disagree on the process struct (0, and 0xFFFFFFFF: NVML's "not
#: available"): never attributed to anyone, never flagged.
GARBLED_PIDS = frozenset({0, 0xFFFFFFFF})

__all__ = ["GARBLED_PIDS", "MIN_JUDGED_S", "OthersObserver", "busy_cpu_s", "clock_tick_s"]


def clock_tick_s() -> float:
    """Seconds per clock tick of the kernel's CPU-time counters (``SC_CLK_TCK``; 0.01 where it cannot be read)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        ticks = 100
    return 1.0 / ticks if ticks and ticks > 0 else 0.01


class OthersObserver:
    """Observes one window at a time: ``start()``, ``stop() -> dict`` (the fields of ``bench.results.OtherLoad``).

    ``devices``: the metered GPUs, open (``GpuMeter.devices``; None or empty: no GPU is looked at; their meter
    closes them). ``pid``: the run's process (default this one). ``psutil_module`` and ``clock`` are for tests. Never
    raises from ``start``/``stop``: what it cannot read is None with a note.
    """

    name = "others"

    def __init__(
        self,
        devices: list[Any] | None = None,
        *,
        pid: int | None = None,
        psutil_module: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if psutil_module is None:
            import psutil

            psutil_module = psutil
        self._psutil = psutil_module
        self._pid = pid if pid is not None else os.getpid()
        self._clock = clock
        self.logical_cpus = int(psutil_module.cpu_count(logical=True) or 1)
        self.tick_s = clock_tick_s()
        self.devices = list(devices or [])
        #: CUDA contexts the run's own process tree holds on each metered GPU (set per window from the backend)
        self.own_contexts_per_gpu = 1
        self._start: tuple[float, float | None, float | None, int] | None = None
        self._window_note: str | None = None
        self._gpu_start: list[dict[str, Any]] | None = None

    # --- GPUs -------------------------------------------------------------------------------------------------

    def _gpu_processes(self, at: str, own: set[int]) -> list[dict[str, Any]] | None:
        if not self.devices:
            return None
        found: list[dict[str, Any]] = []
        try:
            for device in self.devices:
                for pid, memory in device.processes():
                    name, mine = self._attribute(pid, own)
                    record = {"gpu_index": device.facts.index, "pid": pid, "used_memory_bytes": memory, "name": name}
                    found.append({**record, "own": mine, "at": at})
        except Exception as exc:
            self._window_note = f"listing the GPUs' compute processes failed: {type(exc).__name__}: {exc}"
            return None
        return found

    def _attribute(self, pid: int, own: set[int]) -> tuple[str | None, bool | None]:
        if pid in GARBLED_PIDS:  # a driver and a binding that disagree on the struct: never a real process
            self._window_note = f"NVML reported pid {pid}: garbled (driver and nvidia-ml-py mismatch?), not attributed"
            return None, None
        if pid in own:
            return self._name(pid), True
        if not self._psutil.pid_exists(pid):
            return None, None  # not visible in this PID namespace: cannot be attributed
        return self._name(pid), False

    def _name(self, pid: int) -> str | None:
        with contextlib.suppress(Exception):
            return str(self._psutil.Process(pid).name())
        return None

    # --- CPU ----------------------------------------------------------------------------------------------------

    def _own(self) -> tuple[float | None, int, set[int]]:
        """The run's process tree: its CPU time (s), how many processes, their pids."""
        try:
            proc = self._psutil.Process(self._pid)
            t = proc.cpu_times()
            total = t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
            pids = {self._pid}
            for child in proc.children(recursive=True):
                with contextlib.suppress(Exception):  # a child may exit between listing and reading
                    c = child.cpu_times()
                    total += c.user + c.system + getattr(c, "children_user", 0.0) + getattr(c, "children_system", 0.0)
                    pids.add(child.pid)
            return float(total), len(pids), pids
        except Exception:
            return None, 1, {self._pid}

    def _busy(self) -> float | None:
        with contextlib.suppress(Exception):
            return busy_cpu_s(self._psutil.cpu_times())
        return None

    # --- window -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open a window: the machine's and the run's CPU time, the GPUs' processes."""
        own_s, processes, pids = self._own()
        self._window_note = None
        self._gpu_start = self._gpu_processes("start", pids)
        self._start = (self._clock(), self._busy(), own_s, processes)

    def stop(self) -> dict[str, Any]:
        """Close the window and return its record (the fields of ``bench.results.OtherLoad``)."""
        if self._start is None:
            raise RuntimeError("OthersObserver.stop() called without start()")
        t0, busy0, own0, processes0 = self._start
        busy1 = self._busy()
        own1, processes1, pids = self._own()
        wall_s = max(self._clock() - t0, 0.0)
        self._start = None
        gpu_end = self._gpu_processes("end", pids)
        record: dict[str, Any] = {"wall_s": wall_s, "logical_cpus": self.logical_cpus}
        notes: list[str] = []
        if None in (busy0, busy1, own0, own1) or wall_s <= 0:
            notes.append("CPU times could not be read (psutil)")
        else:
            machine = float(busy1) - float(busy0)  # type: ignore[arg-type]
            own = float(own1) - float(own0)  # type: ignore[arg-type]
            capacity = wall_s * self.logical_cpus
            record.update(machine_busy_cpu_s=machine, own_cpu_s=own)
            # Kept within [0, 1]: the own tree's time (per process) and the machine's (per CPU) are counted in ticks
            # by different accounts, so on an idle machine their difference can fall a hair below zero (seen in CI:
            # -8.7e-13). The raw times stay in the record; ``resolution_share`` says how far to trust the share.
            record["other_cpu_share"] = min(1.0, max(0.0, (machine - own) / capacity))
            processes = max(processes0, processes1)
            record["resolution_share"] = self.tick_s * (self.logical_cpus + 2 * processes) / capacity
            if wall_s >= MIN_JUDGED_S:
                record["judged"] = True
            else:
                notes.append(
                    f"window {wall_s:.2f} s too short to judge: CPU time is counted in {self.tick_s * 1000:g} ms ticks "
                    f"(share resolution about {record['resolution_share']:.0%}); judged from {MIN_JUDGED_S:g} s"
                )
        record["note"] = "; ".join(notes) or None
        if self.devices:
            gpu_notes = [self._window_note] if self._window_note else []
            if self._gpu_start is not None and gpu_end is not None:
                both = record["gpu_processes"] = self._gpu_start + gpu_end
                record["gpu_other_tenants"] = self._tenants(both) or None
                unattributed = sorted({p["pid"] for p in both if p["own"] is None})
                if unattributed:
                    gpu_notes.append(
                        f"pid(s) {unattributed} on the GPUs are not visible in this PID namespace (a container?): "
                        f"counted against the run's own {self.own_contexts_per_gpu} CUDA context(s) per GPU"
                    )
            record["gpu_note"] = "; ".join(gpu_notes) or None
        self._gpu_start = None
        return record

    def _tenants(self, processes: list[dict[str, Any]]) -> dict[int, int]:
        """Per GPU, the most processes at one edge that could not be attributed by pid beyond the run's own
        contexts not seen by pid (garbled pids left out): other tenants."""
        out: dict[int, int] = {}
        for gpu, at in {(p["gpu_index"], p["at"]) for p in processes}:
            here = [p for p in processes if p["gpu_index"] == gpu and p["at"] == at and p["pid"] not in GARBLED_PIDS]
            own_seen = len({p["pid"] for p in here if p["own"] is True})
            hidden = len({p["pid"] for p in here if p["own"] is None})
            extra = hidden - max(0, self.own_contexts_per_gpu - own_seen)
            if extra > 0:
                out[gpu] = max(out.get(gpu, 0), extra)
        return out

    def close(self) -> None:
        """Nothing to release: the GPU meter closes the devices."""
