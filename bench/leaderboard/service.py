"""The leaderboard's ASGI app (Starlette), served by uvicorn (``bench leaderboard serve``).

Writes: ``POST /api/v1/submissions`` with ``Authorization: Bearer <token>`` and the submission envelope as JSON
(see ``validate``). Answers 201 ``{"id", "url", "created": true, "replaced", "flagged_cells"}`` for a new run
(``replaced``: the ids of the submitter's earlier submissions of the same run it replaces, a repaired run;
``flagged_cells``: its cells left out of the means), 200 with the existing id for a run stored before (same content
hash), 4xx ``{"error", "reasons"}`` otherwise with nothing stored: 400 malformed JSON or envelope, 401
missing/unknown/revoked token, 409 an older document of a run whose newer one the submitter stored, 413 body above
the limit, 415 not JSON, 422 schema, hash, plausibility, provenance or names, 429 rate limit (with Retry-After).

Reads are public, at the same paths as the static export: ``/`` and ``/index.html``, ``/datasets.json``,
``/datasets/<name>.html|.json|.csv`` (filters ``hardware_profile``, ``gpu_model``, ``model_family``, ``method``;
``sort`` accuracy|j_per_text|j_per_correct; ``limit``, ``offset``), ``/submissions.json``,
``/submissions/<id>.html|.json``, ``/submissions/<id>/results.json``, ``/submissions/<id>/report.html``,
``/submissions/<id>/submitted-report.html`` (the HTML the submitter sent, under a sandboxing CSP).
Hidden submissions answer 410 and are left out of every list; replaced ones are left out of every list and their
page names the submission that replaced them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bench.leaderboard import storage, views
from bench.leaderboard.errors import LeaderboardError
from bench.leaderboard.validate import MAX_BODY_BYTES, Invalid, prepare

#: Pages: nothing but the page itself and inline styles; forms post back to this site only.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
#: The report HTML a submitter sent is shown as a sandboxed document: no scripts, no same-origin access.
SANDBOX_CSP = PAGE_CSP + "; sandbox"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True)
class Settings:
    """Service settings: body limit, per-token rate limit, and the public URL submissions are answered with."""

    max_body_bytes: int = MAX_BODY_BYTES
    rate_limit_per_minute: int = 30
    public_url: str | None = None


class RenderCache:
    """A bounded LRU of rendered answers (bytes), so that public readers cannot make a worker redo expensive
    work per GET: a stored submission's report (its document is immutable: rendered once per id) and a data set's
    full CSV (keyed by the data version, so any insert or hide makes a new key and the old one ages out).

    Concurrent misses of one key render it once (the others wait for it). ``renders`` and ``hits`` count what
    happened (shown by /healthz)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.renders = 0
        self.hits = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def _lookup(self, key: Hashable) -> bytes | None:
        # (with self._lock held)
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return found

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The cached answer for ``key``, or ``render()``'s, stored (evicting the least recently used)."""
        with self._lock:
            found = self._lookup(key)
            if found is not None:
                return found
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                found = self._lookup(key)  # rendered by another request while this one waited
                if found is not None:
                    return found
            try:
                value = render()
            finally:
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self.renders += 1
                self._items[key] = value
                self._bytes += len(value)
                # Keep the newest entry even when it alone is above max_bytes: evicting it would render it per GET.
                while len(self._items) > 1 and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                    _, old = self._items.popitem(last=False)
                    self._bytes -= len(old)
            return value

    def stats(self) -> dict[str, int]:
        """Counters and size, for /healthz."""
        with self._lock:
            return {"renders": self.renders, "hits": self.hits, "entries": len(self._items), "bytes": self._bytes}


class SecurityHeaders:
    """ASGI middleware: a CSP and nosniff on every answer (routes may set a stricter CSP themselves)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, wrapped)


def _error(status: int, error: str, reasons: list[str] | None = None, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse({"error": error, "reasons": reasons or [error]}, status_code=status, headers=headers)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` (never more than limit + one chunk in memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _base_url(request: Request, settings: Settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/") + "/"


def create_app(engine: Any, settings: Settings | None = None) -> Any:
    """The ASGI app over ``engine`` (a migrated database: ``storage.upgrade`` first)."""
    settings = settings or Settings()
    # A report is about 2 MB for a paper-sized run; a data set's CSV about 100 bytes a row.
    reports = RenderCache(max_entries=256, max_bytes=128 * 1024 * 1024)
    csvs = RenderCache(max_entries=256, max_bytes=64 * 1024 * 1024)

    async def submit(request: Request) -> Response:
        token = _bearer(request)
        if token is None:
            return _error(
                401,
                "a submitter token is required: Authorization: Bearer <token> (bench submit --token T)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        owner = await run_in_threadpool(storage.token_id, engine, token)
        if owner is None:
            return _error(
                401,
                "token unknown or revoked; ask the leaderboard's admin for a token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        # In the database, not in this process: every worker of `serve --workers N` counts against the same window.
        wait_s = await run_in_threadpool(storage.take_submit_slot, engine, owner, settings.rate_limit_per_minute)
        if wait_s is not None:
            retry = max(1, int(wait_s + 0.999))
            return _error(
                429,
                f"rate limit: at most {settings.rate_limit_per_minute} submissions per minute per token; "
                f"retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error(415, f"Content-Type must be application/json, got {content_type or 'none'!r}")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return _error(413, f"body of {length} bytes is above the limit of {settings.max_body_bytes} bytes")
        body = await _read_capped(request, settings.max_body_bytes)
        if body is None:
            return _error(413, f"body is above the limit of {settings.max_body_bytes} bytes")
        try:
            prepared = await run_in_threadpool(prepare, body)
        except Invalid as exc:
            return _error(exc.status, f"submission refused ({len(exc.reasons)} reason(s))", exc.reasons)
        try:
            stored = await run_in_threadpool(storage.store_submission, engine, prepared, owner)
        except storage.Superseded as exc:
            return _error(409, "submission refused (a newer document of this run is stored)", [str(exc)])
        base = _base_url(request, settings)
        return JSONResponse(
            {
                "id": stored.id,
                "url": f"{base}submissions/{stored.id}.html",
                "json": f"{base}submissions/{stored.id}.json",
                "content_hash": prepared.fields["content_hash"],
                "created": stored.created,
                "replaced": list(stored.replaced),
                "flagged_cells": prepared.fields["n_flagged"],
                "run_id": prepared.fields["run_id"],
            },
            status_code=201 if stored.created else 200,
        )

    def _int(request: Request, name: str, default: int, maximum: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit():
            raise Invalid(400, [f"query parameter {name}={raw!r} must be a non-negative integer"])
        return min(int(raw), maximum)

    def _leaderboard_args(request: Request) -> tuple[str, storage.Filters, str, int, int]:
        params = request.query_params
        unknown = sorted(
            set(params) - {"hardware_profile", "gpu_model", "model_family", "method", "sort", "limit", "offset"}
        )
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
            _int(request, "limit", views.PAGE_ROWS, 1000),
            _int(request, "offset", 0, 10**9),
        )

    def dataset_view(request: Request) -> Response:
        fmt = request.path_params["fmt"]
        try:
            name, filters, sort, limit, offset = _leaderboard_args(request)
        except Invalid as exc:
            return _error(400, exc.reasons[0], exc.reasons)
        if fmt == "csv":
            # Every row of the data set: built once per data version (one primary-key read tells whether it is
            # current), not per GET.
            key = (storage.current_data_version(engine), name, sort, tuple(sorted(filters.active().items())))

            def render_csv() -> bytes:
                rows, _ = storage.leaderboard(engine, name, filters, sort, limit=10**9, offset=0)
                return views.leaderboard_csv(rows).encode("utf-8")

            return Response(
                csvs.get(key, render_csv),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'inline; filename="{views.name_path(name)}.csv"'},
            )
        data = views.leaderboard_data(engine, name, filters, sort, limit=limit, offset=offset)
        if fmt == "json":
            return JSONResponse(views.leaderboard_json(data))
        if fmt != "html":
            return HTMLResponse(views.message_page("Not found", "No such page.", "../"), status_code=404)
        return HTMLResponse(views.leaderboard_page(engine, data, static=False))

    def datasets_json(request: Request) -> Response:
        return JSONResponse({"datasets": storage.datasets(engine)})

    def submissions_json(request: Request) -> Response:
        try:
            limit = _int(request, "limit", 100, 1000)
            offset = _int(request, "offset", 0, 10**9)
        except Invalid as exc:
            return _error(400, exc.reasons[0], exc.reasons)
        items = storage.list_submissions(engine, limit=limit, offset=offset)
        return JSONResponse(
            {
                "total": storage.count_submissions(engine),
                "limit": limit,
                "offset": offset,
                "submissions": [views.submission_json(s, []) | {"rows": None} for s in items],
            }
        )

    def _visible(request: Request, *, document: bool = False) -> tuple[dict[str, Any] | None, Response | None]:
        raw = request.path_params["sid"]
        if not raw.isdigit():
            return None, HTMLResponse(views.message_page("Not found", "No such submission.", "../"), 404)
        found = storage.get_submission(engine, int(raw), with_document=document)
        if found is None:
            return None, HTMLResponse(views.message_page("Not found", f"No submission {int(raw)}.", "../"), 404)
        if found["hidden"]:
            return None, HTMLResponse(views.hidden_page(found["id"]), 410)
        return found, None

    def submission_view(request: Request) -> Response:
        found, refusal = _visible(request)
        if refusal is not None:
            if request.path_params["fmt"] == "json":
                return _error(refusal.status_code, "hidden by the admin" if refusal.status_code == 410 else "not found")
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
        what = request.path_params["file"]
        # The report is rendered from the document (immutable) once per submission; visibility is checked on every
        # GET, and the document (up to the body limit) is read only to render it.
        found, refusal = _visible(request, document=what != "report.html")
        if refusal is not None:
            return refusal
        assert found is not None
        if what == "report.html":
            sid = int(found["id"])

            def render_report() -> bytes:
                full = storage.get_submission(engine, sid, with_document=True)
                assert full is not None
                return views.report_page(full["document"]).encode("utf-8")

            return HTMLResponse(reports.get(sid, render_report))
        if what == "results.json":
            return Response(found["document"], media_type="application/json")
        if what == "submitted-report.html":
            if not found["report_html"]:
                return HTMLResponse(views.message_page("No report", "The run was submitted without its report."), 404)
            return HTMLResponse(found["report_html"], headers={"Content-Security-Policy": SANDBOX_CSP})
        return HTMLResponse(views.message_page("Not found", "No such file.", "../../"), status_code=404)

    def index(request: Request) -> Response:
        return HTMLResponse(views.index_page(engine, static=False))

    def health(request: Request) -> Response:
        return JSONResponse(
            {
                "ok": True,
                "pid": os.getpid(),  # which worker answered (serve --workers N)
                "submissions": storage.count_submissions(engine, include_hidden=True),
                "caches": {"reports": reports.stats(), "csv": csvs.stats()},
            }
        )

    routes = [
        Route("/", index),
        Route("/index.html", index),
        Route("/healthz", health),
        Route("/api/v1/submissions", submit, methods=["POST"]),
        Route("/datasets.json", datasets_json),
        Route("/submissions.json", submissions_json),
        Route("/datasets/{name}.{fmt}", dataset_view),
        Route("/submissions/{sid}.{fmt}", submission_view),
        Route("/submissions/{sid}/{file}", submission_file),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _error(getattr(exc, "status_code", 404), getattr(exc, "detail", "not found"))
        return HTMLResponse(views.message_page("Not found", "No such page."), status_code=404)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    return SecurityHeaders(app)


#: How `serve --workers N` hands the database URL and settings to the worker processes uvicorn spawns.
_SERVE_ENV = "BENCH_LEADERBOARD_SERVE"


def app_from_env() -> Any:
    """The app for one of uvicorn's worker processes (``factory=True``): database and settings from the parent."""
    spec = json.loads(os.environ[_SERVE_ENV])
    return create_app(storage.make_engine(spec["db"]), Settings(**spec["settings"]))


def serve(db: str | None, host: str, port: int, settings: Settings, *, upgrade: bool = True, workers: int = 1) -> None:
    """Migrate (or check) the database and serve the app with uvicorn until interrupted.

    ``workers`` > 1 runs that many processes on the port (uvicorn's supervisor). They share everything that must be
    shared through the database (submissions, the rate limit's window, the data version the caches key on); each
    keeps its own render caches.
    """
    import uvicorn

    if workers < 1:
        raise LeaderboardError(f"--workers must be at least 1, got {workers}")
    engine = storage.make_engine(db)
    if upgrade:
        storage.upgrade(engine)
    else:
        storage.require_current(engine)
    print(
        f"bench leaderboard: database {engine.url.render_as_string(hide_password=True)}, "
        f"schema {storage.head_revision()}, {workers} worker(s), serving on http://{host}:{port}/",
        flush=True,
    )
    from bench.leaderboard.nodelay import IMPORT_STRING as http

    if workers == 1:
        uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="warning", workers=1, http=http)
        return
    engine.dispose()  # the workers open their own connections
    os.environ[_SERVE_ENV] = json.dumps(
        {"db": engine.url.render_as_string(hide_password=False), "settings": dataclasses.asdict(settings)}
    )
    uvicorn.run(
        f"{__name__}:app_from_env", factory=True, host=host, port=port, log_level="warning", workers=workers, http=http
    )


def dumps(data: Any) -> str:
    """JSON text for files of the static export (the same as the service's answers)."""
    return json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False)
