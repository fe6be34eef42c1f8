"""The same service tests on a real PostgreSQL (psycopg 3), when BENCH_TEST_POSTGRES_URL names one.

`.ci/postgres.sh` starts one from Debian's postgresql package and prints its URL. Each test module run creates its
own database (the role needs CREATEDB) and drops it afterwards. Skipped without the variable, except in CI
(CI=true), where a missing PostgreSQL is a failure, as the browser tests treat a missing Chromium.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.leaderboard import storage
from tests.leaderboard import test_service
from tests.leaderboard.conftest import Live
from tests.leaderboard.docs import body, valid_document
from tests.leaderboard.server import post, running

URL_ENV = "BENCH_TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    base = os.environ.get(URL_ENV)
    if not base:
        message = f'no PostgreSQL: set {URL_ENV} (e.g. export {URL_ENV}="$(.ci/postgres.sh)")'
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    admin = sa.create_engine(storage.resolve_url(base), isolation_level="AUTOCOMMIT")
    name = f"bench_lb_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(storage.resolve_url(base)).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_live(pg_url: str, tmp_path: Path) -> Iterator[Live]:
    engine = storage.make_engine(pg_url)
    with engine.begin() as connection:  # each test starts empty: drop what the previous one migrated
        for table in [t.name for t in reversed(storage.metadata.sorted_tables)] + ["alembic_version"]:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    storage.upgrade(engine)
    assert storage.current_revision(engine) == storage.head_revision()
    token = storage.create_token(engine, "tester")
    with running(pg_url, tmp_path / "server.log") as server:
        yield Live(server=server, engine=engine, token=token)
    engine.dispose()


def test_postgres_submit_fetch_list_filter_sort(pg_live: Live) -> None:
    test_service.test_submit_fetch_list_filter_sort(pg_live)


def test_postgres_escaping_and_sql_as_data(pg_live: Live) -> None:
    test_service.test_user_strings_are_escaped_and_sql_is_data(pg_live)


def test_postgres_hidden(pg_live: Live) -> None:
    test_service.test_hidden_submission_is_kept_but_not_shown(pg_live)


def test_postgres_parallel_submissions_stored_exactly_once(pg_live: Live) -> None:
    bodies = [body(valid_document(f"pg-{i}")) for i in range(50)] + [body(valid_document("pg-same"))] * 10
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        answers = list(pool.map(lambda b: post(pg_live.server, b, pg_live.token), bodies))
    assert [a.status_code for a in answers[:50]] == [201] * 50, [a.text for a in answers if a.status_code >= 300]
    assert sorted(a.status_code for a in answers[50:]) == [200] * 9 + [201]
    assert len({a.json()["id"] for a in answers}) == 51
    assert storage.count_submissions(pg_live.engine) == 51
    with pg_live.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM results").scalar_one() == 51


def test_postgres_refused_submission_stores_nothing(pg_live: Live) -> None:
    from tests.leaderboard.test_bad_input import CASES

    for case in (
        "hash mismatch",
        "HTML and script in a model name",
        "wrong schema version",
        "malformed JSON",
        # PostgreSQL refuses these itself (DataError: a 500 before the checks knew about them); SQLite stores them.
        "kit_version longer than its column",
        "NUL in run_id",
        "NUL in cpu_model",
        "NUL in report_html",
        "infinite number (1e999 parses to inf)",
        "nested too deeply for json",
    ):
        make, _, status, fragment = CASES[case]
        answer = post(pg_live.server, make(), pg_live.token)
        assert answer.status_code == status, (case, answer.text)
        assert any(fragment in r for r in answer.json()["reasons"]), (case, answer.text)
    assert post(pg_live.server, body(valid_document()), None).status_code == 401
    assert storage.count_submissions(pg_live.engine, include_hidden=True) == 0
    with pg_live.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM results").scalar_one() == 0
        stored = connection.exec_driver_sql("SELECT token_sha256 FROM tokens").scalars().all()
    assert stored == [storage.token_hash(pg_live.token)]  # the hash, never the token


def test_postgres_csv_cache_follows_the_data_version(pg_live: Live) -> None:
    test_service.test_csv_is_built_once_per_data_version(pg_live)


def test_postgres_rate_limit_is_exact_under_concurrency(pg_live: Live) -> None:
    """20 attempts at once from 20 connections, 5 allowed: SELECT ... FOR UPDATE on the token serializes them."""
    owner = storage.list_tokens(pg_live.engine)[0]["id"]
    with ThreadPoolExecutor(20) as pool:
        waits = list(pool.map(lambda _: storage.take_submit_slot(pg_live.engine, owner, 5, now_s=1000.0), range(20)))
    assert waits.count(None) == 5 and all(w == pytest.approx(60.0) for w in waits if w is not None)


def test_postgres_database_at_0005_upgrades_with_its_rows_kept(pg_live: Live) -> None:
    from tests.leaderboard.test_training import check_upgrade_from_0005_keeps_rows

    # pg_live migrated an empty database to head: the check takes it down to 0005 (dropping 0006's columns) first.
    check_upgrade_from_0005_keeps_rows(pg_live.engine)


def test_postgres_training_energy(pg_live: Live) -> None:
    from tests.leaderboard.test_training import test_the_service_answers_training_energy

    test_the_service_answers_training_energy(pg_live)


def test_postgres_flagged_run_and_its_repair(pg_live: Live) -> None:
    from tests.leaderboard import test_flags

    test_flags.test_the_service_shows_flagged_cells_and_ranks_without_them(pg_live)
    with pg_live.engine.begin() as connection:  # start the repair from an empty leaderboard
        connection.exec_driver_sql("DELETE FROM results")
        connection.exec_driver_sql("DELETE FROM submissions")
    test_flags.test_a_repaired_run_replaces_its_earlier_submission(pg_live)


def test_postgres_database_at_0006_upgrades_with_its_rows_kept(pg_live: Live) -> None:
    from tests.leaderboard.test_flags import check_upgrade_from_0006_keeps_rows

    check_upgrade_from_0006_keeps_rows(pg_live.engine)


def test_postgres_database_at_0007_upgrades_with_its_rows_kept(pg_live: Live, tmp_path: Path) -> None:
    from tests.leaderboard.test_warnings import check_upgrade_from_0007_keeps_rows

    check_upgrade_from_0007_keeps_rows(pg_live.engine, tmp_path)


def test_postgres_warnings_failed_models_and_label_names(pg_live: Live, tmp_path: Path) -> None:
    from tests.leaderboard import test_warnings

    test_warnings.check_rows_on(pg_live.engine, tmp_path)
