"""The rendered report in a real browser: Debian's headless Chromium, driven by Playwright's Python library.

Opens report.html and compare.html from disk (file://), as a user double-clicking the file would, and checks that
the page makes no request but for itself, logs no console error, runs no script, shows its tables and charts with a
real size, and prints. Saves screenshots next to the test's files, and to $BENCH_SCREENSHOT_DIR when set.

Skipped where Chromium or Playwright is missing, except in CI (CI=true), where a missing browser is a failure:
.ci/run installs Debian's `chromium` and the dev extra brings `playwright` (its own browser downloads are not used).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.calibration import REFERENCE, UNIT_FLOP
from bench.report import render_compare, render_report
from bench.report.sample import sample_document
from bench.results import Calibration, EnergyValue, GpuProcess, GridRecord, OtherLoad


def with_conditions(doc: Any) -> Any:
    """``doc`` as a schema v3 run records it: a grid for the derived CO2e, and per cell what else ran and the GPUs'
    state at the window's edges (one cell shared with a foreign GPU process, one too short to judge)."""
    doc.grid = GridRecord(country_iso_code="DEU", intensity_gco2e_per_kwh=380.95, intensity_source="test grid")
    doc.calibration = [
        Calibration(
            session=0,
            reference=REFERENCE,
            device="cpu",
            unit_flop=UNIT_FLOP,
            measured_at="2026-01-01T00:00:00+00:00",
            loops=400,
            duration_s=2.0,
            s_per_unit=0.005,
            j_per_unit=0.4,
            energy={"cpu": EnergyValue(energy_j=0.4, method="measured:rapl")},
        )
    ]
    for i, cell in enumerate(c for c in doc.cells if c.status == "ok"):
        procs = [GpuProcess(gpu_index=0, pid=4242, used_memory_bytes=2**30, name="other", own=False)] if i == 0 else []
        cell.others = OtherLoad(
            wall_s=12.0 if i != 1 else 0.4,
            logical_cpus=64,
            other_cpu_share=0.02 + 0.01 * (i % 5),
            resolution_share=0.001,
            judged=i != 1,
            note="window 0.40 s too short to judge" if i == 1 else None,
            gpu_processes=procs,
        )
        if i == 0:
            cell.flags = [*cell.flags, "other process(es) on a metered GPU: GPU 0 pid 4242 (other) 1024 MiB"]
        gpu = cell.energy["gpu"]
        if gpu.energy_j is not None and not gpu.detail.get("gpus"):  # the sample keeps no per-GPU records
            gpu.detail["gpus"] = [{"index": 0, "name": "NVIDIA H100 80GB HBM3"}]
        for record in gpu.detail.get("gpus", []):
            record.update(
                temperature_c_start=48 + i % 7,
                temperature_c_end=61 + i % 9,
                sm_clock_mhz_start=1980,
                sm_clock_mhz_end=1755,
                power_limit_w_start=700.0,
                power_limit_w_end=700.0,
                clocks_event_reason_names_start=[],
                clocks_event_reason_names_end=["sw_power_cap"] if i == 2 else [],
            )
    return doc


CHROMIUM = os.environ.get("BENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",  # no update checks, safe-browsing lists, ... during the test
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1360, "height": 900}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problems = []
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problems.append("Playwright is not installed (pip install -e '.[dev]')")
    if problems:
        if _in_ci():
            pytest.fail("browser test cannot run in CI: " + "; ".join(problems))
        pytest.skip("; ".join(problems))
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _open(browser: Any, path: Path) -> tuple[Any, dict[str, list[str]]]:
    """Open ``path`` from disk and record what the page does."""
    page = browser.new_page(viewport=VIEWPORT)
    seen: dict[str, list[str]] = {"requests": [], "console": [], "errors": [], "dialogs": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on(
        "console", lambda m: seen["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def _screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("BENCH_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / name)
    return shot


def _assert_quiet(seen: dict[str, list[str]], url: str) -> None:
    network = [u for u in seen["requests"] if not u.startswith("data:")]
    assert network == [url], f"the page requested more than itself: {network}"
    assert seen["console"] == [], seen["console"]
    assert seen["errors"] == [] and seen["dialogs"] == [], (seen["errors"], seen["dialogs"])


def _visible_charts(page: Any) -> int:
    """Charts that the browser actually laid out with a size (not just present in the markup)."""
    return page.evaluate(
        "() => [...document.querySelectorAll('svg.chart')].filter(s => { const r = s.getBoundingClientRect();"
        " return r.width > 200 && r.height > 80 && s.querySelectorAll('circle,rect,polygon,polyline').length > 3; })"
        ".length"
    )


def test_report_opens_offline_with_tables_and_charts(browser: Any, tmp_path: Path) -> None:
    doc = with_conditions(sample_document(("tomatoes", "news"), repetitions=3, hostile=True, predictions=False))
    path = tmp_path / "report.html"
    path.write_text(render_report(doc), encoding="utf-8")
    page, seen = _open(browser, path)
    try:
        _assert_quiet(seen, path.as_uri())
        assert page.title().startswith("bench report")
        assert page.locator("table").count() >= 9  # per data set: results, components, paper; meters; fit
        assert page.locator("section.dataset").count() == 3
        # accuracy vs energy and components per data set (3), energy vs duration, serving modes
        assert _visible_charts(page) >= 8
        assert page.locator("svg.chart polyline.front").count() >= 2  # Pareto fronts drawn
        for heading in (
            "Warnings and notes",
            "Runtime as a proxy for energy",
            "Sequential against batched serving",
            "Measurement conditions per cell",
            "Power over time",
            "Machine and software",
        ):
            assert page.get_by_role("heading", name=heading).count() == 1, heading
        # power over time: one chart per model (its longest cell), each component's steps and its idle level drawn
        models = len({c.model for c in doc.cells if c.status == "ok"})
        timeline = page.locator("#power-over-time svg.chart")
        assert timeline.count() == models and timeline.first.bounding_box()["height"] > 150
        assert page.locator("#power-over-time polyline.power").count() >= models * 2
        assert page.locator("#power-over-time line.idle").count() >= models * 2
        # An HTML model name is shown as its characters, and did not become an element.
        assert page.get_by_text("<script>alert(1)</script>", exact=True).count() >= 1
        assert page.evaluate("() => document.scripts.length") == 0
        conditions = page.locator("table.conditions")
        assert conditions.count() == 1 and conditions.bounding_box()["height"] > 100
        assert page.locator("table.conditions tbody tr").first.inner_text().endswith("flagged")  # flagged first
        assert page.get_by_text("too short to judge").count() >= 1
        assert page.get_by_text("machine index (session 0)").count() == 1
        assert page.locator("table.results th", has_text="CO₂e (derived)").count() == 3  # one per data set
        numbers = page.locator("table.results tbody td:nth-child(3)").first
        assert numbers.evaluate("e => getComputedStyle(e).textAlign") == "right"  # numbers right-aligned
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= VIEWPORT["width"], f"page wider than the window ({width} px)"
        _screenshot(page, tmp_path, "report.png")
        page.emulate_media(media="print")
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    finally:
        page.close()


def test_compare_opens_offline(browser: Any, tmp_path: Path) -> None:
    a = with_conditions(sample_document(("tomatoes",), repetitions=2, predictions=False))
    b = sample_document(("tomatoes",), repetitions=2, machine="a30", seed=1, predictions=False)
    path = tmp_path / "compare.html"
    path.write_text(render_compare([a, b]), encoding="utf-8")
    page, seen = _open(browser, path)
    try:
        _assert_quiet(seen, path.as_uri())
        assert page.get_by_role("heading", name="Comparability").count() == 1
        assert page.locator(".notice.warning").count() >= 1  # the splits differ between the two seeds
        assert page.locator("table.compare").count() == 1
        assert page.get_by_text("measured while other processes ran or the GPU throttled").count() == 1
        assert page.locator("table.compare th", has_text="CO₂e (derived)").count() == 1
        assert page.locator("table.compare th", has_text="energy / index").count() == 1  # A has an index, B none
        assert _visible_charts(page) >= 3
        _screenshot(page, tmp_path, "compare.png")
    finally:
        page.close()


def test_a_long_label_and_model_name_wrap_within_the_page(browser: Any, tmp_path: Path) -> None:
    """Users' own data brings labels of hundreds of characters (and no spaces) and models named by long paths: the
    page must wrap them, not run off the window."""
    doc = sample_document(("tomatoes",), repetitions=2, predictions=False)
    record = next(iter(doc.datasets.values()))
    long_label = "x" * 300
    record.label_names = [long_label, "a label of many words " * 14]
    long_model = "hf:/home/someone/" + "checkpoints-of-a-fine-tuned-model/" * 5 + "final"
    first = doc.cells[0].model
    for cell in doc.cells:
        if cell.model == first:
            cell.model = long_model
    doc.models[long_model] = doc.models.pop(first)
    doc.suite["models"] = [long_model if m == first else m for m in doc.suite["models"]]
    path = tmp_path / "report.html"
    path.write_text(render_report(doc), encoding="utf-8")
    page, seen = _open(browser, path)
    try:
        _assert_quiet(seen, path.as_uri())
        assert page.get_by_text(long_label, exact=False).count() >= 1
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= VIEWPORT["width"], f"page wider than the window ({width} px)"
    finally:
        page.close()
