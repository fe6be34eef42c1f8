"""What a run prints, in one place (``RunReporter``): its header, phases and warnings, the progress over the grid (a
live bar on a terminal, one line per cell in logs: CI, Slurm) and the time left.

The time left (``Eta``) adds up, per model and data set still to run, what their cells cost: cells timed in this
session first, then the same model's cells in earlier sessions and runs of this profile under the same reports
folder (with the same minimum window), and a model's load time where it is not loaded yet. A model with no timed
cell anywhere counts as the window minimum per cell, and the estimate says that it is only a lower bound, and why.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.markup import escape

from bench.results import MACHINE_CONDITION_KINDS, Cell, ResultDocument
from bench.run.cell import cell_brief
from bench.run.plan import WARMUP_TEXTS, GridKey


@dataclass(frozen=True)
class Estimate:
    """Seconds left; ``lower_bound`` when some models (``untimed``) have no timed cell and count as the minimum."""

    seconds: float
    untimed: tuple[str, ...] = ()

    @property
    def lower_bound(self) -> bool:
        return bool(self.untimed)

    def short(self) -> str:
        """``1 min 28 s``, or ``≥ 5 s`` for a lower bound."""
        return ("≥ " if self.lower_bound else "") + format_duration(self.seconds)

    def long(self) -> str:
        """``short`` with the models not timed yet, for log lines."""
        if not self.lower_bound:
            return self.short()
        return f"{self.short()}; not timed yet: {', '.join(self.untimed)}"


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class _Costs:
    """Seconds per cell by (model, data set), and load seconds by model."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.loads: dict[str, list[float]] = defaultdict(list)

    def cell_s(self, model: str, dataset: str) -> float | None:
        same = self.cells.get((model, dataset))
        if not same:  # the model on another data set: better than nothing of the model at all
            same = [s for (m, _), values in self.cells.items() if m == model for s in values]
        return sum(same) / len(same) if same else None

    def load_s(self, model: str) -> float | None:
        values = self.loads.get(model)
        return sum(values) / len(values) if values else None


class Eta:
    """The time left in a run, from what each model's cells have cost (see the module's docstring).

    ``todo``: the cells this session will run, in order; ``history``: earlier runs (``stored_runs``) to learn costs
    from; ``profile``/``min_window_s``: only runs of that profile and window minimum teach; ``floor_cell_s``: what an
    untimed model's cell counts as (the window minimum, s)."""

    def __init__(
        self,
        todo: list[GridKey],
        *,
        history: Iterable[ResultDocument] = (),
        profile: str,
        min_window_s: float,
        floor_cell_s: float,
    ) -> None:
        self.left = Counter((model, dataset) for model, dataset, _ in todo)
        self.floor_cell_s = floor_cell_s
        self.loaded: str | None = None
        self.session = _Costs()
        self.history = _Costs()
        for doc in history:
            if doc.profile.get("name") == profile and doc.settings.get("min_window_s") == min_window_s:
                for cell in doc.cells:
                    self._learn(cell)

    def _learn(self, cell: Cell) -> None:
        """A stored cell's cost: fit, warm-up (a pass over ``WARMUP_TEXTS`` texts) and window, from its own fields
        (its timestamps are to the second; these are not)."""
        if cell.status != "ok" or cell.window is None or cell.duration_s is None:
            return
        warm_s = cell.duration_s * min(1.0, WARMUP_TEXTS / cell.n_test) if cell.n_test else 0.0
        self.history.cells[(cell.model, cell.dataset)].append((cell.train_s or 0.0) + warm_s + cell.window.duration_s)
        if cell.load_s:  # the first cell of a model in a session carries its load time, the others 0
            self.history.loads[cell.model].append(cell.load_s)

    def model_loaded(self, model: str, load_s: float | None) -> None:
        """``model`` is loaded now (in ``load_s`` seconds; None when it failed to load)."""
        self.loaded = model
        if load_s is not None:
            self.session.loads[model].append(load_s)

    def cell_done(self, model: str, dataset: str, cell_s: float) -> None:
        """A cell of ``model`` on ``dataset`` ran in ``cell_s`` wall seconds (its model's loading not included)."""
        self.left[(model, dataset)] -= 1
        self.session.cells[(model, dataset)].append(cell_s)

    def remaining(self) -> Estimate:
        """The seconds the cells left will take."""
        total = 0.0
        untimed: list[str] = []
        for (model, dataset), n in self.left.items():
            if n <= 0:
                continue
            cell_s = self.session.cell_s(model, dataset) or self.history.cell_s(model, dataset)
            if cell_s is None:
                cell_s = self.floor_cell_s
                if model not in untimed:
                    untimed.append(model)
            total += n * cell_s
        for model in {m for (m, _), n in self.left.items() if n > 0 and m != self.loaded}:
            total += self.session.load_s(model) or self.history.load_s(model) or 0.0
        return Estimate(total, tuple(untimed))


class RunProgress:
    """The bar (or, without a terminal, one line per cell) over a session's cells, with the ETA."""

    def __init__(self, console: Any, total: int, eta: Eta, *, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.eta = eta
        self.enabled = enabled
        self.total = total
        self.done = 0
        self._started = time.perf_counter()
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            disable=not enabled,
        )
        self._task = self._bar.add_task("cells", total=total, eta=eta.remaining().short())

    def __enter__(self) -> RunProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)  # type: ignore[arg-type]

    def print(self, message: str) -> None:
        """A line above the bar."""
        self._bar.console.print(message)

    def model_loaded(self, model: str, load_s: float | None) -> None:
        """A model was loaded (``load_s`` None: it failed to): the ETA no longer counts its loading."""
        self.eta.model_loaded(model, load_s)
        self._bar.update(self._task, eta=self.eta.remaining().short())

    def cell_started(self, model: str, dataset: str, rep: int) -> None:
        self._bar.update(self._task, description=escape(f"{model} · {dataset} · rep {rep}"))

    def cell_finished(self, cell: Cell, cell_s: float) -> None:
        """Count the cell, tell what went wrong with it, and (in logs) print its line with the time left."""
        self.done += 1
        self.eta.cell_done(cell.model, cell.dataset, cell_s)
        # `smollm2-135m[serving=batched]` is not rich markup: escaped, or rich drops the configuration
        where = escape(f"{cell.model} · {cell.dataset} · rep {cell.repetition}")
        if cell.status == "failed" and cell.error is not None:
            self.print(f"[red]failed[/] {where}: {escape(f'{cell.error.type}: {cell.error.message}')}")
        elif cell.validity:
            self.print(f"[yellow]invalid[/] {where}: " + escape("; ".join(cell.validity)))
        if cell.flags:
            self.print(f"[yellow]flagged[/] {where}: " + escape("; ".join(cell.flags)))
        left = self.eta.remaining()
        if not self.console.is_terminal and self.enabled:
            # No live bar in logs (CI, Slurm): one line per cell with the time left instead.
            elapsed = time.perf_counter() - self._started
            self.console.print(
                f"[{self.done}/{self.total}] {where}: {escape(cell_brief(cell))} (elapsed {elapsed:.0f} s, "
                f"ETA {escape(left.long())})"
            )
        self._bar.update(self._task, advance=1, eta=left.short())


class RunReporter:
    """The one place a run prints: its header, the phases, warnings as they come, the progress over the grid (a bar on
    a terminal, one line per cell in logs) and the end. Everything goes to stderr (stdout is the document's with
    ``bench run --json``).

    ``console``: a rich Console (default: stderr, 160 columns wide in logs so lines are not wrapped at 80);
    ``progress``: whether to show progress over the grid (``--no-progress`` turns it off)."""

    def __init__(self, console: Any = None, *, progress: bool = True) -> None:
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
            if not console.is_terminal:  # logs (CI, Slurm): one line per cell, not wrapped at rich's 80 columns
                console = Console(stderr=True, width=160)
        self.console = console
        self.progress = progress

    def line(self, message: str) -> None:
        """One line (rich markup)."""
        self.console.print(message)

    def warning(self, message: str) -> None:
        """A warning, as it comes (the run also stores it in the results)."""
        self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def phase(self, message: str) -> None:
        """A phase of the session starts: ``idle baseline: 2 s ...``, ``calibration: reference workload ...``."""
        self.console.print(message)

    def nothing_to_do(self, run_id: str, cells: int) -> None:
        """A complete run asked again: nothing runs and the stored run stays as it is."""
        self.console.print(f"[bold]bench[/] run [cyan]{run_id}[/] is complete ({cells} cells): nothing to do")

    def nothing_to_redo(self, run_id: str, cells: int) -> None:
        """``--redo-flagged`` on a run none of whose cells failed, was flagged or is invalid: it stays as it is."""
        self.console.print(
            f"[bold]bench[/] run [cyan]{run_id}[/]: nothing to redo (none of its {cells} cells failed, was flagged or "
            "is invalid)"
        )

    def started(self, start: SessionStart) -> None:
        """The header of a session: the run, how many cells, which run it is beside or resumes, the meters, and the
        warnings of the checks before it (and of a resumed run's earlier sessions)."""
        resumed = " — resumed" if start.resumed else ""
        if start.repairing:
            resumed = f" — repair: {start.repairing} cell(s) that failed, were flagged or are invalid, run again"
        self.console.print(
            f"[bold]bench[/] run [cyan]{start.run_id}[/]: profile {start.profile}, suite {start.suite}, "
            f"{start.cells} cells ({start.skipped} already done){resumed}"
        )
        if start.beside is not None:
            self.console.print(
                f"(the latest run with these settings, {start.beside}, is complete: this is a new run beside it)"
            )
        elif start.new_name is not None:
            self.console.print(f"(no stored run {start.new_name[0]} under {start.new_name[1]}: a new run of that name)")
        if start.repetitions_line():
            self.console.print(escape(start.repetitions_line()))
        self.console.print("meters: " + ", ".join(f"{c}={v['method']}" for c, v in start.meters.items()))
        if start.window_raised is not None:
            setting_s, floor_s, meter = start.window_raised
            self.console.print(f"window minimum raised from {setting_s:g} s to {floor_s:g} s (meter {meter} needs it)")
        for line in start.machine_fit:
            self.console.print(escape(line), soft_wrap=True)
        if start.mismatches:
            self.console.print("[yellow]hardware mismatch forced:[/] " + "; ".join(start.mismatches))
        for note in start.warnings:
            self.warning(note)

    def grid(self, total: int, eta: Eta) -> RunProgress:
        """The progress over the grid's ``total`` cells (a context manager), with the time left from ``eta``."""
        return RunProgress(self.console, total, eta, enabled=self.progress)


@dataclass(frozen=True)
class SessionStart:
    """What the header of a session says (``RunReporter.started``).

    ``cells``/``skipped``: the grid's cells and those already done; ``beside``: the id of a complete run with the same
    settings this new one starts beside; ``new_name``: (run id, reports folder) of a ``--run-id`` that names no
    stored run; ``meters``: the results' ``meters.components``; ``window_raised``: (the setting, the meters' floor,
    the meter) when a meter raised the window minimum [s]; ``mismatches``: hardware mismatches forced; ``machine_fit``:
    the machine's GPUs and which of the paper's LLMs fit them (``bench.catalog.placement.fits_summary``); ``warnings``:
    the run's warnings so far; ``repairing``: the cells a ``--redo-flagged`` session runs again; ``repetitions``: the
    suite's repetitions, ``per_model``: (model, repetitions) of the models that run another count, ``replaced``:
    (model, the suite's own count) that an explicit ``--repetitions`` replaced."""

    run_id: str
    profile: str
    suite: str
    cells: int
    skipped: int
    resumed: bool
    meters: dict[str, Any]
    beside: str | None = None
    new_name: tuple[str, str] | None = None
    window_raised: tuple[float, float, str] | None = None
    mismatches: tuple[str, ...] = ()
    machine_fit: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    repairing: int = 0
    repetitions: int = 0
    per_model: tuple[tuple[str, int], ...] = ()
    replaced: tuple[tuple[str, int], ...] = ()

    def repetitions_line(self) -> str:
        """What the header says of the repetitions when the models do not all run the suite's, or an explicit
        ``--repetitions`` replaced the suite's per-model ones (plain text); empty otherwise."""
        if self.replaced:
            own = ", ".join(f"{m} {n}" for m, n in self.replaced)
            return (
                f"repetitions: {self.repetitions} for every model (--repetitions {self.repetitions}, over the suite's "
                f"own per-model repetitions: {own})"
            )
        if self.per_model:
            others = ", ".join(f"{m} {n}" for m, n in self.per_model)
            return f"repetitions: {self.repetitions} per model, except {others}"
        return ""


def flag_kind(reason: str) -> str:
    """A flag's reason, short (``other processes on the CPU``: ``bench.results.MACHINE_CONDITION_KINDS``), for the
    end of a run; an unknown one up to its first colon."""
    for marker, kind in MACHINE_CONDITION_KINDS.items():
        if marker in reason:
            return kind
    return reason.split(":", 1)[0][:60]


@dataclass(frozen=True)
class Attention:
    """What a finished run's cells need: ``failed`` (an error), ``invalid`` (an implausible reading), ``flagged`` (a
    condition of the machine: kept out of the means) cell counts, the flags' kinds with how many cells each
    (``flag_kind``), and whether another process's CPU share is among them (``--max-other-cpu-share`` accepts it)."""

    failed: int
    invalid: int
    flagged: int
    kinds: dict[str, int]
    cpu_share: bool

    @classmethod
    def of(cls, document: ResultDocument) -> Attention:
        """The attention ``document``'s cells need."""
        kinds: Counter[str] = Counter()
        flagged = [c for c in document.cells if c.status == "ok" and c.flags]
        for cell in flagged:
            kinds.update({flag_kind(r) for r in cell.flags})  # a cell counts once per kind
        return cls(
            failed=sum(c.status == "failed" for c in document.cells),
            invalid=sum(1 for c in document.cells if c.validity),
            flagged=len(flagged),
            kinds=dict(kinds),
            cpu_share=any("other processes used" in r for c in flagged for r in c.flags),
        )

    @property
    def redo(self) -> int:
        """Cells ``--redo-flagged`` would run again."""
        return self.failed + self.invalid + self.flagged

    def lines(self, redo_command: str) -> list[str]:
        """What the end of a run says about them (rich markup): how many were flagged and why, and the command that
        redoes every cell that failed, was flagged or is invalid; nothing when no cell needs it."""
        out = []
        if self.flagged:
            why = ", ".join(f"{kind} ({n})" for kind, n in self.kinds.items())
            out.append(
                f"[yellow]{self.flagged} cell(s) flagged[/] (their energy is kept out of the means): {escape(why)}"
            )
        if self.redo:
            out.append(f"redo them in place: {escape(redo_command)}")
        if self.cpu_share:
            out.append(
                "(on a machine that is never quiet, accept the others' share instead with --max-other-cpu-share)"
            )
        return out
