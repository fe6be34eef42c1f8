"""``bench slurm``: a suite's grid as Slurm array jobs, one task per model, and the manifest that ties them together.

Layout of an output folder ``DIR`` (the run folder of the merged run):

- ``manifest.json``: kit version, profile, suite, the run's settings and their hash, the tasks (array index -> model,
  data sets, repetitions, nodes, GPUs) and every submission (job id, indices, script). ``bench merge`` refuses parts
  that do not match it; ``bench slurm`` on the same folder refuses other settings and submits only what is missing.
- ``slurm/array-<nodes>x<gpus>.sbatch``: one array script per resource shape (an array job has one shape), e.g. the
  1-GPU models in one array and the 2-GPU models in another.
- ``parts/<task>/results.json``: what each task's ``bench run`` wrote (idle baseline and environment inside), plus
  ``task-<job>.json``, what the task was given (job, array index, node, CUDA_VISIBLE_DEVICES), written first.
- ``logs/<job name>-<job id>_<index>.out``: Slurm's log of each task.
- ``results.json`` and ``report.html``: the merged run (``bench merge DIR``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import SOURCE_ROOT, __version__
from bench.catalog.placement import Placement, placement_for
from bench.config import HardwareProfile, load_profile
from bench.containers.apptainer import default_sif_path
from bench.errors import BenchError, ConfigError
from bench.fsutil import atomic_write_bytes, now_iso
from bench.hpc.multinode import bench_run_line, ray_start_lines
from bench.run.options import task_args
from bench.run.plan import settings_sha256
from bench.run.request import RunRequest
from bench.run.resolve import RunPlan, resolve_plan

MANIFEST_KIND = "bench.slurm-manifest"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: The repository root (host mode defaults to its .venv).
REPO_ROOT = SOURCE_ROOT


class SlurmError(BenchError):
    """sbatch/squeue failed, or an output folder belongs to another run."""


@dataclass(frozen=True)
class SlurmRequest:
    """What ``bench slurm`` was asked: the run (as ``bench run`` would take it) and how to reach the cluster.

    ``run``: the run's ``RunRequest`` fields, as the options ``bench slurm`` shares with ``bench run`` give them
    (``bench.run.options.run_fields``; e.g. ``{"suite_name": "smoke", "repetitions": 2, "datasets": ["a.csv"]}``);
    without ``suite_name`` the profile's default suite, or an ad-hoc one of own files and models (``suite_given``
    False). The other fields say where and how the tasks run."""

    profile: str
    run: Mapping[str, Any] = field(default_factory=dict)
    output: Path = Path("slurm-run")
    mode: str = "apptainer"  # or "host"
    venv: Path | None = None
    image: str | None = None
    partition: str | None = None
    account: str | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    time: str | None = None
    #: ``bench run --model-store DIR`` for every task: Hub LLMs load from DIR (checked file by file against the model
    #: lock); an Apptainer task sees it read-only at the same path. None: the image's (or venv's) cache
    model_store: Path | None = None


@dataclass(frozen=True)
class Task:
    """One array task: one model load, all the suite's data sets and repetitions."""

    index: int
    name: str
    model: str
    datasets: list[str]
    repetitions: int
    placement: Placement

    def cells(self) -> list[tuple[str, str, int]]:
        """(dataset, model, repetition) of every cell this task runs."""
        return [(d, self.model, r) for d in self.datasets for r in range(self.repetitions)]

    def to_dict(self) -> dict[str, Any]:
        """The manifest's form."""
        return {
            "index": self.index,
            "name": self.name,
            "model": self.model,
            "datasets": list(self.datasets),
            "repetitions": self.repetitions,
            "nodes": self.placement.nodes,
            "gpus_per_node": self.placement.gpus_per_node,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        """Read a manifest entry."""
        return cls(
            index=int(data["index"]),
            name=str(data["name"]),
            model=str(data["model"]),
            datasets=list(data["datasets"]),
            repetitions=int(data["repetitions"]),
            placement=Placement(int(data["nodes"]), int(data["gpus_per_node"])),
        )


def task_name(model: str) -> str:
    """A folder- and shell-safe task name: ``llama-3.1-70b@2x1`` -> ``llama-3.1-70b_2x1``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", model)


def _overrides(request: SlurmRequest) -> dict[str, Any]:
    """The run options of a ``bench slurm`` request, as the manifest stores them (``overrides``): the run's request
    fields that differ from a ``RunRequest``'s defaults (the suite's name is the manifest's ``suite_name``), --dataset
    files as ``NAME=/absolute/path``. Manifests written before also hold some fields at their defaults."""
    from bench.run.options import request_defaults

    defaults = request_defaults()
    run = {**request.run, "datasets": _absolute_datasets(request.run.get("datasets"))}
    return {
        key: dict(sorted(value.items())) if key == "data_paths" else value
        for key, value in run.items()
        if key != "suite_name" and value != defaults.get(key)
    }


def _absolute_datasets(values: list[str] | None) -> list[str] | None:
    """--dataset values with files as ``NAME=/absolute/path`` (tasks run from elsewhere; the name as ``bench run``
    gives it: NAME= or the file's stem); names of data sets unchanged."""
    if not values:
        return None
    out = []
    for value in values:
        name, sep, path = value.partition("=")
        file = Path(path if sep else value).expanduser()
        out.append(f"{name if sep else file.stem}={file.resolve()}" if file.is_file() else value)
    return out


def _run_request(profile: HardwareProfile, suite: str, overrides: Mapping[str, Any], **extra: Any) -> RunRequest:
    """The whole run's RunRequest from the manifest's ``overrides`` (request fields; ``--truncate`` and the other
    profile options are applied by ``resolve_plan``), as asked: ``resolve_plan`` resolves it as ``bench run`` does
    (own files and models without a suite: the ad-hoc suite)."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(RunRequest)} - {"profile", "suite_name", "progress"}
    fields = {key: value for key, value in overrides.items() if key in known}
    return RunRequest(profile=profile, suite_name=suite, progress=False, **{**fields, **extra})


def _manifest_run_request(manifest: dict[str, Any]) -> RunRequest:
    """The whole run's RunRequest rebuilt from a manifest (its profile as written then, its overrides)."""
    profile = HardwareProfile.model_validate(manifest["profile_config"])
    return _run_request(profile, manifest["suite_name"], manifest["overrides"])


def task_settings(run_request: RunRequest, task: Task) -> dict[str, Any]:
    """The run settings the task's ``bench run`` line computes: its one model, its GPUs per node and its nodes.

    The same resolution the runner does (``resolve_plan``) over the same request the sbatch line makes (see
    ``render_script``: ``--model``, ``--gpus`` when the task has GPUs, ``--nodes`` when more than one), so settings
    that depend on the model subset (the model lock's hash, only with a Hub LLM) match each part exactly.
    """
    import dataclasses

    request = dataclasses.replace(
        run_request,
        models=[task.model],
        gpus=task.placement.gpus_per_node or None,
        nodes=task.placement.nodes,
    )
    return resolve_plan(request).settings


def expected_task_settings(manifest: dict[str, Any], task: Task) -> dict[str, Any]:
    """What a task's part must carry as settings: as planned (``task_settings`` in the manifest), else recomputed."""
    planned = manifest.get("task_settings", {}).get(task.name)
    if planned is not None:
        return dict(planned)
    return task_settings(_manifest_run_request(manifest), task)


def resolved_model_store(store: Path | None) -> str | None:
    """``--model-store DIR`` as the tasks get it: absolute (they run in another working folder), None when not given.

    Raises ConfigError when DIR is not a folder, before anything is written or queued (a task would fail on it only
    after waiting in the queue)."""
    if store is None:
        return None
    path = Path(store).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"--model-store {store}: no such folder; write one with `bench models fetch --store {store} --profile "
            "...` on a machine with Hub access (on a file system the compute nodes see)"
        )
    return str(path.resolve())


def resolved_data_paths(data_paths: dict[str, str]) -> dict[str, str]:
    """``--data`` paths made absolute, once: the manifest and the sbatch lines (run from elsewhere) must agree."""
    return {name: str(Path(path).expanduser().resolve()) for name, path in data_paths.items()}


def plan(request: SlurmRequest) -> tuple[HardwareProfile, dict[str, Any], list[Task]]:
    """Resolve the profile and suite, check every model fits, and return (profile, manifest body, tasks).

    Raises ConfigError before anything is written when a model needs more GPUs than a node has and the profile does
    not allow multi-node runs, naming the model, the GPUs, the node and the fix; for an ad-hoc run (own files and
    models) the DataError / ConfigError of ``bench.run.preflight.check_inputs``, whose warnings go into the body.
    """
    import dataclasses

    # Each task runs with the absolute path (its working folder is not ours): the manifest must hold the same one.
    data_paths = resolved_data_paths(request.run.get("data_paths") or {})
    request = dataclasses.replace(request, run={**request.run, "data_paths": data_paths})
    profile = load_profile(request.profile)
    overrides = _overrides(request)
    suite = request.run.get("suite_name") or "default"
    run_request = _run_request(profile, suite, overrides, reports_dir=request.output / "parts")
    # The run as `bench run` resolves it; own files and models (ad-hoc) are checked here, in a second, not in every
    # task after it queued.
    run_plan: RunPlan = resolve_plan(run_request, inputs="adhoc")
    suite, settings, specs = run_plan.suite, run_plan.settings, run_plan.models
    warnings = list(run_plan.checks.notes)
    tasks = []
    for index, model in enumerate(suite.models):
        spec = specs[model]
        tasks.append(
            Task(
                index=index,
                name=task_name(model),
                model=model,
                datasets=list(suite.datasets),
                repetitions=suite.repetitions_of(model),
                placement=placement_for(spec, profile),
            )
        )
    body = {
        "kind": MANIFEST_KIND,
        "version": MANIFEST_VERSION,
        "kit_version": __version__,
        "run_id": request.output.resolve().name,
        "profile": request.profile,
        "profile_name": profile.name,
        "profile_config": profile.model_dump(mode="json"),
        "suite_name": run_plan.suite_name,  # ADHOC_SUITE for own files and models without a suite
        "settings": settings,
        # over the profile as loaded (its [llm] truncate not applied), as manifests have always been hashed
        "settings_sha256": settings_sha256(profile, settings),
        "task_settings": {t.name: task_settings(run_plan.request, t) for t in tasks},
        "overrides": overrides,
    }
    if warnings:
        body["warnings"] = warnings
    return profile, body, tasks


# --- manifest -----------------------------------------------------------------------------------------------------


def load_manifest(folder: Path) -> dict[str, Any]:
    """Read ``folder/manifest.json``; SlurmError if absent or not ours."""
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlurmError(f"{path}: no manifest; is {folder} an output folder of `bench slurm`?") from None
    except json.JSONDecodeError as exc:
        raise SlurmError(f"{path}: not valid JSON ({exc})") from None
    if data.get("kind") != MANIFEST_KIND or data.get("version") != MANIFEST_VERSION:
        raise SlurmError(f"{path}: not a bench Slurm manifest of version {MANIFEST_VERSION}")
    return data


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write the manifest atomically."""
    path = folder / MANIFEST_NAME
    atomic_write_bytes(path, (json.dumps(manifest, indent=1, sort_keys=False) + "\n").encode("utf-8"))
    return path


def manifest_tasks(manifest: dict[str, Any]) -> list[Task]:
    """The tasks of a manifest."""
    return [Task.from_dict(t) for t in manifest["tasks"]]


def _same_run(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How a new plan differs from the manifest already in the folder (empty: the same run)."""
    differences = []
    for key in ("kit_version", "profile_name", "suite_name", "settings_sha256"):
        if old.get(key) != new.get(key):
            differences.append(f"{key}: {old.get(key)!r} in the folder, {new.get(key)!r} now")
    return differences


# --- what is done, what is missing ---------------------------------------------------------------------------------


@dataclass
class TaskStatus:
    """Which cells of a task are done (ok) and which are missing, with what the cluster said about the task."""

    task: Task
    done: set[tuple[str, str, int]]
    missing: list[tuple[str, str, int]]
    failed: dict[tuple[str, str, int], str]
    job_id: str | None
    log_path: Path | None
    part_error: str | None = None


def part_path(folder: Path, task: Task) -> Path:
    """Where a task's ``bench run`` writes."""
    return folder / "parts" / task.name / "results.json"


def last_submission(manifest: dict[str, Any], index: int) -> dict[str, Any] | None:
    """The latest submission that included array index ``index``."""
    for submission in reversed(manifest.get("submissions", [])):
        if index in submission.get("indices", []):
            return submission
    return None


def log_path_of(folder: Path, submission: dict[str, Any], index: int) -> Path:
    """Slurm's log file of one array task (the script's ``--output`` pattern, filled in)."""
    return folder / "logs" / f"{submission['job_name']}-{submission['job_id']}_{index}.out"


def task_status(folder: Path, manifest: dict[str, Any]) -> list[TaskStatus]:
    """For every task, its done and missing cells, the job that ran it last and its log."""
    from bench.results import load_results

    out = []
    for task in manifest_tasks(manifest):
        done: set[tuple[str, str, int]] = set()
        failed: dict[tuple[str, str, int], str] = {}
        part_error = None
        path = part_path(folder, task)
        if path.exists():
            try:
                doc = load_results(path)
            except BenchError as exc:
                part_error = str(exc)
            else:
                for cell in doc.cells:
                    if cell.status == "ok":
                        done.add(cell.key)
                    elif cell.error is not None:
                        failed[cell.key] = f"{cell.error.type}: {cell.error.message}"
        submission = last_submission(manifest, task.index)
        job_id = f"{submission['job_id']}_{task.index}" if submission and submission.get("job_id") else None
        log = log_path_of(folder, submission, task.index) if submission and submission.get("job_id") else None
        missing = [c for c in task.cells() if c not in done]
        out.append(TaskStatus(task, done, missing, failed, job_id, log, part_error))
    return out


def missing_report(statuses: list[TaskStatus]) -> list[str]:
    """One line per task with missing cells: how many, which, the job and its log (never silently dropped)."""
    lines = []
    for st in statuses:
        if not st.missing:
            continue
        cells = ", ".join(f"{d}/rep{r}" for d, _, r in st.missing[:6]) + (" ..." if len(st.missing) > 6 else "")
        if st.job_id is None:
            where = "never submitted"
        else:
            where = f"job {st.job_id}, log {st.log_path}"
            if st.log_path is not None and not st.log_path.exists():
                where += " (no log yet: pending, or the job never started)"
        why = ""
        if st.part_error:
            why = f"; part unreadable: {st.part_error}"
        elif st.failed:
            why = "; failed: " + next(iter(st.failed.values()))
        elif not part_path_exists(st):
            why = "; no part written"
        lines.append(f"task {st.task.name}: {len(st.missing)} cell(s) missing ({cells}): {where}{why}")
    return lines


def part_path_exists(status: TaskStatus) -> bool:
    """Whether the task wrote a part at all (done, failed or unreadable)."""
    return bool(status.done or status.failed or status.part_error)


# --- the sbatch scripts --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """What each array task asks for (the profile's [slurm], overridden on the command line)."""

    cpus_per_task: int
    mem_gb: float
    time: str
    partition: str | None
    account: str | None
    extra: tuple[str, ...]
    ray_port: int


def resources_of(profile: HardwareProfile, request: SlurmRequest) -> Resources:
    """The profile's Slurm settings with the request's overrides."""
    s = profile.slurm
    return Resources(
        cpus_per_task=request.cpus_per_task or s.cpus_per_task,
        mem_gb=request.mem_gb or s.mem_gb,
        time=request.time or s.time,
        partition=request.partition or s.partition,
        account=request.account or s.account,
        extra=tuple(s.extra_sbatch),
        ray_port=s.ray_port,
    )


def _array_spec(indices: list[int]) -> str:
    """``[0,1,2,5]`` -> ``0-2,5`` (Slurm's --array syntax)."""
    ranges: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(ranges)


def tool_command(tool: str, mode: str, *, venv: Path | None, image: str | None, gpus: bool, binds: list[str]) -> str:
    """How a task runs ``tool`` (``bench``, ``ray``): from the venv, or ``apptainer exec [--nv] --bind ... image``."""
    if mode == "host":
        return shlex.quote(str((venv or REPO_ROOT / ".venv") / "bin" / tool))
    if not image:
        raise ConfigError("Apptainer mode needs an image: set [slurm] apptainer_image, pass --image, or use --host")
    parts = ["apptainer", "exec"]
    if gpus:
        parts.append("--nv")  # the host's NVIDIA driver and devices inside the container
    for bind in binds:
        parts += ["--bind", bind]
    parts += ["--env", "HF_HUB_OFFLINE=1", image, tool]
    return " ".join(shlex.quote(p) for p in parts)


def render_script(
    *,
    manifest: dict[str, Any],
    tasks: list[Task],
    folder: Path,
    resources: Resources,
    mode: str,
    venv: Path | None,
    image: str | None,
    job_name: str,
) -> str:
    """One sbatch array script for tasks of one shape (same nodes and GPUs per node)."""
    shapes = {t.placement for t in tasks}
    if len(shapes) != 1:
        raise ValueError(f"one script per resource shape, got {sorted(s.label for s in shapes)}")
    shape = shapes.pop()
    folder = folder.resolve()
    lines = [
        "#!/bin/bash",
        f"# Written by bench {__version__} (`bench slurm`): run {manifest['run_id']}, profile "
        f"{manifest['profile_name']}, suite {manifest['suite_name']}; {len(tasks)} task(s) of shape {shape.label}",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --array={_array_spec([t.index for t in tasks])}",
        f"#SBATCH --nodes={shape.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --cpus-per-task={resources.cpus_per_task}",
        f"#SBATCH --mem={max(1, round(resources.mem_gb * 1024))}M",
        f"#SBATCH --time={resources.time}",
        f"#SBATCH --output={folder}/logs/%x-%A_%a.out",
    ]
    if shape.gpus_per_node:
        lines.append(f"#SBATCH --gres=gpu:{shape.gpus_per_node}")
    if resources.partition:
        lines.append(f"#SBATCH --partition={resources.partition}")
    if resources.account:
        lines.append(f"#SBATCH --account={resources.account}")
    lines += [f"#SBATCH {extra}" for extra in resources.extra]
    lines += [
        "set -uo pipefail",
        "export HF_HUB_OFFLINE=1  # models and data come baked in (image) or pre-fetched (venv): never the Hub",
        'case "$SLURM_ARRAY_TASK_ID" in',
    ]
    for t in tasks:
        lines.append(f"    {t.index}) BENCH_TASK={shlex.quote(t.name)}; BENCH_MODEL={shlex.quote(t.model)} ;;")
    lines += [
        '    *) echo "bench: array index $SLURM_ARRAY_TASK_ID is not a task of this run" >&2; exit 2 ;;',
        "esac",
        f"BENCH_DIR={shlex.quote(str(folder))}",
        "export BENCH_SLURM_TASK=$BENCH_TASK",
        'export BENCH_SLURM_LOG="$BENCH_DIR/logs/${SLURM_JOB_NAME}-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.out"',
        'mkdir -p "$BENCH_DIR/parts/$BENCH_TASK"',
        "# What this task was given, written before anything can fail (bench merge names it for missing cells)",
        'printf \'{"task": "%s", "job_id": "%s", "array_job_id": "%s", "array_task_id": "%s", "host": "%s", '
        '"nodelist": "%s", "cuda_visible_devices": "%s", "log": "%s", "started_at": "%s"}\\n\' '
        '"$BENCH_TASK" "$SLURM_JOB_ID" "$SLURM_ARRAY_JOB_ID" "$SLURM_ARRAY_TASK_ID" "$(hostname)" '
        '"$SLURM_JOB_NODELIST" "${CUDA_VISIBLE_DEVICES-}" "$BENCH_SLURM_LOG" "$(date -u +%FT%TZ)" '
        '> "$BENCH_DIR/parts/$BENCH_TASK/task-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.json"',
        'echo "bench task $BENCH_TASK on $(hostname): CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"',
    ]
    binds = [f"{folder}:{folder}", "/sys/class/powercap:/sys/class/powercap:ro"]
    profile_arg = manifest["profile"]
    if profile_arg.endswith(".toml") or "/" in profile_arg:
        profile_arg = str(Path(profile_arg).resolve())
        binds.append(f"{Path(profile_arg).parent}:{Path(profile_arg).parent}:ro")
    for data_path in (manifest["overrides"].get("data_paths") or {}).values():
        parent = Path(data_path).resolve().parent
        binds.append(f"{parent}:{parent}:ro")
    for path in own_paths(manifest["overrides"], [t.model for t in tasks]):  # own files and model folders
        binds.append(f"{path}:{path}:ro")
    store = manifest.get("model_store")
    if store:  # read-only at the same path: the run inside checks every file against the lock before loading it
        binds.append(f"{store}:{store}:ro")
    bench = tool_command("bench", mode, venv=venv, image=image, gpus=bool(shape.gpus_per_node), binds=binds)
    if shape.nodes > 1:
        ray = tool_command("ray", mode, venv=venv, image=image, gpus=True, binds=binds)
        lines += ray_start_lines(
            port=resources.ray_port, gpus_per_node=shape.gpus_per_node, cpus_per_task=resources.cpus_per_task, ray=ray
        )
    args = task_run_args(manifest, shape, profile=profile_arg, parts=f"{folder}/parts")
    run_line = bench_run_line(bench, args).replace("__MODEL__", '"$BENCH_MODEL"').replace("__TASK__", '"$BENCH_TASK"')
    lines += [
        "# One model load; its data sets and repetitions; resumes the part if an earlier attempt left one",
        run_line,
        "rc=$?",
        'echo "bench task $BENCH_TASK finished with exit code $rc"',
        "exit $rc",
        "",
    ]
    return "\n".join(lines)


def task_run_args(manifest: dict[str, Any], shape: Placement, *, profile: str, parts: str) -> list[str]:
    """A task's ``bench run`` arguments (``__MODEL__`` and ``__TASK__`` stand for the array task's model and name):
    where it runs and writes, its one model, its allocation, and the run's options from the manifest's
    ``overrides`` through their declaration (``bench.run.options.task_args``; files absolute since ``plan``)."""
    overrides = manifest["overrides"]
    args = ["run", "--profile", profile]
    if overrides.get("suite_given", True):  # else the ad-hoc suite of the --dataset files and --model
        args += ["--suite", manifest["suite_name"]]
    args += ["--model", "__MODEL__", "--run-id", "__TASK__", "--reports-dir", parts, "--no-report", "--no-progress"]
    args += task_args(overrides)
    if manifest.get("model_store"):
        args += ["--model-store", manifest["model_store"]]
    if shape.gpus_per_node:
        args += ["--gpus", str(shape.gpus_per_node)]
    if shape.nodes > 1:
        args += ["--nodes", str(shape.nodes)]
    return args


def own_paths(overrides: dict[str, Any], models: list[str]) -> list[str]:
    """Host paths an Apptainer task must see: the folders of --dataset files and local clf:/hf: model folders (bound
    read-only at the same path, so names and pins are the same inside)."""
    from bench.catalog.models import is_user_model, user_model_ref

    paths = []
    for value in overrides.get("datasets") or []:
        _, sep, path = value.partition("=")
        if sep and Path(path).is_absolute():
            paths.append(str(Path(path).parent))
    for model in models:
        if is_user_model(model):
            _, ref, _, local = user_model_ref(model)
            if local:
                paths.append(str(Path(ref)))
    return list(dict.fromkeys(paths))


# --- writing and submitting ------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """What ``prepare`` wrote: the manifest, the scripts and the tasks each holds, and what is already done."""

    folder: Path
    manifest: dict[str, Any]
    scripts: list[tuple[Path, list[Task]]]
    statuses: list[TaskStatus]
    resumed: bool


def prepare(request: SlurmRequest) -> Prepared:
    """Plan, check, and write the manifest and one array script per resource shape over the missing tasks.

    On a folder with a manifest, the settings must be the same (else SlurmError naming the difference) and only
    tasks with missing cells get into the arrays; the parts they left are resumed by ``bench run``.
    """
    profile, body, tasks = plan(request)  # raises before anything is written
    store = resolved_model_store(request.model_store)
    folder = request.output
    image = None
    if request.mode == "apptainer":
        # Default: bench-<profile>.sif in the folder `bench slurm` runs from, where `make sif` / `bench image sif`
        # write it when run from the same folder. Made absolute now: the tasks run in another working folder.
        chosen = request.image or profile.slurm.apptainer_image or str(default_sif_path(profile.name))
        image = os.path.abspath(os.path.expanduser(chosen))
    manifest_path = folder / MANIFEST_NAME
    resumed = manifest_path.exists()
    if resumed:
        manifest = load_manifest(folder)
        differences = _same_run(manifest, body)
        if [t.to_dict() for t in tasks] != manifest["tasks"]:
            differences.append("the tasks (models, data sets, repetitions or placements) differ")
        if differences:
            raise SlurmError(
                f"{folder} holds another run; its parts cannot be mixed with this one: {'; '.join(differences)}. "
                "Use another --output folder."
            )
    else:
        manifest = {**body, "tasks": [t.to_dict() for t in tasks], "submissions": []}
    manifest["mode"] = request.mode
    manifest["image"] = image
    manifest["venv"] = str(request.venv or REPO_ROOT / ".venv") if request.mode == "host" else None
    # Where the tasks read Hub LLMs from: not a run setting (the files are checked against the same lock either way),
    # so a resumed run may name another store, like another image.
    manifest["model_store"] = store
    statuses = task_status(folder, manifest)
    todo = [st.task for st in statuses if st.missing]
    resources = resources_of(profile, request)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "slurm").mkdir(parents=True, exist_ok=True)
    scripts: list[tuple[Path, list[Task]]] = []
    by_shape: dict[Placement, list[Task]] = {}
    for task in todo:
        by_shape.setdefault(task.placement, []).append(task)
    attempt = len(manifest.get("submissions", []))
    for shape, shape_tasks in sorted(by_shape.items(), key=lambda kv: (kv[0].nodes, kv[0].gpus_per_node)):
        job_name = f"bench-{profile.name}-{shape.label}"
        text = render_script(
            manifest=manifest,
            tasks=shape_tasks,
            folder=folder,
            resources=resources,
            mode=request.mode,
            venv=request.venv,
            image=image,
            job_name=job_name,
        )
        suffix = f"-retry{attempt}" if resumed and manifest.get("submissions") else ""
        path = folder / "slurm" / f"array-{shape.label}{suffix}.sbatch"
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
        scripts.append((path, shape_tasks))
    write_manifest(folder, manifest)
    return Prepared(folder, manifest, scripts, statuses, resumed)


def _job_name_of(script: Path) -> str:
    for line in script.read_text(encoding="utf-8").splitlines():
        if line.startswith("#SBATCH --job-name="):
            return line.split("=", 1)[1]
    raise SlurmError(f"{script}: no --job-name line")


def active_indices(manifest: dict[str, Any]) -> set[int]:
    """Array indices of this run still pending or running (squeue), so a rerun does not submit them twice."""
    job_ids = sorted({str(s["job_id"]) for s in manifest.get("submissions", []) if s.get("job_id")})
    if not job_ids or shutil.which("squeue") is None:
        return set()
    active: set[int] = set()
    for job_id in job_ids:
        # One query per job: squeue fails for the whole list when one id was purged (older than MinJobAge).
        proc = subprocess.run(
            ["squeue", "-h", "-r", "-j", job_id, "-o", "%i"], capture_output=True, text=True, check=False
        )
        for line in proc.stdout.split():
            _, sep, index = line.partition("_")
            if sep and index.isdigit():
                active.add(int(index))
    return active


def submit(prepared: Prepared) -> list[dict[str, Any]]:
    """``sbatch --parsable`` every script; record job ids in the manifest; return the submissions."""
    if shutil.which("sbatch") is None:
        raise SlurmError("sbatch not found: submit from a login node of the cluster (or drop --submit)")
    if prepared.manifest.get("mode") == "apptainer":
        image = prepared.manifest.get("image")
        if image and not Path(image).exists():
            raise SlurmError(f"Apptainer image {image} not found: build it with `make sif PROFILE=...` or pass --image")
    busy = active_indices(prepared.manifest)
    submissions = []
    for script, tasks in prepared.scripts:
        if busy & {t.index for t in tasks}:
            raise SlurmError(
                f"array task(s) {sorted(busy & {t.index for t in tasks})} of this run are still pending or running: "
                "wait for them (squeue) before resubmitting the missing cells"
            )
        proc = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SlurmError(
                f"sbatch {script} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        job_id = proc.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmError(f"sbatch {script}: unexpected answer {proc.stdout.strip()!r}")
        record = {
            "job_id": job_id,
            "job_name": _job_name_of(script),
            "script": str(script.relative_to(prepared.folder)),
            "indices": [t.index for t in tasks],
            "submitted_at": now_iso(),
        }
        prepared.manifest.setdefault("submissions", []).append(record)
        write_manifest(prepared.folder, prepared.manifest)  # after each: a failure later keeps the ids of the first
        submissions.append(record)
    return submissions
