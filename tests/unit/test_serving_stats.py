"""Latency and throughput of LLM cells (``Cell.serving``): from the backend's timed engine calls to the summary
table and the report's serving configurations."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench.analysis import model_rows
from bench.results import ResultDocument, ServingStats, load_results, write_results
from bench.run.cell import percentile, serving_stats
from tests.factories import cell, document

SEQ = "smollm2-135m[serving=sequential]"
BAT = "smollm2-135m[serving=batched,batch_size=2]"
SCO = "smollm2-135m[serving=scoring,batch_size=2]"


def test_percentile_is_numpys_linear_interpolation() -> None:
    np = pytest.importorskip("numpy")
    values = [0.3, 0.1, 0.9, 0.4, 0.2]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([2.0], 95) == 2.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_sequential_latency_is_per_request_and_batched_per_batch() -> None:
    seq = serving_stats({"serving": "sequential", "batch_size": 16, "call_s": [0.1, 0.2, 0.3, 0.4]}, 4, 1.0)
    assert seq is not None and seq.requests == 4 and seq.calls == 4
    assert seq.latency_median_s == pytest.approx(0.25) and seq.latency_p95_s == pytest.approx(0.385)
    assert seq.batch_median_s is None and seq.texts_per_s == pytest.approx(4.0)
    # 5 texts in batches of 2: the last batch carries one; each request waits for its batch
    bat = serving_stats({"serving": "batched", "batch_size": 2, "call_s": [1.0, 1.0, 0.5]}, 5, 2.5)
    assert bat is not None and bat.requests == 5 and bat.calls == 3
    assert bat.latency_median_s == 1.0 and bat.batch_median_s == 1.0 and bat.texts_per_s == pytest.approx(2.0)
    sized = serving_stats({"serving": "batched", "batch_size": 8, "call_s": [3.0], "call_sizes": [5]}, 5, 3.0)
    assert sized is not None and sized.requests == 5 and sized.latency_p95_s == 3.0  # vLLM: one call, the split
    assert serving_stats({"serving": "batched", "batch_size": 2, "call_s": []}, 5, 1.0) is None


def _doc() -> ResultDocument:
    def stats(mode: str, latency: float, tps: float) -> ServingStats:
        return ServingStats(
            serving=mode,
            batch_size=1 if mode == "sequential" else 2,
            requests=4,
            calls=4 if mode == "sequential" else 2,
            latency_median_s=latency,
            latency_p95_s=latency * 1.5,
            batch_median_s=None if mode == "sequential" else latency,
            texts_per_s=tps,
        )

    from tests.factories import energy

    cells = [
        cell(0, model=SEQ, serving=stats("sequential", 0.5, 2.0), energy=energy(cpu_j=8.0, ram_j=0.0)),
        cell(0, model=BAT, serving=stats("batched", 1.0, 4.0), energy=energy(cpu_j=2.0, ram_j=0.0)),
        cell(0, model=SCO, serving=stats("scoring", 0.2, 20.0), energy=energy(cpu_j=1.0, ram_j=0.0)),
    ]
    models = {
        m: {"paper_label": "", "params": {"serving": m.split("=")[1].split(",")[0].rstrip("]")}}
        for m in (SEQ, BAT, SCO)
    }
    return document(
        cells,
        repetitions=1,
        suite={"datasets": ["toy"], "models": [SEQ, BAT, SCO], "repetitions": 1},
        models=models,
    )


def test_cells_keep_serving_stats_and_old_cells_validate(tmp_path: Path) -> None:
    doc = _doc()
    path = tmp_path / "results.json"
    write_results(doc, path)
    loaded = load_results(path)
    assert loaded.cells[0].serving is not None and loaded.cells[0].serving.latency_median_s == 0.5
    assert document().cells[0].serving is None  # a traditional cell, or a cell of an older run
    rows = {r.model: r for r in model_rows(loaded)}
    assert rows[SEQ].serving == "sequential" and rows[SEQ].latency_p95_s == 0.75 and rows[SEQ].texts_per_s == 2.0
    assert rows[BAT].batch_median_s == 1.0 and rows[SCO].serving == "scoring"


def test_the_summary_shows_throughput_and_latency() -> None:
    from rich.console import Console

    from bench.cli import _print_summary

    out = io.StringIO()
    _print_summary(_doc(), Console(file=out, width=250, highlight=False))
    text = out.getvalue()
    assert "texts/s" in text and "latency s median/p95" in text and "s/batch" in text
    assert "0.500 / 0.750" in text and "20.00" in text
    assert SEQ in text and BAT in text, "configured names are shown whole, not taken for rich markup"


def test_the_report_has_a_row_per_configuration_the_pareto_front_and_the_scoring_note() -> None:
    from bench.report.page import render_report
    from bench.report.sections.serving import SCORING_NOTE, configuration_views

    views = configuration_views(model_rows(_doc()))
    assert len(views) == 1
    rows = views[0].table.rows
    assert [r[0].text for r in rows] == [
        "smollm2-135m[sequential]",
        "smollm2-135m[batched,bs=2]",
        "smollm2-135m[scoring,bs=2]",
    ]
    # J per text: 8/4, 2/4, 1/4; "less than sequential": 1, 4, 8
    assert [r[4].text for r in rows] == ["1.0", "4.0", "8.0"]
    # scoring is cheapest and fastest: it alone is on the front (sequential is slower and costlier than it)
    assert [r[9].text for r in rows] == ["", "", "yes"]
    assert rows[2][2].sub == SCORING_NOTE and rows[0][2].sub == ""
    html = render_report(_doc())
    assert "Serving configurations: energy, latency and accuracy" in html and SCORING_NOTE.replace("'", "&#39;") in html
    assert "median latency per request" in html


def test_the_leaderboard_takes_configured_model_names_as_rows() -> None:
    from bench.leaderboard.validate import name_problems

    assert name_problems(_doc()) == []
    placed = document(
        [cell(0, model="llama-3.1-70b@2x1[serving=batched,batch_size=256,quantization=fp8]")],
        repetitions=1,
        suite={"datasets": ["toy"], "models": ["llama-3.1-70b@2x1[serving=batched,batch_size=256,quantization=fp8]"]},
        models={},
    )
    assert name_problems(placed) == []
    bad = document([cell(0, model="x[serving=<script>]")], repetitions=1, models={})
    assert any("cells.model: name 'x[serving=<script>]' is not an identifier" in p for p in name_problems(bad))
