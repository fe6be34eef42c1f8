"""The entry point of a run, as the CLI and Slurm tasks call it: ``run(RunRequest(...))``.

The work lives in ``bench.run`` by responsibility (see its docstring): ``request`` (what was asked), ``resolve``
(the request resolved once into a ``RunPlan``: the ad-hoc suite, a stored run's request, suite, settings and their
hash, checks), ``plan`` (the pieces: suite overrides, settings, data sets, resume), ``session`` (meters, idle
baselines), ``models`` (backends on this profile), ``cell`` (fit, warm-up, the metered window, validity),
``progress`` (bar and ETA) and ``loop`` (the grid, persisted after every cell). This module names what callers use,
so they need not know the rooms.
"""

from __future__ import annotations

from bench.run.cell import measure_window
from bench.run.loop import RunInterrupted, RunOutcome, run
from bench.run.plan import WARMUP_TEXTS, hashed_profile, run_settings, settings_sha256
from bench.run.request import RunRequest
from bench.run.resolve import RunPlan, effective_suite, resolve_plan

__all__ = [
    "WARMUP_TEXTS",
    "RunInterrupted",
    "RunOutcome",
    "RunPlan",
    "RunRequest",
    "effective_suite",
    "hashed_profile",
    "measure_window",
    "resolve_plan",
    "run",
    "run_settings",
    "settings_sha256",
]
