"""The grid of a run tied together: plan, session, models and cells, with progress and atomic persistence.

For a profile's suite it runs the grid dataset x model x repetition, model-major (each model loaded once). Results
are written atomically after every cell, so an interrupted run (Ctrl-C, SIGTERM) is a valid partial result that the
next run resumes. A cell that raises is recorded as failed with its error and the grid goes on.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.derived import grid_record
from bench.errors import BenchError
from bench.fsutil import now_iso
from bench.results import Cell, IdleBaseline, ResultDocument, write_results
from bench.run import cell as cells
from bench.run import models
from bench.run import plan as planning
from bench.run.progress import Eta, RunProgress
from bench.run.request import RunRequest
from bench.run.resolve import RunPlan, resolve_plan
from bench.run.session import Session, host_placement_gpus, idle_power_for, sigterm_as_interrupt
from bench.validation import MAX_OTHER_CPU_SHARE, Expectations, idle_others_warnings, others_problems


class RunInterrupted(BenchError):
    """Ctrl-C or SIGTERM: the partial result was written and the run can be resumed with ``resume_command``."""

    def __init__(self, results_path: Path, done: int, total: int, resume_command: str) -> None:
        super().__init__(
            f"interrupted after {done} of {total} cells; the partial result is valid: {results_path}\n"
            f"To resume it: {resume_command}"
        )
        self.results_path = results_path


def resume_command(request: RunRequest, run_id: str) -> str:
    """The ``bench run`` line that resumes run ``run_id`` (its id names its suite and overrides: ``--run-id`` alone
    restores them), with the profile and reports folder it lives under when not the defaults."""
    # as the user started it: `.venv/bin/bench` when that is how it ran (`bench` need not be on PATH)
    program = sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "bench" else "bench"
    words = [program, "run"]
    if request.profile.name != "cpu":
        words += ["--profile", request.profile.name]
    if request.reports_dir != Path("reports"):
        words += ["--reports-dir", str(request.reports_dir)]
    share = request.profile.measurement.max_other_cpu_share
    if share != MAX_OTHER_CPU_SHARE:  # part of the profile the run recorded: a resume must give it again
        words += ["--max-other-cpu-share", f"{share:g}"]
    if request.profile.llm.truncate:
        words.append("--truncate")
    measurement = request.profile.measurement
    for field_name, option in request.grid_options.items():  # the same: given again, or the settings differ
        value = getattr(measurement, field_name, None)
        if value is not None:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join([*words, "--run-id", run_id])


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
    from bench.environment import software_manifest

    # Resolve every name and check the machine and the inputs before any work, so a typo fails in a second, not
    # after an hour: once, into the plan the rest of the run reads.
    plan = resolve_plan(request, machine=True, inputs="all")
    request, profile, suite, settings = plan.request, plan.profile, plan.suite, plan.settings
    model_specs, datasets, mismatches = plan.models, plan.datasets, plan.checks.mismatches
    notes = list(plan.checks.notes)

    session = Session(profile, settings, nodes=request.nodes)
    try:
        runs = list(planning.stored_runs(request.reports_dir))
        record = planning.session_record(plan.checks.machine, software_manifest())
        results_path, document, resumed = planning.open_document(plan, record, runs)
        if resumed:
            models.check_user_model_pins(document.models, model_specs)
    except BaseException:
        session.close()
        raise
    grid = planning.grid(suite)
    todo = planning.pending(suite, document)
    skipped = len(grid) - len(todo)

    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:  # logs (CI, Slurm): one line per cell, not wrapped at rich's default 80 columns
        console = Console(stderr=True, width=160)
    if resumed and not todo and document.status == "complete":
        # Nothing to run: the stored run stays as it is (no new session, same content hash).
        session.close()
        console.print(f"[bold]bench[/] run [cyan]{document.run_id}[/] is complete ({len(grid)} cells): nothing to do")
        return RunOutcome(
            results_path=results_path,
            run_id=document.run_id,
            resumed=True,
            ran=0,
            skipped=skipped,
            failed=0,
            document=document,
        )
    if resumed:
        document.status = "running"
        document.environment.setdefault("sessions", []).append(record)
    document.meters = session.describe()
    if document.grid is None:  # what the derived gCO2e and cost rest on, fixed at the run's start (bench.derived)
        document.grid = grid_record(profile.measurement, options=request.grid_options)
    earlier = [w for w in document.warnings if w not in notes]  # a resumed run's warnings of its earlier sessions
    document.warnings += [note for note in notes if note not in document.warnings]
    expectations = Expectations.from_document(document)
    ran = failed = 0
    session_index = len(document.environment.get("sessions", [])) - 1

    console.print(
        f"[bold]bench[/] run [cyan]{document.run_id}[/]: profile {profile.name}, suite {request.suite_name}, "
        f"{len(grid)} cells ({skipped} already done){' — resumed' if resumed else ''}"
    )
    previous = (
        None
        if resumed or request.new
        else planning.latest_complete(runs, profile.name, request.suite_name, plan.settings_sha256)
    )
    if previous is not None:
        console.print(f"(the latest run with these settings, {previous}, is complete: this is a new run beside it)")
    elif request.run_id and not resumed:
        console.print(f"(no stored run {request.run_id} under {request.reports_dir}: a new run of that name)")
    console.print("meters: " + ", ".join(f"{c}={v['method']}" for c, v in document.meters["components"].items()))
    if session.min_window_s > settings["min_window_s"]:
        console.print(
            f"window minimum raised from {settings['min_window_s']:g} s to {session.min_window_s:g} s "
            f"(meter {session.meter_set.min_window_by()} needs it)"
        )
    if mismatches:
        console.print("[yellow]hardware mismatch forced:[/] " + "; ".join(mismatches))
    for note in [*earlier, *notes]:
        console.print(f"[yellow]warning:[/] {note}")

    eta = Eta(
        todo,
        history=[doc for _, doc in runs],
        profile=profile.name,
        min_window_s=settings["min_window_s"],
        floor_cell_s=session.min_window_s,
    )
    slot = _ModelSlot(plan, session)
    try:
        with sigterm_as_interrupt():
            if todo and settings["idle_baseline_s"] > 0:
                console.print(f"idle baseline: {settings['idle_baseline_s']:g} s ...")
                document.idle.append(session.measure_idle(settings["idle_baseline_s"], session_index, "start"))
                for warning in idle_others_warnings(document.idle[-1], expectations.max_other_cpu_share):
                    console.print(f"[yellow]warning:[/] {warning}")
                    document.warnings.append(warning)
                write_results(document, results_path)
            slot.idle = document.idle[-1] if document.idle else None
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
                for model_name, dataset_name, rep in todo:
                    if model_name != slot.model:
                        slot.switch(model_name, model_specs[model_name])
                        if slot.backend is not None:
                            document.models[model_name] = models.model_record(model_specs[model_name], slot.backend)
                        progress.model_loaded(model_name, slot.load_s)
                    progress.cell_started(model_name, dataset_name, rep)
                    cell_started = time.perf_counter()
                    cell = slot.run_cell(datasets[dataset_name], dataset_name, rep, settings, expectations)
                    document.cells = [c for c in document.cells if c.key != cell.key] + [cell]
                    document.updated_at = now_iso()
                    write_results(document, results_path)
                    ran += 1
                    failed += cell.status == "failed"
                    progress.cell_finished(cell, time.perf_counter() - cell_started)
                    if on_cell is not None:
                        on_cell(cell)
            slot.close()
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
    except BaseException as exc:
        # Ctrl-C, SIGTERM or an error outside a cell (a meter, the disk): the cells so far are kept and resumable.
        document.status = "interrupted"
        document.updated_at = now_iso()
        write_results(document, results_path)
        if isinstance(exc, KeyboardInterrupt):
            raise RunInterrupted(
                results_path, len(document.cells), len(grid), resume_command(request, document.run_id)
            ) from None
        raise
    finally:
        slot.close()
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


class _ModelSlot:
    """The model the loop has loaded now, with the meters and idle power its cells use; one at a time."""

    def __init__(self, plan: RunPlan, session: Session) -> None:
        self.plan = plan
        self.request = plan.request
        self.session = session
        self.seed = plan.suite.seed
        self.idle: IdleBaseline | None = None
        self.model: str | None = None
        self.backend: Any = None
        self.load_s: float | None = None
        self.load_error: BaseException | None = None
        self.placed: int | None = None
        self.meters: Any = session.meter_set
        self.idle_w: dict[str, float | None] | None = None
        self.trains = False  # the loaded model trains on the split (its fit is metered in a window of its own)

    def switch(self, model_name: str, spec: Any) -> None:
        """Close the loaded model and load ``spec``: its placement's meters and idle power, its backend (or the
        error that stopped it loading: its cells fail with it)."""
        self.close()
        request = self.request
        self.model = model_name
        self.trains = spec.kind in ("traditional", "finetuned")
        self.placed = host_placement_gpus(spec, self.plan.profile, gpus=request.gpus, nodes=request.nodes)
        self.meters, indices = self.session.meters_for(self.placed)
        self.idle_w = idle_power_for(self.idle, indices)
        self.backend, self.load_s, self.load_error = models.load_model(
            spec, self.plan.profile, self.seed, nodes=request.nodes, label_map=request.label_map
        )

    def run_cell(
        self, data: Any, dataset_name: str, rep: int, settings: dict[str, Any], expectations: Expectations
    ) -> Cell:
        """One cell of the loaded model (a failed one when it did not load); the load time goes with the first."""
        assert self.model is not None
        if self.load_error is not None:
            return cells.failed_cell(dataset_name, self.model, rep, now_iso(), self.load_error, stage="load")
        allocated = self.plan.cell_gpus()
        cell = cells.run_cell(
            self.backend,
            data,
            dataset_name,
            self.model,
            rep,
            self.meters,
            min_window_s=self.session.min_window_s,
            max_loops=settings["max_loops"],
            idle_w=self.idle_w,
            load_s=self.load_s,
            gpus=allocated if allocated is not None else self.placed,
            expectations=expectations,
            meter_training=self.trains,
        )
        self.load_s = 0.0  # the model stays loaded for the next cells
        return cell

    def close(self) -> None:
        """Close the loaded backend, if any (idempotent)."""
        if self.backend is not None:
            self.backend.close()
            self.backend = None
