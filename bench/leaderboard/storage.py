"""Leaderboard storage: SQLAlchemy Core tables, Alembic migrations, and one transaction per write.

SQLite (a file, the default) or PostgreSQL (by URL, through psycopg 3). The schema is owned by the Alembic
revisions in ``migrations/versions``; ``metadata`` below mirrors it for queries (a test checks they agree).

Why the writes look the way they do:
- a submission (its document and all its rows) is inserted in one transaction, so a server killed mid-write leaves
  either all of it or nothing; SQLite runs in WAL mode with ``synchronous=FULL`` so an answered submission survives
  a crash of the process (and of the machine);
- idempotency rests on the unique constraint on ``content_hash``, not on a check-then-insert: two identical
  submissions racing each other both try to insert, the database lets one win, the other gets IntegrityError and
  answers with the winner's id;
- SQLite write transactions start with ``BEGIN IMMEDIATE`` (take the write lock first), so two concurrent writers
  queue on ``busy_timeout`` instead of failing with SQLITE_BUSY when a read transaction upgrades to a write;
- a repaired run replaces its earlier submission (``store_submission``): same run id, same submitter (token), same
  ``created_at`` of the document, later ``updated_at``. The earlier one is kept with ``replaced_by`` set and its rows'
  ``hidden`` copy set, so it counts nowhere; the lookup and the insert share one write transaction, serialized per
  token (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT ... FOR UPDATE`` on the token's row).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.fsutil import now_iso
from bench.leaderboard.errors import LeaderboardError

# Prepared lives with the checks that make it (validate needs no SQLAlchemy: `bench submit` runs them locally).
from bench.leaderboard.validate import Prepared

DEFAULT_DB = "leaderboard.db"
DB_ENV = "BENCH_LEADERBOARD_DB"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: How long a SQLite writer waits for the write lock before giving up (concurrent submissions queue on it).
SQLITE_BUSY_TIMEOUT_MS = 30_000
TOKEN_PREFIX = "blb_"

metadata = sa.MetaData()

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40), nullable=True),
)

submissions = sa.Table(
    "submissions",
    metadata,
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
    # Flags and repairs (migration 0007): the run's flagged cells and redo sessions; the document's created_at and
    # updated_at (which submission of a run is the newer); the submission that replaced this one (None: current).
    sa.Column("n_flagged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("n_repairs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("run_created_at", sa.String(40), nullable=True),
    sa.Column("run_updated_at", sa.String(40), nullable=True),
    sa.Column("replaced_by", sa.Integer, nullable=True),
    sa.UniqueConstraint("content_hash", name="uq_submissions_content_hash"),
    sa.Index("ix_submissions_hidden", "hidden"),
    sa.Index("ix_submissions_token", "token_id"),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("paper_label", sa.Text, nullable=True),
    sa.Column("model_kind", sa.String(40), nullable=False),
    sa.Column("model_family", sa.String(100), nullable=False),
    sa.Column("n_ok", sa.Integer, nullable=False),
    sa.Column("n_failed", sa.Integer, nullable=False),
    # Ok cells flagged for a condition of the machine (migration 0007; 0 before it): counted in n_ok, their energy
    # and duration left out of the row's means.
    sa.Column("n_flagged", sa.Integer, nullable=False, server_default="0"),
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
    # Comparability (migration 0004; None for rows stored before it and for runs that do not record them): the run's
    # machine index (bench.calibration) and what per-text energy is in its units, and the derived CO2e (bench.derived).
    sa.Column("calibration_reference", sa.String(80), nullable=True),
    sa.Column("calibration_j_per_unit", sa.Float, nullable=True),
    sa.Column("j_per_text_per_index", sa.Float, nullable=True),
    sa.Column("gco2e_per_1000_texts", sa.Float, nullable=True),
    sa.Column("grid_intensity_gco2e_per_kwh", sa.Float, nullable=True),
    sa.Column("grid_source", sa.Text, nullable=True),
    # The data set's origin (migration 0005): 'catalog', or 'user' for a user's own file with its content hash, rows
    # and classes (``validate.dataset_columns``); None for rows stored before it.
    sa.Column("dataset_source", sa.String(20), nullable=True),
    sa.Column("dataset_sha256", sa.String(64), nullable=True),
    sa.Column("dataset_rows", sa.Integer, nullable=True),
    sa.Column("dataset_classes", sa.Integer, nullable=True),
    # Training (migration 0006): one training pass (one fit on the split's training texts), gross J over every
    # measured or estimated component and s, mean over the sound cells, with each component's method label; where
    # there is no number, ``training_reason`` says why (a zero-shot LLM is not trained). None for rows stored before it.
    sa.Column("training_energy_j_per_pass", sa.Float, nullable=True),
    sa.Column("training_duration_s_per_pass", sa.Float, nullable=True),
    sa.Column("training_gpu_method", sa.String(80), nullable=True),
    sa.Column("training_cpu_method", sa.String(80), nullable=True),
    sa.Column("training_ram_method", sa.String(80), nullable=True),
    sa.Column("training_reason", sa.Text, nullable=True),
    # Warnings and failures (migration 0008): the label names the row's run gave its data set (JSON list; a user's file
    # is keyed by its data, not its names, so one page can hold several namings), the warnings about the model
    # (JSON list: one class predicted for every text, a test class absent from training; ``validate.row_warnings``)
    # and what its failed cells failed with (``validate.failure_summary``). A model whose every cell failed is a row
    # with ``n_ok`` 0 from this revision on.
    sa.Column("dataset_label_names", sa.Text, nullable=True),
    sa.Column("warnings", sa.Text, nullable=True),
    sa.Column("failure", sa.Text, nullable=True),
    # Copies of the submission's filter columns (see the migration): the leaderboard reads one table. ``hidden``:
    # the submission is hidden or replaced (``replaced_by``): either way the row is left out of every list.
    sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("hardware_profile", sa.Text, nullable=False),
    sa.Column("gpu_model", sa.Text, nullable=False),
    sa.Index("ix_results_submission", "submission_id"),
)
# The sort indexes (expressions: missing values last) live in the migration; queries order exactly as they do.

#: One row (id 1): bumped in the transaction of every insert and hide/unhide, read by the service's caches.
data_version = sa.Table(
    "data_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
)

#: Recent submission attempts per token (epoch seconds): the rate limit's window, shared by every worker process.
submit_attempts = sa.Table(
    "submit_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("at_s", sa.Float, nullable=False),
    sa.Index("ix_submit_attempts_token_at", "token_id", "at_s"),
)

#: Columns a submission contributes besides its rows (filled by ``bench.leaderboard.validate``).
SUBMISSION_FIELDS = (
    "content_hash",
    "run_id",
    "schema_version",
    "kit_version",
    "hardware_profile",
    "gpu_model",
    "gpu_count",
    "cpu_model",
    "document",
    "report_html",
    "n_flagged",
    "n_repairs",
    "run_created_at",
    "run_updated_at",
)
RESULT_FIELDS = tuple(
    c.name for c in results.columns if c.name not in ("id", "submission_id", "hidden", "hardware_profile", "gpu_model")
)


# --- engine ---------------------------------------------------------------------------------------------------------


def resolve_url(db: str | os.PathLike[str] | None = None) -> str:
    """A SQLAlchemy URL from ``db``: a URL as given, a path as an SQLite file; default $BENCH_LEADERBOARD_DB or
    ./leaderboard.db. ``postgresql://`` URLs get the psycopg 3 driver (SQLAlchemy would pick psycopg2)."""
    value = str(db) if db else os.environ.get(DB_ENV) or DEFAULT_DB
    if "://" not in value:
        return "sqlite:///" + str(Path(value).expanduser().resolve())
    if value.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


def make_engine(db: str | os.PathLike[str] | None = None) -> Engine:
    """An engine for ``db`` (see ``resolve_url``), with SQLite set up for concurrent, durable writes."""
    url = resolve_url(db)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise LeaderboardError(f"database URL {url!r} is not valid: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise LeaderboardError("the leaderboard needs an SQLite file (a path or sqlite:///path), not memory")
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise LeaderboardError(f"database folder {folder} does not exist; create it or pass another --db")
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _sqlite_setup(engine)
        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except ModuleNotFoundError as exc:  # e.g. psycopg not installed
        from bench.extras import install_hint

        raise LeaderboardError(
            f"database URL {parsed.render_as_string(hide_password=True)}: driver missing ({exc.name}); "
            f"{install_hint(exc.name or 'psycopg')}"
        ) from None


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would BEGIN lazily and defeat BEGIN IMMEDIATE: turn it off and emit
        # BEGIN ourselves (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("write", False):
            # Per transaction (pooled connections keep pragmas): FULL fsyncs the WAL at commit; NORMAL leaves it to
            # the next checkpoint or durable commit, for rows whose loss in a power cut harms nothing.
            connection.exec_driver_sql(f"PRAGMA synchronous={'FULL' if options.get('durable', True) else 'NORMAL'}")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def _write(engine: Engine, *, durable: bool = True) -> Any:
    """A connection whose transaction takes the write lock at BEGIN (SQLite); plain on other databases.

    ``durable=False``: the commit returns before the write reaches the disk (SQLite ``synchronous=NORMAL``;
    PostgreSQL ``synchronous_commit=off``, set by the caller inside its transaction); still atomic and consistent."""
    return engine.connect().execution_options(write=True, durable=durable)


# --- migrations -----------------------------------------------------------------------------------------------------


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration this kit ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: not initialized)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the database to the newest schema (creating it if empty); refuse a database newer than this kit."""
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    try:
        current = current_revision(engine)
    except sa.exc.OperationalError as exc:
        raise LeaderboardError(f"cannot open the leaderboard database {_show(engine)}: {exc.orig}") from None
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise LeaderboardError(
            f"database {_show(engine)} is at schema revision {current!r}, which this kit does not know (it knows up "
            f"to {script.get_current_head()!r}): it was created by a newer bench. Upgrade bench, or use another --db."
        )
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return script.get_current_head() or ""


def require_current(engine: Engine) -> None:
    """Refuse to serve a database whose schema is not the newest (``serve --no-upgrade``)."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise LeaderboardError(
            f"database {_show(engine)} is at schema revision {current or 'none (empty)'}, this kit needs {head}; "
            "run `bench leaderboard migrate --db ...` (or serve without --no-upgrade)"
        )


def _show(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# --- tokens ---------------------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    """sha256 hex of a token: the only form a token is stored in."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, name: str) -> str:
    """Create a submitter token named ``name`` and return it (shown once; only its hash is stored)."""
    if not name or len(name) > 200:
        raise LeaderboardError("a token needs a name of 1 to 200 characters (who it is for)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with _write(engine) as connection, connection.begin():
            connection.execute(tokens.insert().values(name=name, token_sha256=token_hash(token), created_at=now_iso()))
    except sa.exc.IntegrityError:
        raise LeaderboardError(f"a token named {name!r} exists already; pick another name or revoke it") from None
    return token


def revoke_token(engine: Engine, name: str) -> None:
    """Revoke the token named ``name`` (kept for the record of who submitted what)."""
    with _write(engine) as connection, connection.begin():
        done = connection.execute(
            tokens.update().where(tokens.c.name == name, tokens.c.revoked_at.is_(None)).values(revoked_at=now_iso())
        )
    if done.rowcount != 1:
        known = list_tokens(engine)
        names = ", ".join(t["name"] for t in known if t["revoked_at"] is None) or "none"
        raise LeaderboardError(f"no active token named {name!r} (active tokens: {names})")


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    """Every token's name, creation and revocation time (never the token)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(tokens.c.id, tokens.c.name, tokens.c.created_at, tokens.c.revoked_at).order_by(tokens.c.id)
        )
        return [dict(r._mapping) for r in rows]


def token_id(engine: Engine, token: str) -> int | None:
    """The id of an active token, or None (unknown or revoked)."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(tokens.c.id).where(tokens.c.token_sha256 == token_hash(token), tokens.c.revoked_at.is_(None))
        ).scalar_one_or_none()


def take_submit_slot(
    engine: Engine, token: int, per_minute: int, window_s: float = 60.0, now_s: float | None = None
) -> float | None:
    """Count one submission attempt of ``token`` if fewer than ``per_minute`` fell in the last ``window_s``.

    Returns None when allowed (and counted), else the seconds until the oldest attempt in the window ages out. The
    check and the insert share one write transaction, serialized per token (SQLite: ``BEGIN IMMEDIATE``, one writer;
    PostgreSQL: ``SELECT ... FOR UPDATE`` on the token's row), so concurrent workers can never both take the last
    slot. Wall-clock time, because the processes sharing the window share no monotonic clock.
    """
    if per_minute <= 0:
        return None
    now = time.time() if now_s is None else now_s
    # Not durable: a power cut forgets the last minute's attempts at worst, while an fsync per attempt would double
    # the fsyncs of every submission.
    with _write(engine, durable=False) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        connection.execute(sa.select(tokens.c.id).where(tokens.c.id == token).with_for_update())
        # Attempts older than the window say nothing any more: prune this token's (the table stays small).
        stale = sa.and_(submit_attempts.c.token_id == token, submit_attempts.c.at_s <= now - window_s)
        connection.execute(submit_attempts.delete().where(stale))
        recent = (
            connection.execute(
                sa.select(submit_attempts.c.at_s)
                .where(submit_attempts.c.token_id == token)
                .order_by(submit_attempts.c.at_s)
            )
            .scalars()
            .all()
        )
        if len(recent) >= per_minute:
            # The slot frees when the attempt per_minute-th from the end ages out.
            return max(0.0, window_s - (now - recent[len(recent) - per_minute]))
        connection.execute(submit_attempts.insert().values(token_id=token, at_s=now))
    return None


# --- submissions ----------------------------------------------------------------------------------------------------


class Superseded(LeaderboardError):
    """A document older than the one of the same run the same submitter stored already (``store_submission``)."""

    def __init__(self, existing: int, run_id: str, stored_at: str, sent_at: str) -> None:
        super().__init__(
            f"submission {existing} holds a newer document of run {run_id!r} from this submitter (updated_at "
            f"{stored_at}; this one: {sent_at}); nothing stored. Submit the run's current results.json"
        )
        self.existing = existing


@dataclass(frozen=True)
class Stored:
    """What ``store_submission`` did: the submission's id, whether it was created (False: the same content hash was
    stored before, nothing written), and the ids of the earlier submissions it replaced (a repaired run)."""

    id: int
    created: bool
    replaced: tuple[int, ...] = ()


def _when(text: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (naive ones read as UTC); None where absent or not a time."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def store_submission(engine: Engine, prepared: Prepared, token: int | None) -> Stored:
    """Store a submission and its rows in one transaction, replacing the submitter's earlier submissions of the same
    run that it repairs.

    The same content hash stored before (by anyone): its id, ``created`` False, nothing written. Otherwise, with a
    ``token`` (a submitter), the submitter's current submissions of the same run (same ``run_id`` and document
    ``created_at``) are compared by the document's ``updated_at``: every older one is replaced (``replaced_by`` set,
    its rows' ``hidden`` copy set); a newer one raises ``Superseded`` (nothing stored); one of the same time (or
    without times) stays beside it, as two runs of one name. Without a token nothing is replaced.
    """
    values = dict(prepared.fields, submitted_at=now_iso(), token_id=token)
    values["document_bytes"] = len(values["document"].encode())
    sent = _when(values.get("run_updated_at"))
    try:
        with _write(engine) as connection, connection.begin():
            if token is not None and connection.dialect.name == "postgresql":
                # One submitter's submissions one at a time: two repairs of a run racing must not both stay current.
                connection.execute(sa.select(tokens.c.id).where(tokens.c.id == token).with_for_update())
            existing = connection.execute(
                sa.select(submissions.c.id).where(submissions.c.content_hash == values["content_hash"])
            ).scalar_one_or_none()
            if existing is not None:
                return Stored(int(existing), False)
            older: list[int] = []
            if token is not None and values.get("run_created_at") and sent is not None:
                earlier = connection.execute(
                    sa.select(submissions.c.id, submissions.c.run_updated_at).where(
                        submissions.c.token_id == token,
                        submissions.c.run_id == values["run_id"],
                        submissions.c.run_created_at == values["run_created_at"],
                        submissions.c.replaced_by.is_(None),
                    )
                ).all()
                for row in earlier:
                    stored = _when(row.run_updated_at)
                    if stored is not None and stored > sent:
                        raise Superseded(int(row.id), values["run_id"], row.run_updated_at, values["run_updated_at"])
                    if stored is not None and stored < sent:
                        older.append(int(row.id))
            new_id = connection.execute(submissions.insert().values(**values)).inserted_primary_key[0]
            if prepared.rows:
                copies = {
                    "hidden": False,
                    "hardware_profile": values["hardware_profile"],
                    "gpu_model": values["gpu_model"],
                }
                connection.execute(
                    results.insert(), [dict(row, submission_id=new_id, **copies) for row in prepared.rows]
                )
            if older:
                connection.execute(submissions.update().where(submissions.c.id.in_(older)).values(replaced_by=new_id))
                connection.execute(results.update().where(results.c.submission_id.in_(older)).values(hidden=True))
            _bump_version(connection)
        return Stored(int(new_id), True, tuple(older))
    except sa.exc.IntegrityError:
        existing = find_by_hash(engine, values["content_hash"])
        if existing is None:  # the constraint that fired was not the hash's: a real error
            raise
        return Stored(existing, False)


def insert_submission(engine: Engine, prepared: Prepared, token: int | None) -> tuple[int, bool]:
    """``store_submission``'s (id, created): the same content hash stored before gives (its id, False)."""
    stored = store_submission(engine, prepared, token)
    return stored.id, stored.created


def _bump_version(connection: Any) -> None:
    # Last in the transaction: on PostgreSQL the row lock it takes is held only until the commit right after.
    connection.execute(data_version.update().where(data_version.c.id == 1).values(version=data_version.c.version + 1))


def current_data_version(engine: Engine) -> int:
    """The data version: changes whenever a submission is stored, hidden or shown again."""
    with engine.connect() as connection:
        return int(connection.execute(sa.select(data_version.c.version).where(data_version.c.id == 1)).scalar_one())


def find_by_hash(engine: Engine, content_hash: str) -> int | None:
    """The id of the submission with this content hash, or None."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(submissions.c.id).where(submissions.c.content_hash == content_hash)
        ).scalar_one_or_none()


def set_hidden(engine: Engine, submission: int, hidden: bool, reason: str | None = None) -> None:
    """Hide (or show again) a submission; it stays stored either way. A replaced submission's rows stay out of the
    lists when it is shown again (it still counts nowhere: its repaired run does)."""
    with _write(engine) as connection, connection.begin():
        done = connection.execute(
            submissions.update()
            .where(submissions.c.id == submission)
            .values(hidden=hidden, hidden_reason=reason if hidden else None)
        )
        replaced = connection.execute(
            sa.select(submissions.c.replaced_by).where(submissions.c.id == submission)
        ).scalar_one_or_none()
        connection.execute(
            results.update().where(results.c.submission_id == submission).values(hidden=hidden or replaced is not None)
        )
        _bump_version(connection)
    if done.rowcount != 1:
        raise LeaderboardError(f"no submission with id {submission}; `bench leaderboard list` shows the ids")


SUMMARY_COLUMNS = [c for c in submissions.columns if c.name not in ("document", "report_html")]


def get_submission(engine: Engine, submission: int, *, with_document: bool = False) -> dict[str, Any] | None:
    """One submission's columns (hidden ones too: callers decide), optionally with its document and report."""
    columns = list(submissions.columns) if with_document else SUMMARY_COLUMNS
    with engine.connect() as connection:
        row = connection.execute(sa.select(*columns).where(submissions.c.id == submission)).first()
    return dict(row._mapping) if row else None


def replaced_submissions(engine: Engine, submission: int) -> list[int]:
    """The ids of the earlier submissions ``submission`` replaced (a repaired run), oldest first."""
    with engine.connect() as connection:
        return [
            int(i)
            for i in connection.execute(
                sa.select(submissions.c.id).where(submissions.c.replaced_by == submission).order_by(submissions.c.id)
            ).scalars()
        ]


def submission_rows(engine: Engine, submission: int) -> list[dict[str, Any]]:
    """The (dataset, model) rows of one submission."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(results).where(results.c.submission_id == submission).order_by(results.c.id)
        )
        return [dict(r._mapping) for r in rows]


def list_submissions(
    engine: Engine, *, limit: int = 100, offset: int = 0, include_hidden: bool = False
) -> list[dict[str, Any]]:
    """Submissions, newest first (summary columns only); hidden and replaced ones only with ``include_hidden``."""
    query = sa.select(*SUMMARY_COLUMNS).order_by(submissions.c.id.desc()).limit(limit).offset(offset)
    if not include_hidden:
        query = query.where(submissions.c.hidden == sa.false(), submissions.c.replaced_by.is_(None))
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def count_submissions(engine: Engine, *, include_hidden: bool = False) -> int:
    """How many submissions are stored (visible ones, neither hidden nor replaced, unless ``include_hidden``)."""
    query = sa.select(sa.func.count()).select_from(submissions)
    if not include_hidden:
        query = query.where(submissions.c.hidden == sa.false(), submissions.c.replaced_by.is_(None))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def datasets(engine: Engine) -> list[dict[str, Any]]:
    """Data sets with visible results: name, number of submissions and of rows, and for a user's own file
    (``source`` 'user') its rows and classes (the name carries its content hash: one file, one name)."""
    query = (
        sa.select(
            results.c.dataset,
            sa.func.count(sa.distinct(results.c.submission_id)).label("submissions"),
            sa.func.count().label("rows"),
            sa.func.max(results.c.dataset_source).label("source"),
            sa.func.max(results.c.dataset_rows).label("dataset_rows"),
            sa.func.max(results.c.dataset_classes).label("dataset_classes"),
        )
        .where(results.c.hidden == sa.false())
        .group_by(results.c.dataset)
        .order_by(results.c.dataset)
    )
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def label_namings(engine: Engine, dataset: str) -> list[tuple[list[str] | None, int]]:
    """The label names the visible rows of ``dataset`` were run with, and how many rows each: a user's file is keyed
    by its data (``validate.data_key``), so one page can hold runs that named its labels differently. Most rows
    first; None: rows stored before the leaderboard kept the names (revision 0008)."""
    query = (
        sa.select(results.c.dataset_label_names, sa.func.count().label("n"))
        .where(results.c.dataset == dataset, results.c.hidden == sa.false())
        .group_by(results.c.dataset_label_names)
    )
    with engine.connect() as connection:
        found = [(r.dataset_label_names, int(r.n)) for r in connection.execute(query)]
    out: list[tuple[list[str] | None, int]] = []
    for text, n in sorted(found, key=lambda item: (-item[1], str(item[0]))):
        try:
            names = json.loads(text) if text is not None else None
        except ValueError:
            names = None
        out.append(([str(v) for v in names] if isinstance(names, list) else None, n))
    return out


@dataclass(frozen=True)
class Filters:
    """Leaderboard filters; None: any. ``method`` is a class (measured, estimated, mixed) or a method label."""

    hardware_profile: str | None = None
    gpu_model: str | None = None
    model_family: str | None = None
    method: str | None = None

    def active(self) -> dict[str, str]:
        """The filters that are set, by name."""
        return {k: v for k, v in vars(self).items() if v}


METHOD_CLASSES = ("measured", "estimated", "mixed")
#: sort key -> ORDER BY: accuracy high first, energies low first, missing values last, then by row id; written as
#: the migration's indexes are (``x IS NULL`` first), so the database reads the first rows from an index.
SORTS = {
    "accuracy": (results.c.accuracy.is_(None), results.c.accuracy.desc(), results.c.id),
    "j_per_text": (results.c.j_per_text.is_(None), results.c.j_per_text, results.c.id),
    "j_per_correct": (results.c.j_per_correct.is_(None), results.c.j_per_correct, results.c.id),
}

ROW_COLUMNS = [
    results.c.submission_id,
    results.c.dataset,
    results.c.model,
    results.c.paper_label,
    results.c.model_kind,
    results.c.model_family,
    results.c.n_ok,
    results.c.n_failed,
    results.c.n_flagged,
    results.c.n_test,
    results.c.accuracy,
    results.c.accuracy_ci95_low,
    results.c.accuracy_ci95_high,
    results.c.energy_j_per_pass,
    results.c.duration_s_per_pass,
    results.c.j_per_text,
    results.c.wh_per_1000_texts,
    results.c.j_per_correct,
    results.c.gpu_method,
    results.c.cpu_method,
    results.c.ram_method,
    results.c.method_class,
    results.c.calibration_reference,
    results.c.calibration_j_per_unit,
    results.c.j_per_text_per_index,
    results.c.gco2e_per_1000_texts,
    results.c.grid_intensity_gco2e_per_kwh,
    results.c.grid_source,
    results.c.training_energy_j_per_pass,
    results.c.training_duration_s_per_pass,
    results.c.training_gpu_method,
    results.c.training_cpu_method,
    results.c.training_ram_method,
    results.c.training_reason,
    results.c.dataset_label_names,
    results.c.warnings,
    results.c.failure,
    submissions.c.run_id,
    submissions.c.submitted_at,
    results.c.hardware_profile,
    results.c.gpu_model,
    submissions.c.gpu_count,
    submissions.c.cpu_model,
]


def _filtered(query: Any, dataset: str, filters: Filters) -> Any:
    query = query.where(results.c.dataset == dataset, results.c.hidden == sa.false())
    if filters.hardware_profile:
        query = query.where(results.c.hardware_profile == filters.hardware_profile)
    if filters.gpu_model:
        query = query.where(results.c.gpu_model == filters.gpu_model)
    if filters.model_family:
        query = query.where(results.c.model_family == filters.model_family)
    if filters.method in METHOD_CLASSES:
        query = query.where(results.c.method_class == filters.method)
    elif filters.method:
        m = filters.method
        query = query.where(sa.or_(results.c.gpu_method == m, results.c.cpu_method == m, results.c.ram_method == m))
    return query


def leaderboard(
    engine: Engine,
    dataset: str,
    filters: Filters = Filters(),
    sort: str = "accuracy",
    *,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of ``dataset`` (visible submissions), filtered and sorted, one page of them; and the total count."""
    if sort not in SORTS:
        raise LeaderboardError(f"sort {sort!r} is not one of {', '.join(SORTS)}")
    base = sa.select(*ROW_COLUMNS).join(submissions, submissions.c.id == results.c.submission_id)
    query = _filtered(base, dataset, filters).order_by(*SORTS[sort]).limit(limit).offset(offset)
    counter = _filtered(sa.select(sa.func.count()).select_from(results), dataset, filters)
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
        total = int(connection.execute(counter).scalar_one())
    return rows, total


def filter_options(engine: Engine, dataset: str) -> dict[str, list[str]]:
    """The values each filter can take on ``dataset`` (visible submissions), for the page's selects: one grouped
    query over the rows (a few distinct combinations even with thousands of runs)."""
    columns = (
        results.c.hardware_profile,
        results.c.gpu_model,
        results.c.model_family,
        results.c.method_class,
        results.c.gpu_method,
        results.c.cpu_method,
        results.c.ram_method,
    )
    query = _filtered(sa.select(*columns).group_by(*columns), dataset, Filters())
    seen: dict[str, set[str]] = {c.name: set() for c in columns}
    with engine.connect() as connection:
        for row in connection.execute(query):
            for name, value in row._mapping.items():
                if value:
                    seen[name].add(value)
    methods = (seen["gpu_method"] | seen["cpu_method"] | seen["ram_method"]) - {"unavailable"}
    return {
        "hardware_profile": sorted(seen["hardware_profile"]),
        "gpu_model": sorted(seen["gpu_model"]),
        "model_family": sorted(seen["model_family"]),
        "method": [c for c in METHOD_CLASSES if c in seen["method_class"]] + sorted(methods),
    }
