"""Comparability columns of a leaderboard row (issue 16): the run's machine index (``bench.calibration``: its
reference workload and gross J per reference unit), energy per text divided by it, and the derived CO2e per 1,000
texts with the grid intensity and its source (``bench.derived``). Nullable: rows stored before this revision, and
runs that record no calibration or grid, have none (the page shows a dash).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("calibration_reference", sa.String(80)),
    ("calibration_j_per_unit", sa.Float),
    ("j_per_text_per_index", sa.Float),
    ("gco2e_per_1000_texts", sa.Float),
    ("grid_intensity_gco2e_per_kwh", sa.Float),
    ("grid_source", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:  # SQLite alters a table by copying it: batch mode does that
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
