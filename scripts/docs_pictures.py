"""The documentation's two pictures, made from a real run, never drawn by hand (``make docs-pictures``).

- ``docs/assets/accuracy-energy.svg``: the report's accuracy-energy chart (``bench.report.sections.datasets.
  accuracy_energy_plot``, the code report.html draws it with) of a stored run, as a stand-alone SVG with the report's
  chart styles inlined. The README shows it. Deterministic: ``tests/unit/test_docs.py`` checks the committed file
  equals what this script makes now.
- ``docs/assets/report.png``: that run's report.html in headless Chromium (Debian's ``chromium``, driven by
  Playwright as ``tests/browser/test_report_browser.py`` does), with numbered callouts put beside the parts that
  ``docs/guides/report.md`` explains under the same numbers.

The run: ``tests/fixtures/golden/cpu-default.results.json`` (a real run of the cpu profile's default suite on the
2-core CI machine; see ``tests/golden.py``), or ``--run reports/<run-id>`` for one of yours.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STORED_RUN = REPO / "tests" / "fixtures" / "golden" / "cpu-default.results.json"
ASSETS = REPO / "docs" / "assets"
CHROMIUM = "/usr/bin/chromium"

#: The callouts of the report's picture, in page order: (number, Playwright selector of the element it marks, the
#: first one matched).
#: docs/guides/report.md explains each under its number.
CALLOUTS = [
    (1, "header h1"),
    (2, "h2:text-is('Warnings and notes')"),
    (3, "div.explain"),
    (4, "h3:text-is('Accuracy, duration and energy per model')"),
    (5, "h3:text-is('Energy by component')"),
    (6, "h3:text-is('Against the paper')"),
    (7, ":text-is('Accuracy against energy per text')"),
    (8, ":text-is('Energy split by component')"),
    (9, "h2:text-is('Runtime as a proxy for energy')"),
    (10, "h2:text-is('Machine and software')"),
]


def chart_svg(run: Path) -> str:
    """The accuracy-energy chart of ``run``'s first data set, stand-alone (the report's chart CSS inlined)."""
    from bench.analysis import model_rows
    from bench.report import svg
    from bench.report.sections.datasets import accuracy_energy_plot
    from bench.results import load_results

    doc = load_results(run)
    rows = model_rows(doc)
    dataset = rows[0].dataset
    with svg.page_ids():
        chart = str(accuracy_energy_plot([r for r in rows if r.dataset == dataset], f"{dataset}: {doc.run_id}"))
    base = (REPO / "bench" / "report" / "templates" / "_base.html.j2").read_text(encoding="utf-8")
    colours = dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6})", base))
    rules = [line for line in base.splitlines() if line.startswith("svg.chart")]
    css = "\n".join(rules).replace("font-family: inherit", "font-family: system-ui, Arial, sans-serif")
    css = re.sub(r"var\(--([a-z-]+)\)", lambda m: colours[m.group(1)], css)
    style = f"<style>\n{css}\nsvg.chart {{ background: #fff; }}\n</style>"
    return chart.replace("</title>", "</title>" + style, 1) + "\n"


def report_png(run: Path, out: Path) -> None:
    """Render ``run``'s report.html, open it in headless Chromium, number the parts and take a full-page picture."""
    from playwright.sync_api import sync_playwright

    from bench.report import render_report
    from bench.results import load_results

    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "report.html"
        page_path.write_text(render_report(load_results(run)), encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(page_path.as_uri(), wait_until="load")
            for number, selector in CALLOUTS:
                found = page.locator(selector).first
                if found.count() == 0:
                    raise SystemExit(f"callout {number}: nothing in the report matches {selector!r}")
                found.evaluate(
                    "(el, n) => { const b = document.createElement('span'); b.textContent = n;"
                    " b.style.cssText = 'position:absolute;left:-34px;top:0;width:26px;height:26px;"
                    "border-radius:13px;background:#c2185b;color:#fff;font:bold 15px/26px sans-serif;"
                    "text-align:center;box-shadow:0 0 0 3px #fff;z-index:9';"
                    " if (getComputedStyle(el).position === 'static') el.style.position = 'relative';"
                    " el.prepend(b); }",
                    number,
                )
            page.add_style_tag(content="body { padding-left: 3rem !important; }")
            page.screenshot(path=str(out), full_page=True)
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=STORED_RUN, help="a results.json or run folder")
    parser.add_argument("--no-screenshot", action="store_true", help="only the chart (no Chromium needed)")
    args = parser.parse_args(argv)
    ASSETS.mkdir(parents=True, exist_ok=True)
    (ASSETS / "accuracy-energy.svg").write_text(chart_svg(args.run), encoding="utf-8")
    print(f"wrote {ASSETS / 'accuracy-energy.svg'}")
    if not args.no_screenshot:
        report_png(args.run, ASSETS / "report.png")
        print(f"wrote {ASSETS / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
