"""`bench merge` on parts made by the real runner in this process (what each Slurm task runs), and the multi-node
meters through the runner with a second node's meters standing in for a Ray actor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_profile
from bench.hpc.merge import MergeError, merge
from bench.hpc.slurm import SlurmError, SlurmRequest, load_manifest, manifest_tasks, prepare, write_manifest
from bench.meters import multinode
from bench.results import load_results, write_results
from bench.runner import RunRequest, run
from bench.validation import check_document

REPO = Path(__file__).resolve().parents[2]
TINY = dict(repetitions=1, min_window_s=0.2, idle_baseline_s=0.1, codecarbon=False)


def _request(out: Path, profile: str = "cpu", suite: str = "smoke", **run: object) -> SlurmRequest:
    """``bench slurm --host`` of ``suite`` with the tiny windows; ``run``: more of the run's request fields."""
    return SlurmRequest(profile=profile, output=out, mode="host", run={"suite_name": suite, **TINY, **run})


def _run_task(out: Path, model: str, **kw: object) -> None:
    """What the sbatch script runs for one task, in this process."""
    run(
        RunRequest(
            profile=load_profile("cpu"),
            suite_name="smoke",
            reports_dir=out / "parts",
            run_id=model,
            models=[model],
            progress=False,
            **{**TINY, **kw},  # type: ignore[arg-type]
        )
    )


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hpc") / "run"
    prepare(_request(out))
    for model in ("linear-bow", "xgboost-tfidf"):
        _run_task(out, model)
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_parts_merge_into_one_valid_run(slurm_run: Path, tmp_path: Path) -> None:
    out = _copy(slurm_run, tmp_path / "run")
    outcome = merge(out)
    doc = load_results(out)
    assert outcome.missing == [] and doc.status == "complete" and check_document(doc) == []
    assert [c.model for c in doc.cells] == ["linear-bow", "xgboost-tfidf"]
    assert doc.suite["models"] == ["linear-bow", "xgboost-tfidf"]  # the whole suite, not a part's subset
    assert len(doc.environment["sessions"]) == 2 and [p.sessions for p in doc.parts] == [[0], [1]]
    assert sorted(i.session for i in doc.idle if i.phase == "start") == [0, 1]  # idle baselines renumbered
    assert sorted(c.session for c in doc.calibration) == [0, 1] and doc.grid is not None  # renumbered, kept
    assert all(p.content_hash and p.cells == 1 for p in doc.parts)
    assert main(["report", str(out)]) == 0 and (out / "report.html").is_file()


def test_a_part_of_another_kit_version_is_refused_naming_it(slurm_run: Path, tmp_path: Path) -> None:
    out = _copy(slurm_run, tmp_path / "run")
    path = out / "parts" / "xgboost-tfidf" / "results.json"
    doc = load_results(path)
    write_results(doc.model_copy(update={"kit_version": "9.9.9"}), path)
    with pytest.raises(MergeError, match=r"part xgboost-tfidf .*kit_version: '0\.1\.0' in the manifest, '9\.9\.9'"):
        merge(out)


def test_a_part_with_other_settings_is_refused_naming_the_setting(slurm_run: Path, tmp_path: Path) -> None:
    out = _copy(slurm_run, tmp_path / "run")
    _run_task(tmp_path / "other", "xgboost-tfidf", min_window_s=0.3)
    target = out / "parts" / "xgboost-tfidf"
    for f in target.iterdir():
        f.unlink()
    (target / "results.json").write_bytes(
        (tmp_path / "other" / "parts" / "xgboost-tfidf" / "results.json").read_bytes()
    )
    with pytest.raises(MergeError, match=r"settings\.min_window_s: 0\.2 in the manifest, 0\.3 in the part"):
        merge(out)
    assert main(["merge", str(out)]) == 2  # a clear error, exit 2


def test_missing_cells_are_reported_with_job_and_log_and_the_rerun_covers_only_them(
    slurm_run: Path, tmp_path: Path
) -> None:
    out = _copy(slurm_run, tmp_path / "run")
    manifest = load_manifest(out)
    manifest["submissions"] = [{"job_id": "77", "job_name": "bench-cpu-1x0", "script": "s", "indices": [0, 1]}]
    write_manifest(out, manifest)
    (out / "parts" / "xgboost-tfidf" / "results.json").unlink()  # its task died before writing
    outcome = merge(out)
    assert outcome.missing_cells == 1
    (line,) = outcome.missing
    assert "task xgboost-tfidf: 1 cell(s) missing (tomatoes-offline/rep0)" in line
    assert f"job 77_1, log {out}/logs/bench-cpu-1x0-77_1.out" in line
    assert load_results(out).status == "interrupted"
    prepared = prepare(_request(out))
    ((script, tasks),) = prepared.scripts
    assert [t.name for t in tasks] == ["xgboost-tfidf"] and "#SBATCH --array=1\n" in script.read_text()


def test_a_rerun_with_other_settings_is_refused(slurm_run: Path, tmp_path: Path) -> None:
    out = _copy(slurm_run, tmp_path / "run")
    with pytest.raises(SlurmError, match=r"holds another run.*settings_sha256"):
        prepare(_request(out, min_window_s=0.5))
    assert json.loads((out / "manifest.json").read_text())["settings"]["min_window_s"] == 0.2  # untouched


def test_multi_node_cells_sum_every_nodes_meters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the runner: --nodes 2 meters the head and a second node; cells sum them and keep each node."""
    from bench.meters import build_meter_set

    def fake_connect(local: object, meter_kwargs: dict, *, expected_nodes: int) -> multinode.NodesMeterSet:
        assert expected_nodes == 2
        return multinode.NodesMeterSet(local, "head", {"worker": build_meter_set(**meter_kwargs)})

    monkeypatch.setattr(multinode, "connect_ray_nodes", fake_connect)
    out = tmp_path / "run"
    prepare(_request(out, models=["linear-bow"]))
    manifest = load_manifest(out)  # as planned for a 2-node placement (a CPU profile never plans one itself)
    manifest["tasks"][0]["nodes"] = 2
    del manifest["task_settings"]  # recomputed by merge from the task, as for a manifest written before they were
    write_manifest(out, manifest)
    _run_task(out, "linear-bow", nodes=2)
    merge(out)
    doc = load_results(out)
    assert check_document(doc) == []
    (cell,) = doc.cells
    assert [n.host for n in cell.nodes] == ["head", "worker"]
    ram = [n.energy_j["ram"] for n in cell.nodes]
    assert cell.energy["ram"].energy_j == pytest.approx(sum(ram))
    assert cell.duration_s == pytest.approx(max(n.duration_s for n in cell.nodes))
    assert manifest_tasks(load_manifest(out))[0].model == "linear-bow"


def test_slurm_scheduling_fields_do_not_change_the_settings_hash(slurm_run: Path, tmp_path: Path) -> None:
    """[slurm] says how to ask the cluster, not what the numbers mean: a longer wall time reruns the same run."""
    import hashlib

    from bench.results import canonical_json
    from bench.run.plan import UNHASHED_HARDWARE_KEYS, UNHASHED_PROFILE_KEYS
    from bench.runner import settings_sha256 as _settings_sha256

    profile = load_profile("cpu")
    settings = load_manifest(slurm_run)["settings"]
    dump = profile.model_dump(mode="json")
    assert "slurm" in dump  # the hash leaves it out: the hashed dict is the profile of before the table existed
    # (and the profile's suites and training tables: what of them the run uses is in its settings)
    # (and which machines it accepts, and the file's schema version: bench.run.plan.UNHASHED_HARDWARE_KEYS)
    hashed = {k: v for k, v in dump.items() if k not in UNHASHED_PROFILE_KEYS and k != "schema_version"}
    hashed["hardware"] = {k: v for k, v in hashed["hardware"].items() if k not in UNHASHED_HARDWARE_KEYS}
    body = {"profile": hashed, "settings": settings}
    assert {"slurm", "suites", "training"} == UNHASHED_PROFILE_KEYS
    assert _settings_sha256(profile, settings) == hashlib.sha256(canonical_json(body)).hexdigest()

    longer = profile.model_copy(update={"slurm": profile.slurm.model_copy(update={"time": "07:00:00"})})
    assert _settings_sha256(longer, settings) == _settings_sha256(profile, settings)
    out = _copy(slurm_run, tmp_path / "run")
    text = (REPO / "hardware_profiles" / "cpu.toml").read_text().replace('time = "01:00:00"', 'time = "07:00:00"')
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "cpu.toml").write_text(text)
    prepared = prepare(_request(out, profile=str(tmp_path / "profiles" / "cpu.toml")))
    assert prepared.resumed and prepared.scripts == []  # the same run, every cell done
    assert load_manifest(out)["settings_sha256"] == load_manifest(slurm_run)["settings_sha256"]
    merge(out)  # parts made under the old [slurm] table still merge


def _profile_with_suite(tmp_path: Path, suite: str) -> Path:
    """The cpu profile plus one more suite (a TOML table), as a file named like the profile."""
    folder = tmp_path / "profiles"
    folder.mkdir(exist_ok=True)
    path = folder / "cpu.toml"
    path.write_text((REPO / "hardware_profiles" / "cpu.toml").read_text() + "\n" + suite)
    return path


def _run_in(out: Path, profile: Path, suite: str, model: str, **kw: object) -> None:
    run(
        RunRequest(
            profile=load_profile(str(profile)),
            suite_name=suite,
            reports_dir=out / "parts",
            run_id=model,
            models=[model],
            progress=False,
            **{**TINY, **kw},  # type: ignore[arg-type]
        )
    )


def test_traditional_parts_of_a_suite_with_a_hub_llm_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite holds a Hub LLM (its settings carry the lock's hash); a traditional model's part does not."""
    lock = tmp_path / "models.lock.json"
    lock.write_text('{"schema_version": 1, "models": {}}\n')
    monkeypatch.setenv("BENCH_MODEL_LOCK", str(lock))
    profile = _profile_with_suite(
        tmp_path,
        '[suites.mixed]\ndescription = "x"\ndatasets = ["tomatoes-offline"]\nmodels = ["linear-bow", "qwen-7b"]\n'
        "repetitions = 1\nseed = 0\n",
    )
    out = tmp_path / "run"
    prepare(_request(out, profile=str(profile), suite="mixed"))
    assert load_manifest(out)["settings"]["model_lock_sha256"] is not None
    _run_in(out, profile, "mixed", "linear-bow")
    outcome = merge(out)  # the LLM's task never ran: missing, not a reason to refuse the traditional part
    assert [c.model for c in outcome.document.cells] == ["linear-bow"]
    assert len(outcome.missing) == 1 and "task qwen-7b" in outcome.missing[0]


def test_a_relative_data_path_is_the_same_in_manifest_script_and_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "\n".join(f'"{"good fine great" if i % 2 else "bad awful poor"} text {i}",{i % 2}' for i in range(60))
    (tmp_path / "data.csv").write_text("text,label\n" + rows + "\n")
    profile = _profile_with_suite(
        tmp_path,
        '[suites.mine]\ndescription = "x"\ndatasets = ["mydata"]\nmodels = ["linear-bow"]\nrepetitions = 1\n'
        "n_train = 20\nn_test = 20\nseed = 0\n",
    )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    prepared = prepare(_request(out, profile=str(profile), suite="mine", data_paths={"mydata": "data.csv"}))
    absolute = str(tmp_path / "data.csv")
    assert load_manifest(out)["overrides"]["data_paths"] == {"mydata": absolute}
    ((script, _),) = prepared.scripts
    assert f"--data mydata={absolute}" in script.read_text()
    _run_in(out, profile, "mine", "linear-bow", data_paths={"mydata": absolute})  # what the script runs
    assert merge(out).missing == []


def test_gpus_and_nodes_are_settings_only_when_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults leave the settings (and their hash) as before; a part run on another allocation is refused."""
    from bench.meters import build_meter_set
    from bench.runner import resolve_plan

    request = RunRequest(profile=load_profile("cpu"), suite_name="smoke")
    plain = resolve_plan(request).settings
    assert "gpus" not in plain and "nodes" not in plain
    request.gpus, request.nodes = 2, 3
    assert resolve_plan(request).settings == {**plain, "gpus": 2, "nodes": 3}

    def fake_connect(local: object, meter_kwargs: dict, *, expected_nodes: int) -> multinode.NodesMeterSet:
        return multinode.NodesMeterSet(local, "head", {"worker": build_meter_set(**meter_kwargs)})

    monkeypatch.setattr(multinode, "connect_ray_nodes", fake_connect)
    out = tmp_path / "run"
    prepare(_request(out, models=["linear-bow"]))  # planned on one node
    _run_task(out, "linear-bow", nodes=2)
    with pytest.raises(MergeError, match=r"settings\.nodes: None in the manifest, 2 in the part"):
        merge(out)
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="other settings"):  # nor does a resume mix the two allocations
        _run_task(out, "linear-bow")
