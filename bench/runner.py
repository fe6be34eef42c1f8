"""The runner: the only module where measurement meets models.

For a profile's suite it runs the grid dataset x model x repetition. Per cell: train (timed apart), warm up, then one
metered window around inference over the whole test split, synchronized at both edges; a window shorter than the
minimum (the profile's, or the meters' own floor when higher: NVML needs 10 s) repeats the whole test-set inference
until long enough and divides by the loop count. Every finished cell is checked for plausibility
(``bench.validation.cell_validity``) and carries the reasons in ``Cell.validity``. Idle power is measured with the
same meters at the start and at the end of each session; cells report gross and net (gross - idle power x duration)
energy, and a drift of idle power beyond 5% between the two becomes a run warning. Results are written atomically
after every cell, so an interrupted run is a valid partial result that the next run resumes. A cell that raises is
recorded as failed with its error and the grid goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench import __version__
from bench.analysis import accuracy, macro_f1, total_energy_j
from bench.config import HardwareProfile, MeasurementSpec, SuiteSpec
from bench.errors import BenchError, ConfigError
from bench.fsutil import now_iso
from bench.results import (
    Cell,
    CellError,
    DatasetRecord,
    EnergyValue,
    IdleBaseline,
    NodeEnergy,
    ResultDocument,
    SplitRecord,
    Window,
    canonical_json,
    load_results,
    write_results,
)

#: How many test texts a warm-up pass uses (first call costs: lazy init, caches, JIT); not measured.
WARMUP_TEXTS = 8
#: How many raw LLM answers per cell are kept in the results (to see what the parser saw), not all 200.
ANSWER_SAMPLE = 5
COMPONENTS = ("gpu", "cpu", "ram")


class RunInterrupted(BenchError):
    """Ctrl-C or SIGTERM: the partial result was written and the run can be resumed."""

    def __init__(self, results_path: Path, done: int, total: int) -> None:
        super().__init__(
            f"interrupted after {done} of {total} cells; the partial result is valid: {results_path}\n"
            f"Run the same command again (or `bench run --run-id {results_path.parent.name}`) to resume."
        )
        self.results_path = results_path


@dataclass
class RunRequest:
    """What to run. Overrides (None: the profile's value) are recorded in the results' settings."""

    profile: HardwareProfile
    suite_name: str = "default"
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    new: bool = False
    force: bool = False
    data_paths: dict[str, str] = field(default_factory=dict)
    repetitions: int | None = None
    min_window_s: float | None = None
    idle_baseline_s: float | None = None
    codecarbon: bool | None = None
    models: list[str] | None = None
    datasets: list[str] | None = None
    progress: bool = True
    #: GPUs per node this run was given (a Slurm task's allocation) when fewer than the profile's node has
    gpus: int | None = None
    #: nodes of the allocation: > 1 runs LLMs pipeline-parallel over Ray and meters every node (bench.hpc.multinode)
    nodes: int = 1


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


def effective_suite(request: RunRequest) -> SuiteSpec:
    """The suite after the request's overrides (subset of models/datasets, repetitions)."""
    suite = request.profile.suite(request.suite_name)
    updates: dict[str, Any] = {}
    if request.repetitions is not None:
        updates["repetitions"] = request.repetitions
    for attr in ("models", "datasets"):
        chosen = getattr(request, attr)
        if chosen:
            unknown = [x for x in chosen if x not in getattr(suite, attr)]
            if unknown:
                raise ConfigError(
                    f"--{attr[:-1]} {', '.join(unknown)}: not in suite {request.suite_name!r} of profile "
                    f"{request.profile.name!r} (it has: {', '.join(getattr(suite, attr))})"
                )
            updates[attr] = list(dict.fromkeys(chosen))  # `--model a --model a` is one model, not two
    if "models" in updates:
        # per-model repetitions of the models left out are not an error of the subset (a Slurm task runs one model)
        updates["model_repetitions"] = {m: r for m, r in suite.model_repetitions.items() if m in updates["models"]}
    if not updates:
        return suite
    try:  # validated like the profile itself: an override gets the same limits as the file
        return SuiteSpec.model_validate({**suite.model_dump(), **updates})
    except ValidationError as exc:
        raise _override_error(f"invalid override of suite {request.suite_name!r}", exc) from None


def _checked_measurement(request: RunRequest) -> Any:
    """The profile's measurement settings with the request's overrides, validated with the profile's limits."""
    updates = {
        k: v
        for k, v in (("min_window_s", request.min_window_s), ("idle_baseline_s", request.idle_baseline_s))
        if v is not None
    }
    if not updates:
        return request.profile.measurement
    try:
        return MeasurementSpec.model_validate({**request.profile.measurement.model_dump(), **updates})
    except ValidationError as exc:
        raise _override_error("invalid measurement override", exc) from None


def _override_error(what: str, exc: ValidationError) -> ConfigError:
    """One ConfigError listing every rejected override with its value and the limit it broke."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))} = {e['input']!r}: {e['msg']}" for e in exc.errors())
    return ConfigError(f"{what}: {problems}")


def run_settings(request: RunRequest, suite: SuiteSpec) -> dict[str, Any]:
    """The settings that define what the numbers mean; a resumed run must have the same ones."""
    m = _checked_measurement(request)
    settings: dict[str, Any] = {
        "suite": suite.model_dump(mode="json"),
        "min_window_s": m.min_window_s,
        "max_loops": m.max_loops,
        "idle_baseline_s": m.idle_baseline_s,
        "codecarbon": request.codecarbon if request.codecarbon is not None else m.codecarbon,
        "codecarbon_measure_power_s": m.codecarbon_measure_power_s,
        "country_iso_code": m.country_iso_code,
        "embedder": request.profile.embedder,
        "data_paths": dict(sorted(request.data_paths.items())),
        "warmup_texts": WARMUP_TEXTS,
        "device": request.profile.hardware.device,
        "llm": request.profile.llm.model_dump(mode="json"),
        "model_lock_sha256": _model_lock_sha256(suite),
    }
    # The allocation a run was given changes what a cell measures (GPUs metered, pipeline stages), so a resume must
    # not mix allocations. Recorded only when not the default, so runs without them keep their settings hash.
    if request.gpus is not None:
        settings["gpus"] = request.gpus
    if request.nodes != 1:
        settings["nodes"] = request.nodes
    return settings


def _model_lock_sha256(suite: SuiteSpec) -> str | None:
    """The model lock's hash when the suite runs Hub LLMs (their revisions come from it), else None."""
    from bench.catalog.lock import lock_sha256
    from bench.catalog.models import MODELS, split_placement

    bases = [split_placement(m)[0] for m in suite.models]  # `llama-3.1-70b@2x1` runs llama-3.1-70b
    hub_llms = [
        m
        for m in bases
        if m in MODELS and MODELS[m].kind == "llm" and not str(MODELS[m].params.get("model", "")).startswith("package:")
    ]
    return lock_sha256() if hub_llms else None


#: Profile tables left out of the settings hash: ``[slurm]`` says how to ask a cluster for the machine (partition,
#: wall time, memory, image), not what the numbers mean. Hashing it would refuse a rerun after raising ``time`` and
#: would stop every run started before the table existed from resuming. It stays in the results' ``profile``.
UNHASHED_PROFILE_KEYS = frozenset({"slurm"})


def hashed_profile(profile: HardwareProfile | dict[str, Any]) -> dict[str, Any]:
    """The profile as the settings hash and ``bench merge`` see it: its JSON form without ``UNHASHED_PROFILE_KEYS``."""
    data = profile if isinstance(profile, dict) else profile.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in UNHASHED_PROFILE_KEYS}


def _settings_sha256(profile: HardwareProfile, settings: dict[str, Any]) -> str:
    body = {"profile": hashed_profile(profile), "settings": settings}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _find_resumable(reports_dir: Path, profile: str, suite: str, settings_sha: str) -> Path | None:
    """The newest unfinished run (or finished with failed cells, to retry them) with the same profile, suite and
    settings, if any."""
    candidates = []
    for path in reports_dir.glob("*/results.json"):
        try:
            doc = load_results(path)
        except BenchError:
            continue  # a broken file is never silently resumed; `bench validate` explains it
        if (
            (doc.status != "complete" or any(c.status == "failed" for c in doc.cells))
            and doc.profile.get("name") == profile
            and doc.suite_name == suite
            and doc.settings_sha256 == settings_sha
        ):
            candidates.append((doc.updated_at, path))
    return max(candidates)[1] if candidates else None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
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


def _measure_idle(meter_set: Any, duration_s: float, session: int, phase: str = "start") -> IdleBaseline:
    """Idle power per component over ``duration_s`` (at least the meters' minimum window) with the cells' meters."""
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
    )


def _end_of_session_idle(document: ResultDocument, meter_set: Any, duration_s: float, session: int) -> list[str]:
    """Measure the end-of-session idle baseline, store its drift against the session's start, return warnings."""
    from bench.validation import drift_warnings, idle_drift

    end = _measure_idle(meter_set, duration_s, session, phase="end")
    start = next((i for i in document.idle if i.session == session and i.phase == "start"), None)
    warnings: list[str] = []
    if start is not None:
        end.drift = idle_drift(start, end)
        warnings = drift_warnings(start, end)
    document.idle.append(end)
    document.warnings.extend(warnings)
    return warnings


def _per_pass(
    components: dict[str, Any],
    loops: int,
    duration_s: float,
    idle_power_w: dict[str, float | None] | None,
    window_s: dict[str, float] | None = None,
) -> dict[str, EnergyValue]:
    """Window energies divided by the loop count; net = gross - idle power x the per-pass time it was integrated over.

    ``window_s``: per component, the window its meter integrated over (a hair longer than the set's ``duration_s``
    x loops, since each meter starts before and stops after it); idle is subtracted over that same span so that a
    constant draw nets to zero exactly rather than to the start/stop skew. Without it, ``duration_s`` per pass."""
    out = {}
    for component, ce in components.items():
        energy = None if ce.energy_j is None else ce.energy_j / loops
        idle_w = (idle_power_w or {}).get(component)
        own_s = (window_s or {}).get(component)
        span_s = own_s / loops if own_s else duration_s
        net = energy - idle_w * span_s if energy is not None and idle_w is not None else None
        out[component] = EnergyValue(
            energy_j=energy, net_energy_j=net, method=ce.method, reason=ce.reason, detail=dict(ce.detail)
        )
    return out


def measure_window(
    backend: Any, texts: Sequence[str], meter_set: Any, min_window_s: float, max_loops: int
) -> tuple[list[int], Window, Any]:
    """One metered window: whole-set inference, repeated until ``min_window_s``; returns the last predictions."""
    # Synchronize before opening (queued warm-up work must not land in the window) and before closing (the window
    # must contain all the work it started): on a GPU, kernels run asynchronously to the Python that launched them.
    backend.synchronize()
    meter_set.start()
    started = time.perf_counter()
    loops = 0
    predictions: list[int] = []
    first: list[int] | None = None
    while True:
        predictions = backend.predict(texts)
        loops += 1
        if first is None:
            first = predictions
        if time.perf_counter() - started >= min_window_s or loops >= max_loops:
            break
    backend.synchronize()
    reading = meter_set.stop()
    if first != predictions:
        # Greedy inference must be deterministic; if it is not, accuracy would depend on the loop count.
        raise RuntimeError("predictions differ between repeated passes of the same window (non-deterministic model)")
    window = Window(
        duration_s=reading.duration_s,
        loops=loops,
        min_window_s=min_window_s,
        max_loops_reached=loops >= max_loops and reading.duration_s < min_window_s,
    )
    return predictions, window, reading


def run(request: RunRequest, *, on_cell: Callable[[Cell], None] | None = None) -> RunOutcome:
    """Run (or resume) a suite on this machine and return where the results are."""
    from bench.catalog.models import get_model_spec
    from bench.environment import detect_machine, enforce_profile, software_manifest
    from bench.meters import build_meter_set
    from bench.validation import Expectations, cell_validity

    profile = request.profile
    suite = effective_suite(request)
    settings = run_settings(request, suite)
    settings_sha = _settings_sha256(profile, settings)

    # Resolve every name and check the machine before any work, so a typo fails in a second, not after an hour.
    model_specs = {name: get_model_spec(name) for name in suite.models}
    if request.gpus is not None and not 0 <= request.gpus <= profile.hardware.gpu_count:
        raise ConfigError(
            f"--gpus {request.gpus}: profile {profile.name!r} has {profile.hardware.gpu_count} GPU(s) per node"
        )
    if request.nodes < 1:
        raise ConfigError(f"--nodes {request.nodes}: must be >= 1")
    machine = detect_machine()
    # A Slurm task sees only the GPUs it was given: check the machine against that allocation, not the whole node.
    checked = profile
    if request.gpus is not None:
        hardware = profile.hardware.model_copy(update={"gpu_count": request.gpus})
        checked = profile.model_copy(update={"hardware": hardware})
    mismatches = enforce_profile(checked, machine, force=request.force)
    datasets = _prepare_datasets(suite, request.data_paths)

    meter_kwargs = dict(
        cpu_tdp_w=profile.hardware.cpu_tdp_w,
        codecarbon=settings["codecarbon"],
        country_iso_code=settings["country_iso_code"],
        codecarbon_measure_power_secs=settings["codecarbon_measure_power_s"],
        use_gpu=profile.hardware.device == "cuda",
    )
    # Meters before the run folder: a machine that cannot be metered as asked (no Ray cluster for --nodes) leaves
    # no empty run behind.
    meter_set = build_meter_set(**meter_kwargs)
    try:
        if request.nodes > 1:
            # The paper's multi-node numbers: every node's meters over the same window, energy summed, duration max.
            from bench.hpc.multinode import connect_ray_nodes

            meter_set = connect_ray_nodes(meter_set, meter_kwargs, expected_nodes=request.nodes)
        results_path, document, resumed = _open_document(
            request, suite, settings, settings_sha, datasets, machine, mismatches, software_manifest()
        )
    except BaseException:
        meter_set.close()
        raise
    document.meters = meter_set.describe()
    # The window minimum applies whatever the meter: the run's setting, raised to the meters' floor where higher
    # (NVML's counter refreshes every ~100 ms, so GPU windows need 10 s for 1% resolution).
    min_window_s = max(float(settings["min_window_s"]), meter_set.min_window_s)
    expectations = Expectations.from_document(document)

    done = document.cell_map()
    grid = [(m, d, r) for m in suite.models for d in suite.datasets for r in range(suite.repetitions_of(m))]
    todo = [
        key for key in grid if (key[1], key[0], key[2]) not in done or done[(key[1], key[0], key[2])].status != "ok"
    ]
    skipped = len(grid) - len(todo)
    ran = failed = 0
    session = len(document.environment.get("sessions", [])) - 1  # _open_document appended this session

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    console.print(
        f"[bold]bench[/] run [cyan]{document.run_id}[/]: profile {profile.name}, suite {request.suite_name}, "
        f"{len(grid)} cells ({skipped} already done){' — resumed' if resumed else ''}"
    )
    console.print("meters: " + ", ".join(f"{c}={v['method']}" for c, v in document.meters["components"].items()))
    if min_window_s > settings["min_window_s"]:
        console.print(
            f"window minimum raised from {settings['min_window_s']:g} s to {min_window_s:g} s "
            f"(meter {meter_set.min_window_by()} needs it)"
        )
    if mismatches:
        console.print("[yellow]hardware mismatch forced:[/] " + "; ".join(mismatches))

    placed_meters: dict[int, Any] = {}  # GPU count -> meter set over that many GPUs (host runs of LLM placements)

    def build_placed(indices: list[int]) -> Any:
        return build_meter_set(**meter_kwargs, gpu_indices=indices)

    try:
        with _sigterm_as_interrupt():
            if todo and settings["idle_baseline_s"] > 0:
                console.print(f"idle baseline: {settings['idle_baseline_s']:g} s ...")
                document.idle.append(_measure_idle(meter_set, settings["idle_baseline_s"], session, "start"))
                write_results(document, results_path)
            idle = document.idle[-1] if document.idle else None
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                disable=not request.progress,
            ) as progress:
                task = progress.add_task("cells", total=len(todo))
                run_started = time.perf_counter()
                current_model: str | None = None
                placed: int | None = None
                cell_meters: Any = meter_set
                idle_w: dict[str, float | None] | None = idle.power_w if idle else None
                backend: Any = None
                load_s: float | None = None
                load_error: BaseException | None = None
                for model_name, dataset_name, rep in todo:
                    if model_name != current_model:
                        if backend is not None:
                            backend.close()
                        current_model = model_name
                        placed = _host_placement_gpus(model_specs[model_name], profile, request)
                        cell_meters, indices = _placement_meter_set(meter_set, placed, placed_meters, build_placed)
                        idle_w = _idle_power_for(idle, indices)
                        backend, load_s, load_error = _load_model(
                            model_specs[model_name], profile, suite.seed, nodes=request.nodes
                        )
                        if backend is not None:
                            document.models[model_name] = {
                                **_model_record(model_specs[model_name]),
                                "info": backend.info(),
                            }
                    progress.update(task, description=f"{model_name} · {dataset_name} · rep {rep}")
                    started = now_iso()
                    if load_error is not None:
                        cell = _failed_cell(dataset_name, model_name, rep, started, load_error, stage="load")
                    else:
                        cell = _run_cell(
                            backend,
                            datasets[dataset_name],
                            dataset_name,
                            model_name,
                            rep,
                            started,
                            cell_meters,
                            settings,
                            min_window_s,
                            idle_w,
                            load_s,
                        )
                        if cell.status == "ok":
                            if request.gpus is not None or request.nodes > 1:
                                per_node = request.gpus if request.gpus is not None else profile.hardware.gpu_count
                                cell.gpus = per_node * request.nodes
                            elif placed is not None:
                                cell.gpus = placed  # a host run of a placement: the GPUs it used and was metered on
                            cell.validity = cell_validity(cell, expectations)
                        load_s = 0.0  # the model stays loaded for the next cells
                    document.cells = [c for c in document.cells if c.key != cell.key] + [cell]
                    document.updated_at = now_iso()
                    write_results(document, results_path)
                    ran += 1
                    failed += cell.status == "failed"
                    if cell.status == "failed":
                        progress.console.print(
                            f"[red]failed[/] {model_name} · {dataset_name} · rep {rep}: "
                            f"{cell.error.type}: {cell.error.message}"
                        )
                    elif cell.validity:
                        progress.console.print(
                            f"[yellow]invalid[/] {model_name} · {dataset_name} · rep {rep}: " + "; ".join(cell.validity)
                        )
                    if not console.is_terminal and request.progress:
                        # No live bar in logs (CI, Slurm): one line per cell with the ETA instead.
                        elapsed = time.perf_counter() - run_started
                        eta = elapsed / ran * (len(todo) - ran)
                        console.print(
                            f"[{ran}/{len(todo)}] {model_name} · {dataset_name} · rep {rep}: "
                            f"{_cell_brief(cell)} (elapsed {elapsed:.0f} s, ETA {eta:.0f} s)"
                        )
                    if on_cell is not None:
                        on_cell(cell)
                    progress.advance(task)
                if backend is not None:
                    backend.close()
            if ran and settings["idle_baseline_s"] > 0:
                # The same idle phase again, after the work: a baseline that moved during the session (thermal
                # drift, another tenant, a clock change) makes every net energy of the session doubtful.
                console.print(f"idle baseline (end of session): {settings['idle_baseline_s']:g} s ...")
                for warning in _end_of_session_idle(document, meter_set, settings["idle_baseline_s"], session):
                    console.print(f"[yellow]warning:[/] {warning}")
                document.updated_at = now_iso()
                write_results(document, results_path)
    except KeyboardInterrupt:
        document.status = "interrupted"
        document.updated_at = now_iso()
        write_results(document, results_path)
        for extra in placed_meters.values():
            extra.close()
        meter_set.close()
        raise RunInterrupted(results_path, len(document.cells), len(grid)) from None
    for extra in placed_meters.values():
        extra.close()
    meter_set.close()
    document.status = "complete"
    document.updated_at = now_iso()
    document.cells.sort(
        key=lambda c: (
            suite.datasets.index(c.dataset) if c.dataset in suite.datasets else 99,
            suite.models.index(c.model) if c.model in suite.models else 99,
            c.repetition,
        )
    )
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


def _host_placement_gpus(spec: Any, profile: HardwareProfile, request: RunRequest) -> int | None:
    """GPUs an LLM's placement uses in a host run (a CUDA profile, one node, no ``--gpus``); None otherwise.

    vLLM's tensor parallelism takes the first ``gpus_per_node`` visible GPUs (``_llm_setup``), so those are the GPUs
    the cells must meter: metering every visible GPU would give ``@1x1``, ``@1x2`` and ``@1x4`` the same GPUs and
    make the paper's GPU-count sweep meaningless. A Slurm task (``--gpus``) sees only its allocation already, and a
    traditional model keeps the whole-node metering the profile describes.
    """
    if spec.kind != "llm" or request.gpus is not None or request.nodes > 1 or profile.hardware.device != "cuda":
        return None
    from bench.hpc.placement import placement_for

    try:
        return placement_for(spec, profile, max_nodes=1).gpus_per_node
    except BenchError:
        return None  # the model cannot be placed here: its load fails with the reason, its cells carry it


def _placement_meter_set(
    meter_set: Any, gpus: int | None, cache: dict[int, Any], build: Callable[[list[int]], Any]
) -> tuple[Any, list[int] | None]:
    """The meter set for a placement of ``gpus`` GPUs: the first ``gpus`` GPUs ``meter_set`` meters (built once per
    count and cached), and their indices; ``meter_set`` itself (indices None) when there is nothing to narrow."""
    gpu_meter = meter_set.owner("gpu") if hasattr(meter_set, "owner") else None
    visible = list(getattr(gpu_meter, "indices", []) or [])
    if gpus is None or not visible or gpus >= len(visible):
        return meter_set, (visible[:gpus] if gpus is not None and visible else None)
    if gpus not in cache:
        cache[gpus] = build(visible[:gpus])
    return cache[gpus], visible[:gpus]


def _idle_power_for(idle: IdleBaseline | None, indices: list[int] | None) -> dict[str, float | None] | None:
    """The idle power to subtract from cells metered on ``indices`` only: GPU idle summed over those GPUs.

    The idle phase meters every visible GPU; a cell of a 1-GPU placement must not have four GPUs' idle power taken
    from one GPU's energy. Without per-GPU idle records the GPU's net energy is left unknown, never guessed.
    """
    if idle is None or indices is None:
        return idle.power_w if idle is not None else None
    power = dict(idle.power_w)
    gpu_detail = idle.detail.get("gpu") or {}
    records = gpu_detail.get("gpus") if isinstance(gpu_detail, dict) else None
    per_gpu: dict[int, float] = {}
    for record in records or []:
        energy = record.get("energy_j") if isinstance(record, dict) else None
        if isinstance(record, dict) and isinstance(record.get("index"), int) and isinstance(energy, int | float):
            per_gpu[record["index"]] = float(energy) / idle.duration_s if idle.duration_s > 0 else 0.0
    known = power.get("gpu") is not None and all(i in per_gpu for i in indices)
    power["gpu"] = sum(per_gpu[i] for i in indices) if known else None
    return power


@dataclass
class _PreparedDataset:
    record: DatasetRecord
    texts: tuple[str, ...]
    labels: tuple[int, ...]


def _prepare_datasets(suite: SuiteSpec, data_paths: dict[str, str]) -> dict[str, _PreparedDataset]:
    """Load every data set of the suite and draw its splits (the same for every model)."""
    from bench.catalog.datasets import DATASETS
    from bench.data.loaders import load_dataset
    from bench.data.splits import make_splits, splits_sha256

    prepared = {}
    for name in suite.datasets:
        spec = DATASETS.get(name)
        data = load_dataset(name, path=data_paths.get(name))
        n_train = suite.n_train or (spec.n_train if spec else 200)
        n_test = suite.n_test or (spec.n_test if spec else 200)
        splits = make_splits(
            len(data.texts), data.labels, n_train=n_train, n_test=n_test, repetitions=suite.repetitions, seed=suite.seed
        )
        record = DatasetRecord(
            name=name,
            pin=dict(data.pin),
            label_names=list(data.label_names),
            language=data.language,
            n_items=len(data.texts),
            n_train=n_train,
            n_test=n_test,
            splits=[
                SplitRecord(
                    repetition=s.repetition, seed=s.seed, train_idx=list(s.train_idx), test_idx=list(s.test_idx)
                )
                for s in splits
            ],
            splits_sha256=splits_sha256(splits),
            test_labels={str(s.repetition): [data.labels[i] for i in s.test_idx] for s in splits},
        )
        prepared[name] = _PreparedDataset(record=record, texts=data.texts, labels=data.labels)
    return prepared


def _model_record(spec: Any) -> dict[str, Any]:
    return {
        "name": spec.name,
        "paper_label": spec.paper_label,
        "kind": spec.kind,
        "backend": spec.backend,
        "params": dict(spec.params),
    }


def _open_document(
    request: RunRequest,
    suite: SuiteSpec,
    settings: dict[str, Any],
    settings_sha: str,
    datasets: dict[str, _PreparedDataset],
    machine: Any,
    mismatches: list[str],
    software: dict[str, Any],
) -> tuple[Path, ResultDocument, bool]:
    """Resume the run asked for (or the newest unfinished compatible one) or start a new document."""
    reports_dir = request.reports_dir
    path: Path | None = None
    if request.run_id:
        candidate = reports_dir / request.run_id / "results.json"
        if candidate.exists():
            if request.new:
                raise ConfigError(f"--new with --run-id {request.run_id}: that run exists; pick another run id")
            path = candidate
    elif not request.new:
        path = _find_resumable(reports_dir, request.profile.name, request.suite_name, settings_sha)
    if path is not None:
        doc = load_results(path)
        if doc.settings_sha256 != settings_sha:
            raise ConfigError(
                f"{path}: this run was made with other settings (profile, suite or overrides differ), so its cells "
                "cannot be mixed with new ones. Use another --run-id, or --new for a fresh run."
            )
        for name, prepared in datasets.items():
            old = doc.datasets.get(name)
            if old is not None and not old.same_data(prepared.record):
                raise ConfigError(
                    f"{path}: data set {name!r} or its splits changed since this run started; use --new for a fresh run"
                )
        doc.status = "running"
        doc.environment.setdefault("sessions", []).append(_session_record(now_iso(), machine, software))
        return path, doc, True
    run_id = request.run_id or _new_run_id(request.profile.name, request.suite_name)
    path = reports_dir / run_id / "results.json"
    now = now_iso()
    doc = ResultDocument(
        run_id=run_id,
        status="running",
        created_at=now,
        updated_at=now,
        kit_version=__version__,
        profile=request.profile.model_dump(mode="json"),
        suite_name=request.suite_name,
        suite=suite.model_dump(mode="json"),
        settings=settings,
        settings_sha256=settings_sha,
        hardware_mismatch=mismatches,
        forced=bool(mismatches and request.force),
        environment={
            "machine": machine.to_dict(),
            "software": software,
            "sessions": [_session_record(now, machine, software)],
        },
        meters={},
        datasets={n: p.record for n, p in datasets.items()},
        models={},
        cells=[],
    )
    write_results(doc, path)
    return path, doc, False


def _session_record(started_at: str, machine: Any, software: dict[str, Any]) -> dict[str, Any]:
    """One session's environment; under Slurm also its job, array task, nodes and the GPUs it was given."""
    from bench.hpc.taskenv import slurm_environment

    record: dict[str, Any] = {"started_at": started_at, "machine": machine.to_dict(), "software": software}
    slurm = slurm_environment()
    if slurm is not None:
        record["slurm"] = slurm
    return record


def _new_run_id(profile: str, suite: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{profile}-{suite}-{stamp}"


def _load_model(
    spec: Any, profile: HardwareProfile, seed: int, *, nodes: int = 1
) -> tuple[Any, float | None, Exception | None]:
    """Create and load a model's backend: (backend, load seconds, None) or (None, None, the error)."""
    from bench.backends import create_backend

    overrides: dict[str, Any] = {"device": profile.hardware.device, "seed": seed}
    if "embedder" in spec.params:
        overrides["embedder"] = profile.embedder  # the profile pins the embedder it can have
    t0 = time.perf_counter()
    try:
        if spec.kind == "llm":
            spec, llm_overrides = _llm_setup(spec, profile, nodes=nodes)
            overrides.update(llm_overrides)
        backend = create_backend(spec, **overrides)
        backend.load()
    except Exception as exc:  # the model's cells fail, the grid goes on
        return None, None, exc
    return backend, time.perf_counter() - t0, None


def _llm_setup(spec: Any, profile: HardwareProfile, *, nodes: int = 1) -> tuple[Any, dict[str, Any]]:
    """The profile's serving settings for an LLM: backend, serving mode, token budget, GPUs, locked revision.

    GPUs: vLLM's tensor_parallel_size is the GPUs per node and its pipeline_parallel_size the nodes
    (``bench.hpc.placement``); a model that needs more nodes than this run has fails with how to fix it.
    """
    import dataclasses

    from bench.catalog.lock import locked_revision
    from bench.catalog.models import LLM_BACKENDS
    from bench.hpc.placement import placement_for

    llm = profile.llm
    model = str(spec.params["model"])
    gpus, pipeline = 1, 1
    if profile.hardware.device == "cuda":
        placement = placement_for(spec, profile, max_nodes=nodes)
        gpus, pipeline = placement.gpus_per_node, placement.nodes
    overrides: dict[str, Any] = {
        "serving": llm.serving,
        "batch_size": llm.batch_size,
        "max_new_tokens": llm.reasoning_max_new_tokens if spec.params.get("reasoning") else llm.max_new_tokens,
        "constrained": llm.constrained,
        "dtype": llm.dtype,
        "gpus": gpus,
        "pipeline_parallel_size": pipeline,
    }
    if not model.startswith("package:"):
        overrides["revision"] = locked_revision(model)  # None: the backend refuses, naming `bench models lock`
    return dataclasses.replace(spec, backend=LLM_BACKENDS[llm.backend]), overrides


def _cell_brief(cell: Cell) -> str:
    """One line about a finished cell, for logs."""
    if cell.status != "ok" or cell.window is None:
        return f"FAILED ({cell.error.type if cell.error else '?'})"
    total = total_energy_j(cell.energy) or 0.0
    brief = f"acc {cell.accuracy:.3f}, {cell.duration_s:.4f} s, {total:.3f} J per pass, {cell.window.loops} loop(s)"
    return brief + (f", INVALID: {'; '.join(cell.validity)}" if cell.validity else "")


def _failed_cell(dataset: str, model: str, rep: int, started: str, exc: BaseException, stage: str) -> Cell:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    return Cell(
        dataset=dataset,
        model=model,
        repetition=rep,
        status="failed",
        started_at=started,
        finished_at=now_iso(),
        error=CellError(type=type(exc).__name__, message=f"during {stage}: {exc}", traceback=tb[-4000:]),
    )


def _run_cell(
    backend: Any,
    data: _PreparedDataset,
    dataset_name: str,
    model_name: str,
    rep: int,
    started: str,
    meter_set: Any,
    settings: dict[str, Any],
    min_window_s: float,
    idle_w: dict[str, float | None] | None,
    load_s: float | None,
) -> Cell:
    """Train, warm up and measure one cell; any exception becomes a failed cell."""
    split = data.record.splits[rep]
    stage = "fit"
    try:
        train_texts = [data.texts[i] for i in split.train_idx]
        train_labels = [data.labels[i] for i in split.train_idx]
        test_texts = [data.texts[i] for i in split.test_idx]
        test_labels = data.record.test_labels[str(rep)]
        t0 = time.perf_counter()
        backend.fit(train_texts, train_labels, data.record.label_names, language=data.record.language)
        train_s = time.perf_counter() - t0
        stage = "warm-up"
        backend.predict(test_texts[:WARMUP_TEXTS])
        stage = "measured inference"
        predictions, window, reading = measure_window(
            backend, test_texts, meter_set, min_window_s, settings["max_loops"]
        )
    except Exception as exc:
        return _failed_cell(dataset_name, model_name, rep, started, exc, stage)
    duration_s = window.duration_s / window.loops
    side = reading.side.get("codecarbon") if getattr(reading, "side", None) else None
    invalid = sum(1 for p in predictions if p < 0) / len(predictions)
    usage = backend.usage() if hasattr(backend, "usage") else None  # one pass; LLM backends count tokens
    nodes = getattr(reading, "nodes", None)  # multi-node windows (bench.hpc.multinode) keep each node's reading
    return Cell(
        dataset=dataset_name,
        model=model_name,
        repetition=rep,
        status="ok",
        started_at=started,
        finished_at=now_iso(),
        n_test=len(test_texts),
        accuracy=accuracy(test_labels, predictions),
        macro_f1=macro_f1(test_labels, predictions),
        invalid_rate=invalid,
        load_s=load_s,
        train_s=train_s,
        duration_s=duration_s,
        window=window,
        energy=_per_pass(
            reading.components, window.loops, duration_s, idle_w, getattr(reading, "component_duration_s", None)
        ),
        codecarbon=_per_pass(side.components, window.loops, duration_s, None) if side is not None else None,
        predictions=[int(p) for p in predictions],
        tokens=usage,
        answers_sample=list(getattr(backend, "last_answers", []))[:ANSWER_SAMPLE] or None,
        nodes=_node_energies(nodes, window.loops) if nodes else None,
    )


def _node_energies(nodes: dict[str, Any], loops: int) -> list[NodeEnergy]:
    """Each node's window reading as per-pass numbers (the cell's own are their sum and maximum)."""
    return [
        NodeEnergy(
            host=host,
            duration_s=reading.duration_s / loops,
            energy_j={c: None if ce.energy_j is None else ce.energy_j / loops for c, ce in reading.components.items()},
            methods={c: ce.method for c, ce in reading.components.items()},
        )
        for host, reading in nodes.items()
    ]
