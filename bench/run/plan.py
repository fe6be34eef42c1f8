"""What a run is before any energy is spent: the request, the suite after its overrides, the settings that define
what the numbers mean and their hash, the data sets with their splits, the cells left to run, and the results
document the run writes into (a new one, or a resumed one with the same settings and data).

``bench.hpc`` plans Slurm tasks with the same functions (``effective_suite``, ``run_settings``, ``settings_sha256``,
``hashed_profile``), so a task's part and the whole run agree on what a setting is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench import __version__
from bench.config import DataFileSpec, HardwareProfile, MeasurementSpec, SuiteSpec
from bench.errors import BenchError, ConfigError, DataError, did_you_mean
from bench.fsutil import now_iso
from bench.results import DatasetRecord, ResultDocument, SplitRecord, canonical_json, load_results, write_results

#: How many test texts a warm-up pass uses (first call costs: lazy init, caches, JIT); not measured. A setting.
WARMUP_TEXTS = 8

#: A cell of the grid: (model, data set, repetition), in the order the loop runs them (model-major: load once).
GridKey = tuple[str, str, int]

#: The suite name of a run built from the command line (``--dataset FILE`` / ``--model clf:...`` without ``--suite``).
ADHOC_SUITE = "adhoc"

#: The paper's split sizes, used for a data set that is not in the catalog unless ``--n-train/--n-test`` say.
DEFAULT_N_TRAIN = 200
DEFAULT_N_TEST = 200


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
    #: nodes of the allocation: > 1 runs LLMs pipeline-parallel over Ray and meters every node
    #: (``bench.meters.multinode``)
    nodes: int = 1
    #: whether ``suite_name`` was asked for (``--suite``); without it, files or user models make an ad-hoc suite
    suite_given: bool = True
    #: how ``--dataset`` values that are files are read (``DataFileSpec``'s fields; None: its default)
    text_column: str | None = None
    label_column: str | None = None
    label_names: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    encoding: str | None = None
    #: files already described (a resumed ad-hoc run restores them from its results), by data set name
    data_files: dict[str, DataFileSpec] = field(default_factory=dict)
    #: split sizes (None: the data set's own, the paper's 200/200 for a file)
    n_train: int | None = None
    n_test: int | None = None
    #: a classifier's labels -> the data's label names, for those that do not match by name (``--label-map``)
    label_map: dict[str, str] = field(default_factory=dict)

    def check_allocation(self) -> None:
        """ConfigError when ``gpus`` or ``nodes`` cannot be what this profile's nodes are given."""
        if self.gpus is not None and not 0 <= self.gpus <= self.profile.hardware.gpu_count:
            raise ConfigError(
                f"--gpus {self.gpus}: profile {self.profile.name!r} has {self.profile.hardware.gpu_count} GPU(s) "
                "per node"
            )
        if self.nodes < 1:
            raise ConfigError(f"--nodes {self.nodes}: must be >= 1")

    def allocated_profile(self) -> HardwareProfile:
        """The profile as this run's allocation sees it: a Slurm task sees only the GPUs it was given, so the machine
        is checked against that, not the whole node."""
        if self.gpus is None:
            return self.profile
        hardware = self.profile.hardware.model_copy(update={"gpu_count": self.gpus})
        return self.profile.model_copy(update={"hardware": hardware})

    def cell_gpus(self) -> int | None:
        """GPUs every cell of an allocated run (``--gpus`` or ``--nodes``) used over all nodes; None in a host run."""
        if self.gpus is None and self.nodes == 1:
            return None
        per_node = self.gpus if self.gpus is not None else self.profile.hardware.gpu_count
        return per_node * self.nodes


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
    from bench.data.loaders import _looks_like_path

    if value in suite.datasets or value in DATASETS:
        return False
    return "=" in value or _looks_like_path(value)


def resolve_datasets(request: RunRequest, suite: SuiteSpec, adhoc: bool) -> tuple[list[str], dict[str, DataFileSpec]]:
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
        spec = DataFileSpec(
            path=str(Path(path).expanduser().resolve()),
            **{
                k: v
                for k, v in (
                    ("text_column", request.text_column),
                    ("label_column", request.label_column),
                    ("label_names", request.label_names or None),
                    ("language", request.language),
                    ("encoding", request.encoding),
                )
                if v is not None
            },
        )
        if name in files and files[name] != spec:
            raise ConfigError(
                f"--dataset {value}: two files are called {name!r} ({files[name].path} and {spec.path}); name them "
                f"with NAME=PATH, e.g. --dataset {name}-2={path}"
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


def effective_suite(request: RunRequest) -> SuiteSpec:
    """The suite after the request's overrides (subset of models/datasets, repetitions, split sizes), or the ad-hoc
    suite of files and models named on the command line (``is_adhoc``).

    Raises ConfigError naming a model or data set not in the suite, a ``--data`` file for a data set the run does not
    have, or an override outside the profile's limits."""
    from bench.catalog.models import absolute_user_model, get_model_spec, is_user_model

    adhoc = is_adhoc(request)
    base_name = "default" if adhoc and ADHOC_SUITE not in request.profile.suites else request.suite_name
    suite = request.profile.suite(base_name)
    updates: dict[str, Any] = {}
    if request.repetitions is not None:
        updates["repetitions"] = request.repetitions
    for attr, value in (("n_train", request.n_train), ("n_test", request.n_test)):
        if value is not None:
            updates[attr] = value
    datasets, _ = resolve_datasets(request, suite, adhoc)
    if datasets:
        updates["datasets"] = datasets
    if request.models:
        # `--model a --model a` is one model, not two; a local clf:/hf: folder by its absolute path
        chosen = list(dict.fromkeys(absolute_user_model(m) for m in request.models))
        if adhoc:
            for name in chosen:
                get_model_spec(name)  # a typo is named with suggestions now, not after the data loaded
        else:
            unknown = [x for x in chosen if x not in suite.models and not is_user_model(x)]
            if unknown:
                raise ConfigError(
                    f"--model {', '.join(unknown)}: not in suite {request.suite_name!r} of profile "
                    f"{request.profile.name!r} (it has: {', '.join(suite.models)}); a model of your own is "
                    "clf:ORG/NAME[@REV], clf:/a/folder, hf:ORG/NAME[@REV] or hf:/a/folder"
                )
        updates["models"] = chosen
    if "models" in updates:
        # per-model repetitions of the models left out are not an error of the subset (a Slurm task runs one model)
        updates["model_repetitions"] = {m: r for m, r in suite.model_repetitions.items() if m in updates["models"]}
    if adhoc:
        updates["description"] = "ad-hoc: the data sets and models named on the command line"
    if updates:
        try:  # validated like the profile itself: an override gets the same limits as the file
            suite = SuiteSpec.model_validate({**suite.model_dump(), **updates})
        except ValidationError as exc:
            raise _override_error(f"invalid override of suite {request.suite_name!r}", exc) from None
    unused = [name for name in request.data_paths if name not in suite.datasets]
    if unused:  # a file given for a data set the run does not have would silently not be used
        raise ConfigError(
            f"--data {', '.join(f'{n}=...' for n in unused)}: no data set of this run is called "
            f"{' or '.join(map(repr, unused))}; the run's data sets (suite {request.suite_name!r} of profile "
            f"{request.profile.name!r}"
            f"{', narrowed by --dataset' if request.datasets else ''}): {', '.join(suite.datasets)}"
        )
    return suite


def data_files(request: RunRequest, suite: SuiteSpec) -> dict[str, DataFileSpec]:
    """The run's data files (``--dataset PATH``, or restored from a resumed run), by data set name."""
    base = request.profile.suites.get(request.suite_name) or request.profile.suite("default")
    _, files = resolve_datasets(request, base, is_adhoc(request))
    return {name: spec for name, spec in files.items() if name in suite.datasets}


def resolve_request(request: RunRequest) -> RunRequest:
    """The request as the run will see it: an ad-hoc one named ``ADHOC_SUITE``; ``bench run --run-id X`` of an
    ad-hoc run, without its ``--dataset`` / ``--model``, as the run was started (its suite, files and the measurement
    overrides it recorded), so it resumes. Any other request as is."""
    if is_adhoc(request):
        return dataclasses.replace(request, suite_name=ADHOC_SUITE)
    if request.suite_given or not request.run_id or request.datasets or request.models or request.data_files:
        return request
    path = request.reports_dir / request.run_id / "results.json"
    if not path.is_file():
        return request
    doc = load_results(path)
    if doc.suite_name != ADHOC_SUITE:
        return request
    try:
        files = {n: DataFileSpec.model_validate(f) for n, f in (doc.settings.get("data_files") or {}).items()}
    except ValidationError as exc:
        raise _override_error(f"{path}: settings.data_files", exc) from None
    settings = doc.settings
    return dataclasses.replace(
        request,
        suite_name=ADHOC_SUITE,
        datasets=[d for d in doc.suite.get("datasets", []) if d not in files],
        models=list(doc.suite.get("models", [])),
        data_files=files,
        repetitions=request.repetitions if request.repetitions is not None else doc.suite.get("repetitions"),
        n_train=request.n_train if request.n_train is not None else doc.suite.get("n_train"),
        n_test=request.n_test if request.n_test is not None else doc.suite.get("n_test"),
        min_window_s=request.min_window_s if request.min_window_s is not None else settings.get("min_window_s"),
        idle_baseline_s=request.idle_baseline_s
        if request.idle_baseline_s is not None
        else settings.get("idle_baseline_s"),
        codecarbon=request.codecarbon if request.codecarbon is not None else settings.get("codecarbon"),
        data_paths=request.data_paths or dict(settings.get("data_paths") or {}),
        label_map=request.label_map or dict(settings.get("label_map") or {}),
    )


def checked_measurement(request: RunRequest) -> MeasurementSpec:
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
    m = checked_measurement(request)
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
    # Recorded only when present, so runs without them keep their settings hash: the files an ad-hoc run reads
    # (path, columns, label names, language, encoding) and a classifier's label map.
    files = data_files(request, suite)
    if files:
        settings["data_files"] = {name: spec.model_dump(mode="json") for name, spec in sorted(files.items())}
    if request.label_map:
        settings["label_map"] = dict(sorted(request.label_map.items()))
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

    bases = [split_placement(m)[0] for m in suite.models]  # `llama-3.1-70b@2x1` runs llama-3.1-70b (user models:
    # not in MODELS, their revision is their own)
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


def settings_sha256(profile: HardwareProfile, settings: dict[str, Any]) -> str:
    """Hex sha256 over the canonical JSON of the hashed profile and the run settings: runs with the same hash measure
    the same thing, and only those resume or merge into one another."""
    body = {"profile": hashed_profile(profile), "settings": settings}
    return hashlib.sha256(canonical_json(body)).hexdigest()


# --- data -----------------------------------------------------------------------------------------------------------


@dataclass
class PreparedDataset:
    """A data set of the run, loaded: its record (pin, labels, splits as indices), its texts and label ids, and notes
    for the run's warnings (e.g. smaller splits than asked for)."""

    record: DatasetRecord
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    notes: list[str] = field(default_factory=list)


def prepare_datasets(
    suite: SuiteSpec, data_paths: dict[str, str], files: dict[str, DataFileSpec] | None = None
) -> dict[str, PreparedDataset]:
    """Load every data set of the suite (``files``: those read from a file of the user's) and draw its splits (the
    same for every model).

    A data set with fewer items than the default split sizes (the catalog's, or the paper's 200/200 for a file) is
    split in halves instead, and a note says so; sizes asked for explicitly (``n_train``/``n_test`` of the suite) that
    do not fit are a DataError naming the data set, its size and the sizes."""
    from bench.catalog.datasets import DATASETS
    from bench.data.loaders import load_dataset
    from bench.data.splits import make_splits, splits_sha256

    files = files or {}
    prepared = {}
    for name in suite.datasets:
        spec = DATASETS.get(name)
        notes: list[str] = []
        if name in files:
            f = files[name]
            data = load_dataset(
                name,
                path=f.path,
                text_column=f.text_column,
                label_column=f.label_column,
                language=f.language,
                label_map=f.label_names or None,
                encoding=f.encoding,
            )
        else:
            data = load_dataset(name, path=data_paths.get(name))
        n_train = suite.n_train or (spec.n_train if spec else DEFAULT_N_TRAIN)
        n_test = suite.n_test or (spec.n_test if spec else DEFAULT_N_TEST)
        n_items = len(data.texts)
        if n_train + n_test > n_items:
            if suite.n_train is not None or suite.n_test is not None:
                raise DataError(
                    f"data set {name!r} ({data.pin.get('path') or data.pin.get('source')}) has {n_items} rows, fewer "
                    f"than n_train + n_test = {n_train} + {n_test} = {n_train + n_test}. Ask for fewer "
                    f"(e.g. --n-train {n_items // 2} --n-test {n_items - n_items // 2}) or give a larger file."
                )
            if n_items < 4:
                raise DataError(
                    f"data set {name!r} has {n_items} rows; a split needs at least 4 (2 to train on, 2 to test)."
                )
            asked = (n_train, n_test)
            n_train, n_test = n_items // 2, n_items - n_items // 2
            notes.append(
                f"data set {name!r} has {n_items} rows, fewer than the default split of {asked[0]} train + "
                f"{asked[1]} test texts: used {n_train} train + {n_test} test instead (--n-train/--n-test to choose)"
            )
        try:
            splits = make_splits(
                n_items, data.labels, n_train=n_train, n_test=n_test, repetitions=suite.repetitions, seed=suite.seed
            )
        except DataError as exc:
            raise DataError(f"data set {name!r}: {exc}") from None
        record = DatasetRecord(
            name=name,
            pin=dict(data.pin),
            label_names=list(data.label_names),
            language=data.language,
            n_items=n_items,
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
        prepared[name] = PreparedDataset(record=record, texts=data.texts, labels=data.labels, notes=notes)
    return prepared


# --- cells ------------------------------------------------------------------------------------------------------------


def grid(suite: SuiteSpec) -> list[GridKey]:
    """Every cell of the suite, model-major (a model is loaded once for all its cells)."""
    return [(m, d, r) for m in suite.models for d in suite.datasets for r in range(suite.repetitions_of(m))]


def pending(suite: SuiteSpec, document: ResultDocument) -> list[GridKey]:
    """The cells of the grid not yet done (absent, or failed: a resumed run retries them), in grid order."""
    done = document.cell_map()
    return [(m, d, r) for m, d, r in grid(suite) if (d, m, r) not in done or done[(d, m, r)].status != "ok"]


def sort_cells(document: ResultDocument, suite: SuiteSpec) -> None:
    """Order the document's cells by data set, model and repetition as the suite lists them (unknown ones last)."""

    def rank(names: list[str], name: str) -> int:
        return names.index(name) if name in names else len(names)

    document.cells.sort(key=lambda c: (rank(suite.datasets, c.dataset), rank(suite.models, c.model), c.repetition))


# --- the results document ---------------------------------------------------------------------------------------------


def stored_runs(reports_dir: Path) -> Iterator[tuple[Path, ResultDocument]]:
    """Every readable run under ``reports_dir`` (``*/results.json``); broken files are skipped (``bench validate``
    explains them), never resumed or learned from."""
    for path in sorted(reports_dir.glob("*/results.json")):
        try:
            yield path, load_results(path)
        except BenchError:
            continue


def find_resumable(runs: list[tuple[Path, ResultDocument]], profile: str, suite: str, settings_sha: str) -> Path | None:
    """The newest unfinished run (or finished with failed cells, to retry them) with the same profile, suite and
    settings among ``runs``, if any."""
    candidates = [
        (doc.updated_at, path)
        for path, doc in runs
        if (doc.status != "complete" or any(c.status == "failed" for c in doc.cells))
        and doc.profile.get("name") == profile
        and doc.suite_name == suite
        and doc.settings_sha256 == settings_sha
    ]
    return max(candidates)[1] if candidates else None


def open_document(
    request: RunRequest,
    suite: SuiteSpec,
    settings: dict[str, Any],
    settings_sha: str,
    datasets: dict[str, PreparedDataset],
    session: dict[str, Any],
    mismatches: list[str],
    runs: list[tuple[Path, ResultDocument]],
) -> tuple[Path, ResultDocument, bool]:
    """Resume the run asked for (or the newest unfinished compatible one among ``runs``) or start a new document;
    ``session`` (``session_record``) is appended to its sessions. Returns (results path, document, resumed).

    Raises ConfigError when the run asked for was made with other settings or other data, or exists under --new."""
    reports_dir = request.reports_dir
    path: Path | None = None
    if request.run_id:
        candidate = reports_dir / request.run_id / "results.json"
        if candidate.exists():
            if request.new:
                raise ConfigError(f"--new with --run-id {request.run_id}: that run exists; pick another run id")
            path = candidate
    elif not request.new:
        path = find_resumable(runs, request.profile.name, request.suite_name, settings_sha)
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
        doc.environment.setdefault("sessions", []).append(session)
        return path, doc, True
    run_id = request.run_id or _new_run_id(request.profile.name, request.suite_name)
    path = reports_dir / run_id / "results.json"
    now = session["started_at"]
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
        environment={"machine": session["machine"], "software": session["software"], "sessions": [session]},
        meters={},
        datasets={n: p.record for n, p in datasets.items()},
        models={},
        cells=[],
    )
    write_results(doc, path)
    return path, doc, False


def session_record(machine: Any, software: dict[str, Any]) -> dict[str, Any]:
    """This session's environment, started now; under Slurm also its job, array task, nodes and the GPUs it got."""
    from bench.environment import slurm_environment

    record: dict[str, Any] = {"started_at": now_iso(), "machine": machine.to_dict(), "software": software}
    slurm = slurm_environment()
    if slurm is not None:
        record["slurm"] = slurm
    return record


def _new_run_id(profile: str, suite: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{profile}-{suite}-{stamp}"
