"""The run path resolves once: a ``RunRequest`` becomes one immutable ``RunPlan`` in ``resolve_plan``, and the rest of
the run (the loop, its phases, ``bench slurm``'s planning) reads the plan instead of deriving it again.

What resolving does, in this order:

1. whether the run is ad-hoc (``--dataset FILE`` or a ``clf:``/``hf:`` ``--model`` without ``--suite``), decided here
   and only here; ``bench run --run-id X`` alone of a stored run becomes the request run X was started with;
2. the data sets (catalog names and files, each file described with its columns, labels, language and encoding) and
   the suite after the request's overrides (``bench.run.plan.build_suite``);
3. every model's catalog entry, with its serving configuration in its name and params;
4. the settings that define what the numbers mean and their hash (``bench.run.plan.run_settings``);
5. the checks asked for: the allocation and the machine against the profile (``machine=True``: hardware
   mismatches, refused unless ``--force``), and the inputs (``inputs``: every data set loaded and split, every model's
   configuration, labels and prompts checked; ``bench.run.preflight``), with the notes they leave for the results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import ValidationError

from bench.config import DataFileSpec, HardwareProfile, SuiteSpec
from bench.errors import ConfigError, did_you_mean
from bench.run import plan as planning
from bench.run.request import ADHOC_SUITE, RunRequest, override_error

#: Which inputs ``resolve_plan`` loads and checks: all (``bench run``), those of an ad-hoc run only (``bench slurm`` on
#: a login node: own files and models fail there in a second, not in every array task after it queued), or none.
InputChecks = Literal["all", "adhoc", "none"]


@dataclass(frozen=True)
class Checks:
    """What was checked before any energy is spent.

    ``machine``: the detected machine (``bench.environment.detect_machine``), None when not checked (a login node
    planning Slurm jobs); ``mismatches``: how it differs from the profile (a run goes on only with ``--force``);
    ``resolved_profile``: the profile as this machine runs it (``bench.environment.resolve_profile``: the GPU count
    and memory found), None when not checked; ``left_out``: the suite's models that do not fit this machine, as
    ``bench.catalog.placement.Fit`` records (each with its reason; the run goes on without them);
    ``accelerator``: the run's device as PyTorch sees it (``bench.environment.accelerator_facts``: device kind,
    ``torch.version.cuda``/``hip``, mps availability), None when not checked; ``notes``: warnings for the results
    (smaller splits, leaked test texts, unverified model lock entries, prompts ``--truncate`` cuts); ``datasets``:
    the data sets loaded and split, by name (empty when inputs were not checked).
    """

    machine: Any = None
    mismatches: tuple[str, ...] = ()
    resolved_profile: HardwareProfile | None = None
    left_out: tuple[Any, ...] = ()
    accelerator: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    datasets: Mapping[str, planning.PreparedDataset] = field(default_factory=lambda: MappingProxyType({}))
    inputs_checked: bool = False


@dataclass(frozen=True)
class RunPlan:
    """One run, resolved: what every later step reads.

    ``request``: the request as resolved (a stored run's request restored, an ad-hoc one named ``ADHOC_SUITE``);
    ``profile``: the profile as the run sees it (the command line's measurement and ``[llm]`` overrides applied);
    ``adhoc``: whether the suite is the ad-hoc one of files and models named on the command line; ``suite``: the suite
    after overrides; ``data_files``: the files it reads, by data set name; ``models``: each model's catalog entry
    (``ModelSpec``, serving configuration included), in suite order; ``settings`` and ``settings_sha256``: what the
    numbers mean and its hex sha256 (``bench.run.plan.settings_sha256``); ``checks``: what was checked;
    ``repetitions_replaced``: the suite's own per-model repetitions an explicit ``--repetitions`` replaced (model ->
    the suite's count; ``bench.run.plan.replaced_repetitions``), which the run's header names.
    """

    request: RunRequest
    profile: HardwareProfile
    adhoc: bool
    suite: SuiteSpec
    data_files: Mapping[str, DataFileSpec]
    models: Mapping[str, Any]
    settings: dict[str, Any]
    settings_sha256: str
    checks: Checks = field(default_factory=Checks)
    repetitions_replaced: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def suite_name(self) -> str:
        """The suite's name in the results (``ADHOC_SUITE`` for an ad-hoc run)."""
        return self.request.suite_name

    @property
    def datasets(self) -> Mapping[str, planning.PreparedDataset]:
        """The data sets loaded and split (``checks.datasets``; empty when inputs were not checked)."""
        return self.checks.datasets

    def allocated_profile(self) -> HardwareProfile:
        """The profile as this run's allocation sees it: a Slurm task (``--gpus``) sees only the GPUs it was given, so
        the machine is checked against that, not the whole node."""
        return allocated(self.profile, self.request.gpus)

    def cell_gpus(self) -> int | None:
        """GPUs every cell of an allocated run (``--gpus`` or ``--nodes``) used over all nodes; None in a host run."""
        request = self.request
        if request.gpus is None and request.nodes == 1:
            return None
        per_node = request.gpus if request.gpus is not None else self.profile.hardware.gpu_count
        return per_node * request.nodes


def resolve_plan(request: RunRequest, *, machine: bool = False, inputs: InputChecks = "none") -> RunPlan:
    """The one resolution of a request into a ``RunPlan`` (see the module docstring for the steps).

    ``machine``: check the allocation (``--gpus``, ``--nodes``) and this machine against the profile; ``inputs``:
    which inputs to load and check (``InputChecks``).

    Raises ConfigError (a name that is neither a file nor a data set or model of the suite, an override outside the
    profile's limits, a stored run of another profile, a configuration the profile cannot serve, labels that do not
    match), DataError (a file that cannot be read or split) and HardwareMismatchError (the wrong machine, without
    ``--force``), all before any energy is spent."""
    from bench.catalog.models import get_model_spec
    from bench.run.options import run_profile

    # The profile as the run sees it: the command line's measurement settings and --truncate applied (idempotent).
    request = dataclasses.replace(request, profile=run_profile(request))
    adhoc = is_adhoc(request)
    if adhoc:
        request = dataclasses.replace(request, suite_name=ADHOC_SUITE)
    else:
        stored = stored_request(request)
        if stored is not None:  # with the profile settings run X recorded (restored options) applied too
            request = dataclasses.replace(stored, profile=run_profile(stored))
            adhoc = stored.suite_name == ADHOC_SUITE
    checks = Checks()
    if machine:  # first: the profile as this machine runs it (its GPU count and memory) defines the plan's numbers
        checks = dataclasses.replace(checks, **_machine_checks(request))
        request = dataclasses.replace(request, profile=checks.resolved_profile or request.profile)
    profile = request.profile
    base = profile.suite("default" if adhoc and ADHOC_SUITE not in profile.suites else request.suite_name)
    names, files = resolve_datasets(request, base, adhoc=adhoc)
    suite = planning.build_suite(request, base, adhoc=adhoc, datasets=names)
    if machine:
        suite, left_out = _fitting_suite(request, suite)
        checks = dataclasses.replace(
            checks, left_out=tuple(left_out), notes=tuple(f"{f.model} left out: {f.reason}" for f in left_out)
        )
    files = {name: spec for name, spec in files.items() if name in suite.datasets}
    settings = planning.run_settings(request, suite, files)
    plan = RunPlan(
        request=request,
        profile=profile,
        adhoc=adhoc,
        suite=suite,
        data_files=MappingProxyType(files),
        models=MappingProxyType({name: get_model_spec(name) for name in suite.models}),
        settings=settings,
        settings_sha256=planning.settings_sha256(profile, settings),
        repetitions_replaced=MappingProxyType(planning.replaced_repetitions(request, base, suite)),
        checks=checks,
    )
    if inputs == "all" or (inputs == "adhoc" and adhoc):
        from bench.run.preflight import check_inputs

        datasets, notes = check_inputs(
            plan.profile,
            plan.suite,
            plan.models,
            data_paths=plan.request.data_paths,
            data_files=plan.data_files,
            label_map=plan.request.label_map,
            nodes=plan.request.nodes,
        )
        checks = dataclasses.replace(
            checks, datasets=MappingProxyType(datasets), notes=(*checks.notes, *notes), inputs_checked=True
        )
    return dataclasses.replace(plan, checks=checks)


def _machine_checks(request: RunRequest) -> dict[str, Any]:
    """The allocation and this machine against the request's profile: ``Checks`` fields (machine, mismatches, the
    profile as this machine runs it: ``bench.environment.resolve_profile``, its GPU count only in a host run).

    Raises ConfigError for ``--gpus``/``--nodes`` the profile's nodes cannot give, HardwareMismatchError for the
    wrong machine without ``--force``."""
    from bench.environment import (
        accelerator_facts,
        accelerator_problems,
        detect_machine,
        enforce_profile,
        resolve_profile,
    )

    profile = request.profile
    gpu_count = profile.hardware.gpu_count
    if request.gpus is not None and not 0 <= request.gpus <= gpu_count:
        raise ConfigError(
            f"--gpus {request.gpus}: must be from 0 to the {gpu_count} GPU(s) per node of profile {profile.name!r}"
        )
    if request.nodes < 1:
        raise ConfigError(f"--nodes {request.nodes}: must be >= 1")
    found = detect_machine()
    accelerator = accelerator_facts(profile.hardware.device)
    extra = accelerator_problems(accelerator)
    mismatches = enforce_profile(allocated(profile, request.gpus), found, force=request.force, extra=extra)
    host_run = request.gpus is None and request.nodes == 1
    resolved = resolve_profile(profile, found, count=host_run)
    planned, here = profile.hardware.gpu_memory_gb, resolved.hardware.gpu_memory_gb
    if not host_run and here != planned and not request.force:
        # `bench slurm` placed the models by the profile's size on the login node; this node's differ
        raise ConfigError(
            f"profile {profile.name!r} plans with {planned:g} GB per GPU, this node's GPUs are of {here:g} GB: the "
            "models were placed (GPUs per task) by the profile's size. Plan with a profile of this cluster's GPUs "
            f"([hardware] gpu_memory_gb = {here:g}; `bench profiles init` on a compute node writes one), or pass "
            "--force"
        )
    return {
        "machine": found,
        "mismatches": tuple(mismatches),
        "resolved_profile": resolved,
        "accelerator": MappingProxyType(accelerator),
    }


def allocated(profile: HardwareProfile, gpus: int | None) -> HardwareProfile:
    """``profile`` as an allocation of ``gpus`` GPUs (a Slurm task's ``--gpus``) sees it; itself when None."""
    if gpus is None:
        return profile
    hardware = profile.hardware.model_copy(update={"gpu_count": gpus, "gpu_count_min": None})
    return profile.model_copy(update={"hardware": hardware})


def _fitting_suite(request: RunRequest, suite: SuiteSpec) -> tuple[SuiteSpec, list[Any]]:
    """``suite`` without the models that do not fit this machine (``bench.catalog.placement.model_fit`` on the
    resolved profile, within the run's ``--nodes``), and their ``Fit`` records (each with its reason).

    Raises ConfigError when none of the suite's models fits, naming each with its reason."""
    from bench.catalog.models import get_model_spec
    from bench.catalog.placement import model_fit

    profile = request.profile
    if not profile.hardware.on_gpus:
        return suite, []
    fits = [model_fit(get_model_spec(name), profile, max_nodes=request.nodes) for name in suite.models]
    left_out = [f for f in fits if not f.fits]
    if not left_out:
        return suite, []
    kept = [f.model for f in fits if f.fits]
    if not kept:
        raise ConfigError(
            f"no model of suite {request.suite_name!r} fits this machine (profile {profile.name!r}: "
            f"{profile.hardware.gpu_count} GPU(s) of {profile.hardware.gpu_memory_gb:g} GB):\n  - "
            + "\n  - ".join(f.line() for f in left_out)
        )
    repetitions = {m: r for m, r in suite.model_repetitions.items() if m in kept}
    return suite.model_copy(update={"models": kept, "model_repetitions": repetitions}), left_out


def effective_suite(request: RunRequest) -> SuiteSpec:
    """The suite of ``resolve_plan(request)`` (nothing checked): for callers that need only the suite."""
    return resolve_plan(request).suite


# --- what was asked -------------------------------------------------------------------------------------------------


def is_adhoc(request: RunRequest) -> bool:
    """Whether the request runs an ad-hoc suite: no ``--suite``, and a file or a model of the user's among its
    ``--dataset`` / ``--model`` values (catalog names alone narrow the default suite, as before)."""
    from bench.catalog.models import is_user_model

    if request.suite_given and request.suite_name != ADHOC_SUITE:
        return False
    if request.suite_name == ADHOC_SUITE:
        return True
    base = request.profile.suite(request.suite_name)
    return bool(
        request.data_files
        or any(_file_value(v, base) for v in request.datasets or [])
        or any(is_user_model(m) for m in request.models or [])
    )


def _file_value(value: str, suite: SuiteSpec) -> bool:
    """A ``--dataset`` value that names a file (``NAME=PATH`` or a path), not a catalog name or suite member."""
    from bench.catalog.datasets import DATASETS
    from bench.data.local import looks_like_path

    if value in suite.datasets or value in DATASETS:
        return False
    return "=" in value or looks_like_path(value)


def resolve_datasets(
    request: RunRequest, suite: SuiteSpec, *, adhoc: bool
) -> tuple[list[str], dict[str, DataFileSpec]]:
    """The ``--dataset`` values as (data set names in order, files by name), files described with the request's
    column, label, language and encoding options and their absolute path.

    Raises ConfigError for a name that is neither a file, a catalog data set nor a member of ``suite``, for two
    files with one name, and for a file given a catalog data set's name. Catalog data sets outside ``suite`` are
    taken only by an ``adhoc`` run."""
    from bench.catalog.datasets import DATASETS

    names: list[str] = []
    files: dict[str, DataFileSpec] = dict(request.data_files)
    names += list(files)
    for value in request.datasets or []:
        if not _file_value(value, suite):
            if value not in suite.datasets and not (adhoc and value in DATASETS):
                known = list(dict.fromkeys([*suite.datasets, *DATASETS]))
                raise ConfigError(
                    f"--dataset {value}: neither a file nor a data set of suite {request.suite_name!r} of profile "
                    f"{request.profile.name!r}.{did_you_mean(value, known)} Its data sets: "
                    f"{', '.join(suite.datasets)}; a file is given by its path (reviews.csv) or as NAME=PATH."
                )
            names.append(value)
            continue
        name, spec = _file_spec(request, value)
        if name in files and files[name] != spec:
            raise ConfigError(
                f"--dataset {value}: two files are called {name!r} ({files[name].path} and {spec.path}); name them "
                f"with NAME=PATH, e.g. --dataset {name}-2={value.partition('=')[2] or value}"
            )
        files[name] = spec
        names.append(name)
    if files and not names:
        names = list(files)
    if (request.label_names or request.text_column or request.label_column or request.encoding) and not files:
        raise ConfigError(
            "--text-column, --label-column, --label-names and --encoding describe a data file given with "
            "--dataset PATH; this run has none."
        )
    return list(dict.fromkeys(names)), files


def _file_spec(request: RunRequest, value: str) -> tuple[str, DataFileSpec]:
    """A ``--dataset`` file value (``PATH`` or ``NAME=PATH``) as (data set name, its description with the request's
    column, label, language and encoding options and the absolute path). Raises ConfigError for an empty name or
    path, and for a file given a catalog data set's name."""
    from bench.catalog.datasets import DATASETS

    name, sep, path = value.partition("=")
    if not sep:
        name, path = Path(value).stem, value
    if not name or not path:
        raise ConfigError(f"--dataset {value!r}: expected a path or NAME=PATH, e.g. --dataset reviews=data/r.csv")
    if name in DATASETS:
        raise ConfigError(
            f"--dataset {value}: {name!r} is the name of the catalog data set; give your file another name "
            f"(--dataset my-{name}={path})"
            + (
                f", or pass the catalog set's own file with --data {name}={path}"
                if DATASETS[name].source == "local"
                else ""
            )
            + "."
        )
    described = {
        k: v
        for k, v in (
            ("text_column", request.text_column),
            ("label_column", request.label_column),
            ("label_names", request.label_names or None),
            ("language", request.language),
            ("encoding", request.encoding),
        )
        if v is not None
    }
    return name, DataFileSpec(path=str(Path(path).expanduser().resolve()), **described)


def stored_request(request: RunRequest) -> RunRequest | None:
    """``bench run --run-id X`` of a stored run, without ``--suite``, ``--dataset`` or ``--model``: the request run X
    was started with (its suite, data sets, models, files, and the options its settings recorded: each option's
    ``stored`` in ``bench.run.options``; options given now still win), so that it resumes instead of starting the
    default suite under X's name. None for any other request (nothing stored to restore).

    Raises ConfigError when run X was made with another profile (naming it), or its stored files are unreadable."""
    from bench.results import load_results
    from bench.run.options import restored_fields

    if request.suite_given or not request.run_id or request.datasets or request.models or request.data_files:
        return None
    path = request.reports_dir / request.run_id / "results.json"
    if not path.is_file():
        return None
    doc = load_results(path)
    stored_profile = doc.profile.get("name")
    if stored_profile != request.profile.name:
        raise ConfigError(
            f"--run-id {request.run_id}: that run was made with profile {stored_profile!r}, not "
            f"{request.profile.name!r}; resume it with --profile {stored_profile}"
        )
    settings = doc.settings
    try:
        files = {n: DataFileSpec.model_validate(f) for n, f in (settings.get("data_files") or {}).items()}
    except ValidationError as exc:
        raise override_error(f"{path}: settings.data_files", exc) from None

    restored = restored_fields(request, doc)  # the options not given now, as run X recorded them
    if "repetitions" in restored:  # with its per-model ones: the grid run X recorded, whatever the suite says now
        restored["model_repetitions"] = dict(doc.suite.get("model_repetitions") or {})
    return dataclasses.replace(
        request,
        suite_name=doc.suite_name,
        suite_given=True,  # the stored run's suite, as it was: not to be taken for an ad-hoc one again
        datasets=[d for d in doc.suite.get("datasets", []) if d not in files],
        models=list(doc.suite.get("models", [])),
        data_files=files,
        **restored,
    )
