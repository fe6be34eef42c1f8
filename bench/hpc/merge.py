"""``bench merge DIR``: the parts of a Slurm run (one per array task) as one run, in the same results schema.

Every part must come from the same kit version and profile as the manifest and carry the settings its task's own
``bench run`` computes (the suite narrowed to the task's model, with its GPUs and nodes); anything else is refused,
naming the difference. Cells are the union of
the parts' cells; each part's provenance (task, job and array ids, host, environment sessions, idle baselines) is
kept: sessions are concatenated into ``environment.sessions`` and idle baselines renumbered to them, and
``parts`` records which sessions and cells came from which task. Cells still missing (task failed, pending, never
submitted) are listed with the job id and the Slurm log path, as run warnings and on the terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ResultsError
from bench.fsutil import now_iso
from bench.hpc.slurm import (
    SlurmError,
    Task,
    expected_task_settings,
    load_manifest,
    manifest_tasks,
    missing_report,
    part_path,
    task_status,
)
from bench.results import PartRecord, ResultDocument, json_differences, load_results, write_results
from bench.run.plan import hashed_profile


class MergeError(BenchError):
    """Parts that cannot be merged (another kit version, profile or settings), named with the difference."""


@dataclass
class MergeOutcome:
    """The merged document, where it went, and the missing cells report (empty: the grid is complete)."""

    path: Path
    document: ResultDocument
    missing: list[str]
    missing_cells: int


def _differences(expected: Any, actual: Any) -> list[str]:
    """Paths where the manifest and a part differ, with both values."""
    return json_differences(expected, actual, names=("in the manifest", "in the part"))


def check_part(manifest: dict[str, Any], doc: ResultDocument, task: Task) -> None:
    """Refuse a part made by another kit version, profile or settings than the manifest, naming the difference.

    The part's settings are compared with those the runner computes for the task's own request (its one model, its
    GPUs and nodes), not with the whole suite's: what depends on the model subset (the model lock's hash is only
    recorded when the subset holds a Hub LLM) must differ between tasks of one run.
    """
    task_name = task.name
    problems: list[str] = []
    if doc.kit_version != manifest["kit_version"]:
        problems.append(f"kit_version: {manifest['kit_version']!r} in the manifest, {doc.kit_version!r} in the part")
    # [slurm] (partition, wall time, image) may change between submissions of one run: not compared, like the hash
    problems += [
        f"profile.{d}" for d in _differences(hashed_profile(manifest["profile_config"]), hashed_profile(doc.profile))
    ]
    if doc.suite_name != manifest["suite_name"]:
        problems.append(f"suite: {manifest['suite_name']!r} in the manifest, {doc.suite_name!r} in the part")
    problems += [f"settings.{d}" for d in _differences(expected_task_settings(manifest, task), doc.settings)]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise MergeError(
            f"part {task_name} ({doc.run_id}) was made with other settings than this run and cannot be merged: "
            f"{shown}. Rerun that task (delete its part folder, then `bench slurm` on the same folder)."
        )


def _task_records(part_dir: Path) -> list[dict[str, Any]]:
    """What each attempt of a task was given (task-<job>_<index>.json written by the sbatch script), oldest first."""
    records = []
    for path in sorted(part_dir.glob("task-*.json")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue  # a torn record (job killed while writing) must not stop the merge; the part has the rest
    return records


def merge(folder: Path) -> MergeOutcome:
    """Merge every part of ``folder`` into ``folder/results.json``; report the missing cells."""
    manifest = load_manifest(folder)
    tasks = manifest_tasks(manifest)
    order_models = [t.model for t in tasks]
    parts: list[tuple[str, ResultDocument, Path]] = []
    for task in tasks:
        path = part_path(folder, task)
        if not path.exists():
            continue
        try:
            doc = load_results(path)
        except ResultsError:
            continue  # reported as missing cells with the reason by task_status
        check_part(manifest, doc, task)
        parts.append((task.name, doc, path))
    statuses = task_status(folder, manifest)
    missing = missing_report(statuses)
    if not parts:
        raise SlurmError(
            f"{folder}: no task has written a part yet (see `squeue`); missing:\n  " + "\n  ".join(missing)
        )
    missing_cells = sum(len(st.missing) for st in statuses)

    first = parts[0][1]
    datasets = dict(first.datasets)
    for name, doc, _ in parts[1:]:
        for ds_name, record in doc.datasets.items():
            known = datasets.setdefault(ds_name, record)
            if not known.same_data(record):
                raise MergeError(
                    f"part {name}: data set {ds_name!r} has other splits or another pin than part {parts[0][0]} "
                    "(a different data file or version): the cells would not be comparable"
                )
    sessions: list[dict[str, Any]] = []
    idle = []
    calibration = []
    cells = []
    models: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    records: list[PartRecord] = []
    mismatches: list[str] = []
    for name, doc, path in parts:
        offset = len(sessions)
        part_sessions = doc.environment.get("sessions") or [
            {"machine": doc.environment.get("machine"), "software": doc.environment.get("software")}
        ]
        sessions += [{**s, "part": name} for s in part_sessions]
        idle += [i.model_copy(update={"session": i.session + offset}) for i in doc.idle]
        calibration += [c.model_copy(update={"session": c.session + offset}) for c in doc.calibration]
        cells += doc.cells
        models.update(doc.models)
        warnings += [f"{name}: {w}" for w in doc.warnings]
        mismatches += [m for m in doc.hardware_mismatch if m not in mismatches]
        attempts = _task_records(path.parent)
        slurm = dict(attempts[-1]) if attempts else {}
        if len(attempts) > 1:
            slurm["attempts"] = attempts
        hosts = sorted(
            {str(s.get("machine", {}).get("hostname")) for s in part_sessions if s.get("machine")} - {"None"}
        )
        records.append(
            PartRecord(
                task=name,
                run_id=doc.run_id,
                content_hash=doc.content_hash,
                kit_version=doc.kit_version,
                settings_sha256=doc.settings_sha256,
                hosts=hosts or [str(a.get("host")) for a in attempts if a.get("host")],
                slurm=slurm,
                sessions=list(range(offset, offset + len(part_sessions))),
                cells=len(doc.cells),
            )
        )
    warnings += [f"missing: {line}" for line in missing]
    datasets_order = list(manifest["settings"]["suite"]["datasets"])
    cells.sort(
        key=lambda c: (
            datasets_order.index(c.dataset) if c.dataset in datasets_order else 99,
            order_models.index(c.model) if c.model in order_models else 99,
            c.repetition,
        )
    )
    complete = not missing_cells and all(d.status == "complete" for _, d, _ in parts)
    now = now_iso()
    merged = ResultDocument(
        run_id=manifest["run_id"],
        status="complete" if complete else "interrupted",
        created_at=min(d.created_at for _, d, _ in parts),
        updated_at=now,
        kit_version=manifest["kit_version"],
        profile=first.profile,
        suite_name=manifest["suite_name"],
        suite=manifest["settings"]["suite"],
        settings=manifest["settings"],
        settings_sha256=manifest["settings_sha256"],
        hardware_mismatch=mismatches,
        forced=any(d.forced for _, d, _ in parts),
        environment={
            "machine": first.environment.get("machine"),
            "software": first.environment.get("software"),
            "sessions": sessions,
            "merged_from": "bench merge of Slurm array tasks (see parts)",
        },
        meters=first.meters,
        idle=idle,
        calibration=calibration,
        grid=first.grid,  # the same hashed settings in every part, so the same grid
        datasets=datasets,
        models=models,
        cells=cells,
        warnings=warnings,
        parts=records,
    )
    out = folder / "results.json"
    write_results(merged, out)
    return MergeOutcome(out, merged, missing, missing_cells)
