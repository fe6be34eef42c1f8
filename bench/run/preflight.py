"""What can be checked of a run's data and models before any energy is spent, in one place: ``bench run`` calls it
before its session starts, ``bench slurm`` before it writes an ad-hoc run's jobs (so a bad file fails on the login
node in a second, not in every array task after it is queued).

The checks: every LLM configuration can be served on the profile; every data set loads and splits
(``bench.run.plan.prepare_datasets``: files read as people save them,
enough rows, more than one class); a bag-of-words vocabulary is not empty; test texts that also occur in training are
counted; a classifier's labels match the data's; every LLM prompt fits its model's context window; the model lock's
unverified entries are named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.data.checks import check_vocabulary, leakage_warnings
from bench.data.classes import absent_class_warnings
from bench.run import models
from bench.run import plan as planning


def check_inputs(
    profile: Any,
    suite: Any,
    model_specs: Mapping[str, Any],
    *,
    data_paths: Mapping[str, str],
    data_files: Mapping[str, Any],
    label_map: Mapping[str, str],
    nodes: int,
) -> tuple[dict[str, planning.PreparedDataset], list[str]]:
    """The inputs of a plan being resolved (``bench.run.resolve.resolve_plan`` calls this once, with its profile,
    suite, model specs by name, ``--data`` paths, data files by name, ``--label-map`` and node count): (the prepared
    data sets by name, warnings for the results). Raises DataError / ConfigError naming the file, row, column, model
    or label at fault and how to fix it."""
    for spec in model_specs.values():
        models.check_serving(spec, profile)  # a configuration this profile cannot serve
    datasets = planning.prepare_datasets(suite, dict(data_paths), dict(data_files))
    notes = [note for prepared in datasets.values() for note in prepared.notes]
    notes += planning.lock_warnings(suite)  # an unverified model lock entry runs, with a warning in the results
    features = {str(spec.params.get("features")) for spec in model_specs.values() if spec.kind == "traditional"}
    for name, prepared in datasets.items():  # a data set a model cannot train on
        check_vocabulary(name, prepared.texts, prepared.record.splits, features)
        notes += leakage_warnings(  # and, for bag-of-words, test texts that share no word with training
            name,
            prepared.texts,
            prepared.record.splits,
            vocabulary="bow" in features,
            language=prepared.record.language,
        )
        notes += absent_class_warnings(name, prepared.labels, prepared.record.splits, prepared.record.label_names)
    labels = {name: p.record.label_names for name, p in datasets.items()}
    for spec in model_specs.values():
        if spec.kind == "classifier":  # its labels against every data set's
            models.check_classifier_labels(spec, labels, dict(label_map))
        elif spec.kind == "llm":  # every prompt against its context window (only the tokenizer is loaded)
            notes += models.check_context(spec, profile, datasets, nodes=nodes)
    return datasets, notes
