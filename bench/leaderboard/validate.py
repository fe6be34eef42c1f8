"""What a submission must satisfy before it is stored, and the rows it contributes.

A submission is one JSON object: ``{"results": <results.json document>, "report_html": <the rendered report or
null>}``. It is checked with the kit's own code, so the leaderboard accepts exactly what ``bench validate`` accepts:

- JSON (no NaN/Infinity, not even as 1e999), nested at most MAX_DEPTH levels, valid Unicode, the envelope's shape,
  size (the service caps the body before it gets here);
- schema: ``schema_version`` known (older ones migrate), the pydantic schema of ``bench.results``;
- the content hash recomputed over the document as sent;
- consistency and plausibility: every invalid finding of ``bench.validation.check_document`` (window shorter than
  its minimum, power above a device's limit, measured 0 J, GPU count, accuracy that the predictions do not give, a
  flag the cell does not store, ...). Flags (conditions of the machine during a window: other processes, throttling,
  a temperature out of range) do not refuse a run: its flagged cells are counted per row (``n_flagged``) and left out
  of every mean and ranking (``bench.analysis.model_rows`` leaves them out of energy and duration, as the report);
- provenance: a complete run, with the profile, machine, software, data set pins and model records present;
- names: data set and model names are identifiers (they become URLs and file names of the static site);
- storable: every text stored in a column fits it (lengths of the String(n) columns, no NUL character, which
  PostgreSQL refuses), so the database never refuses what the checks accepted.

Every reason is collected, not just the first, so a submitter fixes everything in one round. Anything else that
goes wrong while checking is answered 422 "could not validate" and logged: a submission never gets a 500.

Only the standard library and the core kit are imported here (no SQLAlchemy), so ``bench submit`` runs exactly
these checks on the submitter's machine before sending.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

#: A submitted body above this is refused with 413 before it is read in full. A paper-sized run (5 data sets x
#: 19 models x 10 repetitions, 200 predictions per cell) is about 5 MB; its report about 2 MB.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Data set and model names: they appear in URLs and file names of the exported site.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
#: A model name may also carry a placement (``llama-3.1-70b@2x1``) and a serving configuration
#: (``smollm2-135m[serving=batched,batch_size=4]``, ``bench.catalog.models.split_serving``): each is a row of its own.
MODEL_NAME_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}(@[0-9]{1,3}x[0-9]{1,3})?(\[[a-z_]{1,20}=[A-Za-z0-9_.]{1,20}"
    r"(,[a-z_]{1,20}=[A-Za-z0-9_.]{1,20}){0,7}\])?$"
)
MAX_REASONS = 50
#: Deeper JSON is refused (400): a results document is about 8 levels deep; the kit's own code walks documents
#: recursively, and json.loads itself gives up near the interpreter's recursion limit.
MAX_DEPTH = 100
#: The String(n) columns a submission fills and their n (a test checks these against ``storage``'s tables): SQLite
#: stores longer text silently, PostgreSQL refuses it, so the checks refuse it first on every database.
STRING_LIMITS: dict[str, dict[str, int]] = {
    "submissions": {"content_hash": 80, "kit_version": 40, "run_created_at": 40, "run_updated_at": 40},
    "results": {
        "dataset": 200,
        "model": 200,
        "model_kind": 40,
        "model_family": 100,
        "gpu_method": 80,
        "cpu_method": 80,
        "ram_method": 80,
        "method_class": 20,
        "calibration_reference": 80,
        "dataset_source": 20,
        "dataset_sha256": 64,
        "training_gpu_method": 80,
        "training_cpu_method": 80,
        "training_ram_method": 80,
    },
}
#: Where a stored column's value comes from in the submission, for reasons that name the field to fix.
SOURCES = {
    "content_hash": "results.content_hash",
    "run_id": "results.run_id",
    "kit_version": "results.kit_version",
    "run_created_at": "results.created_at",
    "run_updated_at": "results.updated_at",
    "hardware_profile": "results.profile.name",
    "gpu_model": "results.environment.machine.gpus[].name",
    "cpu_model": "results.environment.machine.cpu_model",
    "report_html": "report_html",
    "document": "results",
    "dataset": "results.cells[].dataset",
    "model": "results.cells[].model",
    "paper_label": "results.models.<model>.paper_label",
    "model_kind": "results.models.<model>.kind",
    "model_family": "results.models.<model>.paper_label",
    "gpu_method": "results.cells[].energy.gpu.method",
    "cpu_method": "results.cells[].energy.cpu.method",
    "ram_method": "results.cells[].energy.ram.method",
    "calibration_reference": "results.calibration[].reference",
    "grid_source": "results.grid.intensity_source",
    "training_gpu_method": "results.cells[].training.energy.gpu.method",
    "training_cpu_method": "results.cells[].training.energy.cpu.method",
    "training_ram_method": "results.cells[].training.energy.ram.method",
    "dataset_label_names": "results.datasets.<name>.label_names",
    "warnings": "results.cells[].predictions and results.warnings",
    "failure": "results.cells[].error",
}

log = logging.getLogger("bench.leaderboard")


@dataclass
class Prepared:
    """A validated submission, ready to insert: the submission's columns and one dict per (dataset, model) row."""

    fields: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)


class Invalid(Exception):
    """A submission the service refuses: the HTTP status and every reason."""

    def __init__(self, status: int, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.status = status
        self.reasons = reasons[:MAX_REASONS] + (
            [f"... and {len(reasons) - MAX_REASONS} more"] if len(reasons) > MAX_REASONS else []
        )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (a number must be finite)")


def decode_body(body: bytes) -> dict[str, Any]:
    """The envelope as a dict, or Invalid(400) saying where the JSON is broken."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise Invalid(400, [f"body is not UTF-8 (byte {exc.start})"]) from None
    except RecursionError:  # "[" * 200000: json's decoder recurses once per level
        raise Invalid(400, [f"body is nested too deeply (at most {MAX_DEPTH} levels)"]) from None
    except json.JSONDecodeError as exc:
        raise Invalid(400, [f"body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]) from None
    except ValueError as exc:
        raise Invalid(400, [str(exc)]) from None
    if not isinstance(data, dict):
        raise Invalid(400, [f"body must be a JSON object, got {type(data).__name__}"])
    unknown = sorted(set(data) - {"results", "report_html"})
    problems = [f"unknown field {k!r} (expected results, report_html)" for k in unknown[:10]]
    if not isinstance(data.get("results"), dict):
        problems.append("field 'results' must be the results.json document (a JSON object)")
    if data.get("report_html") is not None and not isinstance(data.get("report_html"), str):
        problems.append("field 'report_html' must be a string (the rendered report.html) or null")
    if problems:
        raise Invalid(400, problems)
    return data


def value_problems(data: Any, where: str = "") -> list[str]:
    """Values the rest of the checks cannot take, by path: numbers that are not finite (``1e999`` parses to inf,
    which ``parse_constant`` never sees; the same rule as ``bench.results._finite``, which the writer applies) and
    strings with lone surrogates (``"\\ud800"``: not encodable, so not hashable or storable). Iterative, so depth is
    not a problem here; nesting deeper than MAX_DEPTH raises Invalid(400) at once."""
    out: list[str] = []

    def scalar(value: Any, path: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            out.append(f"{path or 'top level'}: number {value} is not finite (JSON numbers must be finite)")
        elif isinstance(value, str) and not _encodable(value):
            out.append(f"{path or 'top level'}: text is not valid Unicode (a lone surrogate)")

    # Containers go on the stack with their path; scalars are checked in place (a path string is built only for
    # containers and problems: a document holds millions of predictions).
    scalar(data, where)
    stack: list[tuple[Any, str, int]] = [(data, where, 0)] if isinstance(data, (dict, list)) else []
    while stack and len(out) < MAX_REASONS:
        value, path, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise Invalid(400, [f"body is nested too deeply (at most {MAX_DEPTH} levels, at {path})"])
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and not _encodable(key):
                out.append(f"{path or 'top level'}: a key is not valid Unicode (a lone surrogate)")
                key = "<key>"
            if isinstance(item, (dict, list)):
                stack.append((item, _child(path, key), depth + 1))
            elif isinstance(item, (float, str)) and _suspect(item):
                scalar(item, _child(path, key))
    return out


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _suspect(value: float | str) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return not _encodable(value)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def prepare(body: bytes) -> Prepared:
    """Check a submission body completely; the columns and rows to store, or Invalid with every reason.

    Never raises anything but Invalid: an unexpected error while checking (a shape of document no check foresaw)
    is logged and answered 422 "could not validate", so the service never answers 500 and stores nothing."""
    try:
        return _prepare(body)
    except Invalid:
        raise
    except RecursionError:  # some recursive walk of the kit's met a deep document (MAX_DEPTH should prevent it)
        raise Invalid(400, [f"body is nested too deeply (at most {MAX_DEPTH} levels)"]) from None
    except Exception as exc:  # whatever it is: a reason and a log entry, never a 500
        log.exception("could not validate a submission")
        raise Invalid(
            422, [f"could not validate: {type(exc).__name__} (the leaderboard's log has the details)"]
        ) from None


def _prepare(body: bytes) -> Prepared:
    from pydantic import ValidationError

    from bench.errors import ResultsError
    from bench.results import SCHEMA_VERSION, ResultDocument, canonical_json, content_hash, migrate
    from bench.validation import check_document, split_problems

    envelope = decode_body(body)
    data: dict[str, Any] = envelope["results"]
    # Before anything hashes or parses the document: inf and lone surrogates make canonical_json raise.
    bad_values = value_problems(envelope)
    if bad_values:
        raise Invalid(422, bad_values)
    reasons: list[str] = []
    stored = data.get("content_hash")
    if not isinstance(stored, str) or not stored:
        reasons.append("results.content_hash: missing; submit the results.json that `bench run` wrote")
    else:
        actual = content_hash(data)
        if stored != actual:
            reasons.append(
                f"results.content_hash: mismatch (sent {stored[:23]}..., computed {actual[:23]}...): the document "
                "was edited after it was written; submit the file as `bench run` wrote it"
            )
    # What is stored is the document as sent (canonical form: same hash), taken before a migration of an older
    # schema version could change any part of it.
    document = canonical_json(data).decode("utf-8")
    sent_version = int(data["schema_version"]) if isinstance(data.get("schema_version"), int) else 0
    try:
        migrated = migrate(dict(data), "results")
    except ResultsError as exc:
        reasons.append(f"results.schema_version: {exc} (this service reads v{SCHEMA_VERSION})")
        raise Invalid(422, reasons) from None
    try:
        doc = ResultDocument.model_validate(migrated)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            reasons.append(f"results.{where}: {err['msg']}")
        raise Invalid(422, reasons) from None
    shape = shape_problems(doc)
    if shape:  # the checks below iterate these: a number where a list belongs would crash them
        raise Invalid(422, reasons + [f"results.{p}" for p in shape])
    reasons.extend(f"results.{p}" for p in name_problems(doc))
    reasons.extend(f"results.{p}" for p in provenance_problems(doc))
    invalid, _flags = split_problems(check_document(doc))  # flags: counted per row, out of the means
    reasons.extend(f"plausibility: {p}" for p in invalid)
    if reasons:
        raise Invalid(422, reasons)
    prepared = Prepared(
        fields=submission_fields(doc, data, envelope.get("report_html"), document, sent_version), rows=rows(doc)
    )
    storable = column_problems(prepared)
    if storable:
        raise Invalid(422, storable)
    return prepared


def shape_problems(doc: Any) -> list[str]:
    """Parts of the free-form ``suite`` (``dict[str, Any]`` in the schema) the checks rely on, in the wrong shape."""
    out = []
    for key, what in (("datasets", "data set"), ("models", "model")):
        value = doc.suite.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            out.append(f"suite.{key}: must be a list of {what} names, got {_kind(value)}")
    return out


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list with " + ", ".join(sorted({type(v).__name__ for v in value if not isinstance(v, str)}))
    return type(value).__name__


def column_problems(prepared: Prepared) -> list[str]:
    """Stored text that the database would refuse: longer than its String(n) column (PostgreSQL refuses, SQLite
    would store it), or holding a NUL character (PostgreSQL refuses it in any text). Named by where it comes from."""
    out: list[str] = []
    seen: set[str] = set()

    def check(table: str, values: dict[str, Any]) -> None:
        for column, value in values.items():
            if not isinstance(value, str):
                continue
            where = SOURCES.get(column, f"results ({column})")
            problem = None
            if "\x00" in value:
                problem = f"{where}: contains a NUL character (U+0000), which cannot be stored"
            limit = STRING_LIMITS[table].get(column)
            if problem is None and limit is not None and len(value) > limit:
                problem = f"{where}: {len(value)} characters, at most {limit} can be stored ({value[:40]!r}...)"
            if problem is not None and problem not in seen:
                seen.add(problem)
                out.append(problem)

    check("submissions", prepared.fields)
    for row in prepared.rows:
        check("results", row)
    return out


def name_problems(doc: Any) -> list[str]:
    """Data set and model names that are not identifiers (letters, digits, ``._+-``, at most 100; a model may add a
    placement and a serving configuration, ``MODEL_NAME_RE``)."""
    names = {("datasets", n) for n in doc.datasets} | {("models", n) for n in doc.models}
    names |= {("suite.datasets", n) for n in doc.suite.get("datasets", []) if isinstance(n, str)}
    names |= {("suite.models", n) for n in doc.suite.get("models", []) if isinstance(n, str)}
    names |= {("cells.dataset", c.dataset) for c in doc.cells} | {("cells.model", c.model) for c in doc.cells}
    return [
        f"{where}: name {name!r} is not an identifier (letters, digits and . _ + -, at most 100 characters"
        + ("; a model may add @NODESxGPUS and [key=value,...]" if "model" in where else "")
        + ")"
        for where, name in sorted(names)
        if not (MODEL_NAME_RE if "model" in where else NAME_RE).match(name)
    ]


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def provenance_problems(doc: Any) -> list[str]:
    """What a leaderboard entry must say about where it came from, and is missing."""
    out: list[str] = []
    if doc.status != "complete":
        out.append(f"status: {doc.status!r}; submit a complete run (rerun `bench run` with its --run-id to finish it)")
    if not _text(doc.profile.get("name")):
        out.append("profile.name: missing (the hardware profile the run used)")
    machine = doc.environment.get("machine")
    if not isinstance(machine, dict):
        out.append("environment.machine: missing (CPU, RAM and GPUs of the machine)")
        machine = {}
    if not _text(machine.get("cpu_model")):
        out.append("environment.machine.cpu_model: missing")
    if not isinstance(machine.get("gpus"), list):
        out.append("environment.machine.gpus: missing (an empty list on a machine without GPUs)")
    software = doc.environment.get("software")
    if not isinstance(software, dict) or not _text(software.get("kit_version")):
        out.append("environment.software.kit_version: missing (the kit and library versions of the run)")
    if not doc.settings:
        out.append("settings: empty (the exact settings of the run)")
    for name in doc.suite.get("datasets", []):
        record = doc.datasets.get(name)
        if record is None:
            out.append(f"datasets.{name}: missing (the suite names it)")
        elif not record.pin:
            out.append(f"datasets.{name}.pin: missing (which version of the data set)")
    for name in doc.suite.get("models", []):
        if not isinstance(doc.models.get(name), dict):
            out.append(f"models.{name}: missing (the suite names it)")
    if not any(c.status == "ok" for c in doc.cells):
        out.append("cells: no cell finished ok; nothing to compare")
    return out


def gpu_summary(machine: dict[str, Any]) -> tuple[str, int]:
    """The GPU model(s) of a machine as one string ('none' without GPUs) and their count."""
    gpus = [g for g in machine.get("gpus") or [] if isinstance(g, dict)]
    names = sorted({str(g.get("name") or "unknown GPU") for g in gpus})
    return (" + ".join(names) if names else "none"), len(gpus)


def model_family(model: str, info: dict[str, Any]) -> str:
    """A coarse family for filtering: the first word of the paper label ('Linear BoW' -> linear, 'Llama 3.1 8B' ->
    llama), else of the kit's model name."""
    label = str(info.get("paper_label") or model)
    word = re.split(r"[\s\-_/.]+", label.strip(), maxsplit=1)[0].lower()
    return re.sub(r"[^a-z0-9]", "", word) or "other"


def method_class(methods: dict[str, str | None]) -> str:
    """'measured' when every component with a number was measured, 'estimated' when every one was estimated,
    'mixed' otherwise ('none' without numbers)."""
    kinds = {m.split(":", 1)[0] for m in methods.values() if m}
    if not kinds:
        return "none"
    if kinds == {"measured"}:
        return "measured"
    if kinds == {"estimated"}:
        return "estimated"
    return "mixed"


def submission_fields(
    doc: Any, data: dict[str, Any], report_html: str | None, document: str, schema_version: int
) -> dict[str, Any]:
    """The submission's own columns: ``document`` is the canonical JSON of the document as sent, ``schema_version``
    the version it was sent with (older ones are migrated to ``bench.results.SCHEMA_VERSION`` for the checks);
    ``n_flagged`` its ok cells with flags, ``n_repairs`` its redo sessions, ``run_created_at`` and ``run_updated_at``
    the document's times (which submission of a run is the newer: ``storage.store_submission``; None where a time
    could not be stored: longer than its column or holding a NUL, so such a run is never replaced)."""
    machine = doc.environment.get("machine") or {}
    gpu_model, gpu_count = gpu_summary(machine)
    return {
        "content_hash": data["content_hash"],
        "run_id": doc.run_id,
        "schema_version": schema_version,
        "kit_version": doc.kit_version,
        "hardware_profile": str(doc.profile.get("name")),
        "gpu_model": gpu_model,
        "gpu_count": gpu_count,
        "cpu_model": str(machine.get("cpu_model")),
        # The document exactly as sent (canonical form: same hash), so it can be downloaded and re-validated.
        "document": document,
        "report_html": report_html,
        "n_flagged": sum(1 for c in doc.cells if c.status == "ok" and c.flags),
        "n_repairs": len(doc.repairs),
        "run_created_at": _stamp(doc.created_at),
        "run_updated_at": _stamp(doc.updated_at),
    }


def _stamp(value: str) -> str | None:
    """A document's time as its column stores it: None where it would not fit (over 40 characters, a NUL)."""
    limit = STRING_LIMITS["submissions"]["run_created_at"]
    return value if len(value) <= limit and "\x00" not in value else None


def rows(doc: Any) -> list[dict[str, Any]]:
    """One row per (data set, model) with at least one cell: the kit's own aggregates (``model_rows``), with the
    run's machine index (``bench.calibration.machine_index``) and energy per text divided by it (reference units per
    text), the derived gCO2e per 1,000 texts with the intensity and its source (``bench.derived``), the energy and
    duration of one training pass with their method labels (``training_columns``), the warnings about the model
    (``row_warnings``) and the error of its failed cells (``failure_summary``). A model whose every cell failed is a
    row too (``n_ok`` 0, no numbers), so its data set's page shows it failed instead of leaving it out."""
    from bench.analysis import model_rows
    from bench.calibration import machine_index
    from bench.derived import per_1000_texts

    index = machine_index(doc)
    grid = getattr(doc, "grid", None)
    intensity = grid.intensity_gco2e_per_kwh if grid is not None else None

    n_tests: dict[tuple[str, str], list[int]] = {}
    for cell in doc.cells:
        if cell.status == "ok" and cell.n_test is not None:
            n_tests.setdefault((cell.dataset, cell.model), []).append(cell.n_test)
    warnings = row_warnings(doc)
    out = []
    for row in model_rows(doc):
        if row.n_ok == 0 and row.n_failed == 0:  # no cell of the pair (a complete run has them all)
            continue
        info = doc.models.get(row.model) or {}
        numbered = {c: m for c, m in row.component_methods.items() if row.component_j.get(c) is not None}
        sizes = n_tests.get((row.dataset, row.model))
        n_test = sum(sizes) / len(sizes) if sizes else None
        training = training_columns(doc, row.dataset, row.model)
        if row.n_ok == 0:
            training["training_reason"] = f"every cell failed ({row.n_failed}): no training energy"
        out.append(
            {
                **dataset_columns(doc, row.dataset),
                "model": row.model,
                "paper_label": row.paper_label,
                "model_kind": str(info.get("kind") or "unknown")[:40],
                "model_family": model_family(row.model, info)[:100],
                "n_ok": row.n_ok,
                "n_failed": row.n_failed,
                "n_flagged": row.n_flagged,
                "n_test": float(n_test) if n_test else None,
                "accuracy": row.accuracy.mean if row.accuracy else None,
                "accuracy_ci95_low": row.accuracy.ci95_low if row.accuracy else None,
                "accuracy_ci95_high": row.accuracy.ci95_high if row.accuracy else None,
                "energy_j_per_pass": row.energy_j.mean if row.energy_j else None,
                "duration_s_per_pass": row.duration_s.mean if row.duration_s else None,
                "j_per_text": row.j_per_text,
                "wh_per_1000_texts": row.wh_per_1000_texts,
                "j_per_correct": row.j_per_correct,
                "gpu_method": row.component_methods.get("gpu"),
                "cpu_method": row.component_methods.get("cpu"),
                "ram_method": row.component_methods.get("ram"),
                "method_class": method_class(numbered),
                "calibration_reference": index[1] if index else None,
                "calibration_j_per_unit": index[0] if index else None,
                "j_per_text_per_index": row.j_per_text / index[0] if index and index[0] and row.j_per_text else None,
                "gco2e_per_1000_texts": _gco2e(per_1000_texts(row.j_per_text, grid)),
                "grid_intensity_gco2e_per_kwh": intensity,
                "grid_source": grid.intensity_source if grid is not None and intensity is not None else None,
                **training,
                "warnings": json.dumps(warnings.get((row.dataset, row.model), []), ensure_ascii=False),
                "failure": failure_summary(doc, row.dataset, row.model),
            }
        )
    return out


def row_warnings(doc: Any) -> dict[tuple[str, str], list[str]]:
    """Per (data set, model), the warnings its row shows: the run's warnings about its data set's classes and words
    (a test class absent from training, ``bench.data.classes``; test texts sharing no word with training,
    ``bench.data.checks.vocabulary_warnings``: they concern every trained model of the data set) and the
    warnings about the model's predictions (``bench.analysis.model_warnings``). Empty lists are left out."""
    from bench.analysis import model_warnings
    from bench.data.classes import is_absent_class_warning

    out: dict[tuple[str, str], list[str]] = {}
    for dataset in doc.suite.get("datasets", []):
        about_data = [
            w
            for w in doc.warnings
            if is_absent_class_warning(w, dataset)
            or w.startswith(f"data set {dataset!r}: most test texts share no word")
        ]
        for model in doc.suite.get("models", []):
            if about_data:
                out[(dataset, model)] = list(about_data)
    for warning in model_warnings(doc):
        out.setdefault((warning.dataset, warning.model), []).append(warning.message)
    return out


#: How much of a failed cell's error message a row keeps.
FAILURE_CHARS = 300


def failure_summary(doc: Any, dataset: str, model: str) -> str | None:
    """What the failed cells of (``dataset``, ``model``) failed with: the most common error (type and the start of
    its message, a NUL shown as ``\\0``) and how many of them share it; None where no cell failed."""
    from collections import Counter

    failed = [c for c in doc.cells if c.dataset == dataset and c.model == model and c.status == "failed"]
    if not failed:
        return None
    errors = Counter(
        # a NUL cannot be stored (PostgreSQL): shown as \0, so an odd message never refuses the run
        f"{c.error.type}: {c.error.message[:FAILURE_CHARS]}".replace("\x00", "\\0") if c.error else "unknown error"
        for c in failed
    )
    (error, count), others = errors.most_common(1)[0], len(errors) - 1
    return (
        f"{error} ({count} of {len(failed)} failed cell(s)"
        + (f"; {others} other error(s), in the run's report" if others else "")
        + ")"
    )


#: Why a row has no training energy, by the model's kind (``models.<name>.kind``) when none of its cells trained.
UNTRAINED_REASONS = {
    "llm": "zero-shot LLM: not trained (it only reads the label set), so there is no training energy",
    "classifier": "pretrained classifier: not trained on the split, so there is no training energy",
}


def training_columns(doc: Any, dataset: str, model: str) -> dict[str, Any]:
    """One training pass of ``model`` on ``dataset`` (``Cell.training``: one fit on the split's training texts):
    ``training_energy_j_per_pass`` (J, gross, every measured or estimated component summed, as the inference energy)
    and ``training_duration_s_per_pass`` (s), means over the sound cells (``bench.analysis.sound_cells``: ok, passed
    the plausibility checks) that recorded a training window; each component's method label, as its cells give it.

    Where there is no energy, ``training_reason`` says why, and the number is None, never 0: a zero-shot LLM (or a
    pretrained classifier) is not trained, a run written before the kit metered training has no window, or no
    component of the windows had a number (their own reasons). None of them: the row has training energy."""
    from bench.analysis import sound_cells, total_energy_j

    cells = [c for c in doc.cells if c.dataset == dataset and c.model == model and c.status == "ok"]
    windows = [c.training for c in sound_cells(cells) if c.training is not None]
    methods: dict[str, str | None] = {"gpu": None, "cpu": None, "ram": None}
    recorded = next((c.training for c in cells if c.training is not None), None)
    if recorded is not None:
        methods.update({k: v.method for k, v in recorded.energy.items() if k in methods})
    energies = [e for e in (total_energy_j(w.energy) for w in windows) if e is not None]
    reason = None
    if recorded is None:
        kind = str((doc.models.get(model) or {}).get("kind") or "")
        reason = UNTRAINED_REASONS.get(kind, "no training window recorded (a run made before the kit metered training)")
    elif not windows:
        reason = "no cell with a training window passed the plausibility checks"
    elif not energies:
        why = sorted({v.reason for w in windows for v in w.energy.values() if v.reason})
        reason = "no component of the training window was measured or estimated" + (
            f" ({'; '.join(why)})" if why else ""
        )
    return {
        "training_energy_j_per_pass": sum(energies) / len(energies) if energies else None,
        "training_duration_s_per_pass": sum(w.duration_s for w in windows) / len(windows) if windows else None,
        "training_gpu_method": methods["gpu"],
        "training_cpu_method": methods["cpu"],
        "training_ram_method": methods["ram"],
        "training_reason": reason,
    }


#: The parts of a local file's pin that say what was read (``bench.data.local.load_local_file``): the file's bytes
#: and how they were read into texts and label ids. Not the label names (``--label-names`` renames the ids, the data
#: stays), nor where the file lay or what the data set was called.
DATA_READING_KEYS = ("file_sha256", "text_column", "label_column", "format", "delimiter", "encoding")


def data_key(pin: dict[str, Any]) -> str | None:
    """The sha256 hex naming a user's file on the leaderboard: over the canonical JSON of the pin's
    ``DATA_READING_KEYS`` (the file's sha256 and how it was read), so the same texts and label ids are one data set
    whatever label names were given; None for a pin without a file hash (then its ``content_sha256``, which covers
    the names too, is the key)."""
    import hashlib

    from bench.results import canonical_json

    if not pin.get("file_sha256"):
        return None
    reading = {key: pin.get(key) for key in DATA_READING_KEYS}
    return hashlib.sha256(canonical_json(reading)).hexdigest()


def dataset_columns(doc: Any, name: str) -> dict[str, Any]:
    """A row's data set: a catalog name as it is (its pin as the catalog has it); a user's own file (a local file under
    a name outside the catalog) as ``name@<first 12 hex of its data key>`` (``data_key``: the file and how it was
    read, not the label names), so two users' ``reviews`` files are two pages and one file run with and without
    ``--label-names`` is one, marked as user data with the key, rows and classes. Every row keeps the label names its
    run used (``dataset_label_names``, JSON), shown beside it. Never its texts (the results hold none)."""
    from bench.catalog.datasets import DATASETS

    record = doc.datasets.get(name)
    pin = (record.pin or {}) if record is not None else {}
    names = json.dumps(list(record.label_names), ensure_ascii=False) if record is not None else None
    content = str(pin.get("content_sha256") or "")
    if name in DATASETS or record is None or pin.get("source") != "local" or not content:
        return {
            "dataset": name,
            "dataset_source": "catalog" if name in DATASETS else None,
            "dataset_sha256": None,
            "dataset_rows": None,
            "dataset_classes": None,
            "dataset_label_names": names,
        }
    key = data_key(pin) or content
    return {
        "dataset": f"{name}@{key[:12]}",
        "dataset_source": "user",
        "dataset_sha256": key,
        "dataset_rows": record.n_items,
        "dataset_classes": len(record.label_names),
        "dataset_label_names": names,
    }


def _gco2e(derived: Any) -> float | None:
    return derived.gco2e if derived is not None else None
