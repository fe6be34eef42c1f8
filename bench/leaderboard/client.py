"""``bench submit``: send a run (results.json and report.html) to a leaderboard.

Standard library only (urllib), so submitting needs nothing beyond the core kit. The run is validated here first
(the same checks the service runs), so a broken run is refused before it leaves the machine.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.leaderboard.errors import LeaderboardError, SubmissionRejected

TOKEN_ENV = "BENCH_LEADERBOARD_TOKEN"


@dataclass(frozen=True)
class Receipt:
    """The service's answer to an accepted submission."""

    id: int
    url: str
    created: bool
    content_hash: str


def build_body(run: Path | str) -> bytes:
    """The submission envelope for a run folder (or its results.json): the file as written, and its report."""
    from bench.results import load_results

    path = Path(run)
    results_path = path / "results.json" if path.is_dir() else path
    load_results(results_path)  # schema and hash, locally: fail before sending
    data = json.loads(results_path.read_bytes())
    report_path = results_path.parent / "report.html"
    report = report_path.read_text(encoding="utf-8") if report_path.is_file() else None
    if report is None:
        from bench.report.render import render_report
        from bench.results import parse_results

        report = render_report(parse_results(data, results_path))
    return json.dumps({"results": data, "report_html": report}, ensure_ascii=False, allow_nan=False).encode()


def submit(run: Path | str, to: str, token: str, *, timeout_s: float = 120.0) -> Receipt:
    """POST the run to the leaderboard at ``to``; a Receipt, or SubmissionRejected with every reason."""
    if not to.startswith(("http://", "https://")):
        raise LeaderboardError(f"--to {to!r}: give the leaderboard's URL, e.g. https://leaderboard.example.org")
    if not token:
        raise LeaderboardError(f"no token: pass --token T or set ${TOKEN_ENV} (the leaderboard's admin issues them)")
    body = build_body(run)
    request = urllib.request.Request(
        to.rstrip("/") + "/api/v1/submissions",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # http(s) only: checked above
            answer: dict[str, Any] = json.loads(response.read())
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
    return Receipt(
        id=int(answer["id"]),
        url=str(answer["url"]),
        created=bool(answer["created"]),
        content_hash=str(answer["content_hash"]),
    )
