"""Errors of the leaderboard (service configuration, database, submission client)."""

from __future__ import annotations

from bench.errors import BenchError


class LeaderboardError(BenchError):
    """The leaderboard database or service cannot be used as asked (wrong URL, schema too new, unknown token)."""


class SubmissionRejected(BenchError):
    """The service refused a submission; ``reasons`` lists every reason it gave."""

    def __init__(self, status: int, reasons: list[str]) -> None:
        self.status = status
        self.reasons = reasons
        super().__init__(
            f"the leaderboard refused the submission (HTTP {status}):\n" + "\n".join(f"  - {r}" for r in reasons)
        )


class SubmissionInvalid(LeaderboardError):
    """``bench submit`` ran the service's own checks locally and the run fails them: nothing was sent."""

    def __init__(self, source: str, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(
            f"{source}: not sent; the leaderboard would refuse it ({len(reasons)} reason(s)):\n"
            + "\n".join(f"  - {r}" for r in reasons)
        )
