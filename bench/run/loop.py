"""The grid of a run tied together: plan, session, models and cells, with progress and atomic persistence.

For a profile's suite it runs the grid dataset x model x repetition, model-major (each model loaded once). A session
runs as named phases, each a function of its own: ``prepare`` (the plan resolved once, the session's meters, the
run folder held by this process until the run ends (``bench.run.lock``), the results document opened or resumed),
``idle_baseline`` (at the start and again at the end), ``calibration`` (the machine's index), ``run_grid`` (the
cells) and ``finish``. What it prints goes through one ``RunReporter``.

Results are written atomically after every cell, so an interrupted run (Ctrl-C, SIGTERM) is a valid partial result
that the next run resumes. A cell that raises is recorded as failed with its error and the grid goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from bench.derived import grid_record
from bench.devices.base import DeviceError
from bench.errors import BenchError, ConfigError
from bench.fsutil import now_iso
from bench.results import Cell, IdleBaseline, Repair, RepairedCell, ResultDocument, idle_power_for, write_results
from bench.run import cell as cells
from bench.run import models
from bench.run import plan as planning
from bench.run import power as device_settings
from bench.run.document import choose_document, open_document
from bench.run.lock import RunFolderLock, check_reports_dir, hold_run_folder
from bench.run.options import measurement_options, resume_command
from bench.run.plan import GridKey
from bench.run.progress import Eta, RunReporter, SessionStart
from bench.run.request import RunRequest
from bench.run.resolve import RunPlan, resolve_plan
from bench.run.session import Session, host_placement_gpus, sigterm_as_interrupt
from bench.validation import Expectations, idle_others_warnings, others_problems


class RunInterrupted(BenchError):
    """Ctrl-C or SIGTERM: the partial result was written and the run can be resumed with ``resume_command``
    (``bench.run.options``)."""

    def __init__(self, results_path: Path, done: int, total: int, resume_command: str) -> None:
        super().__init__(
            f"interrupted after {done} of {total} cells; the partial result is valid: {results_path}\n"
            f"To resume it: {resume_command}"
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

    ``on_cell``: called with every finished cell (tests interrupt the run from it). Raises ConfigError /
    HardwareMismatchError (bad input, the wrong machine) before any work, MeterError when the machine cannot be
    metered as asked, and RunInterrupted after keeping the partial result."""
    state = prepare(request)
    if isinstance(state, RunOutcome):  # a complete run asked again, or a repair with nothing to redo
        return state
    slot = _ModelSlot(state.plan, state.session)
    slot.journal, slot.warn = state.journal, state.warn
    try:
        try:
            with sigterm_as_interrupt():
                idle_baseline(state, "start")
                slot.idle = state.document.idle[-1] if state.document.idle else None
                calibration(state)
                run_grid(state, slot, on_cell)
                slot.close()
                idle_baseline(state, "end")
        except BaseException as exc:
            interrupted(state, exc)
            raise
        finally:
            slot.close()
            state.session.close()
        return finish(state)
    finally:  # the run folder is let go on every way out: finished, failed, Ctrl-C or SIGTERM
        if state.lock is not None:
            state.lock.release()


@dataclass
class SessionState:
    """A session of a run in progress, as its phases share it: the plan, the session's meters, the reporter, the
    results document and where it is written, the grid and the cells this session runs, and what it has done."""

    plan: RunPlan
    session: Session
    reporter: RunReporter
    results_path: Path
    document: ResultDocument
    resumed: bool
    grid: list[GridKey]
    todo: list[GridKey]
    runs: list[tuple[Path, ResultDocument]]
    expectations: Expectations
    index: int
    repair: Repair | None = None
    #: the stored cells a ``--redo-flagged`` session runs again, by key, with what they were and why
    redo: dict[tuple[str, str, int], RepairedCell] = field(default_factory=dict)
    #: the document's status when the session opened it (a repair interrupted keeps a complete grid complete)
    status_before: str = "running"
    #: the run folder, held by this process from before the document was opened until ``run`` ends
    lock: RunFolderLock | None = None
    #: what the kit changed on the GPUs and has not restored yet (``bench.run.power``)
    journal: device_settings.Journal = field(default_factory=device_settings.Journal)
    #: the session start's device notes: changes a killed session left undone, checks of the suite's device settings
    device_notes: list[str] = field(default_factory=list)
    ran: int = 0
    failed: int = 0

    def save(self) -> None:
        """Write the document atomically, stamped now."""
        self.document.updated_at = now_iso()
        write_results(self.document, self.results_path)

    def warn(self, message: str) -> None:
        """A warning: printed now and stored in the results."""
        self.reporter.warning(message)
        self.document.warnings.append(message)


def prepare(request: RunRequest) -> SessionState | RunOutcome:
    """Phase ``prepare``: the request resolved and checked once (``resolve_plan``), the session's meters, the run
    folder held by this process (``bench.run.lock``), the results document opened (new or resumed) with this session
    in it (and, for ``--redo-flagged``, the ``Repair`` record of the cells it runs again), and the header printed. A
    complete run asked again, or a repair with nothing to redo, returns its ``RunOutcome`` untouched (no session, the
    same file and content hash) and lets the folder go; otherwise the state holds it (``SessionState.lock``) until
    ``run`` ends, however it ends.

    Raises what ``resolve_plan`` raises (before any energy is spent), ConfigError for a reports folder that cannot be
    written, RunFolderBusy when another run holds the run folder, MeterError when the meters cannot be opened,
    ConfigError when a stored run cannot be resumed with this plan, or ``--redo-flagged`` names no stored run."""
    from bench.environment import software_manifest

    check_reports_dir(request.reports_dir)  # before data sets load: a folder no run can be written to is refused now
    if request.redo_flagged:
        _check_repairable(request)
    # Every name resolved and the machine and the inputs checked before any work, so a typo fails in a second, not
    # after an hour: once, into the plan the rest of the run reads.
    plan = resolve_plan(request, machine=True, inputs="all")
    reporter = RunReporter(progress=plan.request.progress)
    session = Session(plan.profile, plan.settings, nodes=plan.request.nodes)
    lock: RunFolderLock | None = None
    try:
        # What a killed session left changed on these GPUs undone, and the suite's power limits and clocks checked
        # (range, permission): before the run folder is touched and before any energy is spent.
        journal = device_settings.Journal()
        device_notes = device_settings.session_start(plan, session.meter_set, journal)
        runs = list(planning.stored_runs(plan.request.reports_dir))
        record = planning.session_record(plan.checks.machine, software_manifest(), plan.checks.accelerator)
        if plan.checks.machine is not None and plan.profile.hardware.on_gpus:
            record["fit"] = machine_fit(plan)
        choice = choose_document(plan, runs)
        lock = hold_run_folder(choice.folder)  # before the document is read to resume, or created
        if lock.took_over is not None:
            reporter.line(
                escape(f"took over the lock of run folder {choice.folder}: its holder, {lock.took_over.describe()}, ")
                + "is no longer running"
            )
        results_path, document, resumed = open_document(plan, record, choice)
        if resumed:
            models.check_user_model_pins(document.models, plan.models)
            models.check_stored_methods(document.models, {n: _script_language(d) for n, d in plan.datasets.items()})
        state = _session_state(plan, session, reporter, runs, record, (results_path, document, resumed), lock)
        if isinstance(state, SessionState):
            journal.run_id = document.run_id
            state.journal, state.device_notes = journal, device_notes
            _start_session(state)
    except BaseException:
        session.close()
        if lock is not None:
            lock.release()
        raise
    if isinstance(state, RunOutcome):  # nothing to do: the folder is let go now
        session.close()
        lock.release()
    return state


def machine_fit(plan: RunPlan) -> dict[str, Any]:
    """What the session records of the machine's fit (``environment.sessions[i].fit``): the GPU count and memory size
    the run found (its resolved profile's), each of the paper's LLMs' placement here or the reason it does not fit
    (``bench.catalog.placement.paper_llm_fits``, within the run's nodes), and the suite's models left out."""
    from bench.catalog.placement import paper_llm_fits

    hw = plan.profile.hardware
    return {
        "gpu_count": hw.gpu_count,
        "gpu_memory_gb": hw.gpu_memory_gb,
        "paper_llms": [f.to_dict() for f in paper_llm_fits(plan.profile, max_nodes=plan.request.nodes)],
        "left_out": [f.to_dict() for f in plan.checks.left_out],
    }


def _session_state(
    plan: RunPlan,
    session: Session,
    reporter: RunReporter,
    runs: list[tuple[Path, ResultDocument]],
    record: dict[str, Any],
    opened: tuple[Path, ResultDocument, bool],
    lock: RunFolderLock,
) -> SessionState | RunOutcome:
    """The session's state over the opened document (``opened``: path, document, resumed), this session added to it
    (and the ``Repair`` record of a ``--redo-flagged`` session); a ``RunOutcome`` when there is nothing to do."""
    results_path, document, resumed = opened
    grid = planning.grid(plan.suite)
    todo = planning.pending(plan.suite, document, redo=plan.request.redo_flagged)
    if resumed and not todo and (document.status == "complete" or plan.request.redo_flagged):
        if plan.request.redo_flagged:
            reporter.nothing_to_redo(document.run_id, len(grid))
        else:
            reporter.nothing_to_do(document.run_id, len(grid))
        return RunOutcome(results_path, document.run_id, True, 0, len(grid), 0, document)
    status_before = document.status
    if resumed:
        document.status = "running"
        document.environment.setdefault("sessions", []).append(record)
    repair, redo = None, {}
    if plan.request.redo_flagged:  # which stored cells this session runs again, what they were and why
        redo = {(c.dataset, c.model, c.repetition): c for c in planning.repaired_cells(document, todo)}
    if redo:  # the record lists each cell as it is redone (an interrupted repair lists only what ran)
        repair = Repair(session=len(document.environment["sessions"]) - 1, started_at=record["started_at"])
        document.repairs.append(repair)
    return SessionState(
        plan=plan,
        session=session,
        reporter=reporter,
        results_path=results_path,
        document=document,
        resumed=resumed,
        grid=grid,
        todo=todo,
        runs=runs,
        expectations=Expectations.from_document(document),
        index=len(document.environment.get("sessions", [])) - 1,
        repair=repair,
        redo=redo,
        status_before=status_before,
        lock=lock,
    )


def _check_repairable(request: RunRequest) -> None:
    """``--redo-flagged`` repairs a stored run: ConfigError unless ``--run-id`` names one under the reports folder."""
    if not request.run_id:
        raise ConfigError(
            "--redo-flagged repairs a stored run: name it with --run-id X (the run id its results folder has)"
        )
    if not (request.reports_dir / request.run_id / "results.json").is_file():
        raise ConfigError(
            f"--redo-flagged --run-id {request.run_id}: no stored run {request.run_id} under {request.reports_dir}; "
            "give the --reports-dir it was written to"
        )


def _start_session(state: SessionState) -> None:
    """The session's meters, grid record and warnings in the document, and the header printed."""
    plan, document = state.plan, state.document
    notes = [*plan.checks.notes, *state.device_notes]
    document.meters = state.session.describe()
    if document.grid is None:  # what the derived gCO2e and cost rest on, fixed at the run's start (bench.derived)
        document.grid = grid_record(plan.profile.measurement, options=measurement_options(plan.request))
    earlier = [w for w in document.warnings if w not in notes]  # a resumed run's warnings of its earlier sessions
    document.warnings += [note for note in notes if note not in document.warnings]
    request = plan.request
    beside = (
        None
        if state.resumed or request.new
        else planning.latest_complete(state.runs, plan.profile.name, plan.suite_name, plan.settings_sha256)
    )
    window_s, floor_s = plan.settings["min_window_s"], state.session.min_window_s
    state.reporter.started(
        SessionStart(
            run_id=document.run_id,
            profile=plan.profile.name,
            suite=plan.suite_name,
            cells=len(state.grid),
            skipped=len(state.grid) - len(state.todo),
            resumed=state.resumed,
            meters=document.meters["components"],
            beside=beside,
            new_name=(request.run_id, str(request.reports_dir))
            if beside is None and request.run_id and not state.resumed
            else None,
            window_raised=(window_s, floor_s, state.session.meter_set.min_window_by()) if floor_s > window_s else None,
            mismatches=tuple(plan.checks.mismatches),
            machine_fit=_fit_lines(plan),
            warnings=(*earlier, *notes),
            repairing=len(state.redo),
            repetitions=plan.suite.repetitions,
            per_model=tuple(
                (m, plan.suite.repetitions_of(m))
                for m in plan.suite.models
                if plan.suite.repetitions_of(m) != plan.suite.repetitions
            ),
            replaced=tuple(plan.repetitions_replaced.items()),
        )
    )


def _fit_lines(plan: RunPlan) -> tuple[str, ...]:
    """The header's lines on this machine and the paper's LLMs on it (empty when the machine was not checked)."""
    from bench.catalog.placement import fits_summary, paper_llm_fits

    if plan.checks.machine is None or not plan.profile.hardware.on_gpus:
        return ()
    return tuple(fits_summary(plan.profile, paper_llm_fits(plan.profile, max_nodes=plan.request.nodes)))


def idle_baseline(state: SessionState, phase: str) -> None:
    """Phase ``idle baseline``: idle power with the cells' meters, at the session's ``start`` (when it has cells to
    run) or ``end`` (when it ran some: a baseline that moved during the session, by thermal drift, another tenant or a
    clock change, makes every net energy of the session doubtful, and says so). Skipped when the settings' idle
    baseline is 0 s. Writes the document."""
    idle_s = state.plan.settings["idle_baseline_s"]
    if idle_s <= 0 or (phase == "start" and not state.todo) or (phase == "end" and not state.ran):
        return
    document = state.document
    if phase == "start":
        state.reporter.phase(f"idle baseline: {idle_s:g} s ...")
        document.idle.append(state.session.measure_idle(idle_s, state.index, "start"))
    else:
        state.reporter.phase(f"idle baseline (end of session): {idle_s:g} s ...")
        for warning in state.session.end_of_session_idle(document, idle_s, state.index):
            state.reporter.warning(warning)  # stored by end_of_session_idle
    for warning in idle_others_warnings(document.idle[-1], state.expectations.max_other_cpu_share):
        state.warn(warning)
    state.save()


def calibration(state: SessionState) -> None:
    """Phase ``calibration``: the machine's index, the reference workload metered like a cell once per session
    (``bench.calibration``), when the profile asks for it and the session has cells to run. Writes the document."""
    profile = state.plan.profile
    if not state.todo or not profile.measurement.calibration:
        return
    from bench.calibration import calibrate

    state.reporter.phase("calibration: reference workload ...")
    session = state.session
    record = calibrate(session.meter_set, session.min_window_s, state.index, profile.hardware.torch_device)
    state.document.calibration.append(record)
    for problem in others_problems(record.others, state.expectations.max_other_cpu_share):
        state.warn(f"session {state.index}: calibration: {problem}; the machine's index is doubtful")
    state.save()


def run_grid(state: SessionState, slot: _ModelSlot, on_cell: Callable[[Cell], None] | None) -> None:
    """Phase ``grid``: every cell this session runs, model-major (a model loaded once for its cells), each written
    into the document (replacing the cell of the same key) and persisted as it finishes."""
    plan, document = state.plan, state.document
    eta = Eta(
        state.todo,
        history=[doc for _, doc in state.runs],
        profile=plan.profile.name,
        min_window_s=plan.settings["min_window_s"],
        floor_cell_s=state.session.min_window_s,
    )
    with state.reporter.grid(len(state.todo), eta) as progress:
        for model_name, dataset_name, rep in state.todo:
            if model_name != slot.model:
                slot.switch(model_name, plan.models[model_name])
                if slot.backend is not None:
                    document.models[model_name] = models.model_record(plan.models[model_name], slot.backend)
                progress.model_loaded(model_name, slot.load_s)
            progress.cell_started(model_name, dataset_name, rep)
            cell_started = time.perf_counter()
            cell = slot.run_cell(plan.datasets[dataset_name], dataset_name, rep, plan.settings, state.expectations)
            document.cells = [c for c in document.cells if c.key != cell.key] + [cell]
            models.record_fit(document.models.get(model_name), dataset_name, slot.backend)
            if state.repair is not None and cell.key in state.redo:
                state.repair.cells.append(state.redo[cell.key])
            state.save()
            state.ran += 1
            state.failed += cell.status == "failed"
            progress.cell_finished(cell, time.perf_counter() - cell_started)
            if on_cell is not None:
                on_cell(cell)


def interrupted(state: SessionState, exc: BaseException) -> None:
    """Ctrl-C, SIGTERM or an error outside a cell (a meter, the disk): the cells so far are kept, the document marked
    ``interrupted`` (resumable). Raises RunInterrupted, with the command that resumes the run, for Ctrl-C and
    SIGTERM; returns for any other error (the caller re-raises it)."""
    document = state.document
    if state.repair is not None and not state.repair.cells:  # stopped before it redid a cell: no repair to record
        document.repairs.remove(state.repair)
    # A repair of a complete run leaves every cell of the grid in place: the run stays complete (its remaining flags
    # say what is left to redo); any other session's grid is unfinished.
    grid_whole = {(d, m, r) for m, d, r in state.grid} <= set(document.cell_map())
    document.status = "complete" if state.status_before == "complete" and grid_whole else "interrupted"
    state.save()
    if isinstance(exc, KeyboardInterrupt):
        redo = ["--redo-flagged"] if state.plan.request.redo_flagged else []  # a repair goes on as one
        resume = resume_command(state.plan.request, document.run_id, *redo)
        if state.plan.request.redo_flagged:  # this session's cells, not the grid's
            raise RunInterrupted(state.results_path, state.ran, len(state.todo), resume) from None
        raise RunInterrupted(state.results_path, len(document.cells), len(state.grid), resume) from None


def finish(state: SessionState) -> RunOutcome:
    """Phase ``finish``: the document complete, its cells in suite order, written; the outcome."""
    document = state.document
    document.status = "complete"
    if state.repair is not None:
        state.repair.finished_at = now_iso()
    planning.sort_cells(document, state.plan.suite)
    state.save()
    return RunOutcome(
        results_path=state.results_path,
        run_id=document.run_id,
        resumed=state.resumed,
        ran=state.ran,
        skipped=len(state.grid) - len(state.todo),
        failed=state.failed,
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
        self.journal = device_settings.Journal()
        self.warn: Callable[[str], None] = lambda message: None

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
        spec = self.plan.models[self.model]
        started = now_iso()
        try:  # the model's power limit and clocks (if any) set around the cell, restored after it however it ends
            cell, warnings = device_settings.around_cell(
                lambda: self._cell(data, dataset_name, rep, settings, expectations, allocated),
                self.model,
                spec,
                self.meters,
                self.journal,
            )
        except DeviceError as exc:  # could not be set: the cell fails saying why, what was set is restored
            return cells.failed_cell(dataset_name, self.model, rep, started, exc, stage="device settings")
        for warning in warnings:
            self.warn(warning)
        self.load_s = 0.0  # the model stays loaded for the next cells
        return cell

    def _cell(
        self, data: Any, dataset_name: str, rep: int, settings: dict[str, Any], expectations: Expectations, gpus: Any
    ) -> Cell:
        assert self.model is not None
        return cells.run_cell(
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
            gpus=gpus if gpus is not None else self.placed,
            expectations=expectations,
            meter_training=self.trains,
        )

    def close(self) -> None:
        """Close the loaded backend, if any (idempotent)."""
        if self.backend is not None:
            self.backend.close()
            self.backend = None


def _script_language(prepared: Any) -> str:
    """A data set's language as far as its script goes: its tag when that names a script written without spaces,
    else the script detected from its texts (a Chinese file given ``--language en`` is still ``und-Hani``)."""
    from bench.data.scripts import detected_language, spaceless_locale

    language = prepared.record.language
    return language if spaceless_locale(language) else detected_language(prepared.texts)
