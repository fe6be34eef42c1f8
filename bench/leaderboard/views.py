"""What the leaderboard shows: rows per data set, the paper's reference rows, the energy-accuracy plot, the pages,
JSON and CSV. Used by the service (per request) and by the static export (once per page), so both show the same.

Links between pages are relative (``datasets/x.html``, ``../submissions/3.html``), and the service answers at the
same paths as the exported files, so a page works from the server and from a git repository of static files alike.
Every string from a submission goes through Jinja2's autoescape (pages) or ``svg.escape`` (plots).
"""

from __future__ import annotations

import csv
import io
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from bench.leaderboard.storage import METHOD_CLASSES, SORTS, Filters
from bench.report import render_report, svg
from bench.report.format import catalog_dataset
from bench.report.page import jinja_environment
from bench.report.sections.datasets import accuracy_energy_tip

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
#: Rows per leaderboard page (the service pages through the rest; the export writes the first page and the CSV).
PAGE_ROWS = 100
#: Points in the energy-accuracy plot: the current sort's first rows (a chart of 10,000 points says nothing).
PLOT_POINTS = 300
SORT_LABELS = {
    "accuracy": "accuracy (high first)",
    "j_per_text": "energy per text (low first)",
    "j_per_correct": "J per correct prediction (low first)",
}
CSV_COLUMNS = (
    "submission_id",
    "run_id",
    "submitted_at",
    "dataset",
    "model",
    "paper_label",
    "model_kind",
    "model_family",
    "hardware_profile",
    "gpu_model",
    "gpu_count",
    "cpu_model",
    "n_ok",
    "n_failed",
    "n_flagged",
    "n_test",
    "accuracy",
    "accuracy_ci95_low",
    "accuracy_ci95_high",
    "energy_j_per_pass",
    "duration_s_per_pass",
    "j_per_text",
    "wh_per_1000_texts",
    "j_per_correct",
    "gpu_method",
    "cpu_method",
    "ram_method",
    "method_class",
    "training_energy_j_per_pass",
    "training_duration_s_per_pass",
    "training_gpu_method",
    "training_cpu_method",
    "training_ram_method",
    "training_reason",
    "calibration_reference",
    "calibration_j_per_unit",
    "j_per_text_per_index",
    "gco2e_per_1000_texts",
    "grid_intensity_gco2e_per_kwh",
    "grid_source",
    "grid_assumed",
    "dataset_label_names",
    "warnings",
    "failure",
)
#: Columns computed from the stored ones when a row is shown (``row_value``); lists are JSON text in the CSV.
COMPUTED_COLUMNS = ("training_reason", "grid_assumed", "dataset_label_names", "warnings")
#: What a row without training energy says when it carries no reason of its own: stored before revision 0006.
TRAINING_NOT_STORED = (
    "not stored: this row was submitted before the leaderboard kept training energy (database revision 0006)"
)
#: The paper's machine for its reference numbers (reports/reference: Capella, NVIDIA H100).
PAPER_MACHINE = "paper (Capella, NVIDIA H100)"


def name_path(name: str) -> str:
    """A data set name as a URL / file name segment (names are identifiers already; quoting is belt and braces)."""
    return quote(name, safe="")


# --- the paper's reference rows -------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def reference_rows(dataset: str) -> tuple[dict[str, Any], ...]:
    """The paper's published numbers for ``dataset`` (a kit data set mapped to a paper data set), one per model,
    with the energy per run converted to J per text over the paper's test split."""
    from bench.reference import REFERENCE_DIR, paper_value

    spec = catalog_dataset(dataset)
    paper_name = getattr(spec, "paper_name", None)
    if not paper_name:
        return ()
    source = REFERENCE_DIR / ("fktg_capella.csv" if paper_name == "fktg" else "public_datasets_capella.csv")
    if not source.is_file():
        return ()
    with source.open(newline="", encoding="utf-8") as handle:
        labels = [row["model"] for row in csv.DictReader(handle)]
    n_test = float(spec.n_test)
    out = []
    for label in labels:
        value = paper_value(label, paper_name)
        if value is None or (value.accuracy is None and value.energy_wh is None):
            continue
        wh = value.energy_wh
        j_per_text = wh * 3600 / n_test if isinstance(wh, float) else None
        correct = value.accuracy * n_test if value.accuracy else None
        out.append(
            {
                "model": label,
                "accuracy": value.accuracy,
                "energy_wh_per_run": wh,
                "j_per_text": j_per_text,
                "j_per_correct": wh * 3600 / correct if isinstance(wh, float) and correct else None,
                "n_test": n_test,
                "table": value.table,
                "machine": PAPER_MACHINE,
            }
        )
    return tuple(out)


# --- formatting -----------------------------------------------------------------------------------------------------


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def training_reason(row: dict[str, Any]) -> str | None:
    """Why ``row`` shows no training energy (J per training pass): its stored reason (a zero-shot LLM is not
    trained, ...), or that it was stored before the leaderboard kept training energy; None where it has a number."""
    if row.get("training_energy_j_per_pass") is not None:
        return None
    return row.get("training_reason") or TRAINING_NOT_STORED


def grid_assumed(row: dict[str, Any]) -> str | None:
    """The country whose average grid ``row``'s derived CO2e assumes (``"Germany (DEU)"``: the run gave no grid
    intensity, so CodeCarbon's table for the profile's country was used; ``bench.results.assumed_grid_country``);
    None where the intensity was given or there is no CO2e."""
    from bench.results import assumed_grid_country

    if row.get("grid_intensity_gco2e_per_kwh") is None:
        return None
    return assumed_grid_country(row.get("grid_source"))


def _json_list(text: Any) -> list[str] | None:
    """A stored JSON list of strings; None where not stored (rows before revision 0008) or not a list."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


def row_warnings(row: dict[str, Any]) -> list[str]:
    """The warnings ``row`` shows (JSON list in ``results.warnings``): a model that predicted one class for every text
    of a test split that holds several, a test class absent from training; empty where none (or not stored)."""
    return _json_list(row.get("warnings")) or []


def label_names(row: dict[str, Any]) -> list[str] | None:
    """The label names ``row``'s run gave its data set; None where not stored (rows before revision 0008)."""
    return _json_list(row.get("dataset_label_names"))


def row_value(row: dict[str, Any], key: str) -> Any:
    """One of ``CSV_COLUMNS`` of a row: stored, or computed (``COMPUTED_COLUMNS``)."""
    if key == "training_reason":
        return training_reason(row)
    if key == "grid_assumed":
        return grid_assumed(row)
    if key == "dataset_label_names":
        return label_names(row)
    if key == "warnings":
        return row_warnings(row) if row.get("warnings") is not None else None
    return _finite_or_none(row.get(key))


def row_json(row: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard row for the JSON API (plain values, the submission's page as a relative link). A row without
    training energy has ``training_energy_j_per_pass`` null and ``training_reason`` saying why (``training_reason``);
    ``grid_assumed`` names the country whose average grid its CO2e assumes (null: the intensity was given);
    ``warnings`` and ``dataset_label_names`` are lists (null: stored before the leaderboard kept them); a model whose
    every cell failed has ``n_ok`` 0, ``n_failed`` its cells and ``failure`` what they failed with."""
    out = {k: row_value(row, k) for k in CSV_COLUMNS}
    out["submission_url"] = f"submissions/{row['submission_id']}.html"
    return out


def comparability_notes(rows: list[dict[str, Any]]) -> list[str]:
    """What the page must say about its rows' comparability columns: entries whose calibration versions (reference
    workloads) differ, entries without an index, and that the CO2e is derived with each run's own grid."""
    notes = []
    references = sorted({r["calibration_reference"] for r in rows if r.get("calibration_reference")})
    if len(references) > 1:
        notes.append(
            f"Calibration versions differ between these entries ({', '.join(references)}): energy / index is "
            "comparable only between entries of the same reference workload, named under each value."
        )
    measured = [r for r in rows if r.get("n_ok") != 0]  # a model whose every cell failed has no energy to divide
    missing = sum(1 for r in measured if r.get("j_per_text_per_index") is None)
    if measured and missing and references:
        notes.append(
            f"{missing} of {len(measured)} entries have no energy / index: their run recorded no calibration (a job "
            "that could not run or failed, e.g. a GPU run before the GPU reference existed, or a submission stored "
            "before the leaderboard kept the index)."
        )
    if any(r.get("gco2e_per_1000_texts") is not None for r in rows):
        intensities = {r.get("grid_intensity_gco2e_per_kwh") for r in rows if r.get("gco2e_per_1000_texts")}
        notes.append(
            "CO₂e per 1,000 texts is derived, not measured: gross energy x PUE x the carbon intensity of the grid "
            "each run named (hover a value for its intensity and source)"
            + (", which differ here: it compares grids as well as models." if len(intensities) > 1 else ".")
        )
        assumed: dict[str, int] = {}
        for r in rows:
            country = grid_assumed(r) if r.get("gco2e_per_1000_texts") is not None else None
            if country:
                assumed[country] = assumed.get(country, 0) + 1
        if assumed:
            notes.append(
                "Assumed grid: "
                + ", ".join(
                    f"{n} entr{'y' if n == 1 else 'ies'} assume the average grid of {c}" for c, n in assumed.items()
                )
                + ". Their run gave no grid intensity (bench run --grid-intensity), so the CO₂e rests on the "
                "country of the hardware profile (CodeCarbon's table), not on the machine's own grid; marked "
                "'assumed' beside the value."
            )
    return notes


def failed_models(rows: list[dict[str, Any]]) -> int:
    """How many of ``rows`` are models whose every cell failed (no numbers: shown as failed, ranked last)."""
    return sum(1 for r in rows if r.get("n_ok") == 0)


# --- plot -----------------------------------------------------------------------------------------------------------


def energy_accuracy_plot(rows: list[dict[str, Any]], reference: tuple[dict[str, Any], ...], title: str) -> Markup:
    """Accuracy against gross energy per text: one series per machine (GPU model), the paper's rows as diamonds."""
    by_machine: dict[str, list[svg.Point]] = {}
    for row in rows[:PLOT_POINTS]:
        if not row.get("j_per_text") or row.get("accuracy") is None:
            continue
        machine = f"{row['hardware_profile']} · {row['gpu_model']}"
        by_machine.setdefault(machine, []).append(
            svg.Point(
                row["j_per_text"],
                row["accuracy"],
                label=row["model"],
                tip=accuracy_energy_tip(
                    f"{row['model']} on {machine} (submission {row['submission_id']})",
                    row["accuracy"],
                    row["j_per_text"],
                ),
            )
        )
    series = [
        svg.Series(name, points, color=svg.PALETTE[i % len(svg.PALETTE)], marker=svg.MARKERS[i % 3])
        for i, (name, points) in enumerate(sorted(by_machine.items()))
    ]
    paper = [
        svg.Point(r["j_per_text"], r["accuracy"], label=r["model"], tip=f"paper: {r['model']}")
        for r in reference
        if r["j_per_text"] and r["accuracy"] is not None
    ]
    if paper:
        series.append(svg.Series(PAPER_MACHINE, paper, color="#999999", marker="diamond"))
    return svg.energy_accuracy_scatter(
        series,
        title=title,
        width=760,
        height=440,
        label_points=sum(len(s.points) for s in series) <= 40,
    )


# --- contexts -------------------------------------------------------------------------------------------------------


def _query(filters: Filters, sort: str, offset: int = 0) -> str:
    params = dict(filters.active())
    params["sort"] = sort
    if offset:
        params["offset"] = str(offset)
    return "?" + urlencode(params)


def leaderboard_data(
    engine: Any, dataset: str, filters: Filters, sort: str, *, limit: int | None = None, offset: int = 0
) -> dict[str, Any]:
    """The rows of one leaderboard page (``limit``: PAGE_ROWS by default) and everything the page or the JSON endpoint
    shows beside them."""
    from bench.leaderboard import storage

    limit = PAGE_ROWS if limit is None else limit
    rows, total = storage.leaderboard(engine, dataset, filters, sort, limit=limit, offset=offset)
    return {
        "dataset": dataset,
        "namings": storage.label_namings(engine, dataset),
        "filters": filters.active(),
        "sort": sort,
        "total": total,
        "limit": limit,
        "offset": offset,
        "rows": rows,
        "reference": reference_rows(dataset),
    }


def leaderboard_json(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of ``datasets/<name>.json``."""
    return {
        "dataset": data["dataset"],
        "filters": data["filters"],
        "sort": data["sort"],
        "total": data["total"],
        "limit": data["limit"],
        "offset": data["offset"],
        "rows": [row_json(r) for r in data["rows"]],
        "reference": list(data["reference"]),
        "label_names": [{"names": names, "rows": n} for names, n in data["namings"]],
    }


def leaderboard_csv(rows: list[dict[str, Any]]) -> str:
    """CSV of leaderboard rows (header: CSV_COLUMNS). Cells starting with = + - @ are prefixed with ' so that a
    spreadsheet shows a submitted string instead of running it as a formula. A row without training energy has an
    empty ``training_energy_j_per_pass`` and its ``training_reason``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = []
        for key in CSV_COLUMNS:
            value = row_value(row, key)
            if isinstance(value, list):
                value = json.dumps(value, ensure_ascii=False)
            if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                value = "'" + value
            values.append("" if value is None else value)
        writer.writerow(values)
    return out.getvalue()


def static_page_name(dataset: str, sort: str = "accuracy", page: int = 1) -> str:
    """File name of one page of the static export, beside ``datasets/<name>.csv``.

    The first page by accuracy is ``<name>.html`` (the service's path); the others ``<name>+<sort>+<page>.html``.
    ``name_path`` always escapes '+', so no data set's name can produce another's page name."""
    stem = name_path(dataset)
    return f"{stem}.html" if (sort, page) == ("accuracy", 1) else f"{stem}+{sort}+{page}.html"


def leaderboard_page(engine: Any, data: dict[str, Any], *, static: bool) -> str:
    """The HTML of ``datasets/<name>.html``: links are query strings on the service, file names in a static copy
    (every sort, every page of ``limit`` rows, no filters)."""
    from bench.leaderboard import storage

    filters = Filters(**data["filters"])
    options = storage.filter_options(engine, data["dataset"]) if not static else {}
    title = f"Leaderboard: {data['dataset']}"
    offset, limit, total, sort = data["offset"], data["limit"], data["total"], data["sort"]
    if static:
        page = offset // limit + 1

        def link(sort_key: str, to_page: int) -> str:
            return static_page_name(data["dataset"], sort_key, to_page)

        sorts = {k: (SORT_LABELS[k], link(k, 1)) for k in SORTS}
        prev_link = link(sort, page - 1) if offset > 0 else None
        next_link = link(sort, page + 1) if offset + limit < total else None
    else:
        sorts = {k: (SORT_LABELS[k], _query(filters, k)) for k in SORTS}
        prev_link = _query(filters, sort, max(offset - limit, 0)) if offset > 0 else None
        next_link = _query(filters, sort, offset + limit) if offset + limit < total else None
    return render(
        "leaderboard.html.j2",
        title=title,
        static=static,
        data=data,
        filters=data["filters"],
        options=options,
        filter_labels={
            "hardware_profile": "hardware profile",
            "gpu_model": "GPU model",
            "model_family": "model family",
            "method": "measurement method",
        },
        sorts=sorts,
        plot=energy_accuracy_plot(data["rows"], data["reference"], f"Accuracy against energy per text: {title}"),
        prev_link=prev_link,
        next_link=next_link,
        csv_link=f"{name_path(data['dataset'])}.csv" + (_query(filters, sort) if not static else ""),
        json_link=f"{name_path(data['dataset'])}.json" + (_query(filters, sort) if not static else ""),
        method_classes=METHOD_CLASSES,
        plot_points=PLOT_POINTS,
        comparability=comparability_notes(data["rows"]),
        failed=failed_models(data["rows"]),
    )


def index_page(engine: Any, *, static: bool) -> str:
    """The HTML of ``index.html``: data sets and the newest submissions."""
    from bench.leaderboard import storage

    return render(
        "index.html.j2",
        title="bench leaderboard",
        static=static,
        datasets=storage.datasets(engine),
        submissions=storage.list_submissions(engine, limit=50),
        total=storage.count_submissions(engine),
    )


def submission_json(
    submission: dict[str, Any], rows: list[dict[str, Any]], replaces: list[int] | None = None
) -> dict[str, Any]:
    """The JSON body of ``submissions/<id>.json``: the submission's columns (``n_flagged`` cells left out of the
    means, ``n_repairs`` redo sessions, ``replaced_by`` the submission of its repaired run or None), ``replaces`` (the
    earlier submissions of the same run it replaced; None where not looked up) and its rows, with the computed
    columns of ``row_value`` (warnings and label names as lists, the assumed grid's country)."""
    info = {k: v for k, v in submission.items() if k not in ("token_id", "document", "report_html")}
    if replaces is not None:
        info["replaces"] = replaces
    info["results_url"] = f"submissions/{submission['id']}/results.json"
    info["page_url"] = f"submissions/{submission['id']}.html"
    info["rows"] = [
        {k: _finite_or_none(v) for k, v in r.items() if k not in ("id",)}
        | {k: row_value(r, k) for k in COMPUTED_COLUMNS}
        for r in rows
    ]
    return info


def submission_page(
    submission: dict[str, Any], rows: list[dict[str, Any]], *, static: bool, replaces: list[int] | None = None
) -> str:
    """The HTML of ``submissions/<id>.html``: who, what machine, its rows (flagged cells counted), links to its report
    and document; for a repaired run the submissions it replaced, for a replaced one the submission that replaced it
    (linked on the service; a static copy holds current submissions only)."""
    return render(
        "submission.html.j2",
        title=f"Submission {submission['id']}: {submission['run_id']}",
        static=static,
        s=submission,
        rows=rows,
        replaces=replaces or [],
    )


def hidden_page(submission_id: int) -> str:
    """The page of a hidden submission (410 Gone)."""
    return render(
        "message.html.j2",
        title="Hidden submission",
        static=False,
        message=(f"Submission {submission_id} was hidden by the leaderboard's admin. It is kept, not deleted."),
        root="../",
    )


def message_page(title: str, message: str, root: str = "") -> str:
    """A small page for errors (404 and the like)."""
    return render("message.html.j2", title=title, static=False, message=message, root=root)


def report_page(document_text: str) -> str:
    """The report of a stored submission, rendered by this kit from its document (never the HTML it was sent with,
    which is served separately and sandboxed)."""
    from bench.results import parse_results

    return render_report(parse_results(json.loads(document_text), "stored submission"))


@lru_cache(maxsize=1)
def _environment() -> Any:
    env = jinja_environment(TEMPLATES_DIR)  # the report's settings: every submitted string is text, never markup
    env.filters["path"] = name_path
    env.globals["training_reason"] = training_reason
    env.globals["grid_assumed"] = grid_assumed
    env.globals["row_warnings"] = row_warnings
    env.globals["label_names"] = label_names
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the leaderboard's templates."""
    return _environment().get_template(template).render(**context)
