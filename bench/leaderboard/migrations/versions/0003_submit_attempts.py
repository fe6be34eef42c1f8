"""Submission attempts per token, for a rate limit that every worker process shares: the window of recent attempts
lives in the database, not in one process's memory, so `bench leaderboard serve --workers N` limits a token to the
same number per minute however many processes answer it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submit_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=False),
        sa.Column("at_s", sa.Float, nullable=False),
    )
    op.create_index("ix_submit_attempts_token_at", "submit_attempts", ["token_id", "at_s"])


def downgrade() -> None:
    op.drop_index("ix_submit_attempts_token_at", table_name="submit_attempts")
    op.drop_table("submit_attempts")
