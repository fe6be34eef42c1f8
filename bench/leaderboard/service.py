"""The leaderboard's ASGI app (Starlette), served by uvicorn (``bench leaderboard serve``). Its routes live in
``bench.leaderboard.routes`` (``api``: the write and the JSON lists; ``pages``: the public pages and files).

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

from bench.leaderboard import storage
from bench.leaderboard.errors import LeaderboardError
from bench.leaderboard.routes import EXCEPTION_HANDLERS, ROUTES
from bench.leaderboard.routes.common import PAGE_CSP, SANDBOX_CSP, State
from bench.leaderboard.validate import MAX_BODY_BYTES

__all__ = ["PAGE_CSP", "SANDBOX_CSP", "RenderCache", "Settings", "create_app", "dumps", "serve"]

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


def create_app(engine: Any, settings: Settings | None = None) -> Any:
    """The ASGI app over ``engine`` (a migrated database: ``storage.upgrade`` first): the routes of
    ``bench.leaderboard.routes`` over one ``State`` (engine, settings, render caches), behind ``SecurityHeaders``."""
    state = State(
        engine=engine,
        settings=settings or Settings(),
        # A report is about 2 MB for a paper-sized run; a data set's CSV about 100 bytes a row.
        reports=RenderCache(max_entries=256, max_bytes=128 * 1024 * 1024),
        csvs=RenderCache(max_entries=256, max_bytes=64 * 1024 * 1024),
    )
    app = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)
    app.state.bench = state
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
