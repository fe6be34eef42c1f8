"""Helpers of the tests that walk the leaderboard's Alembic revisions: migrate a database to a revision, read a
table back."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bench.leaderboard import storage


def migrate(engine: sa.engine.Engine, target: str, *, down: bool = False) -> None:
    """Upgrade (or, ``down``, downgrade) the database of ``engine`` to Alembic revision ``target``."""
    from alembic import command

    with engine.begin() as connection:
        config = storage._alembic_config(connection)
        (command.downgrade if down else command.upgrade)(config, target)


def table(engine: sa.engine.Engine, name: str) -> list[dict[str, Any]]:
    """Every row of table ``name``, ordered by id, as dicts."""
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(sa.text(f"SELECT * FROM {name} ORDER BY id"))]
