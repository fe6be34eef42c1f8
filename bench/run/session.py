"""A session of a run on this machine: its meters and its idle baselines.

One meter set is built for the session from the profile and the settings (spread over every node of a multi-node
allocation: ``bench.meters.multinode``), and narrowed, per LLM placement of a host run, to the GPUs that placement
uses. Idle power is measured with the same meters at the start and at the end of the session; a drift between the
two becomes a run warning. SIGTERM (Slurm, container runtimes) is handled like Ctrl-C so the partial result is kept.
The calibration job of a session belongs here too.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.config import HardwareProfile
from bench.errors import BenchError
from bench.fsutil import now_iso
from bench.meters import build_meter_set, multinode
from bench.meters.others import OthersObserver
from bench.results import IdleBaseline, ResultDocument
from bench.run.cell import other_load
from bench.validation import drift_warnings, idle_drift

COMPONENTS = ("gpu", "cpu", "ram")


class Session:
    """The meters of one session: the run's set, and one per GPU count of the LLM placements it meets (host runs).

    Built before the run folder exists, so a machine that cannot be metered as asked (no Ray cluster for
    ``--nodes``) leaves no empty run behind. ``close`` closes every set it built.

    Raises MeterError (from ``bench.meters``) when a meter the settings ask for cannot be opened.
    """

    def __init__(self, profile: HardwareProfile, settings: dict[str, Any], *, nodes: int = 1) -> None:
        self.profile = profile
        self.meter_kwargs: dict[str, Any] = dict(
            cpu_tdp_w=profile.hardware.cpu_tdp_w,
            codecarbon=settings["codecarbon"],
            country_iso_code=settings["country_iso_code"],
            codecarbon_measure_power_secs=settings["codecarbon_measure_power_s"],
            use_gpu=profile.hardware.on_gpus,
            device=profile.hardware.device,
        )
        self.meter_set: Any = build_meter_set(**self.meter_kwargs)
        if profile.hardware.device == "mps":
            refuse_unmetered_soc(self.meter_set)
        observe_others(self.meter_set)
        self._placed: dict[int, Any] = {}  # GPU count -> meter set over that many GPUs (host runs of placements)
        try:
            if nodes > 1:
                # The paper's multi-node numbers: every node's meters over the same window, energy summed, duration
                # max. Looked up on the module at call time (tests stand a second node's meters in for Ray's).
                self.meter_set = multinode.connect_ray_nodes(self.meter_set, self.meter_kwargs, expected_nodes=nodes)
        except BaseException:
            self.meter_set.close()
            raise
        # The window minimum applies whatever the meter: the run's setting, raised to the meters' floor where higher
        # (NVML's counter refreshes every ~100 ms, so GPU windows need 10 s for 1% resolution).
        self.min_window_s = max(float(settings["min_window_s"]), self.meter_set.min_window_s)

    def describe(self) -> dict[str, Any]:
        """The meters as the results' ``meters`` record them."""
        return self.meter_set.describe()

    def meters_for(self, gpus: int | None) -> tuple[Any, list[int] | None]:
        """The meter set for a placement of ``gpus`` GPUs: the first ``gpus`` GPUs the session meters (built once per
        count), and their indices; the session's set itself (indices None) when there is nothing to narrow."""
        gpu_meter = self.meter_set.owner("gpu") if hasattr(self.meter_set, "owner") else None
        visible = list(getattr(gpu_meter, "indices", []) or [])
        if gpus is None or not visible or gpus >= len(visible):
            return self.meter_set, (visible[:gpus] if gpus is not None and visible else None)
        if gpus not in self._placed:
            self._placed[gpus] = build_meter_set(**self.meter_kwargs, gpu_indices=visible[:gpus])
            observe_others(self._placed[gpus])
        return self._placed[gpus], visible[:gpus]

    def measure_idle(self, duration_s: float, session: int, phase: str = "start") -> IdleBaseline:
        """Idle power per component over ``duration_s`` (at least the meters' minimum window) with the cells' meters."""
        return measure_idle(self.meter_set, duration_s, session, phase)

    def end_of_session_idle(self, document: ResultDocument, duration_s: float, session: int) -> list[str]:
        """Measure the end-of-session idle baseline, store it with its drift against the session's start in
        ``document``, and return the drift warnings (also added to the document's warnings)."""
        end = self.measure_idle(duration_s, session, phase="end")
        start = next((i for i in document.idle if i.session == session and i.phase == "start"), None)
        warnings: list[str] = []
        if start is not None:
            end.drift = idle_drift(start, end)
            warnings = drift_warnings(start, end)
        document.idle.append(end)
        document.warnings.extend(warnings)
        return warnings

    def close(self) -> None:
        """Close every meter set of the session."""
        for extra in self._placed.values():
            extra.close()
        self.meter_set.close()


def measure_idle(meter_set: Any, duration_s: float, session: int, phase: str = "start") -> IdleBaseline:
    """Idle power per component over ``duration_s`` (at least the meters' minimum window) with ``meter_set``."""
    duration_s = max(duration_s, float(getattr(meter_set, "min_window_s", 0.0) or 0.0))
    meter_set.start()
    time.sleep(duration_s)
    reading = meter_set.stop()
    power: dict[str, float | None] = {}
    methods: dict[str, str] = {}
    reasons: dict[str, str | None] = {}
    detail: dict[str, Any] = {}
    for component in COMPONENTS:
        ce = reading.components[component]
        # Over the component's own meter window: the set's window is a little shorter (its meters start before and
        # stop after it), and that start/stop skew alone would read as a drift of a constant estimate.
        power[component] = reading.power_w(component)
        methods[component] = ce.method
        reasons[component] = ce.reason
        if ce.detail:
            detail[component] = dict(ce.detail)
    return IdleBaseline(
        session=session,
        measured_at=now_iso(),
        duration_s=reading.duration_s,
        power_w=power,
        methods=methods,
        reasons=reasons,
        phase=phase,  # type: ignore[arg-type]
        detail=detail,
        others=other_load(reading),
    )


def observe_others(meter_set: Any) -> None:
    """Have ``meter_set`` observe, around every window, what else runs on the machine (``bench.meters.others``): the
    CPU time outside this process tree and the processes on the GPUs it meters. Multi-node sets (no ``observe``)
    are left alone: their cells and baselines then carry no ``others`` record."""
    if not hasattr(meter_set, "observe"):
        return
    meter_set.observe(OthersObserver(getattr(meter_set.owner("gpu"), "devices", None)))


def host_placement_gpus(spec: Any, profile: HardwareProfile, *, gpus: int | None, nodes: int) -> int | None:
    """GPUs an LLM's placement uses in a host run (a CUDA profile, one node, no ``--gpus``); None otherwise.

    vLLM's tensor parallelism takes the first ``gpus_per_node`` visible GPUs (``bench.run.models``), so those are the
    GPUs the cells must meter: metering every visible GPU would give ``@1x1``, ``@1x2`` and ``@1x4`` the same GPUs
    and make the paper's GPU-count sweep meaningless. A Slurm task (``--gpus``) sees only its allocation already, and
    a traditional model keeps the whole-node metering the profile describes.
    """
    if spec.kind != "llm" or gpus is not None or nodes > 1 or not profile.hardware.on_gpus:
        return None
    from bench.catalog.placement import placement_for

    try:
        return placement_for(spec, profile, max_nodes=1).gpus_per_node
    except BenchError:
        return None  # the model cannot be placed here: its load fails with the reason, its cells carry it


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Slurm and container runtimes stop jobs with SIGTERM: treat it like Ctrl-C so the partial result is kept."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def refuse_unmetered_soc(meter_set: Any) -> None:
    """An mps run needs the SoC meter (``bench.meters.soc``: Zeus's ``get_soc()`` with ``zeus-apple-silicon``) to
    meter the chip's GPU; without it the GPU's energy would be missing from every cell. Raises MeterError, closing
    the meter set, before any energy is spent (``bench.meters.unmetered_soc_refusal``, which `bench env` shows)."""
    from bench.errors import MeterError
    from bench.meters import unmetered_soc_refusal

    why = unmetered_soc_refusal(meter_set.describe(), "mps")
    if why is None:
        return
    meter_set.close()
    raise MeterError(why)
