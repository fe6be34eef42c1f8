"""The leaderboard's public reads, at the same paths as the static export: ``/`` and ``/index.html``,
``/datasets/<name>.html|.json|.csv`` (filters ``hardware_profile``, ``gpu_model``, ``model_family``, ``method``;
``sort``; ``limit``, ``offset``), ``/submissions/<id>.html|.json`` and the files under ``/submissions/<id>/``.
Hidden submissions answer 410; unknown paths an HTML 404 (a JSON one under ``/api/``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from bench.leaderboard import storage, views
from bench.leaderboard.routes.common import SANDBOX_CSP, error, query_int, state
from bench.leaderboard.validate import Invalid

#: The query parameters of a data set's leaderboard.
LEADERBOARD_PARAMS = {"hardware_profile", "gpu_model", "model_family", "method", "sort", "limit", "offset"}


def index(request: Request) -> Response:
    """``/`` and ``/index.html``: data sets and the newest submissions."""
    return HTMLResponse(views.index_page(state(request).engine, static=False))


def leaderboard_args(request: Request) -> tuple[str, storage.Filters, str, int, int]:
    """(data set, filters, sort, limit, offset) of a leaderboard request; ``Invalid(400)`` naming an unknown
    parameter or sort."""
    params = request.query_params
    unknown = sorted(set(params) - LEADERBOARD_PARAMS)
    if unknown:
        raise Invalid(400, [f"unknown query parameter {k!r}" for k in unknown])
    sort = params.get("sort") or "accuracy"
    if sort not in storage.SORTS:
        raise Invalid(400, [f"sort={sort!r}: one of {', '.join(storage.SORTS)}"])
    filters = storage.Filters(
        hardware_profile=params.get("hardware_profile") or None,
        gpu_model=params.get("gpu_model") or None,
        model_family=params.get("model_family") or None,
        method=params.get("method") or None,
    )
    return (
        request.path_params["name"],
        filters,
        sort,
        query_int(request, "limit", views.PAGE_ROWS, 1000),
        query_int(request, "offset", 0, 10**9),
    )


def dataset_view(request: Request) -> Response:
    """``/datasets/<name>.html|.json|.csv``: one page of the filtered, sorted rows (the CSV: every row, built once
    per data version)."""
    app = state(request)
    fmt = request.path_params["fmt"]
    try:
        name, filters, sort, limit, offset = leaderboard_args(request)
    except Invalid as exc:
        return error(400, exc.reasons[0], exc.reasons)
    if fmt == "csv":
        # Every row of the data set: built once per data version (one primary-key read tells whether it is
        # current), not per GET.
        key = (storage.current_data_version(app.engine), name, sort, tuple(sorted(filters.active().items())))

        def render_csv() -> bytes:
            rows, _ = storage.leaderboard(app.engine, name, filters, sort, limit=10**9, offset=0)
            return views.leaderboard_csv(rows).encode("utf-8")

        return Response(
            app.csvs.get(key, render_csv),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'inline; filename="{views.name_path(name)}.csv"'},
        )
    data = views.leaderboard_data(app.engine, name, filters, sort, limit=limit, offset=offset)
    if fmt == "json":
        return JSONResponse(views.leaderboard_json(data))
    if fmt != "html":
        return HTMLResponse(views.message_page("Not found", "No such page.", "../"), status_code=404)
    return HTMLResponse(views.leaderboard_page(app.engine, data, static=False))


def visible(request: Request, *, document: bool = False) -> tuple[dict[str, Any] | None, Response | None]:
    """(the submission of path parameter ``sid``, None), or (None, the 404 or 410 page to answer instead)."""
    raw = request.path_params["sid"]
    if not raw.isdigit():
        return None, HTMLResponse(views.message_page("Not found", "No such submission.", "../"), 404)
    found = storage.get_submission(state(request).engine, int(raw), with_document=document)
    if found is None:
        return None, HTMLResponse(views.message_page("Not found", f"No submission {int(raw)}.", "../"), 404)
    if found["hidden"]:
        return None, HTMLResponse(views.hidden_page(found["id"]), 410)
    return found, None


def submission_view(request: Request) -> Response:
    """``/submissions/<id>.html|.json``: the submission, its rows and what it replaced (or what replaced it)."""
    engine = state(request).engine
    found, refusal = visible(request)
    if refusal is not None:
        if request.path_params["fmt"] == "json":
            return error(refusal.status_code, "hidden by the admin" if refusal.status_code == 410 else "not found")
        return refusal
    assert found is not None
    rows = storage.submission_rows(engine, found["id"])
    replaces = storage.replaced_submissions(engine, found["id"])
    if request.path_params["fmt"] == "json":
        return JSONResponse(views.submission_json(found, rows, replaces))
    if request.path_params["fmt"] != "html":
        return HTMLResponse(views.message_page("Not found", "No such page.", "../"), status_code=404)
    return HTMLResponse(views.submission_page(found, rows, static=False, replaces=replaces))


def submission_file(request: Request) -> Response:
    """``/submissions/<id>/report.html`` (rendered by this kit from the stored document, once per submission),
    ``results.json`` (the document as sent) and ``submitted-report.html`` (the sender's HTML, sandboxed)."""
    app = state(request)
    what = request.path_params["file"]
    # The report is rendered from the document (immutable) once per submission; visibility is checked on every
    # GET, and the document (up to the body limit) is read only to render it.
    found, refusal = visible(request, document=what != "report.html")
    if refusal is not None:
        return refusal
    assert found is not None
    if what == "report.html":
        sid = int(found["id"])

        def render_report() -> bytes:
            full = storage.get_submission(app.engine, sid, with_document=True)
            assert full is not None
            return views.report_page(full["document"]).encode("utf-8")

        return HTMLResponse(app.reports.get(sid, render_report))
    if what == "results.json":
        return Response(found["document"], media_type="application/json")
    if what == "submitted-report.html":
        if not found["report_html"]:
            return HTMLResponse(views.message_page("No report", "The run was submitted without its report."), 404)
        return HTMLResponse(found["report_html"], headers={"Content-Security-Policy": SANDBOX_CSP})
    return HTMLResponse(views.message_page("Not found", "No such file.", "../../"), status_code=404)


async def not_found(request: Request, exc: Exception) -> Response:
    """404 and 405: JSON under ``/api/``, an HTML page elsewhere."""
    if request.url.path.startswith("/api/"):
        return error(getattr(exc, "status_code", 404), getattr(exc, "detail", "not found"))
    return HTMLResponse(views.message_page("Not found", "No such page."), status_code=404)
