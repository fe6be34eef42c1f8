"""`bench submit` and `bench leaderboard ...` as a user runs them: subprocesses against a real server and database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bench.leaderboard import storage
from bench.results import write_results
from tests.leaderboard.conftest import Live
from tests.leaderboard.docs import gpu_document, valid_document
from tests.leaderboard.server import REPO, free_port


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("BENCH_LEADERBOARD_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def _run_folder(tmp: Path, doc) -> Path:
    folder = tmp / "reports" / doc.run_id
    write_results(doc, folder / "results.json")
    return folder


def test_token_submit_revoke_hide_list(live: Live, tmp_path: Path) -> None:
    db = live.server.db
    made = bench("leaderboard", "token", "create", "alice", "--db", db)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("blb_")
    assert bench("leaderboard", "token", "create", "alice", "--db", db).returncode == 2  # names are unique

    run = _run_folder(tmp_path, valid_document("cli-run"))
    sent = bench("submit", str(run), "--to", live.url, "--token", token)
    assert sent.returncode == 0, sent.stderr
    sid = int(re.search(r"stored: submission (\d+)", sent.stdout).group(1))  # type: ignore[union-attr]
    assert f"{live.url}/submissions/{sid}.html" in sent.stdout
    stored = httpx.get(f"{live.url}/submissions/{sid}/submitted-report.html")
    assert stored.status_code == 200 and "bench report" in stored.text  # rendered by the client: none on disk

    twice = bench("submit", str(run), "--to", live.url, "--token", token)
    assert twice.returncode == 0 and f"already stored (same content hash): submission {sid}" in twice.stdout

    # Refused locally by the service's own checks, every reason printed, exit 2: an incomplete run, an edited file.
    incomplete = _run_folder(tmp_path, valid_document("cli-incomplete", status="running"))
    refused = bench("submit", str(incomplete), "--to", live.url, "--token", token)
    assert refused.returncode == 2 and "not sent" in refused.stderr and "complete run" in refused.stderr
    edited = _run_folder(tmp_path, valid_document("cli-edited"))
    text = (edited / "results.json").read_text().replace('"cli-edited"', '"cli-edited-by-hand"')
    (edited / "results.json").write_text(text)
    local = bench("submit", str(edited), "--to", live.url, "--token", token)
    assert local.returncode == 2 and "content_hash: mismatch" in local.stderr
    assert storage.count_submissions(live.engine, include_hidden=True) == 1

    listed = bench("leaderboard", "token", "list", "--db", db)
    assert "alice" in listed.stdout and token not in listed.stdout
    assert bench("leaderboard", "token", "revoke", "alice", "--db", db).returncode == 0
    after = bench("submit", str(_run_folder(tmp_path, valid_document("cli-late"))), "--to", live.url, "--token", token)
    assert after.returncode == 2 and "HTTP 401" in after.stderr and "revoked" in after.stderr
    assert "revoked" in bench("leaderboard", "token", "list", "--db", db).stdout
    assert bench("leaderboard", "token", "revoke", "nobody", "--db", db).returncode == 2

    hidden = bench("leaderboard", "hide", str(sid), "--reason", "test", "--db", db)
    assert hidden.returncode == 0, hidden.stderr
    assert httpx.get(f"{live.url}/submissions/{sid}.html").status_code == 410
    assert "HIDDEN" in bench("leaderboard", "list", "--db", db).stdout
    assert bench("leaderboard", "unhide", str(sid), "--db", db).returncode == 0
    assert httpx.get(f"{live.url}/submissions/{sid}.html").status_code == 200
    assert bench("leaderboard", "hide", "9999", "--db", db).returncode == 2

    unreachable = bench("submit", str(run), "--to", f"http://127.0.0.1:{free_port()}", "--token", token)
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href" and v)


def test_export_writes_a_static_site_with_working_links(live: Live, tmp_path: Path) -> None:
    from tests.leaderboard.docs import body
    from tests.leaderboard.server import post

    ids = [post(live.server, body(d), live.token).json()["id"] for d in (gpu_document(), valid_document("<i>x</i>"))]
    hidden = post(live.server, body(valid_document("hidden-run")), live.token).json()["id"]
    site = tmp_path / "site"
    (site / "submissions").mkdir(parents=True)
    (site / "submissions" / f"{hidden}.html").write_text("published before it was hidden")
    storage.set_hidden(live.engine, hidden, True)
    done = bench("leaderboard", "export", "-o", str(site), "--db", live.server.db)
    assert done.returncode == 0, done.stderr
    assert "2 data set(s) in 6 leaderboard page(s) (every sort and page), 2 submission(s)" in done.stdout
    for name in (
        "index.html",
        "datasets.json",
        "submissions.json",
        "datasets/tomatoes.html",
        "datasets/tomatoes+j_per_text+1.html",
        "datasets/tomatoes+j_per_correct+1.html",
        "datasets/tomatoes.csv",
        "datasets/tomatoes.json",
        "datasets/toy.html",
        f"submissions/{ids[0]}.html",
        f"submissions/{ids[0]}.json",
        f"submissions/{ids[0]}/results.json",
        f"submissions/{ids[0]}/report.html",
    ):
        assert (site / name).is_file(), name
    assert not (site / "submissions" / f"{hidden}.html").exists()  # hidden since: unpublished
    assert json.loads((site / "submissions.json").read_text())["total"] == 2
    # Same content as the service answers.
    served = httpx.get(f"{live.url}/datasets/tomatoes.json", params={"limit": "1000"}).json()
    exported = json.loads((site / "datasets" / "tomatoes.json").read_text())
    assert exported["rows"] == served["rows"]
    # Every relative link of every page points to a file of the site; no page has a script or an external URL.
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 7
    for page in pages:
        text = page.read_text()
        assert "<script" not in text and "<i>x</i>" not in text, page
        parser = _Links()
        parser.feed(text)
        for link in parser.links:
            assert not link.startswith(("http:", "https:", "//")), (page, link)
            if link.startswith("#"):  # in-page anchors of the report
                continue
            target = (page.parent / link.split("?")[0].split("#")[0]).resolve()
            assert target.is_file(), f"{page.relative_to(site)} links to missing {link}"


def test_serve_upgrades_an_old_database_and_refuses_a_newer_one(tmp_path: Path) -> None:
    db = tmp_path / "lb.db"
    engine = storage.make_engine(db)
    refused = bench("leaderboard", "serve", "--db", str(db), "--no-upgrade", "--port", str(free_port()), timeout=60)
    assert refused.returncode == 2 and "bench leaderboard migrate" in refused.stderr
    migrated = bench("leaderboard", "migrate", "--db", str(db))
    assert migrated.returncode == 0 and storage.current_revision(engine) == storage.head_revision()
    with engine.begin() as connection:  # as if a newer kit had migrated it further
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    newer = bench("leaderboard", "serve", "--db", str(db), "--port", str(free_port()), timeout=60)
    assert newer.returncode == 2 and "created by a newer bench" in newer.stderr
    missing = bench("leaderboard", "serve", "--db", str(tmp_path / "no" / "such" / "lb.db"), timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_migration_matches_the_tables_the_code_queries(tmp_path: Path) -> None:
    engine = storage.make_engine(tmp_path / "lb.db")
    storage.upgrade(engine)
    inspector = sa.inspect(engine)
    for table in storage.metadata.sorted_tables:
        migrated = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(migrated) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert migrated[column.name]["nullable"] == column.nullable, (table.name, column.name)
    with engine.connect() as connection:  # (expression indexes are not reflected by SQLAlchemy: ask SQLite)
        indexes = set(connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
    assert indexes >= {
        "ix_results_by_accuracy",
        "ix_results_by_j_per_text",
        "ix_results_by_j_per_correct",
        "ix_results_filters",
        "ix_results_submission",
    }
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        # The leaderboard's first page comes from an index in every sort order, never from sorting all rows.
        for sort in storage.SORTS:
            base = sa.select(*storage.ROW_COLUMNS).join(
                storage.submissions, storage.submissions.c.id == storage.results.c.submission_id
            )
            query = storage._filtered(base, "toy", storage.Filters()).order_by(*storage.SORTS[sort]).limit(100)
            sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " | ".join(row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert f"USING INDEX ix_results_by_{sort}" in plan and "TEMP B-TREE" not in plan, plan


def test_export_removes_data_set_files_of_a_hidden_submission(live: Live, tmp_path: Path) -> None:
    """A hidden (spam) submission with its own data set name must leave datasets/ too, not only submissions/."""
    from bench.leaderboard.export import export_site
    from tests.leaderboard.docs import body
    from tests.leaderboard.server import post

    post(live.server, body(valid_document("kept")), live.token)
    data = valid_document("spam").model_dump(mode="json")
    data["datasets"]["spamset"] = dict(data["datasets"].pop("toy"), name="spamset")
    data["suite"]["datasets"] = ["spamset"]
    for cell in data["cells"]:
        cell["dataset"] = "spamset"
    answer = post(live.server, body(data), live.token)
    assert answer.status_code == 201, answer.text
    site = tmp_path / "site"
    export_site(live.engine, site)
    spam_files = [site / "datasets" / f"spamset.{ext}" for ext in ("html", "csv", "json")]
    assert all(p.is_file() for p in spam_files)
    storage.set_hidden(live.engine, answer.json()["id"], True, "spam")
    export_site(live.engine, site)
    assert [p for p in spam_files if p.exists()] == []
    assert (site / "datasets" / "toy.html").is_file() and (site / "datasets" / "toy.csv").is_file()
    assert "spamset" not in (site / "index.html").read_text()


class _Recorder:
    """A plain HTTP server on loopback that records every request and answers each with a fixed reply."""

    def __init__(self, status: int, content_type: str, reply: bytes) -> None:
        import http.server
        import threading

        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls do_<METHOD>
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(f"{self.command} {self.path}")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_submit_reports_an_answer_that_is_not_the_services(tmp_path: Path) -> None:
    """A 200 that is not the service's JSON (a proxy's login page, another service) is a clear error naming the URL
    and showing what came back, not a JSONDecodeError or KeyError."""
    from bench.leaderboard.client import submit
    from bench.leaderboard.errors import LeaderboardError

    run = _run_folder(tmp_path, valid_document("cli-proxy"))
    login = _Recorder(200, "text/html", b"<html><body>Please log in to the corporate proxy</body></html>")
    partial = _Recorder(200, "application/json", b'{"id": 7, "url": "x"}')
    try:
        try:
            submit(run, login.url, "blb_token")
            raise AssertionError("accepted a login page")
        except LeaderboardError as exc:
            message = str(exc)
        assert f"{login.url}/api/v1/submissions answered HTTP 200" in message and "not JSON" in message
        assert "Please log in to the corporate proxy" in message
        assert login.requests == ["POST /api/v1/submissions"]
        try:
            submit(run, partial.url, "blb_token")
            raise AssertionError("accepted an answer without created and content_hash")
        except LeaderboardError as exc:
            message = str(exc)
        assert "without created, content_hash" in message and '{"id": 7' in message
    finally:
        login.close()
        partial.close()


def test_submit_checks_locally_with_the_services_checks_before_any_request(tmp_path: Path) -> None:
    """A run the service would refuse for provenance or plausibility (not only schema and hash) is refused locally,
    with every reason, and no request is made."""
    from bench.leaderboard.client import submit
    from bench.leaderboard.errors import SubmissionInvalid

    doc = valid_document("cli-local", status="running")
    doc.environment["machine"].pop("cpu_model")
    run = _run_folder(tmp_path, doc)
    recorder = _Recorder(201, "application/json", b"{}")
    try:
        try:
            submit(run, recorder.url, "blb_token")
            raise AssertionError("sent a run the service refuses")
        except SubmissionInvalid as exc:
            reasons = exc.reasons
        assert any("submit a complete run" in r for r in reasons), reasons
        assert any("cpu_model: missing" in r for r in reasons), reasons
        assert recorder.requests == []
    finally:
        recorder.close()
    # The same from the command line, against a closed port: the checks' reasons, not "cannot reach".
    closed = bench("submit", str(run), "--to", f"http://127.0.0.1:{free_port()}", "--token", "blb_token")
    assert closed.returncode == 2 and "not sent" in closed.stderr and "cpu_model: missing" in closed.stderr
    assert "cannot reach" not in closed.stderr


def test_static_export_pages_through_every_row_in_every_sort(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 2 rows a page, following the static pages' "next" links visits every row once, in each sort's order."""
    from bench.leaderboard import views
    from bench.leaderboard.export import export_site
    from tests.leaderboard.docs import body
    from tests.leaderboard.server import post

    for i, machine in enumerate(("h100", "a30", "h100")):
        doc = gpu_document(machine, seed=i, run_id=f"gpu-run-{i}")
        assert post(live.server, body(doc), live.token).status_code == 201
    monkeypatch.setattr(views, "PAGE_ROWS", 2)
    site = tmp_path / "site"
    counts = export_site(live.engine, site)
    total = storage.leaderboard(live.engine, "tomatoes", storage.Filters(), "accuracy", limit=1)[1]
    assert total >= 12  # 3 runs x 4 models: 6 pages per sort
    for sort in storage.SORTS:
        expected, _ = storage.leaderboard(live.engine, "tomatoes", storage.Filters(), sort, limit=10**6)
        seen: list[str] = []
        page: str | None = views.static_page_name("tomatoes", sort, 1)
        visited = 0
        while page is not None:
            text = (site / "datasets" / page).read_text()
            assert f"of {total}; the CSV and JSON have them all" in text
            seen += re.findall(r'<a href="\.\./submissions/(\d+)\.html">', text)
            following = re.findall(r'<a href="([^"]+)" rel="next">', text)
            page = following[0] if following else None
            visited += 1
        assert seen == [str(r["submission_id"]) for r in expected], sort
        assert visited == -(-total // 2)
    assert views.static_page_name("tomatoes") == "tomatoes.html"
    assert counts["pages"] == 3 * -(-total // 2)
