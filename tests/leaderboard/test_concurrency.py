"""Concurrent submissions lose nothing and store each run exactly once; a server killed mid-write (SIGKILL) leaves
the SQLite file consistent, with every submission it answered 201 for present and complete."""

from __future__ import annotations

import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.leaderboard import storage
from bench.results import content_hash
from tests.leaderboard.conftest import Live
from tests.leaderboard.docs import body, signed, valid_document
from tests.leaderboard.server import post, start_server


def test_50_parallel_submissions_all_stored_exactly_once(live: Live) -> None:
    distinct = [body(valid_document(f"parallel-{i}")) for i in range(50)]
    same = body(valid_document("parallel-same"))
    bodies = distinct + [same] * 10  # ten racing copies of one run: the unique constraint decides
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        answers = list(pool.map(lambda b: post(live.server, b, live.token), bodies))
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers if a.status_code >= 300]
    first = answers[:50]
    assert [a.status_code for a in first] == [201] * 50
    assert len({a.json()["id"] for a in first}) == 50
    copies = answers[50:]
    assert sorted(a.status_code for a in copies) == [200] * 9 + [201]
    assert len({a.json()["id"] for a in copies}) == 1
    assert storage.count_submissions(live.engine) == 51
    with live.engine.connect() as connection:
        hashes = [
            h
            for (h,) in connection.execute(
                storage.submissions.select().with_only_columns(storage.submissions.c.content_hash)
            )
        ]
        n_rows = connection.exec_driver_sql("SELECT count(*) FROM results").scalar_one()
    assert len(hashes) == len(set(hashes)) == 51
    assert n_rows == 51  # one (data set, model) row per run, none lost, none doubled


def test_sigkill_mid_write_leaves_a_consistent_database(tmp_path: Path) -> None:
    db = tmp_path / "leaderboard.db"
    engine = storage.make_engine(db)
    storage.upgrade(engine)
    token = storage.create_token(engine, "crash")
    engine.dispose()
    server = start_server(str(db), tmp_path / "server.log")
    docs = [signed(valid_document(f"crash-{i}")) for i in range(300)]
    answered: dict[str, int] = {}  # content hash -> id, for every 201
    lock = threading.Lock()
    enough = threading.Event()

    def send(doc: dict) -> None:
        if enough.is_set() and len(answered) > 60:
            return
        try:
            answer = post(server, json.dumps({"results": doc, "report_html": "<p>r</p>"}).encode(), token)
        except httpx.TransportError:
            return  # the server died under this request: it was never answered, so nothing is promised
        if answer.status_code == 201:
            with lock:
                answered[doc["content_hash"]] = answer.json()["id"]
                if len(answered) >= 25:
                    enough.set()

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(send, d) for d in docs]
        assert enough.wait(timeout=120), "the server did not store 25 submissions in time"
        server.kill()  # while other submissions are in flight
        for f in futures:
            f.result()
    assert len(answered) >= 25

    with sqlite3.connect(db) as connection:  # recovers the WAL like any reader after a crash
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        stored = {h: (i, d) for i, h, d in connection.execute("SELECT id, content_hash, document FROM submissions")}
        rows = dict(connection.execute("SELECT submission_id, count(*) FROM results GROUP BY submission_id").fetchall())
    for digest, sid in answered.items():
        assert digest in stored, f"submission {sid} was answered 201 but is not in the database"
        assert stored[digest][0] == sid
    for digest, (sid, document) in stored.items():  # every stored one complete: its document and its rows
        assert content_hash(json.loads(document)) == digest
        assert rows.get(sid) == 1, f"submission {sid} has {rows.get(sid)} rows"

    # The service starts again on the same file and serves what was stored.
    again = start_server(str(db), tmp_path / "server2.log")
    try:
        health = httpx.get(again.url + "/healthz").json()
        assert health["submissions"] == len(stored)
    finally:
        again.stop()
