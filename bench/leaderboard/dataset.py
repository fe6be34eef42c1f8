"""The leaderboard's rows, once: for the static site (``export.export_site``) and for the Hugging Face dataset
(``bench leaderboard export --format hf-dataset -o DIR``), so the two cannot disagree.

:func:`export_rows` reads what is visible (hidden and replaced submissions left out): each data set's rows (the
``datasets/<name>.json`` and ``.csv`` of the site), each submission's rows and summary. :func:`flat_tables` turns
them into three flat tables: ``cells`` (one per cell of each run, ``bench.tables.cell_rows``), ``runs`` (one per
submission) and ``models`` (one per data set, model and run: the leaderboard's row as its JSON page gives it
(``views.row_json``), with the model's pinned revision). :func:`export_hf_dataset` writes them as Parquet with a
dataset card (``card.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.leaderboard import storage, views
from bench.tables import CELL_COLUMNS, arrow_table, cell_rows, require, write_parquet

_STRINGS = {
    "run_id",
    "submitted_at",
    "dataset",
    "model",
    "paper_label",
    "model_kind",
    "model_family",
    "hardware_profile",
    "gpu_model",
    "cpu_model",
    "gpu_method",
    "cpu_method",
    "ram_method",
    "method_class",
    "training_gpu_method",
    "training_cpu_method",
    "training_ram_method",
    "training_reason",
    "calibration_reference",
    "grid_source",
    "grid_assumed",
    "failure",
}
_INTS = {"submission_id", "gpu_count", "n_ok", "n_failed", "n_flagged"}
_LISTS = {"dataset_label_names", "warnings"}
#: One row per (data set, model, run): the leaderboard's columns (``views.CSV_COLUMNS``, units in the names) and the
#: model's pinned revision (a Hub commit; None for a model without one, e.g. a bag-of-words pipeline).
MODEL_COLUMNS: tuple[tuple[str, str], ...] = (
    *(
        (name, "string" if name in _STRINGS else "int64" if name in _INTS else "list" if name in _LISTS else "float64")
        for name in views.CSV_COLUMNS
    ),
    ("model_revision", "string"),
)
#: One row per visible submission (a run): where it ran and how many of its cells count.
RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("submission_id", "int64"),
    ("run_id", "string"),
    ("submitted_at", "string"),
    ("run_created_at", "string"),
    ("run_updated_at", "string"),
    ("kit_version", "string"),
    ("schema_version", "int64"),
    ("suite_name", "string"),
    ("hardware_profile", "string"),
    ("gpu_model", "string"),
    ("gpu_count", "int64"),
    ("cpu_model", "string"),
    ("n_cells", "int64"),
    ("n_ok", "int64"),
    ("n_failed", "int64"),
    ("n_flagged", "int64"),
    ("n_invalid", "int64"),
    ("n_repairs", "int64"),
    ("content_hash", "string"),
)
#: The tables of the dataset: name -> columns. ``cells`` gets the submission's id in front.
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "cells": (("submission_id", "int64"), *CELL_COLUMNS),
    "runs": RUN_COLUMNS,
    "models": MODEL_COLUMNS,
}


@dataclass
class ExportRows:
    """What the leaderboard shows, read once: ``datasets`` (``storage.datasets``), ``by_dataset`` (every row of each
    data set, accuracy first, as its ``.json``/``.csv``), ``summaries`` (visible submissions, newest first),
    ``by_submission`` (each submission's rows)."""

    datasets: list[dict[str, Any]]
    by_dataset: dict[str, list[dict[str, Any]]]
    summaries: list[dict[str, Any]]
    by_submission: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def export_rows(engine: Any) -> ExportRows:
    """Read the visible leaderboard (hidden and replaced submissions left out) from ``engine``."""
    datasets = storage.datasets(engine)
    by_dataset = {
        d["dataset"]: storage.leaderboard(engine, d["dataset"], storage.Filters(), "accuracy", limit=10**9)[0]
        for d in datasets
    }
    total = storage.count_submissions(engine)
    summaries: list[dict[str, Any]] = []
    for offset in range(0, total, 500):
        summaries.extend(storage.list_submissions(engine, limit=500, offset=offset))
    by_submission = {s["id"]: storage.submission_rows(engine, s["id"]) for s in summaries}
    return ExportRows(datasets, by_dataset, summaries, by_submission)


def model_revision(record: dict[str, Any]) -> str | None:
    """The pinned revision of a model's record (``ResultDocument.models[name]``): its params' or info's
    ``revision``; None where it has none."""
    for source in (record.get("params") or {}, record.get("info") or {}):
        if isinstance(source, dict) and source.get("revision"):
            return str(source["revision"])
    return None


def _document(engine: Any, sid: int) -> Any:
    """The stored document of submission ``sid``, parsed and hash-checked (as ``bench validate`` reads a file)."""
    from bench.results import parse_results

    full = storage.get_submission(engine, sid, with_document=True)
    assert full is not None
    return parse_results(json.loads(full["document"]), f"submission {sid} (stored results.json)")


def flat_tables(engine: Any, rows: ExportRows | None = None) -> dict[str, list[dict[str, Any]]]:
    """The three flat tables of :data:`TABLES` (name -> list of row dicts) from ``rows`` (read when None). Models rows
    hold exactly the values of the data set's JSON page (``views.row_json``); flagged and invalid cells are rows of
    ``cells`` with ``in_means`` False, counted in ``n_flagged`` and left out of the means as on the leaderboard.
    Raises ResultsError naming the submission when a stored document no longer validates."""
    from bench.leaderboard.validate import dataset_columns

    rows = rows or export_rows(engine)
    docs = {s["id"]: _document(engine, s["id"]) for s in rows.summaries}
    cells: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for summary in rows.summaries:
        sid, doc = summary["id"], docs[summary["id"]]
        names = {name: dataset_columns(doc, name)["dataset"] for name in doc.datasets}
        cells.extend({"submission_id": sid, **c} for c in cell_rows(doc, names))
        ok = [c for c in doc.cells if c.status == "ok"]
        runs.append(
            {
                **summary,
                "submission_id": sid,
                "suite_name": doc.suite_name,
                "n_cells": len(doc.cells),
                "n_ok": len(ok),
                "n_failed": len(doc.cells) - len(ok),
                "n_invalid": sum(1 for c in ok if c.validity),
            }
        )
    models = []
    for name in sorted(rows.by_dataset):
        for row in rows.by_dataset[name]:
            value = views.row_json(row)
            value.pop("submission_url")
            doc = docs.get(row["submission_id"])
            record = (doc.models.get(row["model"]) or {}) if doc is not None else {}
            models.append({**value, "model_revision": model_revision(record)})
    return {"cells": cells, "runs": runs, "models": models}


def export_hf_dataset(engine: Any, output: Path | str) -> dict[str, int]:
    """Write the leaderboard as a Hugging Face dataset to ``output``: ``cells.parquet``, ``runs.parquet`` and
    ``models.parquet`` (typed columns of :data:`TABLES`; an empty leaderboard writes them with no rows) and the
    dataset card ``README.md`` (YAML header: license, configs, features). Returns rows per table. Raises
    MissingExtraError without pyarrow, ResultsError for a stored document that no longer validates."""
    from bench.leaderboard.card import dataset_card

    needed_by = "bench leaderboard export --format hf-dataset"
    require("pyarrow.parquet", needed_by=needed_by)  # before any file is written
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    tables = flat_tables(engine)
    for name, columns in TABLES.items():
        write_parquet(
            arrow_table(tables[name], columns, needed_by=needed_by), out / f"{name}.parquet", needed_by=needed_by
        )
    counts = {name: len(rows) for name, rows in tables.items()}
    (out / "README.md").write_text(dataset_card(TABLES, counts), encoding="utf-8")
    return counts
