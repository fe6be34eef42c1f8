"""The leaderboard's JSON API: ``POST /api/v1/submissions`` (the one write), ``/datasets.json``,
``/submissions.json`` and ``/healthz``. Answers and status codes: ``bench.leaderboard.service``'s docstring."""

from __future__ import annotations

import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.leaderboard import storage, views
from bench.leaderboard.routes.common import base_url, bearer, error, query_int, read_capped, state
from bench.leaderboard.validate import Invalid, prepare


async def submit(request: Request) -> Response:
    """Check and store one submission: token, rate limit, content type and size first, then the kit's checks
    (``validate.prepare``) and ``storage.store_submission`` (which may replace the submitter's earlier document of
    the same run). 201 new, 200 stored before, 4xx with every reason and nothing stored."""
    app = state(request)
    settings = app.settings
    token = bearer(request)
    if token is None:
        return error(
            401,
            "a submitter token is required: Authorization: Bearer <token> (bench submit --token T)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    owner = await run_in_threadpool(storage.token_id, app.engine, token)
    if owner is None:
        return error(
            401,
            "token unknown or revoked; ask the leaderboard's admin for a token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    # In the database, not in this process: every worker of `serve --workers N` counts against the same window.
    wait_s = await run_in_threadpool(storage.take_submit_slot, app.engine, owner, settings.rate_limit_per_minute)
    if wait_s is not None:
        retry = max(1, int(wait_s + 0.999))
        return error(
            429,
            f"rate limit: at most {settings.rate_limit_per_minute} submissions per minute per token; "
            f"retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return error(415, f"Content-Type must be application/json, got {content_type or 'none'!r}")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
        return error(413, f"body of {length} bytes is above the limit of {settings.max_body_bytes} bytes")
    body = await read_capped(request, settings.max_body_bytes)
    if body is None:
        return error(413, f"body is above the limit of {settings.max_body_bytes} bytes")
    try:
        prepared = await run_in_threadpool(prepare, body)
    except Invalid as exc:
        return error(exc.status, f"submission refused ({len(exc.reasons)} reason(s))", exc.reasons)
    try:
        stored = await run_in_threadpool(storage.store_submission, app.engine, prepared, owner)
    except storage.Superseded as exc:
        return error(409, "submission refused (a newer document of this run is stored)", [str(exc)])
    base = base_url(request)
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


def datasets_json(request: Request) -> Response:
    """``/datasets.json``: the data sets with visible results."""
    return JSONResponse({"datasets": storage.datasets(state(request).engine)})


def submissions_json(request: Request) -> Response:
    """``/submissions.json``: visible submissions, newest first, paged by ``limit`` (at most 1000) and ``offset``."""
    engine = state(request).engine
    try:
        limit = query_int(request, "limit", 100, 1000)
        offset = query_int(request, "offset", 0, 10**9)
    except Invalid as exc:
        return error(400, exc.reasons[0], exc.reasons)
    items = storage.list_submissions(engine, limit=limit, offset=offset)
    return JSONResponse(
        {
            "total": storage.count_submissions(engine),
            "limit": limit,
            "offset": offset,
            "submissions": [views.submission_json(s, []) | {"rows": None} for s in items],
        }
    )


def health(request: Request) -> Response:
    """``/healthz``: which worker answered, how many submissions are stored, and the caches' counters."""
    app = state(request)
    return JSONResponse(
        {
            "ok": True,
            "pid": os.getpid(),  # which worker answered (serve --workers N)
            "submissions": storage.count_submissions(app.engine, include_hidden=True),
            "caches": {"reports": app.reports.stats(), "csv": app.csvs.stats()},
        }
    )
