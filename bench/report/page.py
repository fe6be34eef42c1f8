"""The two pages: ``report.html`` (one run) and ``compare.html`` (several runs), each one self-contained file.

CSS inline, charts as inline SVG (``bench.report.svg``), no JavaScript, no fonts, no links to fetch: a page must open
offline, years later, from a USB stick. Jinja2 renders it with autoescape on, so every string that comes from a
results file (model names, error messages, environment values) is shown as text.

Owns the Jinja environment (``jinja_environment``: the leaderboard's pages use it too), the view model of the
report (``report_context``, assembled from ``bench.report.sections``), the page frame (the paper's citation and the
"rendered by" stamp), rendering and writing both pages. The sections turn documents into preformatted strings,
tables and SVG (all the judgement lives there and is unit-testable); small templates lay them out: the two pages
include one partial per section (``templates/_<section>.html.j2``, each naming the module that builds its view
model). Jinja2 is imported when a page is rendered, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench import __version__
from bench.analysis import model_rows
from bench.report import svg
from bench.report.compare import compare_context
from bench.report.format import get, num
from bench.report.sections.breakeven import breakeven_view
from bench.report.sections.conditions import conditions_view
from bench.report.sections.datasets import dataset_views
from bench.report.sections.facts import head_facts, manifest, meters_table, warnings
from bench.report.sections.power import power_views
from bench.report.sections.proxy import regression_view
from bench.report.sections.repairs import repairs_view
from bench.report.sections.scaleout import scaleout_view
from bench.report.sections.serving import configuration_views, serving_view
from bench.report.sections.timeline import timeline_view

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PAPER_CITATION = (
    "Zschache & Hartwig, “Comparing energy consumption and accuracy in text classification inference”, "
    "arXiv 2508.14170; Scientific Reports 16 (2026), doi 10.1038/s41598-026-45023-0"
)


def report_context(doc: Any) -> dict[str, Any]:
    """The view model of ``report.html``: everything preformatted, no logic left for the template."""
    all_rows = model_rows(doc)
    datasets = dataset_views(doc, all_rows)  # first: chart ids are numbered in the order the charts are drawn
    return {
        "title": f"bench report — {get(doc, 'run_id', 'run')}",
        "run_id": get(doc, "run_id", "run"),
        "head": head_facts(doc),
        "warnings": warnings(doc),
        "manifest": manifest(doc),
        "meters": meters_table(doc),
        "datasets": datasets,
        "regression": regression_view(doc),
        "serving": serving_view(doc, all_rows),
        "configurations": configuration_views(all_rows, doc),
        "power_limits": power_views(all_rows, doc),
        "breakeven": breakeven_view(doc),
        "scaleout": scaleout_view(doc, all_rows),
        "timeline": timeline_view(doc),
        "conditions": conditions_view(doc),
        "repairs": repairs_view(doc),
        **_frame(),
    }


def _frame() -> dict[str, str]:
    """What both pages show around their sections: the paper they rerun and who rendered them, when."""
    return {"citation": PAPER_CITATION, "generated": _generated()}


def _generated() -> str:
    return f"bench {__version__}, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"


# --- rendering ------------------------------------------------------------------------------------------------------


def jinja_environment(directory: Path) -> Any:
    """A Jinja2 environment over the templates in ``directory``, as the report's and the leaderboard's pages need
    it: autoescape on, undefined names fail, block tags leave no blank lines, and the ``num`` filter."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=True,  # every string from a results file is text, never markup
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the tests instead of rendering blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = num
    return env


@lru_cache(maxsize=1)
def _environment() -> Any:
    return jinja_environment(TEMPLATES_DIR)


def render_report(doc: Any) -> str:
    """The HTML of ``report.html`` for one results document."""
    with svg.page_ids():
        return _environment().get_template("report.html.j2").render(**report_context(doc))


def render_compare(docs: Sequence[Any]) -> str:
    """The HTML of ``compare.html`` for several results documents (at least one)."""
    if not docs:
        raise ValueError("compare needs at least one run")
    with svg.page_ids():
        return _environment().get_template("compare.html.j2").render(**compare_context(docs), **_frame())


def _write(path: Path, text: str) -> Path:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_report(run: Path | str, output: Path | str | None = None) -> Path:
    """Load ``run`` (a run folder or its results.json) and write its report (default: ``<run folder>/report.html``)."""
    from bench.results import load_results

    run = Path(run)
    doc = load_results(run)
    folder = run if run.is_dir() else run.parent
    return _write(Path(output) if output else folder / "report.html", render_report(doc))


def write_compare(runs: Sequence[Path | str], output: Path | str) -> Path:
    """Load several runs and write the comparison page to ``output``."""
    from bench.results import load_results

    docs = [load_results(Path(r)) for r in runs]
    return _write(Path(output), render_compare(docs))
