"""``bench slurm`` and ``bench merge``: argparse and commands, added to the main parser by ``add_parsers``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.run.options import add_run_options, run_fields


def cmd_slurm(args: argparse.Namespace) -> int:
    """Write the sbatch array scripts (and the manifest) for a suite; with --submit, submit them."""
    from bench.hpc.slurm import SlurmRequest, prepare, submit

    request = SlurmRequest(
        profile=args.profile,
        run=run_fields(args, "slurm"),  # the run options bench slurm takes, declared in bench/run/options.py
        output=Path(args.output),
        mode="host" if args.host else "apptainer",
        venv=Path(args.venv).resolve() if args.venv else None,
        image=args.image,
        partition=args.partition,
        account=args.account,
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        time=args.time,
        model_store=Path(args.model_store) if args.model_store else None,
    )
    prepared = prepare(request)
    for warning in prepared.manifest.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    total = sum(len(st.task.cells()) for st in prepared.statuses)
    missing = sum(len(st.missing) for st in prepared.statuses)
    verb = "resumed" if prepared.resumed else "planned"
    print(
        f"{verb} run {prepared.manifest['run_id']}: {len(prepared.statuses)} task(s), {total} cell(s), "
        f"{missing} to run; manifest {prepared.folder / 'manifest.json'}"
    )
    if not prepared.scripts:
        print("nothing missing: every cell of every task is done; `bench merge` the folder")
        return 0
    for script, tasks in prepared.scripts:
        print(f"  {script}: array of {len(tasks)} task(s): {', '.join(t.name for t in tasks)}")
    if not args.submit:
        print("submit with: " + " && ".join(f"sbatch {s}" for s, _ in prepared.scripts) + "  (or rerun with --submit)")
        return 0
    for record in submit(prepared):
        print(f"submitted job {record['job_id']} ({record['script']}, array {record['indices']})")
    job_ids = [r["job_id"] for r in prepared.manifest["submissions"][-len(prepared.scripts) :]]
    print(f"job id: {','.join(job_ids)}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge the parts of a Slurm run folder into one run; exit 1 when cells are missing."""
    from bench.hpc.merge import merge

    outcome = merge(Path(args.folder))
    doc = outcome.document
    ok = sum(c.status == "ok" for c in doc.cells)
    print(f"merged {len(doc.parts)} part(s) into {outcome.path}: {ok}/{len(doc.cells)} cells ok, status {doc.status}")
    for part in doc.parts:
        job = (
            f"{part.slurm['array_job_id']}_{part.slurm.get('array_task_id')}" if part.slurm.get("array_job_id") else "?"
        )
        print(f"  {part.task}: {part.cells} cell(s), job {job}, host(s) {', '.join(part.hosts) or '?'}")
    if outcome.missing:
        print(f"{outcome.missing_cells} cell(s) missing:", file=sys.stderr)
        for line in outcome.missing:
            print(f"  {line}", file=sys.stderr)
        print(
            f"rerun `bench slurm` with the same options and --output {args.folder} to submit only those",
            file=sys.stderr,
        )
    if not args.no_report:
        from bench.report import write_report

        print(f"report: {write_report(outcome.path)}")
    return 1 if outcome.missing else 0


def add_parsers(sub: Any) -> None:
    """Add ``slurm`` and ``merge`` to the main parser's subcommands."""
    p = sub.add_parser("slurm", help="write (and submit) Slurm array jobs for a suite, one task per model")
    p.add_argument("--profile", required=True, help="hardware profile name or TOML path")
    add_run_options(p, place="slurm")  # the run's options bench slurm takes (bench/run/options.py)
    p.add_argument("--output", required=True, help="run folder on a shared file system (manifest, scripts, parts)")
    p.add_argument("--submit", action="store_true", help="submit with sbatch and print the job id(s)")
    p.add_argument("--host", action="store_true", help="run tasks on the host in a venv instead of the Apptainer image")
    p.add_argument("--venv", help="with --host: the venv to use (default: the checkout's .venv)")
    p.add_argument(
        "--image",
        help="the Apptainer .sif (default: the profile's [slurm] apptainer_image, else ./bench-<profile>.sif)",
    )
    p.add_argument("--partition", help="override [slurm] partition")
    p.add_argument("--account", help="override [slurm] account")
    p.add_argument("--cpus-per-task", type=int, help="override [slurm] cpus_per_task")
    p.add_argument("--mem-gb", type=float, help="override [slurm] mem_gb")
    p.add_argument("--time", help="override [slurm] time ([D-]HH:MM:SS)")
    p.set_defaults(func=cmd_slurm)

    p = sub.add_parser("merge", help="merge the parts of a `bench slurm` run folder into one run")
    p.add_argument("folder", help="the --output folder of `bench slurm`")
    p.add_argument("--no-report", action="store_true", help="do not render report.html")
    p.set_defaults(func=cmd_merge)
