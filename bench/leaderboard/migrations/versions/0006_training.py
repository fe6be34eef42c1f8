"""Training energy of a leaderboard row (issue 15): the gross energy of one training pass (one ``fit`` on the split's
training texts, J, all measured or estimated components summed, mean over the sound cells), its duration (s), each
component's method label, and, where there is no number, the reason (``training_reason``: a zero-shot LLM is not
trained; a run from before the kit metered training). Nullable: rows stored before this revision have none of them
(the page shows a dash and says so).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (
    ("training_energy_j_per_pass", sa.Float),
    ("training_duration_s_per_pass", sa.Float),
    ("training_gpu_method", sa.String(80)),
    ("training_cpu_method", sa.String(80)),
    ("training_ram_method", sa.String(80)),
    ("training_reason", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:  # SQLite alters a table by copying it: batch mode does that
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
