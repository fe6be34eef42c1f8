"""Initial schema: submissions (one per content hash), their per-(dataset, model) rows, submitter tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("revoked_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("content_hash", sa.String(80), nullable=False),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("submitted_at", sa.String(40), nullable=False),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=True),
        sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("hidden_reason", sa.Text, nullable=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("kit_version", sa.String(40), nullable=False),
        sa.Column("hardware_profile", sa.Text, nullable=False),
        sa.Column("gpu_model", sa.Text, nullable=False),
        sa.Column("gpu_count", sa.Integer, nullable=False),
        sa.Column("cpu_model", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("document_bytes", sa.Integer, nullable=False),
        sa.Column("report_html", sa.Text, nullable=True),
        sa.UniqueConstraint("content_hash", name="uq_submissions_content_hash"),
    )
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("paper_label", sa.Text, nullable=True),
        sa.Column("model_kind", sa.String(40), nullable=False),
        sa.Column("model_family", sa.String(100), nullable=False),
        sa.Column("n_ok", sa.Integer, nullable=False),
        sa.Column("n_failed", sa.Integer, nullable=False),
        sa.Column("n_test", sa.Float, nullable=True),
        sa.Column("accuracy", sa.Float, nullable=True),
        sa.Column("accuracy_ci95_low", sa.Float, nullable=True),
        sa.Column("accuracy_ci95_high", sa.Float, nullable=True),
        sa.Column("energy_j_per_pass", sa.Float, nullable=True),
        sa.Column("duration_s_per_pass", sa.Float, nullable=True),
        sa.Column("j_per_text", sa.Float, nullable=True),
        sa.Column("wh_per_1000_texts", sa.Float, nullable=True),
        sa.Column("j_per_correct", sa.Float, nullable=True),
        sa.Column("gpu_method", sa.String(80), nullable=True),
        sa.Column("cpu_method", sa.String(80), nullable=True),
        sa.Column("ram_method", sa.String(80), nullable=True),
        sa.Column("method_class", sa.String(20), nullable=False),
        # Copies of the submission's columns the leaderboard filters on, so its queries read one table through one
        # index (set_hidden updates both tables in one transaction).
        sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("hardware_profile", sa.Text, nullable=False),
        sa.Column("gpu_model", sa.Text, nullable=False),
    )
    # One index per sort order, in the order the leaderboard asks for (missing values last), so a page of the
    # first 100 of 40,000 rows is read from the index instead of sorted.
    results = sa.table(
        "results",
        sa.column("dataset"),
        sa.column("hidden"),
        sa.column("accuracy"),
        sa.column("j_per_text"),
        sa.column("j_per_correct"),
    )
    c = results.c
    op.create_index("ix_results_by_accuracy", "results", [c.dataset, c.hidden, c.accuracy.is_(None), c.accuracy.desc()])
    op.create_index("ix_results_by_j_per_text", "results", [c.dataset, c.hidden, c.j_per_text.is_(None), c.j_per_text])
    op.create_index(
        "ix_results_by_j_per_correct", "results", [c.dataset, c.hidden, c.j_per_correct.is_(None), c.j_per_correct]
    )
    # Covers the filters: counts of a filtered view and the filter options (grouped in index order) read only it.
    op.create_index(
        "ix_results_filters",
        "results",
        [
            "dataset",
            "hidden",
            "hardware_profile",
            "gpu_model",
            "model_family",
            "method_class",
            "gpu_method",
            "cpu_method",
            "ram_method",
        ],
    )
    op.create_index("ix_results_submission", "results", ["submission_id"])
    op.create_index("ix_submissions_hidden", "submissions", ["hidden"])


def downgrade() -> None:
    op.drop_table("results")
    op.drop_table("submissions")
    op.drop_table("tokens")
