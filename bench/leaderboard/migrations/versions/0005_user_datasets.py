"""Where a row's data set comes from (issue 13): ``dataset_source`` is 'catalog' for the kit's data sets and 'user'
for a user's own file, stored under ``name@<12 hex of its content sha256>`` with the full hash, its rows and classes
(``bench.leaderboard.validate.dataset_columns``), never its texts. Nullable: rows stored before this revision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("dataset_source", sa.String(20)),
    ("dataset_sha256", sa.String(64)),
    ("dataset_rows", sa.Integer),
    ("dataset_classes", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:  # SQLite alters a table by copying it: batch mode does that
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
