"""Reading a user's data file into rows: ``.csv`` / ``.tsv``, ``.jsonl`` / ``.json`` (JSON lines or one array) or
``.parquet``.

CSV and JSON are read with the standard library rather than pandas: pandas turns texts such as ``NA``, ``null`` or
``None`` into missing values, and the standard readers give file line numbers for error messages. Files are read the
way people save them: UTF-8 with or without a byte-order mark (any other encoding is refused with the line and the
byte, unless the caller names it), the delimiter taken from the header (``,`` ``;`` tab, whatever the extension),
quoted multi-line fields, and an unnamed index column (pandas' ``Unnamed: 0``, an empty header) ignored. What the
columns mean (text, label) is :mod:`bench.data.local`'s business. ``pyarrow`` is imported only for Parquet files.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import DataError

LOCAL_EXTENSIONS: tuple[str, ...] = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
#: Spreadsheet formats people try first: refused with how to save them instead.
SPREADSHEET_EXTENSIONS: tuple[str, ...] = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")
#: Columns a spreadsheet or pandas wrote for the row index: ignored (pandas' ``Unnamed: 0``, an empty header).
_INDEX_COLUMN = re.compile(r"^(|Unnamed: \d+)$")

#: What a format reader returns: column names, rows (column -> value), ``where(i)`` naming row ``i`` in messages
#: (``"row 3 (line 4)"``), and details for the pin (format, delimiter, ignored columns, column types).
_Rows = tuple[list[str], list[dict[str, Any]], Callable[[int], str], dict[str, Any]]


@dataclass(frozen=True)
class Table:
    """A data file read into rows: see :func:`read_table`."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    where: Callable[[int], str]
    details: dict[str, Any]


def read_table(file: str, encoding: str | None = None) -> Table:
    """Read the data file ``file`` (``~`` expanded) into rows, by its extension.

    ``encoding``: the text encoding of a CSV / JSON file when it is not UTF-8 (``cp1252``; refused for Parquet).
    Returns the resolved path, the column names in file order, one dict per data row (values as read: strings from
    CSV, JSON / Parquet types otherwise), a function naming row ``i`` for messages, and details for the pin.
    Raises DataError, saying what to do, for a missing file, a folder, a spreadsheet, an unknown extension, an empty
    file, a file that does not decode or parse, and an unreadable one (permission, I/O error).
    """
    path = Path(file).expanduser()
    if not path.exists():
        where = "" if str(path.absolute()) == str(file) else f" (resolved to {path.absolute()})"
        raise DataError(f"Data file not found: {file}{where}. Check the path.")
    if path.is_dir():
        raise DataError(f"{file} is a folder; give the data file inside it (.csv, .tsv, .jsonl, .json or .parquet).")
    suffix = path.suffix.lower()
    if suffix in SPREADSHEET_EXTENSIONS:
        raise DataError(
            f"{file}: a spreadsheet ({suffix}) is not read by the kit (cells may hold formulas, dates or several "
            "sheets). Save it as CSV UTF-8 (Excel: File > Save As > 'CSV UTF-8 (Comma delimited)'; LibreOffice: "
            "Text CSV with character set UTF-8) and give that file."
        )
    readers: dict[str, Callable[[Path, str | None], _Rows]] = {
        ".csv": _read_csv,
        ".tsv": _read_csv,
        ".jsonl": _read_json,
        ".json": _read_json,
        ".parquet": _read_parquet,
    }
    if suffix not in readers:
        raise DataError(
            f"{file}: unknown data file type {suffix or '(no extension)'!r}. Use .csv / .tsv (with a header row), "
            ".jsonl / .json (one JSON object per line, or one array of objects) or .parquet."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{file} is empty (0 bytes). Give a file with a header row and data rows.")
    try:
        columns, rows, where, details = readers[suffix](path, encoding)
    except DataError:
        raise
    except PermissionError as error:
        raise DataError(f"{file} cannot be read: permission denied ({error}).") from error
    except OSError as error:
        raise DataError(f"{file} cannot be read: {error}.") from error
    return Table(path, columns, rows, where, details)


def _decode(path: Path, encoding: str | None) -> str:
    """The file's text: UTF-8 with or without a byte-order mark, or ``encoding`` when the caller names one.

    A file that does not decode is refused with its line and column and the offending byte (counted in the file's
    bytes, not in a read buffer), and what to do about it."""
    raw = path.read_bytes()
    if encoding is None:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(
                f"{path} is UTF-16 (it starts with a UTF-16 byte-order mark). Save it as UTF-8 (Excel: 'CSV UTF-8'), "
                "or read it as it is with --encoding utf-16."
            )
        name, body = "utf-8", raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
        offset = len(raw) - len(body)
    else:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise DataError(
                f"--encoding {encoding!r}: unknown encoding (reading {path}). Use a Python codec name such as "
                "utf-8, cp1252, latin-1 or utf-16."
            ) from None
        body, offset = raw, 0
        if name == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
            body, offset = raw[3:], 3
    try:
        return body.decode(name)
    except UnicodeDecodeError as error:
        at = offset + error.start
        line = raw.count(b"\n", 0, at) + 1
        column = at - (raw.rfind(b"\n", 0, at) + 1) + 1
        bad = raw[at : at + 1].hex()
        hint = (
            "Save it as UTF-8 (e.g. in Excel: 'CSV UTF-8'), or name the encoding it was saved in with --encoding "
            "(e.g. --encoding cp1252 for Windows Western European)."
            if encoding is None
            else "Check --encoding: the file was not saved in that encoding."
        )
        raise DataError(
            f"{path}: line {line}, column {column}: byte 0x{bad} is not valid {'UTF-8' if name == 'utf-8' else name} "
            f"({error.reason}). {hint}"
        ) from error


def _read_csv(path: Path, encoding: str | None = None) -> _Rows:
    """CSV / TSV with a header row; the delimiter (, ; tab) is taken from the header, whatever the extension (German
    Excel writes ';', a TSV is often saved as .csv); quoted fields may span lines. Blank lines are skipped. An
    unnamed index column (pandas' ``Unnamed: 0``, an empty header) is ignored."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
    text = _decode(path, encoding)
    header_line = text.split("\n", 1)[0]
    if not header_line.strip():
        return [], [], str, {"format": "csv"}
    preferred = "\t" if path.suffix.lower() == ".tsv" else ","
    delimiter = max((",", ";", "\t"), key=lambda d: (len(next(csv.reader([header_line], delimiter=d))), d == preferred))
    fmt = "tsv" if delimiter == "\t" else "csv"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    try:
        columns = [c.strip() for c in next(reader)]
        ignored = [c or "(empty header)" for c in columns if _INDEX_COLUMN.fullmatch(c)]
        first_line = 2
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                first_line = reader.line_num + 1
                continue  # blank line
            if len(record) > len(columns):
                raise DataError(
                    f"{path}: line {first_line} has {len(record)} fields but the header has {len(columns)} "
                    f"(delimiter {delimiter!r}). Quote texts that contain the delimiter."
                )
            rows.append(dict(zip(columns, record, strict=False)))
            lines.append(first_line)  # where the record starts (a quoted field may span lines)
            first_line = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num} is not readable CSV: {error}.") from error
    details: dict[str, Any] = {"format": fmt, "delimiter": delimiter}
    if encoding is not None:
        details["encoding"] = encoding
    if ignored:
        details["ignored_columns"] = ignored
    return columns, rows, lambda i: f"row {i + 1} (line {lines[i]})", details


def _read_json(path: Path, encoding: str | None = None) -> _Rows:
    """JSON lines (one object per line; blank lines skipped), or a single JSON array of objects."""
    text = _decode(path, encoding)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path} is not valid JSON: {error.msg} at line {error.lineno}.") from error
        numbered = [(i + 1, record) for i, record in enumerate(records)]
        describe, fmt = "element", "json-array"
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{path}: line {number} is not valid JSON ({error.msg}). Each line must be one JSON object."
                ) from error
        describe, fmt = "line", "jsonl"
    columns: dict[str, None] = {}
    for number, record in numbered:
        if not isinstance(record, dict):
            raise DataError(f"{path}: {describe} {number} is not a JSON object but {type(record).__name__}.")
        columns.update(dict.fromkeys(record))
        rows.append(record)
        lines.append(number)
    return list(columns), rows, lambda i: f"{describe} {lines[i]}", {"format": fmt}


def _read_parquet(path: Path, encoding: str | None = None) -> _Rows:
    """A Parquet table (``encoding`` does not apply: Parquet strings are UTF-8)."""
    if encoding is not None:
        raise DataError(f"{path}: --encoding does not apply to Parquet files (their strings are always UTF-8).")
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise DataError(f"Reading {path} needs pyarrow: pip install pyarrow.") from error
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises ArrowInvalid / OSError subclasses for damaged files
        raise DataError(f"{path} is not a readable Parquet file: {error}.") from error
    columns = list(table.column_names)
    types = {name: str(table.schema.field(name).type) for name in columns}
    data = table.to_pydict()
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*(data[c] for c in columns), strict=True)]
    details: dict[str, Any] = {"format": "parquet", "column_types": types}
    ignored = [c for c in columns if _INDEX_COLUMN.fullmatch(c) or c == "__index_level_0__"]
    if ignored:
        details["ignored_columns"] = ignored
    return columns, rows, lambda i: f"row {i + 1}", details
