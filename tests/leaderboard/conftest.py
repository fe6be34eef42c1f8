"""Fixtures: a real server over a real SQLite file, with a submitter token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# No importorskip: the leaderboard extra is part of `make setup`, so a missing SQLAlchemy fails these tests.
from bench.leaderboard import storage
from tests.leaderboard.server import Server, running


@dataclass
class Live:
    """A running service, its database engine (for direct checks) and a valid token."""

    server: Server
    engine: Any
    token: str

    @property
    def url(self) -> str:
        return self.server.url


def _live(tmp: Path, **kwargs: Any) -> Iterator[Live]:
    db = tmp / "leaderboard.db"
    engine = storage.make_engine(db)
    storage.upgrade(engine)
    token = storage.create_token(engine, "tester")
    with running(str(db), tmp / "server.log", **kwargs) as server:
        yield Live(server=server, engine=engine, token=token)
    engine.dispose()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """A fresh service per test (no rate limit)."""
    yield from _live(tmp_path)


@pytest.fixture(scope="module")
def shared_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One service for a module's many small requests; body limit 1 MiB so oversized bodies are cheap to send."""
    yield from _live(tmp_path_factory.mktemp("lb"), max_body_mb=1)
