"""The bad-input corpus: each submission answered with the right status and every reason, and nothing stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.leaderboard import storage
from bench.results import SCHEMA_VERSION
from tests.leaderboard.conftest import Live
from tests.leaderboard.docs import body, signed, valid_document
from tests.leaderboard.server import post


def _doc(**changes: Any) -> dict[str, Any]:
    data = signed(valid_document("bad-input"))
    data.update(changes)
    data.pop("content_hash")
    return signed(data)


def _with_cell(**changes: Any) -> dict[str, Any]:
    data = signed(valid_document("bad-input"))
    data["cells"][0].update(changes)
    return signed(data)


def _envelope(results: Any, **extra: Any) -> bytes:
    return json.dumps({"results": results, "report_html": None, **extra}).encode()


def _tampered() -> bytes:
    data = signed(valid_document("bad-input"))
    data["cells"][0]["accuracy"] = 1.0
    data["cells"][0]["predictions"] = [0, 1, 1, 0]  # consistent, but not what was hashed
    return _envelope(data)


def _many_problems() -> bytes:
    data = signed(valid_document("bad-input"))
    data["models"]["<b>x</b>"] = {}
    data["status"] = "running"  # and the hash no longer matches
    return _envelope(data)


MB = 1024 * 1024
SQL = "toy'); DROP TABLE submissions; --"


def _sql_name() -> dict[str, Any]:
    data = signed(valid_document("bad-input"))
    data["datasets"][SQL] = data["datasets"].pop("toy")
    data["datasets"][SQL]["name"] = SQL
    data["suite"]["datasets"] = [SQL]
    for cell in data["cells"]:
        cell["dataset"] = SQL
    data.pop("content_hash")
    return signed(data)


def _html_model() -> dict[str, Any]:
    name = "<script>alert(1)</script>"
    data = signed(valid_document("bad-input"))
    data["models"] = {name: {"paper_label": "x"}}
    data["suite"]["models"] = [name]
    for cell in data["cells"]:
        cell["model"] = name
    data.pop("content_hash")
    return signed(data)


def _deep(levels: int) -> dict[str, Any]:
    nested: Any = 1
    for _ in range(levels):
        nested = {"a": nested}
    return _doc(settings={"deep": nested})


def _nul_report() -> bytes:
    return json.dumps({"results": signed(valid_document("bad-input")), "report_html": "<html>\x00</html>"}).encode()


# name -> (body factory, token kind, expected status, a fragment one of the reasons must contain)
CASES: dict[str, tuple[Callable[[], bytes], str, int, str]] = {
    "malformed JSON": (lambda: b'{"results": {"run_id": ', "valid", 400, "not valid JSON"),
    "not UTF-8": (lambda: b'{"results": "\xff\xfe"}', "valid", 400, "UTF-8"),
    "top level not an object": (lambda: b"[1, 2, 3]", "valid", 400, "JSON object"),
    "NaN": (lambda: b'{"results": {"x": NaN}}', "valid", 400, "finite"),
    "results missing": (lambda: b'{"report_html": null}', "valid", 400, "results"),
    "unknown envelope field": (lambda: _envelope(signed(valid_document()), extra=1), "valid", 400, "unknown field"),
    "report not a string": (
        lambda: json.dumps({"results": signed(valid_document()), "report_html": 5}).encode(),
        "valid",
        400,
        "report_html",
    ),
    "infinite number (1e999 parses to inf)": (
        lambda: b'{"results": {"x": 1e999}, "report_html": null}',
        "valid",
        422,
        "results.x: number inf is not finite",
    ),
    "lone surrogate": (lambda: b'{"results": {"x": "\\ud800"}}', "valid", 422, "results.x: text is not valid Unicode"),
    "nested too deeply for json": (lambda: b"[" * 200_000, "valid", 400, "nested too deeply"),
    "nested too deeply for the checks": (lambda: _envelope(_deep(150)), "valid", 400, "nested too deeply"),
    "suite.datasets a number": (
        lambda: _envelope(_doc(suite={"datasets": 5, "models": ["linear-bow"]})),
        "valid",
        422,
        "results.suite.datasets: must be a list",
    ),
    "suite.models names not strings": (
        lambda: _envelope(_doc(suite={"datasets": ["toy"], "models": [["linear-bow"]]})),
        "valid",
        422,
        "results.suite.models: must be a list",
    ),
    "kit_version longer than its column": (
        lambda: _envelope(_doc(kit_version="1." * 30)),
        "valid",
        422,
        "results.kit_version: 60 characters, at most 40",
    ),
    "NUL in cpu_model": (
        lambda: _envelope(
            _doc(environment={"machine": {"cpu_model": "CPU\x00", "gpus": []}, "software": {"kit_version": "0.1.0"}})
        ),
        "valid",
        422,
        "results.environment.machine.cpu_model: contains a NUL",
    ),
    "NUL in run_id": (lambda: _envelope(_doc(run_id="a\x00b")), "valid", 422, "results.run_id: contains a NUL"),
    "NUL in report_html": (_nul_report, "valid", 422, "report_html: contains a NUL"),
    "wrong schema version": (
        lambda: _envelope(_doc(schema_version=SCHEMA_VERSION + 1)),
        "valid",
        422,
        "newer than this kit",
    ),
    "schema version a string": (
        lambda: _envelope(_doc(schema_version=str(SCHEMA_VERSION))),
        "valid",
        422,
        "schema_version",
    ),
    "wrong type: accuracy a string": (lambda: _envelope(_with_cell(accuracy="high")), "valid", 422, "accuracy"),
    "wrong type: cells an object": (lambda: _envelope(_doc(cells={"a": 1})), "valid", 422, "cells"),
    "missing field": (lambda: _envelope({k: v for k, v in _doc().items() if k != "run_id"}), "valid", 422, "run_id"),
    "hash mismatch": (_tampered, "valid", 422, "content_hash: mismatch"),
    "hash missing": (
        lambda: _envelope({k: v for k, v in _doc().items() if k != "content_hash"}),
        "valid",
        422,
        "content_hash: missing",
    ),
    "implausible: window below its minimum": (
        lambda: _envelope(_with_cell(window={"duration_s": 0.5, "loops": 1, "min_window_s": 2.0}, duration_s=0.5)),
        "valid",
        422,
        "shorter than the minimum",
    ),
    "implausible: measured 0 J": (
        lambda: _envelope(
            _with_cell(
                energy={
                    "gpu": {"energy_j": None, "method": "unavailable", "reason": "no GPU"},
                    "cpu": {"energy_j": 0.0, "method": "measured:rapl"},
                    "ram": {"energy_j": 0.5, "method": "estimated:ram-0.375W/GB"},
                }
            )
        ),
        "valid",
        422,
        "measured exactly 0 J",
    ),
    "accuracy the predictions do not give": (
        lambda: _envelope(_with_cell(accuracy=0.25)),
        "valid",
        422,
        "predictions give",
    ),
    "incomplete run": (lambda: _envelope(_doc(status="running")), "valid", 422, "submit a complete run"),
    "provenance missing": (
        lambda: _envelope(_doc(environment={"machine": {"gpus": []}})),
        "valid",
        422,
        "cpu_model: missing",
    ),
    "HTML and script in a model name": (lambda: _envelope(_html_model()), "valid", 422, "not an identifier"),
    "SQL in a data set name": (lambda: _envelope(_sql_name()), "valid", 422, "not an identifier"),
    "every reason at once": (_many_problems, "valid", 422, "content_hash: mismatch"),
    "oversized body (Content-Length)": (lambda: b"{" + b" " * (2 * MB) + b"}", "valid", 413, "above the limit"),
    "missing token": (lambda: body(valid_document("token-test")), "none", 401, "token is required"),
    "revoked token": (lambda: body(valid_document("token-test")), "revoked", 401, "unknown or revoked"),
    "unknown token": (lambda: body(valid_document("token-test")), "unknown", 401, "unknown or revoked"),
    "SQL as a token": (lambda: body(valid_document("token-test")), "sql", 401, "unknown or revoked"),
}


@pytest.fixture(scope="module")
def revoked(shared_live: Live) -> str:
    token = storage.create_token(shared_live.engine, "to-be-revoked")
    storage.revoke_token(shared_live.engine, "to-be-revoked")
    return token


def _counts(live: Live) -> tuple[int, int]:
    with live.engine.connect() as connection:
        subs = connection.execute(sa.select(sa.func.count()).select_from(storage.submissions)).scalar_one()
        rows = connection.execute(sa.select(sa.func.count()).select_from(storage.results)).scalar_one()
    return int(subs), int(rows)


@pytest.fixture
def nothing_stored(shared_live: Live) -> Iterator[None]:
    before = _counts(shared_live)
    yield
    assert _counts(shared_live) == before, "a refused submission left something in the database"
    with shared_live.engine.connect() as connection:  # the tables are all still there
        assert set(sa.inspect(connection).get_table_names()) >= {"submissions", "results", "tokens"}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_nothing_stored(
    case: str, shared_live: Live, revoked: str, nothing_stored: None
) -> None:
    make, token_kind, status, fragment = CASES[case]
    token = {
        "valid": shared_live.token,
        "none": None,
        "revoked": revoked,
        "unknown": "blb_" + "x" * 43,
        "sql": "' OR 1=1 --",
    }[token_kind]
    answer = post(shared_live.server, make(), token)
    assert answer.status_code == status, answer.text
    detail = answer.json()
    assert detail["reasons"], detail
    assert any(fragment in r for r in detail["reasons"]), detail["reasons"]
    if case == "every reason at once":
        assert len(detail["reasons"]) >= 3  # hash, name, status: all of them, not the first
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_oversized_streamed_body_is_cut_off(shared_live: Live, nothing_stored: None) -> None:
    """No Content-Length (chunked): the service stops reading at the limit and answers 413."""
    sent = {"bytes": 0}

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 4 MiB in 64 KiB chunks, against a 1 MiB limit
            sent["bytes"] += 65536
            yield b" " * 65536

    answer = post(shared_live.server, chunks(), shared_live.token)  # type: ignore[arg-type]
    assert answer.status_code == 413, answer.text
    assert "above the limit" in answer.json()["error"]


def test_wrong_content_type(shared_live: Live, nothing_stored: None) -> None:
    answer = post(
        shared_live.server, body(valid_document("ct")), shared_live.token, headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 415


def test_bad_query_parameters(shared_live: Live) -> None:
    url = shared_live.url + "/datasets/toy.json"
    assert httpx.get(url, params={"sort": "energy; DROP TABLE results"}).status_code == 400
    assert httpx.get(url, params={"limit": "-1"}).status_code == 400
    assert httpx.get(url, params={"evil": "1"}).status_code == 400
    assert httpx.get(shared_live.url + "/submissions/1%20OR%201=1.json").status_code == 404
    assert httpx.get(shared_live.url + "/submissions/999999.html").status_code == 404
