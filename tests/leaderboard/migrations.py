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


def insert_stored(
    engine: sa.engine.Engine, tables: dict[str, sa.Table], values: dict[str, Any], rows: list[dict[str, Any]]
) -> int:
    """Store one submission (``values``) and its result ``rows`` through the reflected ``tables`` of a database at an
    older revision (only the columns that revision has), as a service of that revision stored them; its new id."""
    with engine.begin() as connection:
        new_id = connection.execute(
            tables["submissions"].insert().values(**{k: v for k, v in values.items() if k in tables["submissions"].c})
        ).inserted_primary_key[0]
        copies = {"submission_id": new_id, "hidden": False, "hardware_profile": "cpu", "gpu_model": "none"}
        connection.execute(
            tables["results"].insert(),
            [{k: v for k, v in dict(r, **copies).items() if k in tables["results"].c} for r in rows],
        )
    return int(new_id)
