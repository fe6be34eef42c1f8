"""Small parts of the leaderboard on their own: rate limiter, URL handling, row derivation, the light CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.leaderboard import storage
from bench.leaderboard.errors import LeaderboardError
from bench.leaderboard.validate import Invalid, method_class, model_family, prepare
from tests.leaderboard.docs import body, gpu_document, valid_document
from tests.leaderboard.server import REPO


def test_rate_limit_window_lives_in_the_database(tmp_path: Path) -> None:
    engine = storage.make_engine(tmp_path / "lb.db")
    storage.upgrade(engine)
    storage.create_token(engine, "a")
    storage.create_token(engine, "b")
    a, b = (t["id"] for t in storage.list_tokens(engine))
    take = storage.take_submit_slot
    assert take(engine, a, 2, now_s=100.0) is None and take(engine, a, 2, now_s=110.0) is None
    assert take(engine, a, 2, now_s=130.0) == pytest.approx(30.0)  # the attempt at 100 s ages out at 160 s
    assert take(engine, b, 2, now_s=130.0) is None  # another token has its own budget
    # A second engine (another worker process) sees the same window.
    other = storage.make_engine(tmp_path / "lb.db")
    assert take(other, a, 2, now_s=159.0) == pytest.approx(1.0)
    assert take(other, a, 2, now_s=160.0) is None  # 100 s aged out: a slot, and 110 s is the oldest now
    assert take(engine, a, 2, now_s=165.0) == pytest.approx(5.0)
    assert take(engine, a, 0, now_s=165.0) is None  # 0: no limit
    with engine.connect() as connection:  # refused attempts are not counted, aged-out ones are pruned
        kept = connection.execute(sa.select(storage.submit_attempts.c.at_s).order_by("at_s")).scalars().all()
    assert kept == [110.0, 130.0, 160.0]


def test_resolve_url(tmp_path: Path) -> None:
    assert storage.resolve_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    assert storage.resolve_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert storage.resolve_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(LeaderboardError, match="not memory"):
        storage.make_engine("sqlite://")
    with pytest.raises(LeaderboardError, match="does not exist"):
        storage.make_engine(tmp_path / "missing" / "x.db")


def test_row_derivation() -> None:
    assert method_class({"gpu": "measured:nvml-energy-counter", "cpu": "measured:rapl"}) == "measured"
    assert method_class({"cpu": "estimated:tdp-utilization", "ram": "estimated:ram-0.375W/GB"}) == "estimated"
    assert method_class({"gpu": "measured:nvml-energy-counter", "ram": "estimated:ram-0.375W/GB"}) == "mixed"
    assert method_class({}) == "none"
    assert model_family("llama-3.1-8b", {"paper_label": "Llama 3.1 8B"}) == "llama"
    assert model_family("xgboost-bow", {"paper_label": "XGBoost BoW"}) == "xgboost"
    assert model_family("my-model", {}) == "my"
    prepared = prepare(body(gpu_document()))
    rows = {r["model"]: r for r in prepared.rows}
    assert set(rows) == {"linear-bow", "linear-tfidf", "linear-embedding", "xgboost-bow"}
    row = rows["linear-bow"]
    assert row["n_test"] == 20 and row["n_ok"] == 2 and row["method_class"] == "mixed"  # RAM is estimated
    assert row["j_per_text"] == pytest.approx(row["energy_j_per_pass"] / 20)
    assert row["j_per_correct"] == pytest.approx(row["energy_j_per_pass"] / (row["accuracy"] * 20))
    assert prepared.fields["gpu_model"] == "NVIDIA H100 80GB HBM3" and prepared.fields["gpu_count"] == 4
    assert json.loads(prepared.fields["document"])["content_hash"] == prepared.fields["content_hash"]


def test_reasons_are_capped_but_counted() -> None:
    doc = valid_document()
    data = json.loads(body(doc))
    data["results"]["cells"] = [{"bad": i} for i in range(80)]
    with pytest.raises(Invalid) as caught:
        prepare(json.dumps(data).encode())
    assert caught.value.status == 422
    assert len(caught.value.reasons) == 51 and caught.value.reasons[-1].startswith("... and ")


def test_cli_stays_light() -> None:
    """`bench --help` builds the leaderboard's parsers without importing SQLAlchemy, Starlette or uvicorn."""
    code = (
        "import sys, bench.cli, bench.leaderboard.client; bench.cli.build_parser(); "
        "print([m for m in ('sqlalchemy', 'starlette', 'uvicorn', 'alembic', 'httpx', 'psycopg') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_unexpected_error_while_checking_is_a_reason_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A document shape no check foresaw must give 422 "could not validate", never an exception (a 500)."""
    import bench.validation

    def broken(doc: object) -> list[str]:
        raise KeyError("unforeseen")

    monkeypatch.setattr(bench.validation, "check_document", broken)
    with caplog.at_level("ERROR", logger="bench.leaderboard"), pytest.raises(Invalid) as caught:
        prepare(body(valid_document()))
    assert caught.value.status == 422
    assert caught.value.reasons == ["could not validate: KeyError (the leaderboard's log has the details)"]
    assert "could not validate a submission" in caplog.text and "unforeseen" in caplog.text


def test_string_limits_match_the_tables() -> None:
    """Every String(n) column a submission fills is length-checked before insert, with the table's own n."""
    from bench.leaderboard.validate import STRING_LIMITS

    for table in (storage.submissions, storage.results):
        lengths = {
            c.name: c.type.length
            for c in table.columns
            if getattr(c.type, "length", None) is not None and c.name not in ("submitted_at",)
        }
        assert STRING_LIMITS[table.name] == lengths, table.name


def test_render_cache_is_bounded_and_renders_once() -> None:
    from bench.leaderboard.service import RenderCache

    cache = RenderCache(max_entries=2, max_bytes=10)
    calls: list[str] = []

    def render(key: str, size: int) -> bytes:
        return cache.get(key, lambda: calls.append(key) or b"x" * size)

    render("a", 4), render("a", 4), render("b", 4)
    assert calls == ["a", "b"] and cache.stats() == {"renders": 2, "hits": 1, "entries": 2, "bytes": 8}
    render("c", 4)  # 12 bytes > 10: the least recently used (a) goes
    render("a", 4)
    assert calls == ["a", "b", "c", "a"] and cache.stats()["entries"] == 2
    render("big", 50)  # alone above the budget: kept, everything else evicted
    assert cache.stats()["entries"] == 1 and cache.stats()["bytes"] == 50


def test_sqlite_write_durability_is_set_per_transaction(tmp_path: Path) -> None:
    """Submissions fsync at commit (FULL = 2); rate-limit attempts do not (NORMAL = 1); a pooled connection that served
    an attempt is FULL again for the next submission."""
    engine = storage.make_engine(tmp_path / "lb.db")
    storage.upgrade(engine)
    for durable, level in ((True, 2), (False, 1), (True, 2)):
        with storage._write(engine, durable=durable) as connection, connection.begin():
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == level
    engine.dispose()


def test_accepted_connections_get_tcp_nodelay_even_from_a_proto_0_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn --workers N binds its listener with proto 0; asyncio then leaves Nagle on for accepted sockets (each
    keep-alive answer waited ~44 ms for a delayed ACK). The kit's protocol turns it off itself."""
    import socket
    from types import SimpleNamespace

    from uvicorn.protocols.http.h11_impl import H11Protocol

    from bench.leaderboard.nodelay import NoDelayH11Protocol

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # as uvicorn's Config.bind_socket: proto 0
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.proto == 0  # the premise: asyncio's own check (proto == IPPROTO_TCP) skips this socket
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        monkeypatch.setattr(H11Protocol, "connection_made", lambda self, transport: None)  # the serving part
        transport = SimpleNamespace(get_extra_info=lambda name: accepted if name == "socket" else None)
        NoDelayH11Protocol.connection_made(object.__new__(NoDelayH11Protocol), transport)  # type: ignore[arg-type]
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        for s in (client, accepted, listener):
            s.close()


def test_the_routes_live_in_their_own_modules_and_create_app_is_short() -> None:
    """create_app wires state, routes and middleware; the handlers are functions of bench.leaderboard.routes."""
    import inspect

    from bench.leaderboard.routes import ROUTES
    from bench.leaderboard.service import create_app

    assert len(inspect.getsource(create_app).splitlines()) <= 20
    assert {r.endpoint.__module__ for r in ROUTES} == {"bench.leaderboard.routes.api", "bench.leaderboard.routes.pages"}
    assert {r.path for r in ROUTES} >= {"/api/v1/submissions", "/datasets/{name}.{fmt}", "/submissions/{sid}/{file}"}
