"""Local files as data sets: the user's ``.csv`` / ``.tsv``, ``.jsonl`` / ``.json`` or ``.parquet`` file, its text and
label columns, and its label set.

The file is read by :mod:`bench.data.tables`; this module checks the columns, turns cells into texts and labels
(integral float labels such as ``1.0`` read as the integers they are), takes the file's own sorted label set (renamed
through ``--label-names`` when given) or checks the labels against a catalog set's, and pins the file by its sha256.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.catalog.datasets import DatasetSpec
from bench.data.labeled import LabeledTexts, finalize, listing
from bench.data.packaged import OFFLINE_SETS
from bench.data.scripts import detected_language
from bench.data.tables import LOCAL_EXTENSIONS, SPREADSHEET_EXTENSIONS, Table, read_table
from bench.errors import DataError, did_you_mean
from bench.fsutil import file_sha256

UNDETERMINED_LANGUAGE = "und"  # BCP 47 "undetermined": a local file's language unless the caller says (or its script)


def looks_like_path(value: str) -> bool:
    """A string that is meant as a file: it exists, has a path separator, or ends in a data-file extension."""
    return (
        os.sep in value
        or "/" in value
        or Path(value).suffix.lower() in (*LOCAL_EXTENSIONS, ".txt", *SPREADSHEET_EXTENSIONS)
        or os.path.exists(value)
    )


def load_local_catalog_set(
    spec: DatasetSpec, path: str | None, text_column: str | None, label_column: str | None, encoding: str | None
) -> LabeledTexts:
    """Load catalog set ``spec`` (``source="local"``, e.g. ``fktg``) from the user's file ``path``, against the
    catalog's columns (unless named) and label set. Raises DataError when no file is given (saying where to get it)
    and as :func:`load_local_file`.
    """
    if path is None:
        raise DataError(
            f"Data set {spec.name!r} is not public: it was scraped by the paper's authors (Zschache & Hartwig, "
            "arXiv 2508.14170) and is shared by them upon request, so ask the authors for the file. Then pass it "
            f"with --data {spec.name}=PATH (a .csv, .jsonl or .parquet file with the text in column "
            f"{spec.text_column!r} and the topic in column {spec.label_column!r}, one of the "
            f"{len(spec.label_names)} topics). Without it, run the public sets (news, yelp, tomatoes, emotion) "
            f"or an offline one ({', '.join(OFFLINE_SETS)})."
        )
    return load_local_file(
        path,
        name=spec.name,
        text_column=text_column or spec.text_column,
        label_column=label_column or spec.label_column,
        label_names=spec.label_names,
        language=spec.language,
        encoding=encoding,
    )


def load_local_file(
    file: str,
    *,
    name: str,
    text_column: str,
    label_column: str,
    label_names: Sequence[str] | None,
    language: str,
    label_map: dict[str, str] | None = None,
    encoding: str | None = None,
) -> LabeledTexts:
    """Read a local table and map its labels: to ``label_names`` if given, else to its sorted distinct values
    (renamed through ``label_map`` when given).

    ``name`` names the data set; ``encoding`` is the file's text encoding when not UTF-8. ``language`` ``und`` (not
    given) becomes ``und-Hani``, ``und-Jpan``, ``und-Thai``, ... when most letters of the texts are in a script
    written without spaces (``bench.data.scripts.detected_language``), so that the record says so and bag-of-words
    models segment its words. The pin records the file's resolved path, its sha256, the two columns and how it was
    read. Raises DataError, naming rows and columns and
    what to do: as :func:`bench.data.tables.read_table`, for no data rows, missing or identical text and label
    columns, texts that are lists or objects, rows without a label, a single class, labels outside ``label_names``,
    a ``label_map`` that does not match the labels, and as :func:`bench.data.labeled.finalize`.
    """
    table = read_table(file, encoding)
    origin = str(file)
    _check_columns(origin, table, text_column, label_column)
    texts = _texts(origin, table, text_column)
    labels = _labels(origin, table, label_column)
    label_values: dict[str, str] | None = None
    if label_names is None:
        labels, label_names, label_values = _own_label_set(origin, table, label_column, labels, label_map)
    else:
        _check_known_labels(origin, name, label_column, labels, label_names)
    details = {k: v for k, v in table.details.items() if k != "column_types"}
    stripped = _stripped_labels(table, label_column)
    if stripped:  # recorded, and the run warns (bench.run.plan): "pos " and "pos" read as one class
        details["labels_stripped"] = stripped
    if label_values is not None:
        details["label_values"] = label_values
    index = {label: i for i, label in enumerate(label_names)}
    if language == UNDETERMINED_LANGUAGE and all(isinstance(t, str) for t in texts):
        language = detected_language(texts)
    pin = {
        "source": "local",
        "path": str(table.path.resolve()),
        "file_sha256": file_sha256(table.path),
        "text_column": text_column,
        "label_column": label_column,
        **details,
    }
    return finalize(
        name,
        texts,
        [index[label] for label in labels],
        label_names,
        language,
        pin,
        origin=origin,
        where=table.where,
    )


def _check_columns(origin: str, table: Table, text_column: str, label_column: str) -> None:
    """DataError when the file has no rows, names one column for both roles, or lacks either column (both named at
    once: a ``Text;Label`` header needs both options, not two tries)."""
    if not table.rows:
        raise DataError(f"{origin} has no data rows (the file is empty or holds only a header). Add rows.")
    if text_column == label_column:
        raise DataError(
            f"{origin}: the text and the label are both column {text_column!r}; a model would see its answer. Name "
            "two different columns with --text-column and --label-column."
        )
    columns = table.columns
    missing_columns = [
        (f"no {role} column {column!r}", did_you_mean(column, columns), option)
        for role, column, option in (("text", text_column, "--text-column"), ("label", label_column, "--label-column"))
        if column not in columns
    ]
    if missing_columns:
        what = "; and ".join(f"{m}.{hint}" if hint else m for m, hint, _ in missing_columns)
        options = " and ".join(option for _, _, option in missing_columns)
        several = len(missing_columns) > 1
        raise DataError(
            f"{origin} has {what}{'' if what.endswith('?') else '.'} Its columns are: {', '.join(map(repr, columns))}. "
            f"Name the right one{'s' if several else ''} with {options} (or rename the column{'s' if several else ''})."
        )


def _texts(origin: str, table: Table, text_column: str) -> list[Any]:
    """The text column's cells as texts (missing ones None, refused later with their rows); DataError when the
    column holds lists or objects."""
    values = [row.get(text_column) for row in table.rows]
    nested = [i for i, value in enumerate(values) if isinstance(value, (list, tuple, dict))]
    if nested:
        kind = (table.details.get("column_types") or {}).get(text_column) or type(values[nested[0]]).__name__
        raise DataError(
            f"{origin}: the text column {text_column!r} holds {kind} values, not strings (first at "
            f"{table.where(nested[0])}: {str(values[nested[0]])[:80]}). Give a column of plain text with "
            "--text-column, or join the parts into one string per row before saving."
        )
    return [_as_text(value) for value in values]


def _labels(origin: str, table: Table, label_column: str) -> list[str]:
    """The label column's cells in canonical string form; DataError listing the rows without one."""
    raw_labels = [_as_label(row.get(label_column)) for row in table.rows]
    missing = [i for i, label in enumerate(raw_labels) if label is None]
    if missing:
        raise DataError(
            f"{origin}: {len(missing)} row(s) without a label in column {label_column!r} at "
            f"{listing([table.where(i) for i in missing])}. Fill or remove these rows."
        )
    return raw_labels  # type: ignore[return-value]


def _stripped_labels(table: Table, label_column: str) -> dict[str, str]:
    """Label cells that ``_as_label`` read without their surrounding spaces: their text (``repr``) -> the label they
    became (``{"'pos '": "pos"}``); empty when every label was written as it is read."""
    out: dict[str, str] = {}
    for row in table.rows:
        value = row.get(label_column)
        if isinstance(value, str) and value != value.strip() and value.strip():
            out.setdefault(repr(value), _as_label(value) or "")
    return out


def _own_label_set(
    origin: str, table: Table, label_column: str, labels: list[str], label_map: dict[str, str] | None
) -> tuple[list[str], tuple[str, ...], dict[str, str] | None]:
    """The file's own label set: its distinct labels sorted, renamed through ``label_map`` when given. Returns the
    (renamed) labels, the label names, and the file's label value -> name (None without ``label_map``). DataError for
    a single class and as :func:`_renamed_labels`."""
    label_names = _sorted_label_names(set(labels))
    if len(label_names) < 2:
        raise DataError(
            f"{origin}: every row has the label {label_names[0]!r} in column {label_column!r} "
            f"({len(table.rows)} rows, 1 class); a classifier needs at least 2 classes. Check --label-column "
            f"(columns: {', '.join(map(repr, table.columns))})."
        )
    if not label_map:
        return labels, label_names, None
    renamed = _renamed_labels(origin, label_column, label_names, label_map)
    return [renamed[label] for label in labels], tuple(renamed[label] for label in label_names), dict(renamed)


def _check_known_labels(
    origin: str, name: str, label_column: str, labels: list[str], label_names: Sequence[str]
) -> None:
    """DataError listing the labels (with counts and close matches) that are not among catalog set ``name``'s."""
    unknown = Counter(label for label in labels if label not in label_names)
    if unknown:
        listed = [
            f"{label!r} ({count} rows){did_you_mean(label, list(label_names))}"
            for label, count in unknown.most_common()
        ]
        raise DataError(
            f"{origin}: label(s) in column {label_column!r} that are not among the {len(label_names)} "
            f"categories of data set {name!r}: {listing(listed)}. Known categories: "
            f"{', '.join(map(repr, label_names))}. Fix the labels, or load the file as a plain local file "
            "(give its path instead of the data set name) to take its own label set."
        )


def _as_text(value: Any) -> Any:
    """A cell as text: strings unchanged, other scalars as ``str``; missing values (None, NaN) stay None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return None  # lists / objects are no text: reported as missing with their row


def _as_label(value: Any) -> str | None:
    """A label cell in canonical string form (integral numbers as ``"3"``); None when missing."""
    if value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()  # stray spaces around a label (", pos") are never meant as another class
    if _INTEGRAL_FLOAT.fullmatch(text):  # "1.0" from a CSV is the label 1, as 1.0 from Parquet is
        text = text.split(".")[0].lstrip("+") or "0"
        text = "0" if text in ("-0", "-") else text
    return text or None


_INTEGRAL_FLOAT = re.compile(r"[+-]?\d+\.0*")


def _renamed_labels(origin: str, label_column: str, values: Sequence[str], label_map: dict[str, str]) -> dict[str, str]:
    """``--label-names``: every label value of the file -> its name; DataError when one side has values the other
    lacks, or two values get one name."""
    canonical = {(_as_label(key) or key): name for key, name in label_map.items()}
    unnamed = [value for value in values if value not in canonical]
    unused = [key for key in canonical if key not in values]
    if unnamed or unused:
        raise DataError(
            f"{origin}: --label-names does not match the labels in column {label_column!r}: "
            + "; ".join(
                part
                for part in (
                    f"label(s) without a name: {', '.join(map(repr, unnamed))}" if unnamed else "",
                    f"name(s) for label(s) the file does not have: {', '.join(map(repr, unused))}" if unused else "",
                )
                if part
            )
            + f". The file's labels: {', '.join(map(repr, values))}; give one NAME per label, e.g. --label-names "
            + ",".join(f"{v}=NAME{i}" for i, v in enumerate(values[:3]))
            + "."
        )
    names = [canonical[value] for value in values]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{origin}: --label-names gives the same name to several labels: {', '.join(twice)}.")
    return {value: canonical[value] for value in values}


def _sorted_label_names(values: set[str]) -> tuple[str, ...]:
    """Distinct labels sorted: numerically when all are integers (so "10" follows "9"), else as strings."""
    if all(re.fullmatch(r"-?(0|[1-9]\d*)", value) for value in values):
        return tuple(sorted(values, key=int))
    return tuple(sorted(values))
