"""Flagged cells (conditions of the machine during a window, ``Cell.flags``) and repairs (``ResultDocument.repairs``)
in the report and the comparison page: shown as flagged, not invalid, left out of every mean; a repaired run says
which cells were redone, in which session, when and why."""

from __future__ import annotations

import pytest

from bench.analysis import model_rows
from bench.report import render_compare, render_report
from bench.report.compare import condition_notices, repair_notices
from bench.report.page import report_context
from bench.report.sections.repairs import repairs_view
from bench.results import Repair, RepairedCell
from tests import factories

SHARED = "other processes used 25.0% of the machine's CPU time (limit 10%; 2.00 CPU-s of 2.00 s x 4 CPUs)"


def flagged_document() -> object:
    """Three repetitions of one model; the third measured beside other processes (flagged), with 9137 J that must
    appear in no mean."""
    sound = [factories.cell(r) for r in range(2)]
    flagged = factories.cell(2, energy=factories.energy(cpu_j=9137.0, ram_j=0.5), duration_s=7.0, flags=[SHARED])
    return factories.document(cells=[*sound, flagged], repetitions=3, run_id="r-flags")


def test_a_flagged_cell_is_shown_as_flagged_and_left_out_of_the_means() -> None:
    doc = flagged_document()
    (row,) = model_rows(doc)
    assert (row.n_ok, row.n_invalid, row.n_flagged) == (3, 0, 1)
    assert row.accuracy is not None and row.accuracy.n == 3  # its predictions are the model's: they count
    assert row.energy_j is not None and row.energy_j.n == 2 and row.energy_j.mean == pytest.approx(1.5)
    assert row.duration_s is not None and row.duration_s.mean == pytest.approx(0.5)
    runs = report_context(doc)["datasets"][0].results.rows[0][1]
    assert runs.sub == "1 flagged" and "other processes, throttling" in runs.title
    html = render_report(doc)
    assert "1 cell(s) flagged: the machine was not quiet during their window" in html
    assert "bench run --run-id r-flags --redo-flagged" in html
    assert "toy · linear-bow · rep 2: other processes used 25.0%" in html
    assert "failed a plausibility check" not in html  # flagged is not invalid
    assert "9137" not in html and "9,137" not in html  # the flagged joules are in no mean, plot or table


def test_the_compare_page_reads_flags() -> None:
    doc, quiet = flagged_document(), factories.document(cells=[factories.cell(0), factories.cell(1)])
    (notice,) = condition_notices([doc, quiet], ["A", "B"])
    assert notice.text.startswith("A: 1 cell(s) measured while other processes ran or the GPU throttled (flagged)")
    assert notice.items == [f"toy · linear-bow · rep 2: {SHARED}"]
    # A v4 validity reason that is not a machine condition stays invalid: no condition notice for it.
    invalid = factories.document(cells=[factories.cell(0, validity=["energy.cpu: measured exactly 0 J"])])
    assert condition_notices([invalid, quiet], ["A", "B"]) == []


def repaired_document() -> object:
    cells = [factories.cell(r) for r in range(3)]
    repair = Repair(
        session=1,
        started_at="2026-01-02T10:00:00+00:00",
        finished_at="2026-01-02T10:05:00+00:00",
        cells=[
            RepairedCell(dataset="toy", model="linear-bow", repetition=1, before="flagged", reasons=[SHARED]),
            RepairedCell(
                dataset="toy", model="linear-bow", repetition=2, before="failed", reasons=["failed (OSError: disk)"]
            ),
        ],
    )
    return factories.document(cells=cells, repetitions=3, run_id="r-repaired", repairs=[repair])


def test_a_repaired_run_says_which_cells_were_redone_when_and_why() -> None:
    doc = repaired_document()
    (view,) = repairs_view(doc) or []
    assert view.session == 1 and "started 2026-01-02T10:00:00+00:00, finished 2026-01-02T10:05:00+00:00" in view.text
    assert "2 cell(s) run again in place" in view.text
    first, second = view.table.rows
    assert [td.text for td in first] == ["toy · linear-bow · 1", "flagged", SHARED, "ok"]
    assert [td.text for td in second] == ["toy · linear-bow · 2", "failed", "failed (OSError: disk)", "ok"]
    html = render_report(doc)
    assert '<section id="repairs">' in html and '<a href="#repairs">repairs</a>' in html
    assert "bench run --run-id r-repaired --redo-flagged" in html
    # a run without repairs has no section
    assert '<section id="repairs">' not in render_report(flagged_document())
    assert repairs_view(flagged_document()) is None


def test_the_compare_page_notes_a_repair() -> None:
    doc, other = repaired_document(), flagged_document()
    (notice,) = repair_notices([doc, other], ["A", "B"])
    assert notice.text == "A: repaired: session 1 (started 2026-01-02T10:00:00+00:00) ran 2 cell(s) again in place:"
    assert notice.items == [
        f"toy · linear-bow · rep 1: was flagged ({SHARED})",
        "toy · linear-bow · rep 2: was failed (failed (OSError: disk))",
    ]
    assert "A: repaired: session 1" in render_compare([doc, other])
