"""The ``bench`` command line. Subcommands import what they need when they run, so ``bench --help`` is instant.

Exit codes: 0 success (``bench run``: also when cells were flagged, saying how to redo them; ``--strict`` makes that
1); 1 the command ran but found problems (invalid results, failed cells); 2 bad input or an error the message
explains; 130 interrupted (the partial result is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench import __version__
from bench.cliargs import parse_data_paths
from bench.containers.cli import add_parsers as add_container_parsers
from bench.errors import BenchError, ConfigError
from bench.hpc.cli import add_parsers as add_hpc_parsers
from bench.leaderboard.cli import add_parsers as add_leaderboard_parsers
from bench.run.options import add_run_options, container_args, request_from_args, with_measurement


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal:  # logs and pipes: wide enough for the summary table instead of rich's 80 columns
        console = Console(highlight=False, width=160, stderr=stderr)
    return console


# --- run --------------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Run (or resume) a suite of a profile and print the summary table."""
    from bench.runner import RunInterrupted, run

    request = request_from_args(args)  # through the options' declaration (bench.run.options)
    if args.model_store:
        _use_model_store(args.model_store)
    if args.engine != "host":
        status = _run_elsewhere(args, request.profile)
        if status is not None:
            return status
    try:
        outcome = run(request)
    except RunInterrupted as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 130
    console = _console(stderr=args.json)
    _print_summary(outcome.document, console, warnings=False)  # the run printed each warning as it came
    status = _run_status(outcome, request, console, strict=args.strict)
    if args.json:
        # The document exactly as stored (hash intact), for pipelines and containers run without a mounted reports/.
        sys.stdout.write(outcome.results_path.read_text(encoding="utf-8"))
        sys.stdout.flush()
    console.print(f"results: {outcome.results_path}")
    if args.no_report:
        return status
    from bench.report import write_report

    # The report is rendered from the file just written (not the in-memory document), so it shows exactly what
    # was stored; its path is the last line, for people and for scripts (`make bench | tail -1`).
    try:
        report = write_report(outcome.results_path)
    except Exception as exc:  # the results are safe on disk; a report bug must not read as a failed run
        print(
            f"bench: report.html not rendered ({type(exc).__name__}: {exc}); results are kept, retry with "
            f"`bench report {outcome.results_path.parent}`",
            file=sys.stderr,
        )
        return 1
    print(f"report: {report}", file=sys.stderr if args.json else sys.stdout, flush=True)
    return status


def _run_status(outcome: Any, request: Any, console: Any, *, strict: bool) -> int:
    """Print what a finished run's cells need and return ``bench run``'s exit status: 1 when cells failed or are
    invalid (an implausible reading), or (``--strict``, for CI) were flagged; 0 when every cell ran, flagged ones
    included, with how many were flagged, why, and the exact command that redoes them (``--redo-flagged``)."""
    from bench.run.options import resume_command
    from bench.run.progress import Attention

    attention = Attention.of(outcome.document)
    console.print(
        f"\nran {outcome.ran} cell(s), skipped {outcome.skipped} already done, {outcome.failed} failed"
        + (
            f", {attention.invalid} invalid (failed a plausibility check: see `bench validate`)"
            if attention.invalid
            else ""
        )
    )
    for line in attention.lines(resume_command(request, outcome.run_id, "--redo-flagged")):
        console.print(line, soft_wrap=True)  # a command is one line, never wrapped
    if outcome.failed or attention.invalid:  # the run finished but its results need attention
        return 1
    if strict and attention.flagged:
        console.print(f"exit 1: {attention.flagged} cell(s) flagged, and --strict asks for none")
        return 1
    return 0


def _with_measurement(profile: Any, **overrides: Any) -> Any:
    """``profile`` with measurement settings overridden from the command line (``bench.run.options.with_measurement``:
    validated, errors naming each option)."""
    return with_measurement(profile, **overrides)


def _use_model_store(path: str) -> None:
    """``--model-store DIR``: Hub LLMs load from DIR, every file checked against the lock first (on the host; in a
    container DIR is mounted read-only and the run inside reads it). ConfigError when DIR is not a folder."""
    from bench.catalog.resolve import MODEL_STORE_ENV

    if not Path(path).is_dir():
        raise ConfigError(
            f"--model-store {path}: no such folder; write one with `bench models fetch --store {path} --profile ...`"
        )
    os.environ[MODEL_STORE_ENV] = str(Path(path).resolve())


def _container_run_args(args: argparse.Namespace) -> list[str]:
    """The options of this ``bench run`` that the run inside the container takes unchanged: those the declaration
    marks ``container`` (``bench.run.options.container_args``)."""
    return container_args(args)


def _run_elsewhere(args: argparse.Namespace, profile: Any) -> int | None:
    """``--engine auto|container``: run in the profile's image when an engine answers; None means run on the host."""
    from bench.containers.launch import choose_where, container_run, run_in_container

    where = choose_where(args.engine, profile)
    if where.engine is None:
        print(f"bench: running on the host ({where.reason})", file=sys.stderr, flush=True)
        return None
    profile_path = Path(args.profile) if Path(args.profile).is_file() else None
    data_paths = parse_data_paths(args.data)
    return run_in_container(
        where.engine,
        profile,
        lambda image_id: container_run(
            profile,
            image_id,
            _container_run_args(args),
            Path(args.reports_dir),
            data_paths,
            profile_path,
            datasets=args.dataset,
            models=args.model,
            model_store=Path(args.model_store) if args.model_store else None,
        ),
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


#: What the summary's energy columns mean (printed under the tables).
ENERGY_COLUMNS = (
    "J/pass: the energy of one pass over the test split, all metered components, as the meters read it (gross); "
    "net J: the same less the idle baseline's power over the pass (what the model added); mJ/text: J/pass per "
    "test text (gross); CodeCarbon J: CodeCarbon's reading of the same windows, side by side"
)


def _print_summary(doc: Any, console: Any, *, warnings: bool = True, folder: Any = None) -> None:
    """The per-data-set tables, how energy was obtained, the warnings about the models (always: computed from the
    cells, so the run printed none of them), and (``warnings``) the run's warnings."""
    from rich.markup import escape
    from rich.table import Table

    from bench.analysis import model_rows, model_warnings
    from bench.validation import redo_command

    rows = model_rows(doc)
    invalid = _invalid_rates(doc)
    for dataset in dict.fromkeys(r.dataset for r in rows):
        # an LLM that never answers in the expected format shows accuracy 0.000: the invalid-answer rate says why
        shown = {m: v for (d, m), v in invalid.items() if d == dataset and v > 0}
        served = any(r.texts_per_s is not None for r in rows if r.dataset == dataset)  # LLM cells' speed
        table = Table(
            title=f"{dataset}: mean over repetitions; duration and energy per pass over the test split",
            title_justify="left",
        )
        for col in (
            "model",
            "n",
            "accuracy ± 95% CI",
            "paper",
            "macro-F1",
            "s/pass",
            "J/pass",
            "net J",
            "mJ/text",
            "CodeCarbon J",
            *(["invalid answers"] if shown else []),
            *(["texts/s", "latency s median/p95", "s/batch"] if served else []),
        ):
            # a configured model's name has no spaces to wrap at: fold it rather than cut its configuration off
            table.add_column(
                col, justify="left" if col == "model" else "right", overflow="fold" if col == "model" else None
            )
        methods: dict[str, set[str]] = {}
        for r in (r for r in rows if r.dataset == dataset):
            for component, method in r.component_methods.items():
                methods.setdefault(component, set()).add(method)
            acc = _mean_ci(r.accuracy)
            table.add_row(
                escape(r.model),  # `smollm2-135m[serving=batched]` is not rich markup
                f"{r.n_ok}"
                + (f" ({r.n_failed} failed)" if r.n_failed else "")
                + (f" ({r.n_invalid} invalid)" if r.n_invalid else "")
                + (f" ({r.n_flagged} flagged)" if r.n_flagged else ""),
                acc,
                _fmt(r.paper_accuracy, 2),
                _fmt(r.macro_f1.mean if r.macro_f1 else None),
                _fmt(r.duration_s.mean if r.duration_s else None, 4),
                _fmt(r.energy_j.mean if r.energy_j else None, 3),
                _fmt(r.net_energy_j.mean if r.net_energy_j else None, 3),
                _fmt(r.j_per_text * 1000 if r.j_per_text is not None else None, 3),
                _fmt(r.codecarbon_j, 3),
                *([f"{shown[r.model]:.1%}" if r.model in shown else "—"] if shown else []),
                *(
                    [
                        _fmt(r.texts_per_s, 2),
                        f"{_fmt(r.latency_median_s, 3)} / {_fmt(r.latency_p95_s, 3)}"
                        if r.latency_median_s is not None
                        else "—",
                        _fmt(r.batch_median_s, 3),
                    ]
                    if served
                    else []
                ),
            )
        console.print(table)
        if shown:
            console.print(
                "invalid answers: LLM answers that matched no label (counted as wrong); `answers_sample` in "
                "results.json shows what the model said"
            )
        if methods:  # none before a cell of the data set has run
            console.print("energy by: " + "; ".join(f"{c} {', '.join(sorted(m))}" for c, m in methods.items()))
    if rows:
        console.print(f"[dim]{ENERGY_COLUMNS}[/]")
    if doc.hardware_mismatch:
        console.print("[yellow]hardware mismatch (forced):[/] " + "; ".join(doc.hardware_mismatch))
    # About the models, computed from the document: the run printed none of them (they need its cells)
    for warning in model_warnings(doc):
        console.print(f"[yellow]model warning:[/] {escape(warning.message)}")
    if not warnings:
        if doc.warnings:
            console.print(
                f"[yellow]{len(doc.warnings)} run warning(s)[/] (printed above; in results.json and the report)"
            )
        return
    for warning in doc.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    flagged = [c for c in doc.cells if c.status == "ok" and c.flags]
    if flagged:
        console.print(
            f"[yellow]{len(flagged)} cell(s) flagged[/] (other processes, throttling or a temperature out of range "
            "during the window; their energy and duration are left out of the means): redo them with "
            f"`{escape(redo_command(doc, folder))}`"
        )
    for repair in doc.repairs:
        console.print(
            f"repaired: session {repair.session} ({repair.started_at}) ran {len(repair.cells)} cell(s) again "
            "(`bench report` lists them)"
        )


def _invalid_rates(doc: Any) -> dict[tuple[str, str], float]:
    """Per (data set, model), the mean invalid-answer rate over its ok cells (answers that matched no label)."""
    rates: dict[tuple[str, str], list[float]] = {}
    for cell in doc.cells:
        if cell.status == "ok" and cell.invalid_rate is not None:
            rates.setdefault((cell.dataset, cell.model), []).append(cell.invalid_rate)
    return {key: sum(values) / len(values) for key, values in rates.items()}


def _mean_ci(summary: Any) -> str:
    """``0.630 ± 0.070`` (mean ± the 95% CI's half width); one sample has no interval: ``0.505 (n = 1)``."""
    if summary is None:
        return "—"
    if summary.n < 2:
        return f"{summary.mean:.3f} (n = 1)"
    return f"{summary.mean:.3f} ± {summary.ci95_high - summary.mean:.3f}"


def cmd_export(args: argparse.Namespace) -> int:
    """One run's cells as a flat table (``bench.tables.CELL_COLUMNS``) in csv, parquet or json; a results.json that
    cannot be read, or was edited, is refused naming the file (exit 2), as ``bench validate`` refuses it."""
    from bench.results import load_results
    from bench.tables import CELL_COLUMNS, cell_rows, write_table

    doc = load_results(args.run)
    output = Path(args.output) if args.output else Path(f"{doc.run_id}.cells.{args.format}")
    rows = cell_rows(doc)
    write_table(rows, CELL_COLUMNS, args.format, output)
    print(f"wrote {output}: {len(rows)} cell(s) of run {doc.run_id} ({args.format})")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the summary table of a finished or partial run."""
    from bench.results import load_results

    doc = load_results(args.run)
    _print_summary(doc, _console(), folder=args.run)
    return 0


# --- report, compare ----------------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """Render the self-contained report.html of a run."""
    from bench.report import write_report

    path = write_report(args.run, args.output)
    print(f"report: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Render one page comparing several runs (normalized per text, one scale)."""
    from bench.report import write_compare

    path = write_compare(args.runs, args.output)
    print(f"compare: {path}")
    return 0


# --- validate ---------------------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """Check results files: JSON, schema, content hash, internal consistency, plausibility (``bench.validation``).

    Exit 1 when any file is INVALID (unreadable, or a finding of the document's own consistency or an implausible
    reading); 0 otherwise. Flags (conditions of the machine during a window) keep a file OK: it prints how many cells
    are flagged and each flag as a warning, with the command that redoes them. The run's warnings and the warnings
    about its models (``bench.analysis.model_warnings``: one class predicted for every text) are printed as warnings
    and change nothing of the exit status."""
    from bench.analysis import model_warnings
    from bench.results import planned_cells
    from bench.validation import flagged_cells, redo_command, split_problems, validate_file

    worst = 0
    for path in args.files:
        try:
            doc, problems = validate_file(path)
        except BenchError as exc:
            print(f"INVALID {exc}")
            worst = max(worst, 1)
            continue
        invalid, flags = split_problems(problems)
        flagged = flagged_cells(flags)
        if invalid:
            print(f"INVALID {path}: {len(invalid)} problem(s)")
            for p in invalid:
                print(f"  - {p}")
            worst = max(worst, 1)
        else:
            ok = sum(c.status == "ok" for c in doc.cells)
            planned = max(planned_cells(doc.suite) or 0, len(doc.cells))  # an interrupted run lacks some
            print(
                f"OK {path}: schema v{doc.schema_version}, run {doc.run_id}, status {doc.status}, "
                f"{ok}/{planned} cells ok"
                + (f", {len(flagged)} flagged (left out of the means)" if flagged else "")
                + f", {doc.content_hash}"
            )
        for line in _fit_lines(doc):
            print(f"  {line}")
        for p in flags:
            print(f"  warning: {p}")
        if flagged and not invalid:
            print(f"  {len(flagged)} cell(s) flagged: redo them in place with `{redo_command(doc, path)}`")
        for warning in getattr(doc, "warnings", []) or []:
            print(f"  warning: {warning}")
        for model_warning in model_warnings(doc):  # what a model predicted: a warning, the file stays valid
            print(f"  warning: {model_warning.message}")
    return worst


def _fit_lines(doc: Any) -> list[str]:
    """What ``bench validate`` says of a GPU run's machine: its GPUs as the run's profile recorded them and the paper's
    LLMs that fit them, the others with the reason (``bench.catalog.placement``), and the suite's models the run left
    out; nothing for a CPU run or a profile that does not parse."""
    from bench.catalog.placement import fits_summary, paper_llm_fits
    from bench.validation import Expectations

    profile = Expectations.from_document(doc).profile
    if profile is None or not profile.hardware.on_gpus:
        return []
    sessions = doc.environment.get("sessions") or [{}]
    fit = sessions[-1].get("fit") if isinstance(sessions[-1], dict) else None
    left_out = (fit or {}).get("left_out") or []
    lines = fits_summary(profile, paper_llm_fits(profile, max_nodes=1))
    return lines + [
        f"left out of this run: {f.get('model')}: {f.get('reason')}" for f in left_out if isinstance(f, dict)
    ]


# --- profiles, env, catalog ---------------------------------------------------------------------------------------


def cmd_profiles(args: argparse.Namespace) -> int:
    """List, show or validate hardware profiles."""
    from bench.config import list_profiles, load_profile, load_profile_file, profiles_dir

    if args.action == "list":
        console = _console()
        for name in list_profiles():
            try:
                p = load_profile(name)
                hw = p.hardware
                gpus = f"{hw.min_gpus}-{hw.gpu_count}x" if hw.min_gpus != hw.gpu_count else f"{hw.gpu_count}x"
                sizes = "/".join(f"{size:g}" for size in hw.memory_sizes_gb)
                gpus = f"{gpus} {hw.models_text()} {sizes} GB" if hw.gpu_count else "no GPU"
                console.print(
                    f"{name:8s} {hw.device:5s} {gpus:22s} suites: {', '.join(p.suites)}  — {p.description}",
                    soft_wrap=True,
                )
            except ConfigError as exc:
                console.print(f"{name:8s} [red]INVALID[/] {exc}")
        return 0
    if args.action == "init":
        return _profiles_init(args)
    if args.action == "show":
        for name in args.names:
            print(json.dumps(load_profile(name).model_dump(mode="json"), indent=2))
        return 0
    paths = [Path(n) if n.endswith(".toml") else profiles_dir() / f"{n}.toml" for n in args.names] or sorted(
        profiles_dir().glob("*.toml")
    )
    from bench.catalog.placement import placement_problems

    bad = 0
    for path in paths:
        try:
            problems = placement_problems(load_profile_file(path))
        except ConfigError as exc:
            print(f"INVALID {exc}")
            bad += 1
            continue
        if problems:  # the placements of its suites against its own node and the catalog's model sizes
            lines = "".join(f"\n  - {problem}" for problem in problems)
            print(f"INVALID {path}: placements ({len(problems)} problem(s)):{lines}")
            bad += 1
        else:
            print(f"OK {path}")
    return 1 if bad else 0


def _profiles_init(args: argparse.Namespace) -> int:
    """``bench profiles init``: write this machine's profile (``bench.machine_profile``), saying what it detected,
    which profile already matches, which of the paper's LLMs fit and where the file is."""
    from bench.catalog.placement import fits_summary, paper_llm_fits
    from bench.config import profiles_dir
    from bench.environment import detect_machine
    from bench.machine_profile import find_profile, profile_from_machine, write_profile

    machine = detect_machine()
    gpus = ", ".join(sorted({g.name for g in machine.gpus})) or f"no GPU ({machine.nvml_status})"
    print(f"detected: {len(machine.gpus)} GPU(s): {gpus}; {machine.cpu_model}, {machine.ram_gb:.0f} GB RAM")
    matching = find_profile(machine)
    if matching is not None:
        print(f"this machine matches profile {matching.name!r} already: `bench run --profile {matching.name}` runs it")
    output = Path(args.output) if args.output else None
    from_output = output.stem if output is not None and output.suffix == ".toml" else None
    name = args.name if args.name is not None else from_output  # --name "" is refused, not taken as no name
    profile = profile_from_machine(machine, name=name)
    if output is None:
        path = profiles_dir() / f"{profile.name}.toml"
    else:
        path = output if output.suffix == ".toml" else output / f"{profile.name}.toml"
    write_profile(profile, machine, path, overwrite=args.force)
    for line in fits_summary(profile, paper_llm_fits(profile, max_nodes=1)):
        print(line)
    where = profile.name if path.parent.resolve() == profiles_dir().resolve() else str(path)
    print(
        f"wrote {path}\nrun it with `bench run --profile {where}`; profiles are read from {profiles_dir()} "
        "($BENCH_PROFILES_DIR), or any path ending in .toml"
    )
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """Show what the kit detects on this machine, per device vendor what it found and why not, whether it matches a
    profile (``auto``: which one), how each component will be metered, and which of the paper's LLMs fit its GPUs and
    why the others do not: a short summary (``bench.env_summary``), or with ``--json`` the whole document."""
    from bench.catalog.placement import fits_summary, paper_llm_fits
    from bench.config import load_profile
    from bench.devices import probe_all
    from bench.environment import (
        accelerator_facts,
        accelerator_problems,
        check_profile,
        detect_machine,
        resolve_profile,
        software_manifest,
    )
    from bench.errors import MeterError
    from bench.machine_profile import auto_profile
    from bench.meters import build_meter_set, unmetered_soc_refusal

    machine = detect_machine()
    # as `--profile auto` everywhere (bench.run.options.load_profile_or_auto), on the machine detected once, keeping
    # how it chose
    chosen, how = auto_profile(machine) if args.profile == "auto" else (load_profile(args.profile), None)
    profile = resolve_profile(chosen, machine)
    try:
        meters = build_meter_set(
            cpu_tdp_w=profile.hardware.cpu_tdp_w,
            codecarbon=profile.measurement.codecarbon,
            use_gpu=profile.hardware.on_gpus,
            device=profile.hardware.device,
        )
        described: dict[str, object] = meters.describe()
        meters.close()
        refused = unmetered_soc_refusal(described, profile.hardware.device)  # as `bench run` refuses it
        if refused:
            described["refused"] = refused
    except MeterError as exc:  # e.g. a GPU in MIG mode: a run would be refused; say so instead of failing
        described = {"refused": str(exc)}
    accelerator = accelerator_facts(profile.hardware.device)  # PyTorch's build and what it sees of the device
    fits = paper_llm_fits(profile, max_nodes=1)
    info = {
        "machine": machine.to_dict(),
        "software": software_manifest(),
        # per vendor: found, or why not (library missing, no device, no permission, MIG, module scope)
        "devices": {vendor: {"ok": ok, "why": why} for vendor, (ok, why) in probe_all().items()},
        "meters": described,
        "profile": profile.name,
        "accelerator": accelerator,
        "profile_mismatch": check_profile(profile, machine) + accelerator_problems(accelerator),
        "gpus_as_run": {"gpu_count": profile.hardware.gpu_count, "gpu_memory_gb": profile.hardware.gpu_memory_gb}
        if profile.hardware.on_gpus
        else None,
        "paper_llms": [fit.to_dict() for fit in fits],
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    from bench.env_summary import render_summary

    matching = None
    if info["profile_mismatch"] and args.profile != "auto":  # what this machine matches instead, if another
        other, other_how = auto_profile(machine)
        matching = other_how if other.name != profile.name else None
    print(render_summary(info, fits_lines=fits_summary(profile, fits), how=how, matching=matching), end="")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """List the data sets the catalog knows."""
    from bench.catalog.datasets import DATASETS

    for name, spec in DATASETS.items():
        where = spec.hub_id or spec.package or "local file"
        print(f"{name:18s} {spec.source:8s} {len(spec.label_names):2d} classes  {spec.n_train}/{spec.n_test}  {where}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the catalog's models, lock their Hub revisions, or fetch a profile's models for offline runs."""
    from bench.catalog.lock import load_lock, lock_path
    from bench.catalog.models import MODELS

    if args.action == "list":
        lock = load_lock()
        for name, spec in MODELS.items():
            model = str(spec.params.get("model", ""))
            pin = ""
            if spec.kind == "llm" and not model.startswith("package:"):
                revision = (lock.get(model) or {}).get("revision")
                pin = f"@{revision[:12]}" if revision else "(not locked)"
                pin += "" if not revision or (lock.get(model) or {}).get("verified") else " (unverified)"
            print(f"{name:18s} {spec.kind:11s} {spec.paper_label or '—':18s} {model}{pin}")
        return 0
    if args.action == "lock":
        from bench.catalog.fetch import lock_models
        from bench.catalog.lock import verify_lock

        if args.verify:
            locked = verify_lock(args.models or None, token=os.environ.get("HF_TOKEN"))
        else:
            locked = lock_models(args.models or None, token=os.environ.get("HF_TOKEN"))
        for hub_id, entry in locked.items():
            state = f"verified, {len(entry.get('files', {}))} files" if entry.get("verified") else "not verified"
            print(f"{hub_id:48s} {entry['revision']} ({state})")
        print(f"wrote {lock_path()}")
        return 0
    from bench.catalog.fetch import fetch_profile, fetch_to_store, select_models
    from bench.config import load_profile

    profile = load_profile(args.profile)
    names = select_models(profile, suite=args.suite, models=args.models)
    if args.store:
        store = Path(args.store)
        fetched = fetch_to_store(store, names, token=os.environ.get("HF_TOKEN"))
    else:
        fetched = fetch_profile(profile, only=names)
    for item in fetched:
        where = item.pin.get("revision") or item.pin.get("package_version") or item.pin.get("version") or ""
        print(f"{item.kind:8s} {item.name:20s} {item.pin.get('source', '')} {where}")
    if args.store:
        print(
            f"model store {args.store}: {len(fetched)} locked snapshot(s); "
            f"run with `bench run --model-store {args.store}`"
        )
    else:
        print(f"profile {profile.name}: models available offline")
    return 0


# --- parser -----------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Energy and accuracy of text-classification "
        "inference (reruns Zschache & Hartwig, arXiv 2508.14170).",
    )
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run or resume a suite of a hardware profile")
    add_run_options(p)  # declared once, in bench/run/options.py
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="render the self-contained report.html of a run")
    p.add_argument("run", help="run folder (reports/<run-id>) or its results.json")
    p.add_argument("-o", "--output", help="where to write (default: report.html in the run folder)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="render one page comparing runs (e.g. machines) side by side")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders or results.json files")
    p.add_argument("-o", "--output", default="compare.html", help="where to write (default: compare.html)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("validate", help="check results files (schema, hash, consistency)")
    p.add_argument("files", nargs="+", help="results.json files or run folders")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("export", help="write one run's cells as a flat table (csv, parquet or json)")
    p.add_argument("run", help="run folder (reports/<run-id>) or its results.json")
    p.add_argument("--format", choices=["csv", "parquet", "json"], default="csv", help="table format (default: csv)")
    p.add_argument("-o", "--output", help="where to write (default: <run-id>.cells.<format> here)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("summary", help="print the summary table of a run")
    p.add_argument("run", help="results.json or run folder")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("profiles", help="list, show or validate hardware profiles")
    psub = p.add_subparsers(dest="action", required=True, metavar="list|show|validate|init")
    psub.add_parser("list", help="the profiles that ship, one line each").set_defaults(func=cmd_profiles, names=[])
    show = psub.add_parser("show", help="one or more profiles, resolved, as JSON")
    show.add_argument("names", nargs="+", metavar="NAME", help="profile names or TOML paths")
    show.set_defaults(func=cmd_profiles)
    check = psub.add_parser("validate", help="check profiles (default: every profile that ships)")
    check.add_argument("names", nargs="*", metavar="NAME", help="profile names or TOML paths")
    check.set_defaults(func=cmd_profiles)
    init = psub.add_parser(
        "init", help="write this machine's profile (detected GPUs, the paper's LLMs that fit) as a TOML to keep"
    )
    init.add_argument("--name", help="the profile's name (default: local-<GPU model>, e.g. local-l40s)")
    init.add_argument(
        "-o", "--output", help="file or folder to write (default: the profiles folder, hardware_profiles/)"
    )
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(func=cmd_profiles, names=[])

    p = sub.add_parser(
        "env", help="summarize the detected machine, meters, the match with a profile, the LLMs that fit"
    )
    p.add_argument(
        "--profile", default="auto", help="profile name or TOML path; auto (default): the one this machine matches"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print every detail as one JSON document (for scripts) instead of the summary",
    )
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("datasets", help="list the data sets of the catalog")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="list models, lock Hub revisions, fetch a profile's models")
    p.add_argument("action", nargs="?", default="list", choices=["list", "lock", "fetch"])
    p.add_argument("--profile", default="cpu", help="fetch: the profile whose suites' models to fetch")
    p.add_argument("--suite", help="fetch: only this suite's models (default: every suite of the profile)")
    p.add_argument(
        "--store",
        metavar="DIR",
        help="fetch: write the Hub LLMs' locked snapshots to DIR/<org>--<name>/<commit> (a model store for "
        "`bench run --model-store DIR`) instead of the Hugging Face cache",
    )
    p.add_argument("--model", dest="models", action="append", help="only this model (repeatable, or comma-separated)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="lock: check each committed commit on the Hub (needs Hub access), record every file's sha256 and set "
        "verified (without it, lock writes the Hub's current commits)",
    )
    p.set_defaults(func=cmd_models)

    # Subcommands that live with their room (argparse only at import, so `bench --help` stays instant).
    add_container_parsers(sub)  # image: bench/containers/cli.py
    add_leaderboard_parsers(sub)  # submit, leaderboard: bench/leaderboard/cli.py
    add_hpc_parsers(sub)  # slurm, merge: bench/hpc/cli.py
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional extra that is not installed: name it and its install command
        from bench.extras import missing_extra

        if (missing := missing_extra(exc)) is None:
            raise  # a module of the kit itself, or of no extra: a bug, shown with its traceback
        print(f"bench: error: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
