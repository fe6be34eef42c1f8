"""Results as flat tables: one row per cell of a run, typed, with the unit in each column's name.

What ``bench export RUN``, :func:`to_dataframe` and the leaderboard's Hugging Face dataset
(``bench.leaderboard.dataset``) share. :func:`to_dataframe` lives here, not in ``bench.results``: the rows rest on
``bench.analysis``, which imports ``bench.results``, so ``bench.results`` importing this module would close an
import cycle. Only the standard library at import: pandas and pyarrow are imported inside the functions that need
them, through :func:`require` (a missing one names its extra, ``bench.extras``).

Column types are the Hub's feature dtypes: ``string``, ``int64``, ``float64``, ``bool``, and ``list`` (a list of
strings). A missing value is None (null), never 0: an unmeasured component has no energy, not zero energy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: One row per cell: (column, dtype). Energies are gross joules of one pass over the test split (``_j``), durations
#: seconds (``_s``); ``net_energy_j`` is gross minus idle power x duration. ``in_means`` is False for a cell that
#: failed, carries ``validity`` findings (implausible readings) or ``flags`` (a condition of the machine during its
#: window): such cells are kept here, visible, and left out of every mean (``bench.analysis.sound_cells``).
CELL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "string"),
    ("dataset", "string"),
    ("model", "string"),
    ("repetition", "int64"),
    ("status", "string"),
    ("started_at", "string"),
    ("finished_at", "string"),
    ("n_test", "int64"),
    ("accuracy", "float64"),
    ("macro_f1", "float64"),
    ("invalid_rate", "float64"),
    ("duration_s", "float64"),
    ("energy_j", "float64"),
    ("net_energy_j", "float64"),
    ("gpu_energy_j", "float64"),
    ("cpu_energy_j", "float64"),
    ("ram_energy_j", "float64"),
    ("gpu_method", "string"),
    ("cpu_method", "string"),
    ("ram_method", "string"),
    ("j_per_text", "float64"),
    ("training_energy_j", "float64"),
    ("training_duration_s", "float64"),
    ("n_flagged", "int64"),
    ("flags", "list"),
    ("validity", "list"),
    ("in_means", "bool"),
    ("error", "string"),
)
#: The formats ``bench export`` writes.
FORMATS = ("csv", "parquet", "json")


def require(module: str, *, needed_by: str) -> Any:
    """Import ``module`` (``pandas``, ``pyarrow``, ``pyarrow.parquet``); a missing one raises the kit's
    MissingExtraError naming its extra and install command (``bench.extras.missing_module_error``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        from bench.extras import missing_module_error

        raise missing_module_error(exc.name or module, needed_by=needed_by) from None


def cell_rows(doc: Any, dataset_names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One dict per cell of the ResultDocument ``doc``, in its order, keyed by :data:`CELL_COLUMNS`.

    ``dataset_names`` renames data sets (the leaderboard's ``name@key`` for a user's file); a name not in it stays.
    ``energy_j`` sums the components that have a number (None when none has); ``j_per_text`` is it over ``n_test``.
    """
    from bench.analysis import sound_cells, total_energy_j

    names = dataset_names or {}
    out = []
    for cell in doc.cells:
        energy = total_energy_j(cell.energy) if cell.energy else None
        training = cell.training
        row: dict[str, Any] = {
            "run_id": doc.run_id,
            "dataset": names.get(cell.dataset, cell.dataset),
            "model": cell.model,
            "repetition": cell.repetition,
            "status": cell.status,
            "started_at": cell.started_at,
            "finished_at": cell.finished_at,
            "n_test": cell.n_test,
            "accuracy": cell.accuracy,
            "macro_f1": cell.macro_f1,
            "invalid_rate": cell.invalid_rate,
            "duration_s": cell.duration_s,
            "energy_j": energy,
            "net_energy_j": total_energy_j(cell.energy, "net_energy_j") if cell.energy else None,
            "j_per_text": energy / cell.n_test if energy is not None and cell.n_test else None,
            "training_energy_j": total_energy_j(training.energy) if training and training.energy else None,
            "training_duration_s": training.duration_s if training else None,
            "n_flagged": 1 if cell.status == "ok" and cell.flags else 0,
            "flags": list(cell.flags),
            "validity": list(cell.validity),
            "in_means": bool(sound_cells([cell])),
            "error": f"{cell.error.type}: {cell.error.message}" if cell.error else None,
        }
        for component in ("gpu", "cpu", "ram"):
            value = cell.energy.get(component)
            row[f"{component}_energy_j"] = value.energy_j if value else None
            row[f"{component}_method"] = value.method if value else None
        out.append({name: row[name] for name, _ in CELL_COLUMNS})
    return out


def arrow_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], *, needed_by: str) -> Any:
    """A pyarrow Table of ``rows`` with the schema of ``columns`` (so an empty table keeps its typed columns)."""
    pa = require("pyarrow", needed_by=needed_by)
    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "list": pa.list_(pa.string()),
    }
    schema = pa.schema([(name, types[dtype]) for name, dtype in columns])
    return pa.Table.from_pylist([{name: row.get(name) for name, _ in columns} for row in rows], schema=schema)


def to_dataframe(path: Path | str) -> Any:
    """The cells of the run at ``path`` (a run folder or its results.json) as a pandas DataFrame: one row per cell,
    the columns of :data:`CELL_COLUMNS` (units in their names: ``energy_j`` J per pass, ``duration_s`` s per pass,
    ``j_per_text`` J per text; ``flags`` and ``validity`` lists of strings). Raises ResultsError naming the file when
    it is unreadable, edited (content hash) or not a results document; MissingExtraError without pandas/pyarrow."""
    from bench.results import load_results

    doc = load_results(path)
    require("pandas", needed_by="bench.tables.to_dataframe")
    return arrow_table(cell_rows(doc), CELL_COLUMNS, needed_by="bench.tables.to_dataframe").to_pandas()


def write_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], fmt: str, output: Path) -> None:
    """Write ``rows`` to ``output`` as ``fmt`` (csv: list columns as JSON text; json: a list of objects; parquet:
    typed). Raises ValueError for another format."""
    from bench.fsutil import atomic_write_bytes

    if fmt == "json":
        body = json.dumps([{n: r.get(n) for n, _ in columns} for r in rows], indent=1, ensure_ascii=False)
        atomic_write_bytes(output, body.encode("utf-8") + b"\n")
        return
    needed_by = f"bench export --format {fmt}"
    if fmt == "csv":
        import csv
        import io

        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([n for n, _ in columns])
        for r in rows:
            writer.writerow(["" if r.get(n) is None else json.dumps(r[n]) if t == "list" else r[n] for n, t in columns])
        atomic_write_bytes(output, text.getvalue().encode("utf-8"))
        return
    if fmt != "parquet":
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    write_parquet(arrow_table(rows, columns, needed_by=needed_by), output, needed_by=needed_by)


def write_parquet(table: Any, output: Path, *, needed_by: str) -> None:
    """Write the pyarrow ``table`` to ``output`` through a temporary name. A table without rows is written with its
    schema and no row group (an empty row group makes ``datasets``' Parquet reader fail: batch size 0)."""
    pq = require("pyarrow.parquet", needed_by=needed_by)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    if table.num_rows:
        pq.write_table(table, tmp)
    else:
        pq.ParquetWriter(tmp, table.schema).close()
    tmp.replace(output)
