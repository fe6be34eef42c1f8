"""The report's per-cell conditions (others' CPU share, GPU telemetry) and the compare page's notices about them."""

from __future__ import annotations

from bench.report.compare import condition_notices
from bench.report.sections.conditions import conditions_view
from bench.results import OtherLoad
from tests.factories import cell, document


def _cells() -> list:
    judged, short = cell(0), cell(1)
    judged.others = OtherLoad(wall_s=2.0, logical_cpus=4, other_cpu_share=0.25, resolution_share=0.01, judged=True)
    judged.flags = ["other processes used 25.0% of the machine's CPU time (limit 10%; ...)"]
    short.others = OtherLoad(wall_s=0.2, logical_cpus=4, other_cpu_share=0.5, judged=False, note="too short")
    return [short, judged]


def test_flagged_cells_come_first_and_short_windows_are_shown_as_unjudged() -> None:
    view = conditions_view(document(_cells()))
    assert view is not None and (view.flagged, view.total) == (1, 2)
    first, second = view.table.rows
    assert first[0].text.endswith(" · 0") and first[2].text == "25.0%" and first[-1].text == "flagged"
    assert second[2].text == "(50.0%)" and second[2].sub == "too short to judge" and second[-1].text == "ok"


def test_documents_without_records_have_no_section_and_a_compare_note() -> None:
    older = document([cell(0), cell(1)])
    assert conditions_view(older) is None
    notices = condition_notices([document(_cells()), older], ["A", "B"])
    assert [n.level for n in notices] == ["warning", "note"]
    assert notices[0].text.startswith("A: 1 cell(s) measured while other processes ran")
    assert notices[1].items == ["A: recorded", "B: not recorded"]
    assert condition_notices([older, older], ["A", "B"]) == []
