"""The grid of a run tied together: plan, session, models and cells, with progress and atomic persistence.

For a profile's suite it runs the grid dataset x model x repetition, model-major (each model loaded once). Results
are written atomically after every cell, so an interrupted run (Ctrl-C, SIGTERM) is a valid partial result that the
next run resumes. A cell that raises is recorded as failed with its error and the grid goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.derived import grid_record
from bench.errors import BenchError
from bench.fsutil import now_iso
from bench.results import Cell, ResultDocument, write_results
from bench.run import cell as cells
from bench.run import models
from bench.run import plan as planning
from bench.run.plan import RunRequest
from bench.run.progress import Eta, RunProgress
from bench.run.session import Session, host_placement_gpus, idle_power_for, sigterm_as_interrupt
from bench.validation import Expectations, idle_others_warnings, others_problems


class RunInterrupted(BenchError):
    """Ctrl-C or SIGTERM: the partial result was written and the run can be resumed."""

    def __init__(self, results_path: Path, done: int, total: int) -> None:
        super().__init__(
            f"interrupted after {done} of {total} cells; the partial result is valid: {results_path}\n"
            f"Run the same command again (or `bench run --run-id {results_path.parent.name}`) to resume."
        )
        self.results_path = results_path


@dataclass
class RunOutcome:
    """Where the results went and how many cells ran, were skipped (resumed) or failed."""

    results_path: Path
    run_id: str
    resumed: bool
    ran: int
    skipped: int
    failed: int
    document: ResultDocument


def run(request: RunRequest, *, on_cell: Callable[[Cell], None] | None = None) -> RunOutcome:
    """Run (or resume) a suite on this machine and return where the results are.

    Raises ConfigError / HardwareMismatchError (bad input, the wrong machine) before any work, MeterError when the
    machine cannot be metered as asked, and RunInterrupted after keeping the partial result."""
    from bench.catalog.models import get_model_spec
    from bench.environment import detect_machine, enforce_profile, software_manifest

    profile = request.profile
    suite = planning.effective_suite(request)
    settings = planning.run_settings(request, suite)
    settings_sha = planning.settings_sha256(profile, settings)

    # Resolve every name and check the machine before any work, so a typo fails in a second, not after an hour.
    model_specs = {name: get_model_spec(name) for name in suite.models}
    request.check_allocation()
    machine = detect_machine()
    mismatches = enforce_profile(request.allocated_profile(), machine, force=request.force)
    datasets = planning.prepare_datasets(suite, request.data_paths)

    session = Session(profile, settings, nodes=request.nodes)
    try:
        runs = list(planning.stored_runs(request.reports_dir))
        record = planning.session_record(machine, software_manifest())
        results_path, document, resumed = planning.open_document(
            request, suite, settings, settings_sha, datasets, record, mismatches, runs
        )
    except BaseException:
        session.close()
        raise
    document.meters = session.describe()
    if document.grid is None:  # what the derived gCO2e and cost rest on, fixed at the run's start (bench.derived)
        document.grid = grid_record(profile.measurement)
    expectations = Expectations.from_document(document)
    grid = planning.grid(suite)
    todo = planning.pending(suite, document)
    skipped = len(grid) - len(todo)
    ran = failed = 0
    session_index = len(document.environment.get("sessions", [])) - 1  # open_document appended this session

    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:  # logs (CI, Slurm): one line per cell, not wrapped at rich's default 80 columns
        console = Console(stderr=True, width=160)
    console.print(
        f"[bold]bench[/] run [cyan]{document.run_id}[/]: profile {profile.name}, suite {request.suite_name}, "
        f"{len(grid)} cells ({skipped} already done){' — resumed' if resumed else ''}"
    )
    console.print("meters: " + ", ".join(f"{c}={v['method']}" for c, v in document.meters["components"].items()))
    if session.min_window_s > settings["min_window_s"]:
        console.print(
            f"window minimum raised from {settings['min_window_s']:g} s to {session.min_window_s:g} s "
            f"(meter {session.meter_set.min_window_by()} needs it)"
        )
    if mismatches:
        console.print("[yellow]hardware mismatch forced:[/] " + "; ".join(mismatches))

    eta = Eta(
        todo,
        history=[doc for _, doc in runs],
        profile=profile.name,
        min_window_s=settings["min_window_s"],
        floor_cell_s=session.min_window_s,
    )
    try:
        with sigterm_as_interrupt():
            if todo and settings["idle_baseline_s"] > 0:
                console.print(f"idle baseline: {settings['idle_baseline_s']:g} s ...")
                document.idle.append(session.measure_idle(settings["idle_baseline_s"], session_index, "start"))
                for warning in idle_others_warnings(document.idle[-1], expectations.max_other_cpu_share):
                    console.print(f"[yellow]warning:[/] {warning}")
                    document.warnings.append(warning)
                write_results(document, results_path)
            idle = document.idle[-1] if document.idle else None
            if todo and profile.measurement.calibration:
                # The machine's index: the reference workload metered like a cell, once per session (bench.calibration)
                from bench.calibration import calibrate

                console.print("calibration: reference workload ...")
                document.calibration.append(
                    calibrate(session.meter_set, session.min_window_s, session_index, profile.hardware.device)
                )
                for problem in others_problems(document.calibration[-1].others, expectations.max_other_cpu_share):
                    warning = f"session {session_index}: calibration: {problem}; the machine's index is doubtful"
                    console.print(f"[yellow]warning:[/] {warning}")
                    document.warnings.append(warning)
                write_results(document, results_path)
            with RunProgress(console, len(todo), eta, enabled=request.progress) as progress:
                current_model: str | None = None
                placed: int | None = None
                cell_meters: Any = session.meter_set
                idle_w: dict[str, float | None] | None = idle.power_w if idle else None
                backend: Any = None
                load_s: float | None = None
                load_error: BaseException | None = None
                for model_name, dataset_name, rep in todo:
                    if model_name != current_model:
                        if backend is not None:
                            backend.close()
                        current_model = model_name
                        spec = model_specs[model_name]
                        placed = host_placement_gpus(spec, profile, gpus=request.gpus, nodes=request.nodes)
                        cell_meters, indices = session.meters_for(placed)
                        idle_w = idle_power_for(idle, indices)
                        backend, load_s, load_error = models.load_model(spec, profile, suite.seed, nodes=request.nodes)
                        if backend is not None:
                            document.models[model_name] = models.model_record(spec, backend)
                        progress.model_loaded(model_name, load_s)
                    progress.cell_started(model_name, dataset_name, rep)
                    cell_started = time.perf_counter()
                    if load_error is not None:
                        cell = cells.failed_cell(dataset_name, model_name, rep, now_iso(), load_error, stage="load")
                    else:
                        allocated = request.cell_gpus()
                        cell = cells.run_cell(
                            backend,
                            datasets[dataset_name],
                            dataset_name,
                            model_name,
                            rep,
                            cell_meters,
                            min_window_s=session.min_window_s,
                            max_loops=settings["max_loops"],
                            idle_w=idle_w,
                            load_s=load_s,
                            gpus=allocated if allocated is not None else placed,
                            expectations=expectations,
                        )
                        load_s = 0.0  # the model stays loaded for the next cells
                    document.cells = [c for c in document.cells if c.key != cell.key] + [cell]
                    document.updated_at = now_iso()
                    write_results(document, results_path)
                    ran += 1
                    failed += cell.status == "failed"
                    progress.cell_finished(cell, time.perf_counter() - cell_started)
                    if on_cell is not None:
                        on_cell(cell)
                if backend is not None:
                    backend.close()
            if ran and settings["idle_baseline_s"] > 0:
                # The same idle phase again, after the work: a baseline that moved during the session (thermal
                # drift, another tenant, a clock change) makes every net energy of the session doubtful.
                console.print(f"idle baseline (end of session): {settings['idle_baseline_s']:g} s ...")
                for warning in session.end_of_session_idle(document, settings["idle_baseline_s"], session_index):
                    console.print(f"[yellow]warning:[/] {warning}")
                for warning in idle_others_warnings(document.idle[-1], expectations.max_other_cpu_share):
                    console.print(f"[yellow]warning:[/] {warning}")
                    document.warnings.append(warning)
                document.updated_at = now_iso()
                write_results(document, results_path)
    except KeyboardInterrupt:
        document.status = "interrupted"
        document.updated_at = now_iso()
        write_results(document, results_path)
        session.close()
        raise RunInterrupted(results_path, len(document.cells), len(grid)) from None
    session.close()
    document.status = "complete"
    document.updated_at = now_iso()
    planning.sort_cells(document, suite)
    write_results(document, results_path)
    return RunOutcome(
        results_path=results_path,
        run_id=document.run_id,
        resumed=resumed,
        ran=ran,
        skipped=skipped,
        failed=failed,
        document=document,
    )
