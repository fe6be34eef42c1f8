"""What was asked of a run: the ``RunRequest`` (the CLI's options, or a Slurm task's), as given. What it means (the
ad-hoc suite of files and models named on the command line, ``--run-id X`` as the request run X was started with,
the suite, settings and checks) is resolved once, by ``bench.run.resolve.resolve_plan``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import DataFileSpec, HardwareProfile
from bench.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

#: The suite name of a run built from the command line (``--dataset FILE`` / ``--model clf:...`` without ``--suite``).
ADHOC_SUITE = "adhoc"

#: The paper's split sizes, used for a data set that is not in the catalog unless ``--n-train/--n-test`` say.
DEFAULT_N_TRAIN = 200
DEFAULT_N_TEST = 200


@dataclass
class RunRequest:
    """What to run, as asked. Overrides (None: the profile's value) are recorded in the results' settings.

    ``bench run`` builds it from its parsed arguments through the options' declaration
    (``bench.run.options.request_from_args``); each option names the field it sets there."""

    profile: HardwareProfile
    suite_name: str = "default"
    reports_dir: Path = Path("reports")
    run_id: str | None = None
    new: bool = False
    force: bool = False
    data_paths: dict[str, str] = field(default_factory=dict)
    #: ``--repetitions``: every model of the run runs this many, over the suite's per-model repetitions (its
    #: ``model_repetitions``, which stay the defaults when it is not given)
    repetitions: int | None = None
    #: per-model repetitions as a stored run recorded them: ``bench run --run-id X`` alone restores them with X's
    #: repetitions, so X keeps the grid it was started with (None: the suite's, or none under ``repetitions``)
    model_repetitions: dict[str, int] | None = None
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
    #: measurement settings given on the command line (None: the profile's), by their MeasurementSpec field name:
    #: applied to the profile the run sees (``bench.run.options.run_profile``), part of the profile it records; the
    #: results' ``grid`` names the options as the source of the intensity and price
    max_other_cpu_share: float | None = None
    grid_intensity_gco2e_per_kwh: float | None = None
    price_per_kwh: float | None = None
    currency: str | None = None
    #: ``--truncate``: ``[llm] truncate = true`` in the profile the run sees (part of the settings hash)
    truncate: bool = False
    #: ``--redo-flagged``: repair stored run ``run_id``: run again, in a new session, only its cells that failed, were
    #: flagged or are invalid (``bench.validation.redo_reasons``), keeping every other cell as it was
    redo_flagged: bool = False
    #: a classifier's labels -> the data's label names, for those that do not match by name (``--label-map``)
    label_map: dict[str, str] = field(default_factory=dict)
    #: a serving configuration for every LLM of the run (``--serving``, ``--batch-size``, ``--dtype``,
    #: ``--quantization``): merged into each LLM entry's own (``bench.catalog.models.SERVING_KEYS``), the CLI winning
    serving: dict[str, object] = field(default_factory=dict)


def override_error(what: str, exc: ValidationError) -> ConfigError:
    """One ConfigError listing every rejected override with its value and the limit it broke."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))} = {e['input']!r}: {e['msg']}" for e in exc.errors())
    return ConfigError(f"{what}: {problems}")
