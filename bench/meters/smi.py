"""GPU power polled from ``nvidia-smi``: a side meter to compare with NVML's energy counter over the same window.

``nvidia-smi --query-gpu=index,power.draw --format=csv,noheader,nounits -lms 100 -i <indices>`` prints one line per
GPU every 100 ms (``power.draw`` in watts). A reader thread stamps each line with the meter's clock as it arrives; the
window's energy per GPU is the trapezoidal integral of those samples, held constant from the window's start edge to
the first sample and from the last sample to the end edge. Method label ``measured:nvidia-smi-polling``.

It reads the same driver as NVML (``power.draw`` is NVML's power reading), so it checks the kit's sampling and the
counter against the tool people already trust, through a different process and timestamping path. Where nvidia-smi
is absent (CPU machines, CI, containers without the NVIDIA utilities) ``nvidia_smi_available`` says why, and the
meter is left out with that reason (never a zero).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from bench.errors import MeterError
from bench.meters.base import ComponentEnergy, Reading
from bench.meters.gpu import integrate_trapezoid_j

NVIDIA_SMI_METHOD = "measured:nvidia-smi-polling"
#: Polling period asked of nvidia-smi (``-lms``), milliseconds.
POLL_MS = 100


def nvidia_smi_available() -> tuple[bool, str]:
    """Whether ``nvidia-smi`` is on PATH, and why not."""
    path = shutil.which("nvidia-smi")
    if path is None:
        return False, (
            "nvidia-smi not found on PATH (no NVIDIA driver utilities here: a CPU machine, CI, or a container "
            "started without them)"
        )
    return True, path


class NvidiaSmiMeter:
    """GPU energy (component ``gpu``) of ``indices`` from ``nvidia-smi`` power polling every ``POLL_MS`` ms.

    ``command``: the program to run instead of ``nvidia-smi`` (tests use a stand-in script that prints the same
    lines). ``clock``: monotonic seconds. Raises MeterError at start when the program cannot be started.
    """

    name = "nvidia-smi"
    method = NVIDIA_SMI_METHOD

    def __init__(
        self,
        indices: Sequence[int],
        *,
        command: Sequence[str] | None = None,
        poll_ms: int = POLL_MS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not indices:
            raise MeterError("nvidia-smi meter: no GPU index to poll")
        self.indices = [int(i) for i in indices]
        self.poll_ms = int(poll_ms)
        self._command = list(command) if command is not None else ["nvidia-smi"]
        self._clock = clock
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._samples: dict[int, list[tuple[float, float]]] = {}
        self._bad_lines = 0
        self._t_start = 0.0

    def argv(self) -> list[str]:
        """The full command line."""
        return [
            *self._command,
            "--query-gpu=index,power.draw",
            "--format=csv,noheader,nounits",
            "-lms",
            str(self.poll_ms),
            "-i",
            ",".join(map(str, self.indices)),
        ]

    def components(self) -> tuple[str, ...]:
        """``("gpu",)``."""
        return ("gpu",)

    def describe(self) -> dict[str, object]:
        """The command and the GPUs polled."""
        return {"command": " ".join(self.argv()), "indices": self.indices, "poll_ms": self.poll_ms}

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            t = self._clock()
            parts = [p.strip() for p in line.split(",")]
            try:
                index, power_w = int(parts[0]), float(parts[1])
            except (ValueError, IndexError):  # "[N/A]", a header, a warning: counted, not integrated
                self._bad_lines += 1
                continue
            if index in self._samples:
                self._samples[index].append((t, power_w))

    def start(self) -> None:
        """Start polling (the process, and a thread reading its lines)."""
        if self._proc is not None:
            raise MeterError("NvidiaSmiMeter.start() called twice without stop()")
        self._samples = {i: [] for i in self.indices}
        self._bad_lines = 0
        try:
            self._proc = subprocess.Popen(
                self.argv(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
            )
        except OSError as exc:
            raise MeterError(f"nvidia-smi could not be started: {exc}") from exc
        self._thread = threading.Thread(target=self._read, args=(self._proc,), name="bench-nvidia-smi", daemon=True)
        self._thread.start()
        self._t_start = self._clock()

    def _end_process(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._proc = None
        self._thread = None

    def stop(self) -> Reading:
        """Stop polling and integrate each GPU's samples over the window."""
        if self._proc is None:
            raise MeterError("NvidiaSmiMeter.stop() called without start()")
        t_stop = self._clock()
        self._end_process()
        duration_s = t_stop - self._t_start
        records: list[dict[str, object]] = []
        total_j = 0.0
        missing: list[int] = []
        for index in self.indices:
            samples = sorted(s for s in self._samples[index] if self._t_start <= s[0] <= t_stop)
            if not samples:
                missing.append(index)
                continue
            held = [(self._t_start, samples[0][1]), *samples, (t_stop, samples[-1][1])]
            energy_j = integrate_trapezoid_j(held)
            total_j += energy_j
            records.append(
                {
                    "index": index,
                    "energy_j": energy_j,
                    "power_w": energy_j / duration_s if duration_s > 0 else None,
                    "samples": len(samples),
                    "duration_s": duration_s,
                }
            )
        detail: dict[str, object] = {"gpus": records, "poll_ms": self.poll_ms, "unparsed_lines": self._bad_lines}
        if missing:
            reason = f"nvidia-smi printed no power reading for GPU(s) {missing} in this {duration_s:.2f} s window"
            energy = ComponentEnergy(None, NVIDIA_SMI_METHOD, reason=reason, detail=detail)
        else:
            energy = ComponentEnergy(total_j, NVIDIA_SMI_METHOD, detail=detail)
        return Reading(meter=self.name, duration_s=duration_s, components={"gpu": energy})

    def close(self) -> None:
        """Stop the process if a window is open. Idempotent."""
        with contextlib.suppress(Exception):
            self._end_process()
