"""report.html and compare.html: content, self-containment, escaping, the CLI, and the view model's judgement."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import cli
from bench.report import render_compare, render_report, write_compare, write_report
from bench.report.compare import comparability, compare_context
from bench.report.format import badge, num, serving_mode
from bench.report.page import report_context
from bench.report.sample import sample_document
from bench.results import EnergyValue, write_results
from tests import factories

HOSTILE = "<script>alert(1)</script>"


class _Page(HTMLParser):
    """Collects tags, attributes and text, so tests check structure rather than substrings of markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def small_document() -> object:
    """Two models on one data set, one with an HTML name, from the shared factories."""
    cells = [factories.cell(r, model=m) for m in ("linear-bow", HOSTILE) for r in range(2)]
    return factories.document(
        cells=cells,
        suite={"datasets": ["toy"], "models": ["linear-bow", HOSTILE], "repetitions": 2},
        models={"linear-bow": {"paper_label": "Linear BoW"}, HOSTILE: {"paper_label": None}},
    )


def assert_self_contained(html: str) -> None:
    """No resource the browser would fetch, and no link out: the page must work offline, forever."""
    page = parse(html)
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "data", "poster", "srcset"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:")), f"<{tag} {name}={value!r}>"
            if name in ("src", "srcset", "data", "poster"):
                assert value == "" or value.startswith("data:"), f"<{tag} {name}={value!r}> would be fetched"
    assert page.count("script") == 0, "the report needs no JavaScript"
    assert page.count("link") == 1 and ("rel", "icon") in {("rel", a.get("rel")) for t, a in page.tags if t == "link"}
    assert "@import" not in html and "url(http" not in html
    # The only URL-like text allowed is the SVG namespace (an identifier, never fetched).
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_report_of_a_small_document_has_tables_plots_and_fetches_nothing() -> None:
    html = render_report(small_document())
    page = parse(html)
    assert page.count("table") >= 3  # results, energy by component, meters (+ paper, regression)
    assert page.count("svg") >= 3  # accuracy vs energy, components, energy vs duration
    text = " ".join(page.text)
    for expected in (
        "Accuracy, duration and energy per model",
        "Energy by component",
        "Machine and software",
        "Runtime as a proxy for energy",
        "gross",
        "net",
        "loops",
        "Wh / 1,000 texts",
        "J / correct",
    ):
        assert expected in text, expected
    assert_self_contained(html)


def test_html_in_names_is_shown_as_text_not_markup() -> None:
    html = render_report(sample_document(("tomatoes",), repetitions=2, hostile=True, predictions=False))
    page = parse(html)
    assert page.count("script") == 0 and page.count("img") == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE in " ".join(page.text)  # the reader sees the name as written
    assert '<img src=x onerror="alert(2)">' in " ".join(page.text)
    # Failed-cell messages come from exceptions and are text too.
    assert "CUDA out of memory &lt;tried 2.0 GiB&gt;" in html
    compare = render_compare([small_document(), small_document()])
    assert parse(compare).count("script") == 0 and "&lt;script&gt;" in compare


def test_rich_report_shows_badges_paper_numbers_serving_and_warnings() -> None:
    doc = sample_document(("tomatoes", "news"), repetitions=3, predictions=False)
    html = render_report(doc)
    text = " ".join(parse(html).text)
    assert "Sequential against batched serving" in text and "saved by batching" in text
    assert "Against the paper" in text and "<0.01" in text  # the paper's '<0.01' as printed
    for kind in ("counter", "estimated"):
        assert f'class="badge {kind}"' in html
    assert "failed and are left out" in text and "plausibility check" in text
    assert "within one machine only" in text
    assert_self_contained(html)
    ctx = report_context(doc)
    assert [d.name for d in ctx["datasets"]] == ["tomatoes", "news"]
    assert ctx["regression"].fit.r2 > 0.9  # energy is power x duration on one synthetic machine
    assert ctx["serving"] is not None


def test_serving_plot_only_where_both_modes_ran() -> None:
    assert report_context(sample_document(("tomatoes",), repetitions=2, serving=False))["serving"] is None
    assert report_context(small_document())["serving"] is None
    doc = sample_document(("tomatoes",), repetitions=2, models=7, predictions=False)
    assert serving_mode(doc, "llama-3.1-8b-batched") == "batched"
    assert serving_mode(doc, "linear-bow") is None
    assert report_context(doc)["serving"] is not None


def test_badges_follow_the_method_labels() -> None:
    assert badge("measured:nvml-energy-counter").kind == "counter"
    assert badge("measured:rapl").kind == "counter"
    assert badge("measured:nvml-power-sampling").kind == "sampled"
    assert badge("estimated:tdp-utilization").kind == "estimated"
    assert badge("unavailable", "no GPU").title == "not measured: no GPU"
    assert badge("measured:something-new").kind == "sampled"  # a future meter still gets a sensible badge


def test_number_formatting() -> None:
    assert num(None) == "—"
    assert num(0.0) == "0"
    assert num(0.0031349) == "0.00313"
    assert num(12345.6) == "12,346"
    assert num(4.35e-5) == "4.35×10⁻⁵"
    assert num(float("nan")) == "—"


def test_unmeasured_components_are_not_zero_and_failed_cells_do_not_count() -> None:
    cells = [
        factories.cell(0),
        factories.cell(
            1, energy={**factories.energy(), "cpu": EnergyValue(energy_j=None, method="unavailable", reason="no meter")}
        ),
    ]
    failed = factories.cell(2).model_copy(update={"status": "failed", "error": {"type": "X", "message": "boom"}})
    doc = factories.document(cells=[*cells, failed], repetitions=3)
    html = render_report(doc)
    assert "1 cell(s) failed" in html and "boom" in html
    table = report_context(doc)["datasets"][0].results
    assert table.rows[0][1].text == "2 (1)"  # two ok repetitions, one failed


def test_warnings_name_forced_hardware_mismatch_and_estimates() -> None:
    doc = factories.document(hardware_mismatch=["profile wants 4 GPUs, found 0"], forced=True)
    text = " ".join(parse(render_report(doc)).text)
    assert "does not match the profile and the run was forced" in text
    assert "profile wants 4 GPUs, found 0" in text
    assert "cpu energy is estimated (estimated:tdp-utilization)" in text
    assert "windows were extended" in text or "window(s) were extended" in text  # 4 loops per window
    assert "No idle baseline was measured" in text


def test_document_warnings_and_idle_drift_are_shown() -> None:
    doc = sample_document(("tomatoes",), repetitions=2, models=2, predictions=False)
    start = doc.idle[0]
    # Fields a newer schema may add (document warnings, end-of-session idle with drift), read where present.
    end = start.model_copy(update={"phase": "end", "drift": {"cpu": 0.08}})
    newer = doc.model_copy(update={"idle": [start, end], "warnings": ["idle power drifted 8% (cpu)"]})
    html = render_report(newer)
    assert "idle power drifted 8% (cpu)" in html
    assert "idle power drift by session end +8.0%" in html


def test_comparability_notices() -> None:
    a = sample_document(("tomatoes", "news"), repetitions=2, predictions=False)
    assert [n for n in comparability([a, a], ["A", "B"]) if n.level == "warning"] == []
    b = sample_document(("tomatoes",), repetitions=2, predictions=False, seed=5).model_copy(
        update={"kit_version": "0.2.0"}
    )
    texts = [n.text for n in comparability([a, b], ["A", "B"])]
    assert any("Different data sets" in t for t in texts)
    assert any("different splits" in t for t in texts)
    assert any("kit versions" in t for t in texts)
    models = dict(b.models)
    models["linear-bow"] = {**models["linear-bow"], "params": {"classifier": "svm"}}
    texts = [n.text for n in comparability([a, b.model_copy(update={"models": models})], ["A", "B"])]
    assert any("linear-bow: different model versions" in t for t in texts)
    settings = {**a.settings, "prompt_template": "v2"}
    texts = [n.text for n in comparability([a, a.model_copy(update={"settings": settings})], ["A", "B"])]
    assert any("Different prompts" in t for t in texts)


def test_compare_puts_machines_side_by_side_on_one_scale() -> None:
    h100 = sample_document(("tomatoes",), repetitions=2, predictions=False)
    cpu = sample_document(("tomatoes",), repetitions=2, machine="cpu", serving=False, models=6, predictions=False)
    ctx = compare_context([h100, cpu])
    section = ctx["sections"][0]
    groups = [g for g, _, _ in section["table"].groups]
    assert groups == ["", "A", "B", "ratio"]
    # The two charts of a section span the same energy range (one scale).
    ticks = [re.findall(r">([^<]*)</text>", str(section[k])) for k in ("scatter", "bars")]
    assert "10⁻⁴" in ticks[0] or "0.001" in ticks[0]
    assert ctx["regression"] is not None and len(ctx["regression"]["table"].rows) == 3  # A, B, pooled
    html = render_compare([h100, cpu])
    assert "differs" in html  # machine rows that differ are marked
    assert_self_contained(html)


def test_cli_report_and_compare_write_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        write_results(sample_document(("tomatoes",), repetitions=2, models=3), tmp_path / name / "results.json")
    assert cli.main(["report", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().out.strip().endswith(str(tmp_path / "a" / "report.html"))
    assert (tmp_path / "a" / "report.html").stat().st_size > 10_000
    out = tmp_path / "cmp.html"
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b" / "results.json"), "-o", str(out)]) == 0
    assert "2 runs compared" in out.read_text(encoding="utf-8")
    assert cli.main(["report", str(tmp_path / "missing")]) == 2  # a clear error, not a traceback
    assert "no such results file" in capsys.readouterr().err
    assert write_report(tmp_path / "a" / "results.json", tmp_path / "x.html") == tmp_path / "x.html"
    assert write_compare([tmp_path / "a"], tmp_path / "one.html").is_file()


def _fake_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "run" / "results.json"
    doc = sample_document(("tomatoes",), repetitions=2, models=2)
    write_results(doc, path)
    outcome = SimpleNamespace(results_path=path, run_id="run", resumed=False, ran=4, skipped=0, failed=0, document=doc)
    monkeypatch.setattr("bench.runner.run", lambda request: outcome)
    return path


def test_bench_run_renders_the_report_and_prints_its_path_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _fake_run(tmp_path, monkeypatch)
    assert cli.main(["run", "--reports-dir", str(tmp_path), "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"report: {path.parent / 'report.html'}"
    assert (path.parent / "report.html").is_file()


def test_bench_run_no_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    path = _fake_run(tmp_path, monkeypatch)
    assert cli.main(["run", "--reports-dir", str(tmp_path), "--no-report"]) == 0
    assert not (path.parent / "report.html").exists()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("results: ")


@pytest.mark.slow
def test_real_smoke_run_ends_with_the_report_path(tmp_path: Path) -> None:
    """`bench run` as `make bench` calls it (real sklearn on the offline data set, short windows)."""
    pytest.importorskip("sklearn")
    args = ["run", "--suite", "smoke", "--repetitions", "2", "--min-window-s", "0.05", "--idle-s", "0"]
    args += ["--no-codecarbon", "--no-progress", "--reports-dir", str(tmp_path), "--run-id", "r"]
    done = subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"report: {tmp_path / 'r' / 'report.html'}"
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert_self_contained(html)
    assert parse(html).count("svg") >= 3  # 4 cells: enough for the energy~duration fit too


def test_llm_cells_show_energy_per_generated_token() -> None:
    cells = [factories.cell(r, tokens={"requests": 4, "input_tokens": 800, "output_tokens": 100}) for r in range(2)]
    html = render_report(factories.document(cells=cells))
    # each cell: 1.5 J gross (cpu 1.0 + ram 0.5) over 100 generated tokens = 15 mJ per token
    assert "mJ / token" in html and '>15.0<span class="sub">800 in / 100 out</span>' in html


def test_flagged_cells_count_for_accuracy_but_not_for_energy_or_duration() -> None:
    from bench.analysis import model_rows

    sound = [factories.cell(r, energy=factories.energy(cpu_j=1.0, ram_j=0.5)) for r in range(2)]
    flagged = factories.cell(
        2,
        predictions=[0, 1, 1, 0],  # all correct: it must move the accuracy mean
        duration_s=9.0,
        energy=factories.energy(cpu_j=900.0, ram_j=0.5),
        validity=["energy.cpu: average power 100.0 W is above 1.5 x TDP"],
    )
    doc = factories.document(cells=[*sound, flagged], repetitions=3)
    (row,) = model_rows(doc)
    assert (row.n_ok, row.n_failed, row.n_invalid, row.n_flagged) == (3, 0, 1, 0)
    assert row.accuracy is not None and row.accuracy.n == 3
    assert row.accuracy.mean == pytest.approx((0.75 + 0.75 + 1.0) / 3)
    assert row.energy_j is not None and row.energy_j.n == 2 and row.energy_j.mean == pytest.approx(1.5)
    assert row.duration_s is not None and row.duration_s.mean == pytest.approx(0.5)
    assert row.component_j["cpu"] == pytest.approx(1.0)

    ctx = report_context(doc)["datasets"][0]
    runs = ctx.results.rows[0][1]
    assert runs.text == "3" and runs.sub == "1 invalid" and "left out of the means" in runs.title
    html = render_report(doc)
    assert "1 cell(s) failed a plausibility check; their accuracy counts" in html
    assert "900" not in "".join(parse(html).text)  # the flagged joules appear nowhere, not even in the energy table
