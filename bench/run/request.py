"""What was asked of a run: the ``RunRequest`` (the CLI's options, or a Slurm task's), its checks, the files and
models named on the command line turned into an ad-hoc suite (``--dataset FILE``, ``--model clf:...`` without
``--suite``), and ``bench run --run-id X`` resolved to the request the run was started with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from bench.config import DataFileSpec, HardwareProfile, SuiteSpec
from bench.errors import ConfigError, did_you_mean
from bench.results import load_results

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
    #: the command-line options that set the grid's carbon intensity or price (``--grid-intensity``,
    #: ``--price-per-kwh``), by MeasurementSpec field: the results' ``grid`` names them as the source
    grid_options: dict[str, str] = field(default_factory=dict)
    #: a classifier's labels -> the data's label names, for those that do not match by name (``--label-map``)
    label_map: dict[str, str] = field(default_factory=dict)
    #: a serving configuration for every LLM of the run (``--serving``, ``--batch-size``, ``--dtype``,
    #: ``--quantization``): merged into each LLM entry's own (``bench.catalog.models.SERVING_KEYS``), the CLI winning
    serving: dict[str, object] = field(default_factory=dict)

    def check_allocation(self) -> None:
        """ConfigError when ``gpus`` or ``nodes`` cannot be what this profile's nodes are given."""
        if self.gpus is not None and not 0 <= self.gpus <= self.profile.hardware.gpu_count:
            raise ConfigError(
                f"--gpus {self.gpus}: must be from 0 to the {self.profile.hardware.gpu_count} GPU(s) per node of "
                f"profile {self.profile.name!r}"
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
    from bench.data.loaders import looks_like_path

    if value in suite.datasets or value in DATASETS:
        return False
    return "=" in value or looks_like_path(value)


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


def data_files(request: RunRequest, suite: SuiteSpec) -> dict[str, DataFileSpec]:
    """The run's data files (``--dataset PATH``, or restored from a resumed run), by data set name."""
    base = request.profile.suites.get(request.suite_name) or request.profile.suite("default")
    _, files = resolve_datasets(request, base, is_adhoc(request))
    return {name: spec for name, spec in files.items() if name in suite.datasets}


def resolve_request(request: RunRequest) -> RunRequest:
    """The request as the run will see it.

    An ad-hoc one is named ``ADHOC_SUITE``. ``bench run --run-id X`` of a stored run, without ``--suite``,
    ``--dataset`` or ``--model``, is the request the run was started with (its suite, data sets, models, files and
    the overrides its settings recorded; options given now still win), so that it resumes instead of starting the
    default suite under X's name. Any other request as is.

    Raises ConfigError when run X was made with another profile (naming it), or its stored files are unreadable."""
    if is_adhoc(request):
        return dataclasses.replace(request, suite_name=ADHOC_SUITE)
    if request.suite_given or not request.run_id or request.datasets or request.models or request.data_files:
        return request
    path = request.reports_dir / request.run_id / "results.json"
    if not path.is_file():
        return request
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

    def given_or_stored(value: object, stored: object) -> object:
        return value if value is not None else stored

    return dataclasses.replace(
        request,
        suite_name=doc.suite_name,
        datasets=[d for d in doc.suite.get("datasets", []) if d not in files],
        models=list(doc.suite.get("models", [])),
        data_files=files,
        repetitions=given_or_stored(request.repetitions, doc.suite.get("repetitions")),  # type: ignore[arg-type]
        n_train=given_or_stored(request.n_train, doc.suite.get("n_train")),  # type: ignore[arg-type]
        n_test=given_or_stored(request.n_test, doc.suite.get("n_test")),  # type: ignore[arg-type]
        min_window_s=given_or_stored(request.min_window_s, settings.get("min_window_s")),  # type: ignore[arg-type]
        idle_baseline_s=given_or_stored(request.idle_baseline_s, settings.get("idle_baseline_s")),  # type: ignore[arg-type]
        codecarbon=given_or_stored(request.codecarbon, settings.get("codecarbon")),  # type: ignore[arg-type]
        data_paths=request.data_paths or dict(settings.get("data_paths") or {}),
        label_map=request.label_map or dict(settings.get("label_map") or {}),
        gpus=given_or_stored(request.gpus, settings.get("gpus")),  # type: ignore[arg-type]
        nodes=request.nodes if request.nodes != 1 else int(settings.get("nodes", 1)),
    )


def override_error(what: str, exc: ValidationError) -> ConfigError:
    """One ConfigError listing every rejected override with its value and the limit it broke."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))} = {e['input']!r}: {e['msg']}" for e in exc.errors())
    return ConfigError(f"{what}: {problems}")
