"""`bench merge` on parts made by the real runner in this process (what each Slurm task runs), and the multi-node
meters through the runner with a second node's meters standing in for a Ray actor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_profile
from bench.hpc import multinode
from bench.hpc.merge import MergeError, merge
from bench.hpc.slurm import SlurmError, SlurmRequest, load_manifest, manifest_tasks, prepare, write_manifest
from bench.results import load_results, write_results
from bench.runner import RunRequest, run
from bench.validation import check_document

REPO = Path(__file__).resolve().parents[2]
TINY = dict(repetitions=1, min_window_s=0.2, idle_baseline_s=0.1, codecarbon=False)


def _request(out: Path, **kw: object) -> SlurmRequest:
    base: dict[str, object] = {"profile": "cpu", "suite": "smoke", "output": out, "mode": "host", **TINY}
    return SlurmRequest(**{**base, **kw})  # type: ignore[arg-type]


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
    from bench.runner import _settings_sha256

    profile = load_profile("cpu")
    settings = load_manifest(slurm_run)["settings"]
    dump = profile.model_dump(mode="json")
    assert "slurm" in dump  # the hash leaves it out: the hashed dict is the profile of before the table existed
    body = {"profile": {k: v for k, v in dump.items() if k != "slurm"}, "settings": settings}
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
