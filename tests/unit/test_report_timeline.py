"""The report's power-over-time section (bench.report.sections.timeline) and its chart (bench.report.svg.timeline)."""

from __future__ import annotations

from bench.report import render_report, svg
from bench.report.sections.timeline import timeline_view
from bench.results import IdleBaseline, PowerSeries, Window
from tests.factories import cell, document


def _series(cpu: list[float], interval_s: float = 0.1, **missing: str) -> PowerSeries:
    return PowerSeries.model_validate(
        {
            "window_s": interval_s * len(cpu),
            "hz": 10.0,
            "components": {
                "cpu": {"method": "measured:rapl", "source": "counter", "interval_s": interval_s, "watts": cpu},
                "ram": {
                    "method": "measured:rapl",
                    "source": "counter",
                    "interval_s": interval_s,
                    "watts": [3.0] * len(cpu),
                },
            },
            "missing": missing,
        }
    )


def _idle() -> IdleBaseline:
    return IdleBaseline(
        session=0,
        measured_at="2025-12-31T23:59:00+00:00",
        duration_s=5.0,
        power_w={"gpu": None, "cpu": 8.0, "ram": 3.0},
        methods={"gpu": "unavailable", "cpu": "measured:rapl", "ram": "measured:rapl"},
    )


def test_longest_cell_per_model_with_idle_lines() -> None:
    short = cell(0, power_series=_series([10.0, 20.0]), window=Window(duration_s=2.0, loops=4, min_window_s=2.0))
    long = cell(
        1,
        power_series=_series([12.0, 25.0, 24.0], gpu="not measured: no GPU"),
        window=Window(duration_s=3.0, loops=4, min_window_s=2.0),
    )
    other = cell(0, model="<b>xgb</b>", power_series=_series([9.0]))
    without = cell(1, model="<b>xgb</b>")  # an older cell: no series, never chosen
    doc = document([short, long, other, without])
    doc.idle = [_idle()]
    charts = timeline_view(doc)
    assert [c.model for c in charts] == ["linear-bow", "<b>xgb</b>"]
    first = charts[0]
    assert (
        "repetition 1" in first.caption and "3.00 s" in first.caption and "gpu: not measured: no GPU" in first.caption
    )
    assert first.svg.count('class="power"') == 2 and first.svg.count('class="idle"') == 2
    assert "cpu idle 8 W" in first.svg
    assert "<b>xgb</b>" not in str(charts[1].svg)  # escaped


def test_no_section_without_series_and_the_page_renders_it() -> None:
    assert timeline_view(document([cell(0), cell(1)])) is None
    doc = document([cell(0, power_series=_series([10.0, 20.0])), cell(1)])
    doc.idle = [_idle()]
    page = render_report(doc)
    assert 'id="power-over-time"' in page and 'href="#power-over-time"' in page
    assert "Power over time" in render_report(doc) and "power over time" not in render_report(document([cell(0)]))


def test_timeline_chart_draws_steps_and_says_no_data() -> None:
    line = svg.Timeline("cpu", 0.0, 0.5, [10.0, 20.0], idle_w=5.0)
    chart = str(svg.timeline([line], title="t"))
    assert chart.count("<polyline") == 1 and 'stroke-dasharray="5 3"' in chart
    assert "no data" in str(svg.timeline([], title="t"))


def test_a_flagged_cell_says_so_under_its_chart() -> None:
    shared = "other processes used 30.0% of the machine's CPU time"
    doc = document([cell(0, power_series=_series([10.0, 20.0]), flags=[shared])])
    (chart,) = timeline_view(doc) or []
    assert f"This cell is flagged: {shared}." in chart.caption and "invalid" not in chart.caption
