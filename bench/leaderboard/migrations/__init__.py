"""Alembic migration environment of the leaderboard database (run programmatically by ``storage.upgrade``)."""
