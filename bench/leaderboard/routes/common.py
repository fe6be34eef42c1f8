"""What every route of the leaderboard shares: the service's state (``State``, kept in ``app.state`` by
``service.create_app``), the JSON error answer, query-integer parsing, the bearer token, the capped body, the base URL
answers name, and the content security policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from bench.leaderboard.validate import Invalid

#: Pages: nothing but the page itself and inline styles; forms post back to this site only.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
#: The report HTML a submitter sent is shown as a sandboxed document: no scripts, no same-origin access.
SANDBOX_CSP = PAGE_CSP + "; sandbox"


@dataclass(frozen=True)
class State:
    """The service's state, shared by its routes: the database engine, the settings (``service.Settings``) and the
    two render caches (``service.RenderCache``: reports by submission id, CSVs by data version)."""

    engine: Any
    settings: Any
    reports: Any
    csvs: Any


def state(request: Request) -> State:
    """The ``State`` of the app that received ``request``."""
    return request.app.state.bench


def error(status: int, message: str, reasons: list[str] | None = None, headers: dict[str, str] | None = None) -> Any:
    """A JSON error answer: ``{"error": message, "reasons": [...]}`` (the message alone when no reasons)."""
    return JSONResponse({"error": message, "reasons": reasons or [message]}, status_code=status, headers=headers)


def query_int(request: Request, name: str, default: int, maximum: int) -> int:
    """Query parameter ``name`` as a non-negative integer capped at ``maximum`` (``default`` when absent or empty).
    Raises ``Invalid(400)`` naming the parameter when it is not digits."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise Invalid(400, [f"query parameter {name}={raw!r} must be a non-negative integer"])
    return min(int(raw), maximum)


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` bytes (never more than limit + one chunk in memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without one."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def base_url(request: Request) -> str:
    """The URL answers name, with a trailing slash: the settings' public URL, else the one the request came to."""
    return (state(request).settings.public_url or str(request.base_url)).rstrip("/") + "/"
