"""``bench submit``: send a run (results.json and report.html) to a leaderboard.

Standard library only (urllib), so submitting needs nothing beyond the core kit. The run is validated here first
with the service's own check (``bench.leaderboard.validate.prepare``, the function the service calls on every
submission), so a broken run is refused with every reason before it leaves the machine.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.leaderboard.errors import LeaderboardError, SubmissionInvalid, SubmissionRejected

TOKEN_ENV = "BENCH_LEADERBOARD_TOKEN"


@dataclass(frozen=True)
class Receipt:
    """The service's answer to an accepted submission."""

    id: int
    url: str
    created: bool
    content_hash: str
    #: the submitter's earlier submissions of the same run this one replaced (a repaired run)
    replaced: tuple[int, ...] = ()
    #: the run's cells flagged for a condition of the machine (accepted, left out of the means)
    flagged_cells: int = 0
    #: the run's id, as the service read it (None from a leaderboard older than the kit)
    run_id: str | None = None


def _envelope(data: Any, report: str | None) -> bytes:
    # ASCII with escapes: a lone surrogate in the file stays encodable, so the checks can name it.
    return json.dumps({"results": data, "report_html": report}, ensure_ascii=True, allow_nan=True).encode()


def check_locally(body: bytes, source: str) -> None:
    """Run the service's own check on ``body``; SubmissionInvalid with every reason if the service would refuse it."""
    from bench.leaderboard.validate import Invalid, prepare

    try:
        prepare(body)
    except Invalid as exc:
        raise SubmissionInvalid(source, exc.reasons) from None


def build_body(run: Path | str) -> bytes:
    """The submission envelope for a run folder (or its results.json): the file as written, and its report.
    Checked locally as the service checks it (SubmissionInvalid with every reason, before anything is sent)."""
    path = Path(run)
    results_path = path / "results.json" if path.is_dir() else path
    try:
        raw = results_path.read_bytes()
    except OSError as exc:
        raise LeaderboardError(f"{results_path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise LeaderboardError(f"{results_path}: not a results.json (not valid JSON: {exc})") from None
    report_path = results_path.parent / "report.html"
    report = report_path.read_text(encoding="utf-8") if report_path.is_file() else None
    body = _envelope(data, report)
    check_locally(body, str(results_path))
    if report is None:  # checked first: rendering needs a valid document
        from bench.report import render_report
        from bench.results import parse_results

        report = render_report(parse_results(data, results_path))
        body = _envelope(data, report)
        check_locally(body, str(results_path))  # the rendered report is stored too (e.g. no NUL in it)
    return body


def _receipt(raw: bytes, url: str, status: int) -> Receipt:
    """The Receipt in an accepted submission's answer; LeaderboardError naming the URL and showing what came back
    when it is not the service's JSON (a proxy's or a login page, another service at that URL)."""
    shown = raw[:200].decode("utf-8", "replace")
    where = f"{url} answered HTTP {status}"
    try:
        answer = json.loads(raw)
    except (ValueError, RecursionError):
        raise LeaderboardError(
            f"{where} with something that is not JSON (a proxy or login page? check --to); it began: {shown!r}"
        ) from None
    keys = ("id", "url", "created", "content_hash")
    missing = [k for k in keys if k not in answer] if isinstance(answer, dict) else list(keys)
    if missing:
        raise LeaderboardError(
            f"{where} without {', '.join(missing)} (is --to a bench leaderboard?); it began: {shown!r}"
        )
    try:
        return Receipt(
            id=int(answer["id"]),
            url=str(answer["url"]),
            created=bool(answer["created"]),
            content_hash=str(answer["content_hash"]),
            # absent from a leaderboard older than the kit: nothing replaced, nothing said about flags
            replaced=tuple(int(i) for i in answer.get("replaced") or []),
            flagged_cells=int(answer.get("flagged_cells") or 0),
            run_id=str(answer["run_id"]) if answer.get("run_id") is not None else None,
        )
    except (TypeError, ValueError):
        raise LeaderboardError(f"{where} with an id that is not a number; it began: {shown!r}") from None


def submit(run: Path | str, to: str, token: str, *, timeout_s: float = 120.0) -> Receipt:
    """POST the run to the leaderboard at ``to``; a Receipt, or SubmissionRejected with every reason."""
    if not to.startswith(("http://", "https://")):
        raise LeaderboardError(f"--to {to!r}: give the leaderboard's URL, e.g. https://leaderboard.example.org")
    if not token:
        raise LeaderboardError(f"no token: pass --token T or set ${TOKEN_ENV} (the leaderboard's admin issues them)")
    body = build_body(run)
    endpoint = to.rstrip("/") + "/api/v1/submissions"
    request = urllib.request.Request(
        endpoint,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # http(s) only: checked above
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read())
            reasons = [str(r) for r in detail.get("reasons") or [detail.get("error", exc.reason)]]
        except (ValueError, AttributeError):
            reasons = [str(exc.reason)]
        raise SubmissionRejected(exc.code, reasons) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LeaderboardError(f"cannot reach the leaderboard at {to}: {reason}") from None
    return _receipt(raw, endpoint, status)
