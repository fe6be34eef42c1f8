"""Warnings about models, failed models, and a user's data keyed by its data (issue 24).

- ``results.warnings``: the warnings a row shows (JSON list): a model that predicted one class for every text of a
  test split that holds several (``bench.analysis.model_warnings``), and the run's warnings of a test class absent
  from training (``bench.data.classes``). They describe the model and the data, not the machine.
- ``results.failure``: what the row's failed cells failed with (``validate.failure_summary``).
- A model whose every cell failed is a row with ``n_ok`` 0 (before: left out, so its data set's page did not say
  it failed). The upgrade adds those rows for the submissions stored before it.
- ``results.dataset_label_names``: the label names the row's run gave its data set (JSON list). A user's file is
  keyed by its data (``validate.data_key``: the file's sha256 and how it was read), no longer by a content hash that
  covers the label names, so one file run with and without ``--label-names`` is one data set; the upgrade re-keys
  the user rows stored before it. Catalog data sets keep their names.

The upgrade fills every stored submission's rows from its stored document with the kit's own functions (what a new
submission gets): one document at a time (a paper-sized one is about 5 MB). A document the kit cannot read any more
keeps its rows as they were (warnings NULL: not computed). Every row is kept; the downgrade removes only the rows of
failed models (which the earlier schema never held) and gives user rows their earlier key back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = (("dataset_label_names", sa.Text), ("warnings", sa.Text), ("failure", sa.Text))
log = logging.getLogger("bench.leaderboard")


def _tables(connection: Any) -> tuple[Any, Any]:
    """The two tables with the columns the database has now (read from it, so the rows inserted for failed models
    hold no column of a later revision); indexes are not read (SQLite's expression indexes cannot be)."""
    inspector = sa.inspect(connection)
    return tuple(  # type: ignore[return-value]
        sa.table(name, *(sa.column(c["name"]) for c in inspector.get_columns(name)))
        for name in ("submissions", "results")
    )


def _name(row: Any) -> str:
    """The data set's name in the document: a user row's key is ``name@<12 hex>``."""
    return row.dataset.rsplit("@", 1)[0] if row.dataset_source == "user" else row.dataset


def _document_rows(document: str) -> dict[tuple[str, str], dict[str, Any]] | None:
    """A stored document's rows as a new submission gets them, by (the data set's name in the document, model); None
    where the kit cannot read the document any more."""
    from bench.leaderboard.validate import dataset_columns, rows
    from bench.results import parse_results

    try:
        doc = parse_results(json.loads(document), "stored submission", check_hash=False)
        keys = {dataset_columns(doc, name)["dataset"]: name for name in doc.datasets}
        return {(keys.get(r["dataset"], r["dataset"]), r["model"]): r for r in rows(doc)}
    except Exception as exc:  # an old document this kit refuses: its rows stay as they were
        log.warning(
            "revision 0008: a stored document could not be read (%s: %s); its rows are kept as they were",
            type(exc).__name__,
            exc,
        )
        return None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:  # SQLite alters a table by copying it: batch mode does that
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    connection = op.get_bind()
    submissions, results = _tables(connection)
    ids = connection.execute(sa.select(submissions.c.id).order_by(submissions.c.id)).scalars().all()
    for submission in ids:
        stored = connection.execute(sa.select(submissions).where(submissions.c.id == submission)).one()
        fresh = _document_rows(stored.document)
        if fresh is None:
            continue
        existing = connection.execute(sa.select(results).where(results.c.submission_id == submission)).all()
        seen = set()
        for row in existing:
            key = (_name(row), row.model)
            new = fresh.get(key)
            if new is None:
                continue
            seen.add(key)
            values = {k: new.get(k) for k in ("dataset_label_names", "warnings", "failure")}
            if row.dataset_source == "user":
                values.update(dataset=new["dataset"], dataset_sha256=new.get("dataset_sha256"))
            connection.execute(results.update().where(results.c.id == row.id).values(**values))
        copies = {
            "submission_id": submission,
            "hidden": bool(stored.hidden) or stored.replaced_by is not None,
            "hardware_profile": stored.hardware_profile,
            "gpu_model": stored.gpu_model,
        }
        failed = [
            {k: v for k, v in dict(new, **copies).items() if k in results.c}
            for key, new in fresh.items()
            if key not in seen and new["n_ok"] == 0
        ]
        if failed:
            connection.execute(results.insert(), failed)
    connection.execute(sa.text("UPDATE data_version SET version = version + 1 WHERE id = 1"))


def downgrade() -> None:
    connection = op.get_bind()
    submissions, results = _tables(connection)
    connection.execute(results.delete().where(results.c.n_ok == 0))  # failed models: no row before this revision
    user = connection.execute(
        sa.select(results.c.id, results.c.submission_id, results.c.dataset, results.c.dataset_source).where(
            results.c.dataset_source == "user"
        )
    ).all()
    documents: dict[int, Any] = {}
    for row in user:
        if row.submission_id not in documents:
            text = connection.execute(
                sa.select(submissions.c.document).where(submissions.c.id == row.submission_id)
            ).scalar_one()
            try:
                documents[row.submission_id] = json.loads(text)
            except ValueError:
                documents[row.submission_id] = None
        data = documents[row.submission_id]
        record = (data.get("datasets") or {}).get(_name(row)) if isinstance(data, dict) else None
        content = ((record or {}).get("pin") or {}).get("content_sha256") if isinstance(record, dict) else None
        if isinstance(content, str) and content:  # the earlier key: name@<12 hex of the content sha256>
            connection.execute(
                results.update()
                .where(results.c.id == row.id)
                .values(dataset=f"{_name(row)}@{content[:12]}", dataset_sha256=content)
            )
    with op.batch_alter_table("results") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
    connection.execute(sa.text("UPDATE data_version SET version = version + 1 WHERE id = 1"))
