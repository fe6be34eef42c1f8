"""The leaderboard page in a real browser: Debian's headless Chromium (Playwright's library) against a real server.

Starts `bench leaderboard serve` on loopback over an SQLite file, submits runs of two GPU machines and one with
HTML in its strings, and uses the page as a visitor would: the table and the chart laid out, the filter form, the
sort links, a click through to a submission. The page must load nothing but itself, run no script and show
submitted HTML as text. Skipped without Chromium or Playwright, failed instead in CI (as the report's browser test).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_report_browser import _open, _screenshot, _visible_charts, browser  # noqa: F401 (fixture)
from tests.leaderboard.conftest import Live, _live
from tests.leaderboard.docs import body, gpu_document, valid_document
from tests.leaderboard.server import post

HOSTILE = "<script>alert('cpu')</script>"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    gen = _live(tmp_path_factory.mktemp("lb-browser"))
    live = next(gen)
    docs = [gpu_document("h100"), gpu_document("a30", seed=1)]
    hostile = gpu_document("h100", seed=2, run_id=f"<img src=x onerror=alert(1)>{HOSTILE}")
    hostile.environment["machine"]["cpu_model"] = HOSTILE
    docs.append(hostile)
    for doc in docs:
        answer = post(live.server, body(doc), live.token)
        assert answer.status_code == 201, answer.text
    post(live.server, body(valid_document()), live.token)
    yield live
    gen.close()


def _numbers(page: Any, column: int) -> list[float]:
    texts = page.locator(f"table.leaderboard tbody tr.entry td:nth-child({column})").all_inner_texts()
    return [float(re.split(r"\s", t.strip())[0].replace("×10", "e")) for t in texts]


def test_leaderboard_page_filters_sorts_and_links(browser: Any, board: Live, tmp_path: Path) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    seen: dict[str, list[str]] = {"requests": [], "console": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: seen["console"].append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    try:
        url = f"{board.url}/datasets/tomatoes.html"
        page.goto(url, wait_until="load")
        assert page.title() == "Leaderboard: tomatoes"
        rows = page.locator("table.leaderboard tbody tr.entry")
        assert rows.count() == 12  # 3 runs x 4 models
        assert page.locator("table.leaderboard tbody tr.reference").count() >= 6  # the paper's rows
        assert _visible_charts(page) == 1
        assert page.locator("svg.chart polygon").count() >= 6  # the paper's points: diamonds
        assert page.evaluate("() => document.scripts.length") == 0
        assert page.get_by_text(HOSTILE, exact=False).count() >= 1  # shown as characters, not run
        for heading in ("energy / index", "CO₂e (derived)"):  # the comparability columns, labelled (issue 16)
            assert page.locator("table.leaderboard th", has_text=heading).count() == 1, heading
        accuracy = _numbers(page, 5)
        assert accuracy == sorted(accuracy, reverse=True)
        _screenshot(page, tmp_path, "leaderboard.png")

        # Filter by GPU model with the form (a GET back to the page, no script).
        page.select_option("select[name=gpu_model]", "NVIDIA A30")
        with page.expect_navigation(wait_until="load"):
            page.click("form.filters button[type=submit]")
        assert "gpu_model=NVIDIA+A30" in page.url
        assert rows.count() == 4
        machines = page.locator("table.leaderboard tbody tr.entry td:nth-child(4)").all_inner_texts()
        assert {" ".join(m.split()) for m in machines} == {"a30 NVIDIA A30 ×8; AMD EPYC 9334 32-Core Processor"}

        # Sort by energy per text, keeping the filter.
        with page.expect_navigation(wait_until="load"):
            page.get_by_role("link", name="energy per text (low first)").click()
        assert "sort=j_per_text" in page.url and "gpu_model=NVIDIA+A30" in page.url
        energy = _numbers(page, 6)
        assert len(energy) == 4 and energy == sorted(energy)

        # Through to a submission and its report.
        with page.expect_navigation(wait_until="load"):
            page.locator("table.leaderboard tbody tr.entry td:last-child a").first.click()
        assert re.search(r"/submissions/\d+\.html$", page.url)
        assert page.get_by_role("heading", name=re.compile("^Submission")).count() == 1
        with page.expect_navigation(wait_until="load"):
            page.get_by_role("link", name="the full report").click()
        assert page.title().startswith("bench report") and _visible_charts(page) >= 2

        foreign = [u for u in seen["requests"] if not u.startswith((board.url, "data:"))]
        assert foreign == [], foreign
        assert seen["errors"] == [] and seen["console"] == [], seen
    finally:
        page.close()
