"""The leaderboard over real HTTP: a uvicorn server on loopback, a real SQLite file, httpx as the client."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import httpx

from bench.leaderboard import storage
from tests.leaderboard.conftest import Live
from tests.leaderboard.docs import body, gpu_document, signed, valid_document
from tests.leaderboard.server import post


def _get(live: Live, path: str, **params: str) -> httpx.Response:
    return httpx.get(live.url + path, params=params, timeout=30)


def test_submit_fetch_list_filter_sort(live: Live) -> None:
    h100 = post(live.server, body(gpu_document("h100")), live.token)
    a30 = post(live.server, body(gpu_document("a30", seed=1)), live.token)
    cpu = post(live.server, body(valid_document()), live.token)
    assert [r.status_code for r in (h100, a30, cpu)] == [201, 201, 201], (h100.text, a30.text, cpu.text)
    ids = [r.json()["id"] for r in (h100, a30, cpu)]
    assert len(set(ids)) == 3
    assert h100.json()["url"] == f"{live.url}/submissions/{ids[0]}.html"
    assert h100.json()["created"] is True

    # The same run again: the existing id, stored once.
    again = post(live.server, body(gpu_document("h100")), live.token)
    assert again.status_code == 200 and again.json() == dict(h100.json(), created=False)
    assert storage.count_submissions(live.engine) == 3

    # Fetch: the submission's rows and its document, byte-for-byte re-validatable.
    one = _get(live, f"/submissions/{ids[0]}.json").json()
    assert one["gpu_model"] == "NVIDIA H100 80GB HBM3" and one["gpu_count"] == 4
    assert {r["model"] for r in one["rows"]} == {"linear-bow", "linear-tfidf", "linear-embedding", "xgboost-bow"}
    document = _get(live, f"/submissions/{ids[0]}/results.json").json()
    assert document == signed(gpu_document("h100"))
    assert _get(live, f"/submissions/{ids[0]}.html").status_code == 200
    report = _get(live, f"/submissions/{ids[0]}/report.html")
    assert report.status_code == 200 and "bench report" in report.text

    # List.
    listing = _get(live, "/submissions.json").json()
    assert listing["total"] == 3 and [s["id"] for s in listing["submissions"]] == sorted(ids, reverse=True)
    sets = {d["dataset"]: d for d in _get(live, "/datasets.json").json()["datasets"]}
    assert sets["tomatoes"]["submissions"] == 2 and sets["toy"]["submissions"] == 1

    # Filter.
    board = _get(live, "/datasets/tomatoes.json").json()
    assert board["total"] == 8
    only_a30 = _get(live, "/datasets/tomatoes.json", gpu_model="NVIDIA A30").json()
    assert only_a30["total"] == 4 and {r["submission_id"] for r in only_a30["rows"]} == {ids[1]}
    linear = _get(live, "/datasets/tomatoes.json", model_family="linear").json()
    assert linear["total"] == 6 and {r["model_family"] for r in linear["rows"]} == {"linear"}
    measured_gpu = _get(live, "/datasets/tomatoes.json", method="measured:nvml-energy-counter").json()
    assert measured_gpu["total"] == 8
    estimated = _get(live, "/datasets/toy.json", method="estimated").json()
    assert estimated["total"] == 1
    assert _get(live, "/datasets/toy.json", method="measured").json()["total"] == 0
    assert _get(live, "/datasets/tomatoes.json", hardware_profile="a30").json()["total"] == 4

    # Sort: accuracy high first, energies low first.
    def values(sort: str, key: str) -> list[float]:
        return [r[key] for r in _get(live, "/datasets/tomatoes.json", sort=sort).json()["rows"]]

    assert values("accuracy", "accuracy") == sorted(values("accuracy", "accuracy"), reverse=True)
    assert values("j_per_text", "j_per_text") == sorted(values("j_per_text", "j_per_text"))
    assert values("j_per_correct", "j_per_correct") == sorted(values("j_per_correct", "j_per_correct"))
    paged = _get(live, "/datasets/tomatoes.json", sort="j_per_text", limit="3", offset="3").json()
    assert [r["j_per_text"] for r in paged["rows"]] == values("j_per_text", "j_per_text")[3:6]

    # The paper's numbers as the reference rows.
    reference = {r["model"]: r for r in board["reference"]}
    assert reference["Linear BoW"]["accuracy"] == 0.59
    assert reference["Linear Embedding"]["j_per_text"] == 0.01 * 3600 / 200

    # CSV: every row, same columns as the JSON.
    text = _get(live, "/datasets/tomatoes.csv", gpu_model="NVIDIA A30").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 and {r["gpu_model"] for r in rows} == {"NVIDIA A30"}

    # The page: filters, sorts, the plot, the reference rows.
    page = _get(live, "/datasets/tomatoes.html", sort="j_per_text")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.text.count('<tr class="entry">') == 8 and page.text.count('<tr class="reference">') >= 6
    assert '<svg class="chart"' in page.text and "<script" not in page.text
    assert _get(live, "/").status_code == 200


def test_user_strings_are_escaped_and_sql_is_data(live: Live) -> None:
    hostile = "<script>alert('x')</script>"
    sql = "x'); DROP TABLE submissions; --"
    doc = valid_document(
        run_id=sql,
        profile={"name": f"<b>{hostile}</b>", "hardware": {"device": "cpu", "gpu_count": 0}},
        environment={
            "machine": {"cpu_model": f'<img src=x onerror="alert(1)">{hostile}', "gpus": [], "ram_gb": 16.0},
            "software": {"kit_version": "0.1.0"},
        },
        models={"linear-bow": {"paper_label": hostile, "kind": "traditional"}},
    )
    answer = post(live.server, body(doc), live.token)
    assert answer.status_code == 201, answer.text
    sid = answer.json()["id"]
    for path in ("/", "/datasets/toy.html", f"/submissions/{sid}.html", f"/submissions/{sid}/report.html"):
        page = _get(live, path)
        assert page.status_code == 200
        assert "<script>" not in page.text and "<img src=x" not in page.text, path
        assert "&lt;script&gt;" in page.text, path
    assert _get(live, f"/submissions/{sid}.json").json()["run_id"] == sql  # stored literally, tables intact
    # A filter value that looks like SQL is a value: no rows, no error, nothing dropped.
    found = _get(live, "/datasets/toy.json", gpu_model="' OR '1'='1", hardware_profile='x" OR 1=1 --').json()
    assert found["total"] == 0
    assert storage.count_submissions(live.engine) == 1


def test_csv_defuses_formulas() -> None:
    from bench.leaderboard.views import leaderboard_csv

    text = leaderboard_csv([{"run_id": "=HYPERLINK(1)", "model": "-2+3", "dataset": "toy", "accuracy": 0.5}])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["run_id"] == "'=HYPERLINK(1)" and row["model"] == "'-2+3" and row["accuracy"] == "0.5"


def test_submitted_report_is_sandboxed_and_rendered_report_is_ours(live: Live) -> None:
    evil = "<html><body><script>document.title='pwned'</script>sent</body></html>"
    sid = post(live.server, body(valid_document(), report_html=evil), live.token).json()["id"]
    sent = _get(live, f"/submissions/{sid}/submitted-report.html")
    assert sent.status_code == 200 and sent.text == evil
    assert "sandbox" in sent.headers["content-security-policy"]
    assert "script-src" not in sent.headers["content-security-policy"]  # default-src 'none': no script runs
    ours = _get(live, f"/submissions/{sid}/report.html")
    assert "<script" not in ours.text


def test_hidden_submission_is_kept_but_not_shown(live: Live) -> None:
    first = post(live.server, body(valid_document("a")), live.token).json()["id"]
    second = post(live.server, body(valid_document("b")), live.token).json()["id"]
    storage.set_hidden(live.engine, first, True, "duplicate of a published run")
    assert _get(live, f"/submissions/{first}.html").status_code == 410
    assert _get(live, f"/submissions/{first}.json").status_code == 410
    assert _get(live, f"/submissions/{first}/results.json").status_code == 410
    board = _get(live, "/datasets/toy.json").json()
    assert {r["submission_id"] for r in board["rows"]} == {second}
    assert [s["id"] for s in _get(live, "/submissions.json").json()["submissions"]] == [second]
    # Kept: resubmitting it answers its id, and unhiding brings it back.
    again = post(live.server, body(valid_document("a")), live.token)
    assert again.status_code == 200 and again.json()["id"] == first
    assert storage.count_submissions(live.engine, include_hidden=True) == 2
    storage.set_hidden(live.engine, first, False)
    assert _get(live, f"/submissions/{first}.html").status_code == 200


def test_rate_limit_per_token(tmp_path: Path) -> None:
    from tests.leaderboard.conftest import _live

    gen = _live(tmp_path, rate_limit=2)
    live = next(gen)
    try:
        other = storage.create_token(live.engine, "other")
        codes = [post(live.server, body(valid_document(f"r{i}")), live.token).status_code for i in range(3)]
        assert codes == [201, 201, 429]
        limited = post(live.server, body(valid_document("r9")), live.token)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert storage.find_by_hash(live.engine, signed(valid_document("r9"))["content_hash"]) is None
        assert post(live.server, body(valid_document("r3")), other).status_code == 201  # per token
        assert storage.count_submissions(live.engine) == 3
    finally:
        gen.close()


def test_tokens_are_stored_as_hashes_only(live: Live) -> None:
    db = str(live.engine.url.database)
    with sqlite3.connect(db) as connection:
        dump = "\n".join(connection.iterdump())
    assert live.token not in dump
    assert storage.token_hash(live.token) in dump
    assert json.dumps(storage.list_tokens(live.engine)).count(live.token) == 0


def _caches(live: Live) -> dict[str, dict[str, int]]:
    return _get(live, "/healthz").json()["caches"]


def test_report_is_rendered_once_per_submission(live: Live) -> None:
    """GETs of a report must not re-render it (a public reader could keep the single worker busy): the second GET
    is answered from the cache, and a hidden submission's cached report is still refused."""
    sid = post(live.server, body(gpu_document()), live.token).json()["id"]
    first = _get(live, f"/submissions/{sid}/report.html")
    assert first.status_code == 200 and "bench report" in first.text
    assert _caches(live)["reports"] == dict(_caches(live)["reports"], renders=1, hits=0)
    second = _get(live, f"/submissions/{sid}/report.html")
    assert second.status_code == 200 and second.text == first.text
    assert _caches(live)["reports"]["renders"] == 1 and _caches(live)["reports"]["hits"] == 1
    storage.set_hidden(live.engine, sid, True)
    assert _get(live, f"/submissions/{sid}/report.html").status_code == 410


def test_csv_is_built_once_per_data_version(live: Live) -> None:
    """The full CSV of a data set is built once per data version: repeated GETs hit the cache, and a new
    submission or a hide (here from another process, as `bench leaderboard hide` does) makes it current again."""
    first = post(live.server, body(valid_document("csv-a")), live.token).json()["id"]

    def ids() -> set[int]:
        answer = _get(live, "/datasets/toy.csv")
        assert answer.status_code == 200
        return {int(r["submission_id"]) for r in csv.DictReader(io.StringIO(answer.text))}

    assert ids() == {first} and ids() == {first}
    assert _caches(live)["csv"]["renders"] == 1 and _caches(live)["csv"]["hits"] == 1
    second = post(live.server, body(valid_document("csv-b")), live.token).json()["id"]
    assert ids() == {first, second}
    assert _caches(live)["csv"]["renders"] == 2
    storage.set_hidden(live.engine, first, True)
    assert ids() == {second}
    storage.set_hidden(live.engine, first, False)
    assert ids() == {first, second}
    assert _caches(live)["csv"] == dict(_caches(live)["csv"], renders=4, hits=1)


def test_workers_share_the_database_and_the_rate_limit(tmp_path: Path) -> None:
    """`serve --workers 2`: two processes answer, and the per-token limit holds across them (it lives in the DB)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.leaderboard.conftest import _live

    gen = _live(tmp_path, rate_limit=3, extra=["--workers", "2"])
    live = next(gen)
    try:
        pids = set()
        for _ in range(200):  # the kernel spreads connections over the two listening processes
            pids.add(httpx.get(live.server.url + "/healthz", timeout=10).json()["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, f"only one worker answered: {pids}"
        bodies = [body(valid_document(f"w{i}")) for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(lambda b: post(live.server, b, live.token).status_code, bodies))
        assert codes == [201] * 3 + [429] * 5
        assert storage.count_submissions(live.engine) == 3
    finally:
        gen.close()
