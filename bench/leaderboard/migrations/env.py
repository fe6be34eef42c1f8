"""Alembic environment: runs on the connection ``storage.upgrade`` passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from bench.leaderboard.storage import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the kit always passes a connection
    raise RuntimeError("run migrations through bench.leaderboard.storage.upgrade (or `bench leaderboard migrate`)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
