"""The pieces of what a run is before any energy is spent: the suite after the request's overrides
(``build_suite``), the settings that define what the numbers mean (``run_settings``) and their hash, the data sets
with their splits, the cells left to run, and the results document the run writes into (a new one, or a resumed one
with the same settings and data).

``bench.run.resolve.resolve_plan`` puts them together once into a ``RunPlan``; the rest of the run reads that plan.
``bench.hpc`` plans Slurm tasks through the same ``resolve_plan`` (and ``bench merge`` compares profiles with
``hashed_profile``), so a task's part and the whole run agree on what a setting is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.config import DataFileSpec, HardwareProfile, MeasurementSpec, SuiteSpec
from bench.errors import BenchError, ConfigError, DataError
from bench.fsutil import now_iso
from bench.results import (
    DatasetRecord,
    RepairedCell,
    ResultDocument,
    SplitRecord,
    canonical_json,
    load_results,
)
from bench.run.request import DEFAULT_N_TEST, DEFAULT_N_TRAIN, RunRequest, override_error

#: How many test texts a warm-up pass uses (first call costs: lazy init, caches, JIT); not measured. A setting.
WARMUP_TEXTS = 8

#: A cell of the grid: (model, data set, repetition), in the order the loop runs them (model-major: load once).
GridKey = tuple[str, str, int]


def build_suite(request: RunRequest, suite: SuiteSpec, *, adhoc: bool, datasets: list[str]) -> SuiteSpec:
    """``suite`` (the profile's suite the run starts from) after the request's overrides: subset of models and data
    sets (``datasets``: the names ``resolve_datasets`` gave, files included), repetitions, split sizes, the CLI's
    serving configuration; for an ``adhoc`` run, the suite of the files and models named on the command line.

    Raises ConfigError naming a model or data set not in the suite, a ``--data`` file for a data set the run does not
    have, or an override outside the profile's limits."""
    from bench.catalog.models import absolute_user_model, get_model_spec, is_user_model, split_serving

    updates: dict[str, Any] = {}
    if request.repetitions is not None:
        updates["repetitions"] = request.repetitions
        updates["model_repetitions"] = {}  # --repetitions applies to every model: the suite's per-model are defaults
    if request.model_repetitions is not None:  # a stored run's, as it recorded them: its grid is kept
        updates["model_repetitions"] = dict(request.model_repetitions)
    for attr, value in (("n_train", request.n_train), ("n_test", request.n_test)):
        if value is not None:
            updates[attr] = value
    if datasets:
        updates["datasets"] = datasets
    if request.models:
        # `--model a --model a` is one model, not two; a local clf:/hf: folder by its absolute path
        chosen = list(dict.fromkeys(absolute_user_model(m) for m in request.models))
        if adhoc:
            for name in chosen:
                get_model_spec(name)  # a typo is named with suggestions now, not after the data loaded
        else:
            # a suite model under a serving configuration of the command line's (`smollm2-135m[serving=scoring]`); a
            # bare name the suite holds only configured (`smollm2-135m` of `smollm2-135m[serving=scoring]`) is the
            # suite's entries of that model, with their configurations and repetitions
            base_of = {m: split_serving(m)[0] for m in suite.models}
            bases = set(base_of.values())
            expanded: list[str] = []
            for x in chosen:
                if x in bases and x not in suite.models:
                    expanded += [m for m, base in base_of.items() if base == x]
                else:
                    expanded.append(x)
            chosen = list(dict.fromkeys(expanded))
            unknown = [x for x in chosen if split_serving(x)[0] not in bases and not is_user_model(x)]
            for name in chosen:
                get_model_spec(name)  # a bad serving configuration is named now
            if unknown:
                holding = [
                    name
                    for name, other in request.profile.suites.items()
                    if name != request.suite_name
                    and all(split_serving(x)[0] in {split_serving(m)[0] for m in other.models} for x in unknown)
                ]
                there = f"; suite {' or '.join(map(repr, holding))} has it (--suite {holding[0]})" if holding else ""
                data = ", ".join(suite.datasets) or "FILE"
                raise ConfigError(
                    f"--model {', '.join(unknown)}: not in suite {request.suite_name!r} of profile "
                    f"{request.profile.name!r} (it has: {', '.join(suite.models)}){there}. To run it outside a suite, "
                    f"name its data too, in an ad-hoc suite: bench run --suite adhoc --dataset {suite.datasets[0]} "
                    f"--model {unknown[0]} (--dataset: a data set of the catalog, e.g. {data}, or a file such as "
                    "reviews.csv, which makes the suite ad hoc by itself); a model of your own is "
                    "clf:ORG/NAME[@REV], clf:/a/folder, hf:ORG/NAME[@REV] or hf:/a/folder"
                )
            if "model_repetitions" not in updates:  # neither --repetitions nor a stored run's grid
                inherited = inherited_repetitions(suite, chosen)
                if inherited:
                    updates["model_repetitions"] = {**suite.model_repetitions, **inherited}
        updates["models"] = chosen
    if request.serving:
        from bench.run.models import check_batch_size_limit

        check_batch_size_limit(request.serving.get("batch_size"), request.profile, where="--batch-size")
        renamed = serving_overrides(updates.get("models", suite.models), request.serving)
        updates["models"] = list(dict.fromkeys(renamed.values()))
        reps = updates.get("model_repetitions", suite.model_repetitions)
        updates["model_repetitions"] = {renamed.get(m, m): r for m, r in reps.items()}
    if "models" in updates:
        # per-model repetitions of the models left out are not an error of the subset (a Slurm task runs one model)
        reps = updates.get("model_repetitions", suite.model_repetitions)
        updates["model_repetitions"] = {m: r for m, r in reps.items() if m in updates["models"]}
    if adhoc:
        updates["description"] = "ad-hoc: the data sets and models named on the command line"
    if updates:
        try:  # validated like the profile itself: an override gets the same limits as the file
            suite = SuiteSpec.model_validate({**suite.model_dump(), **updates})
        except ValidationError as exc:
            raise override_error(f"invalid override of suite {request.suite_name!r}", exc) from None
    unused = [name for name in request.data_paths if name not in suite.datasets]
    if unused:  # a file given for a data set the run does not have would silently not be used
        raise ConfigError(
            f"--data {', '.join(f'{n}=...' for n in unused)}: no data set of this run is called "
            f"{' or '.join(map(repr, unused))}; the run's data sets (suite {request.suite_name!r} of profile "
            f"{request.profile.name!r}"
            f"{', narrowed by --dataset' if request.datasets else ''}): {', '.join(suite.datasets)}"
        )
    return suite


def inherited_repetitions(suite: SuiteSpec, chosen: list[str]) -> dict[str, int]:
    """The per-model repetitions the configurations among ``chosen`` that ``suite`` does not hold take from its
    entries of their model (the fewest of them), as ``--serving`` gives them: ``smollm2-135m[serving=sequential]`` in
    the cpu default suite is one pass, like its ``smollm2-135m[serving=scoring]``, not the suite's 10. Only where that
    is below the suite's repetitions, so a run with ``--repetitions 1`` kept the settings (and hash) it had. Not used
    under an explicit ``--repetitions`` (it applies to every model) nor for a stored run (its grid is recorded)."""
    from bench.catalog.models import split_serving

    inherited: dict[str, int] = {}
    for name in (x for x in chosen if x not in suite.models):
        base = split_serving(name)[0]
        own = [n for m, n in suite.model_repetitions.items() if split_serving(m)[0] == base]
        if own and min(own) < suite.repetitions:
            inherited[name] = min(own)
    return inherited


def replaced_repetitions(request: RunRequest, base: SuiteSpec, suite: SuiteSpec) -> dict[str, int]:
    """The per-model repetitions of ``base`` (the profile's suite the run starts from) that an explicit
    ``--repetitions`` replaced in ``suite`` (the run's), model -> the base suite's count: what the run's header
    names, so the override is never silent. Empty without ``--repetitions`` and for a stored run's grid."""
    if request.repetitions is None or request.model_repetitions is not None:
        return {}
    return {m: n for m, n in base.model_repetitions.items() if m in suite.models and n != suite.repetitions_of(m)}


def serving_overrides(models: list[str], serving: dict[str, Any]) -> dict[str, str]:
    """Each model's name in the run under the CLI's serving configuration (``--serving`` etc.): LLMs get it merged into
    their own (the CLI wins; the name is canonical, so the configuration is a row of its own and part of the settings
    hash), other models keep their name. Raises ConfigError for a bad value, naming the option, or a model that
    is not known."""
    from bench.catalog.models import check_serving_value, get_model_spec, with_serving

    for key, value in serving.items():
        check_serving_value(key, value, where=f"--{key.replace('_', '-')}")
    renamed = {}
    for name in models:
        renamed[name] = with_serving(name, serving) if get_model_spec(name).kind == "llm" else name
    return renamed


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
        raise override_error("invalid measurement override", exc) from None


def run_settings(request: RunRequest, suite: SuiteSpec, files: Mapping[str, DataFileSpec]) -> dict[str, Any]:
    """The settings that define what the numbers mean (JSON-ready); a resumed run must have the same ones.

    ``suite``: the run's suite (``build_suite``); ``files``: the data files it reads (``--dataset PATH``, or restored
    from a resumed run), by data set name. Raises ConfigError for a measurement override outside the profile's
    limits."""
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
        "llm": _hashed_llm(request.profile.llm.model_dump(mode="json")),  # limits are not settings
        "model_lock_sha256": _model_lock_sha256(suite),
    }
    # Recorded only when present, so runs without them keep their settings hash: the files an ad-hoc run reads
    # (path, columns, label names, language, encoding) and a classifier's label map.
    if files:
        settings["data_files"] = {name: spec.model_dump(mode="json") for name, spec in sorted(files.items())}
    if request.label_map:
        settings["label_map"] = dict(sorted(request.label_map.items()))
    trained = {m: dict(request.profile.training[m]) for m in suite.models if m in request.profile.training}
    if trained:  # the profile's training settings of the models this run trains ([training.<model>])
        settings["training"] = dict(sorted(trained.items()))
    # The allocation a run was given changes what a cell measures (GPUs metered, pipeline stages), so a resume must
    # not mix allocations. Recorded only when not the default, so runs without them keep their settings hash.
    if request.gpus is not None:
        settings["gpus"] = request.gpus
    if request.nodes != 1:
        settings["nodes"] = request.nodes
    return settings


def suite_hub_ids(suite: SuiteSpec) -> list[str]:
    """The Hub ids of the suite's catalog LLMs, whose revisions come from the model lock (package and user models
    have none there; ``llama-3.1-70b@2x1`` runs llama-3.1-70b)."""
    from bench.catalog.models import MODELS, base_model_name

    out = []
    for name in suite.models:
        spec = MODELS.get(base_model_name(name))
        model = str(spec.params.get("model", "")) if spec is not None and spec.kind == "llm" else ""
        if model and not model.startswith("package:"):
            out.append(model)
    return list(dict.fromkeys(out))


def _model_lock_sha256(suite: SuiteSpec) -> str | None:
    """The model lock's hash when the suite runs Hub LLMs (their revisions come from it), else None."""
    from bench.catalog.lock import lock_sha256

    return lock_sha256() if suite_hub_ids(suite) else None


def lock_warnings(suite: SuiteSpec) -> list[str]:
    """A warning for the results per Hub LLM of the suite whose lock entry is not verified against the Hub: the run
    accepts it, and the report shows it."""
    from bench.catalog.lock import unverified_warnings

    return unverified_warnings(suite_hub_ids(suite))


#: Profile tables left out of the settings hash: ``[slurm]`` says how to ask a cluster for the machine (partition,
#: wall time, memory, image), not what the numbers mean. Hashing it would refuse a rerun after raising ``time`` and
#: would stop every run started before the table existed from resuming. ``suites``: the run's own suite, as run, is
#: in its settings (``run_settings``); the profile's other suites say nothing about it, and hashing them would stop
#: every stored run from resuming whenever a suite is added to its profile. Both stay in the results' ``profile``.
#: ``training``: the settings of the models the run trains are in its settings (``run_settings``); the others'
#: say nothing about it.
UNHASHED_PROFILE_KEYS = frozenset({"slurm", "suites", "training"})

#: ``[llm]`` keys left out of the settings hash (in the profile and in the run's ``settings.llm``): limits that refuse
#: a run before it starts, not settings of its numbers. ``max_batch_size`` caps the batch sizes a run may ask for;
#: the batch size a cell ran with is hashed (``[llm] batch_size``, an entry's ``batch_size=N``). Hashing the limit
#: would stop stored runs from resuming when it is raised, or set in a profile that did not have it.
UNHASHED_LLM_KEYS = frozenset({"max_batch_size"})


#: ``[hardware]`` keys left out of the settings hash: which machines a profile accepts (its GPU models, the fewest GPUs,
#: the memory sizes of its family; schema 2, or schema 1's pattern), not what the numbers mean. The GPU count and
#: memory size a run found are hashed (``gpu_count``, ``gpu_memory_gb``: ``bench.environment.resolve_profile``), and so
#: runs of schema-1 profiles still resume under their schema-2 successors. ``schema_version`` (top level) likewise.
#: ``datasheet`` is reference data (a GPU's peak FLOP/s and power, cited), read by the report's reference ratio only;
#: adding or correcting it must not stop a stored run resuming; so is ``precisions`` (the formats the datasheet lists).
UNHASHED_HARDWARE_KEYS = frozenset(
    {"gpu_models", "gpu_model_pattern", "gpu_count_min", "gpu_memory_variants_gb", "datasheet", "precisions"}
)


def _hashed_llm(llm: Any) -> Any:
    """An ``[llm]`` table's JSON form without ``UNHASHED_LLM_KEYS`` (anything else unchanged)."""
    return {k: v for k, v in llm.items() if k not in UNHASHED_LLM_KEYS} if isinstance(llm, dict) else llm


def hashed_profile(profile: HardwareProfile | dict[str, Any]) -> dict[str, Any]:
    """The profile as the settings hash and ``bench merge`` see it: its JSON form without ``UNHASHED_PROFILE_KEYS``,
    ``schema_version``, the ``UNHASHED_LLM_KEYS`` of its ``llm`` table and the ``UNHASHED_HARDWARE_KEYS`` of its
    ``hardware`` table."""
    data = profile if isinstance(profile, dict) else profile.model_dump(mode="json")
    out = {k: v for k, v in data.items() if k not in UNHASHED_PROFILE_KEYS and k != "schema_version"}
    if "llm" in out:
        out["llm"] = _hashed_llm(out["llm"])
    if isinstance(out.get("hardware"), dict):
        out["hardware"] = {k: v for k, v in out["hardware"].items() if k not in UNHASHED_HARDWARE_KEYS}
    return out


def settings_sha256(profile: HardwareProfile | dict[str, Any], settings: dict[str, Any]) -> str:
    """Hex sha256 over the canonical JSON of the hashed profile and the run settings: runs with the same hash measure
    the same thing, and only those resume or merge into one another."""
    body = {"profile": hashed_profile(profile), "settings": settings}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def stored_settings_sha256(doc: ResultDocument) -> str:
    """``settings_sha256`` of a stored run as this kit computes it, from the profile and settings the run recorded:
    what resuming compares, so that a run stored before a change of what is hashed (``UNHASHED_PROFILE_KEYS``)
    resumes when nothing that defines its numbers differs. The stored ``settings_sha256`` stays as it was written."""
    return settings_sha256(doc.profile, doc.settings)


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
        stripped = data.pin.get("labels_stripped") or {}
        if stripped:
            listed = ", ".join(f"{raw} as {label!r}" for raw, label in sorted(stripped.items())[:5])
            notes.append(
                f"data set {name!r}: {len(stripped)} label value(s) had spaces around them, read without "
                f"({listed}{', ...' if len(stripped) > 5 else ''}): rows written so are one class with the rows "
                "without the spaces. Check the file if spaces were meant to tell classes apart"
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


def pending(suite: SuiteSpec, document: ResultDocument, *, redo: bool = False) -> list[GridKey]:
    """The cells of the grid not yet done (absent, or failed: a resumed run retries them), in grid order; with
    ``redo`` (``--redo-flagged``) also those flagged or invalid (``bench.validation.redo_reasons``)."""
    from bench.validation import redo_reasons

    done = document.cell_map()

    def left(key: tuple[str, str, int]) -> bool:
        cell = done.get(key)
        return cell is None or cell.status != "ok" or (redo and bool(redo_reasons(cell)))

    return [(m, d, r) for m, d, r in grid(suite) if left((d, m, r))]


def repaired_cells(document: ResultDocument, todo: list[GridKey]) -> list[RepairedCell]:
    """The cells of ``todo`` a redo session runs again, each with what it was (failed, invalid or flagged, in that
    order of precedence) and why (``bench.validation.redo_reasons``); cells not yet in the document are not repairs."""
    from bench.validation import redo_reasons

    done = document.cell_map()
    out = []
    for model, dataset, rep in todo:
        cell = done.get((dataset, model, rep))
        if cell is None:
            continue
        before = "failed" if cell.status != "ok" else "invalid" if cell.validity else "flagged"
        out.append(
            RepairedCell(dataset=dataset, model=model, repetition=rep, before=before, reasons=redo_reasons(cell))
        )
    return out


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
        and stored_settings_sha256(doc) == settings_sha
    ]
    return max(candidates)[1] if candidates else None


def latest_complete(runs: list[tuple[Path, ResultDocument]], profile: str, suite: str, settings_sha: str) -> str | None:
    """The run id of the newest complete run (no failed cell) with the same profile, suite and settings, if any: a
    plain rerun starts a new run beside it, and says so."""
    done = [
        (doc.updated_at, doc.run_id)
        for _, doc in runs
        if doc.status == "complete"
        and not any(c.status == "failed" for c in doc.cells)
        and doc.profile.get("name") == profile
        and doc.suite_name == suite
        and stored_settings_sha256(doc) == settings_sha
    ]
    return max(done)[1] if done else None


def session_record(
    machine: Any, software: dict[str, Any], accelerator: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """This session's environment, started now: the machine, the software, the device the backends run on as PyTorch
    sees it (``accelerator``: ``bench.environment.accelerator_facts``); under Slurm also its job, array task, nodes
    and the GPUs it got."""
    from bench.environment import slurm_environment

    record: dict[str, Any] = {"started_at": now_iso(), "machine": machine.to_dict(), "software": software}
    if accelerator is not None:
        record["accelerator"] = dict(accelerator)
    slurm = slurm_environment()
    if slurm is not None:
        record["slurm"] = slurm
    return record


def _new_run_id(profile: str, suite: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{profile}-{suite}-{stamp}"
