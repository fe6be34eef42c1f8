"""Flagged cells and repaired runs (issue 22).

- ``results.n_flagged``: the row's ok cells flagged for a condition of the machine during their window (other
  processes, throttling, a temperature out of range): counted in ``n_ok``, their energy and duration left out of the
  row's means. 0 for rows stored before this revision: the leaderboard then refused any run with such a cell.
- ``submissions.n_flagged`` and ``submissions.n_repairs``: the run's flagged cells and its redo sessions
  (``ResultDocument.repairs``); 0 for submissions stored before.
- ``submissions.run_created_at`` and ``run_updated_at``: the document's ``created_at`` and ``updated_at``, which
  tell a repaired document of a run (same run id, same submitter, same ``created_at``, later ``updated_at``) from
  another run of the same name. Filled from each stored document by the upgrade.
- ``submissions.replaced_by``: the id of the submission that replaced this one (a repaired run of the same run by
  the same submitter); None while it is current. A replaced submission is kept, and left out of every list, count
  and ranking (its rows' ``hidden`` copy is set, as for a hidden one).
- ``ix_submissions_token``: the submitter's earlier submissions are looked up on every submission.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SUBMISSION_COLUMNS = (
    ("n_flagged", sa.Integer, False),
    ("n_repairs", sa.Integer, False),
    ("run_created_at", sa.String(40), True),
    ("run_updated_at", sa.String(40), True),
    ("replaced_by", sa.Integer, True),
)


def _timestamps(document: str) -> tuple[str | None, str | None]:
    """A stored document's ``created_at`` and ``updated_at`` (None where absent or not text; at most 40 characters,
    the column's size: longer ones are not a time this kit wrote)."""
    try:
        data = json.loads(document)
    except ValueError:
        return None, None
    out = []
    for key in ("created_at", "updated_at"):
        value = data.get(key) if isinstance(data, dict) else None
        out.append(value if isinstance(value, str) and len(value) <= 40 and "\x00" not in value else None)
    return out[0], out[1]


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:  # SQLite alters a table by copying it: batch mode does that
        batch.add_column(sa.Column("n_flagged", sa.Integer, nullable=False, server_default="0"))
    # Not in batch mode: submissions is the parent of results (ON DELETE CASCADE), and SQLite's batch mode would copy
    # it and drop the original, which deletes every row of results. ADD COLUMN and DROP COLUMN (SQLite 3.35 on) need
    # no copy.
    for name, kind, nullable in SUBMISSION_COLUMNS:
        op.add_column("submissions", sa.Column(name, kind, nullable=nullable, server_default=None if nullable else "0"))
    op.create_index("ix_submissions_token", "submissions", ["token_id"])
    # Every stored document's times, one document at a time (a paper-sized one is about 5 MB).
    connection = op.get_bind()
    table = sa.table(
        "submissions",
        sa.column("id", sa.Integer),
        sa.column("document", sa.Text),
        sa.column("run_created_at", sa.String),
        sa.column("run_updated_at", sa.String),
    )
    ids = connection.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()
    for submission in ids:
        document = connection.execute(sa.select(table.c.document).where(table.c.id == submission)).scalar_one()
        created, updated = _timestamps(document)
        connection.execute(
            table.update().where(table.c.id == submission).values(run_created_at=created, run_updated_at=updated)
        )


def downgrade() -> None:
    # Before this revision every submission counted: a replaced one's rows follow its own hidden flag again.
    results = sa.table("results", sa.column("submission_id", sa.Integer), sa.column("hidden", sa.Boolean))
    submissions = sa.table(
        "submissions",
        sa.column("id", sa.Integer),
        sa.column("hidden", sa.Boolean),
        sa.column("replaced_by", sa.Integer),
    )
    own = sa.select(submissions.c.hidden).where(submissions.c.id == results.c.submission_id).scalar_subquery()
    replaced = sa.select(submissions.c.id).where(submissions.c.replaced_by.is_not(None))
    op.get_bind().execute(results.update().where(results.c.submission_id.in_(replaced)).values(hidden=own))
    op.drop_index("ix_submissions_token", table_name="submissions")
    for name, _, _ in reversed(SUBMISSION_COLUMNS):
        op.drop_column("submissions", name)  # not in batch mode: see upgrade
    with op.batch_alter_table("results") as batch:
        batch.drop_column("n_flagged")
