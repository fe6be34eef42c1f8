"""`bench slurm --submit` on a real one-node Slurm cluster on localhost (../shared/ci/slurm/start-slurm.sh).

The cluster starts once per session (one cluster per machine: ports 16817/16818), with the node advertising fake
GPUs so the GPU test can check that a GPU profile's script asks for them and that its tasks receive
CUDA_VISIBLE_DEVICES. Jobs are submitted with sbatch and waited for with squeue; the tasks run `bench run` in this
checkout's venv (host mode). Skipped where the script is missing or Slurm cannot start, except in CI (CI=true),
where that is a failure. SLURM_TEST_INSTALL=1 lets the script install Debian's packages (root, apt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import load_results

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO.parent / "shared" / "ci" / "slurm"
FAKE_GPUS = 4
TIMEOUT_S = 120


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI: the Slurm test cluster is required: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running cluster; yields the environment that reaches it (SLURM_CONF)."""
    start = SCRIPTS / "start-slurm.sh"
    if not start.is_file():
        _unavailable(f"{start} not found (the repository is cloned beside shared/ in CI)")
    if not (SCRIPTS / "stop-slurm.sh").is_file():
        _unavailable("stop-slurm.sh missing")
    base = tmp_path_factory.mktemp("slurm-cluster")
    env = {**os.environ, "SLURM_TEST_DIR": str(base / "cluster"), "SLURM_TEST_FAKE_GPUS": str(FAKE_GPUS)}
    if _in_ci():
        env.setdefault("SLURM_TEST_INSTALL", "1")  # a fresh CI machine: let the script apt-get Debian's packages
    started = time.perf_counter()
    proc = subprocess.run(["bash", str(start)], env=env, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        _unavailable(f"start-slurm.sh failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    print(f"slurm cluster up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    env["SLURM_CONF"] = str(base / "cluster" / "etc" / "slurm.conf")
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SCRIPTS / "stop-slurm.sh")], env=env, capture_output=True, timeout=60, check=False)


@pytest.fixture
def slurm_env(slurm: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process talks to the test cluster (sbatch/squeue read SLURM_CONF)."""
    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    return slurm


#: Slurm job states after which a job no longer runs (squeue keeps them for MinJobAge, 600 s here).
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL"}


def _wait_for(job_ids: list[str], env: dict[str, str]) -> float:
    """Poll squeue until every task of the jobs is in a terminal state; fail after TIMEOUT_S.

    A failed squeue call (a busy controller answers late) prints nothing: it is retried, never read as "done".
    """
    started = time.perf_counter()
    said = ""
    while time.perf_counter() - started < TIMEOUT_S:
        proc = subprocess.run(
            ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T"],
            env=env,
            capture_output=True,
            text=True,
        )
        said = proc.stdout.strip() + proc.stderr.strip()
        states = [line.split()[-1] for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode == 0 and states and all(state in TERMINAL for state in states):
            return time.perf_counter() - started
        time.sleep(0.5)
    pytest.fail(f"jobs {job_ids} not finished after {TIMEOUT_S} s: {said}")


def _logs(out: Path) -> str:
    """The tasks' Slurm logs, for a failure message."""
    return "".join(f"\n--- {p}\n{p.read_text()[-3000:]}" for p in sorted((out / "logs").glob("*.out")))


def _submit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("job id: "))
    return line.removeprefix("job id: ").split(",")


TINY = ["--host", "--repetitions", "1", "--min-window-s", "0.2", "--idle-s", "0.1", "--no-codecarbon"]
SMALL_TASK = ["--cpus-per-task", "1", "--mem-gb", "1", "--time", "00:05:00"]


def test_cpu_suite_runs_as_an_array_merges_and_validates(
    slurm_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    started = time.perf_counter()
    job_ids = _submit(
        ["slurm", "--profile", "cpu", "--suite", "smoke", "--output", str(out), "--submit", *TINY, *SMALL_TASK], capsys
    )
    waited = _wait_for(job_ids, slurm_env)
    # two tasks (one per model), each its own part with what Slurm gave it
    for task in ("linear-bow", "xgboost-tfidf"):
        records = list((out / "parts" / task).glob("task-*.json"))
        assert len(records) == 1, f"{task}: {sorted(p.name for p in (out / 'parts' / task).iterdir())}" + _logs(out)
        record = json.loads(records[0].read_text())
        assert record["array_job_id"] == job_ids[0] and record["task"] == task
        assert Path(record["log"]).is_file()
    rc = main(["merge", str(out)])
    merged_out, merged_err = capsys.readouterr()
    assert rc == 0, merged_out + merged_err + _logs(out)
    rc = main(["validate", str(out)])
    said = capsys.readouterr().out
    assert rc == 0 and "OK" in said, said + _logs(out)
    doc = load_results(out)
    assert doc.status == "complete" and len(doc.cells) == 2
    assert {c.model for c in doc.cells} == {"linear-bow", "xgboost-tfidf"} and all(c.status == "ok" for c in doc.cells)
    # provenance of every part: job, array index, host, the session's Slurm facts, its idle baselines
    assert sorted(p.task for p in doc.parts) == ["linear-bow", "xgboost-tfidf"]
    for part in doc.parts:
        assert part.slurm["array_job_id"] == job_ids[0] and part.hosts
        session = doc.environment["sessions"][part.sessions[0]]
        assert session["part"] == part.task and session["slurm"]["slurm_array_job_id"] == job_ids[0]
        assert any(i.session in part.sessions for i in doc.idle)
    assert (out / "report.html").is_file() and "report:" in merged_out
    with capsys.disabled():  # the measured numbers, visible with -s
        print(
            f"\ncpu smoke array: 2 tasks x 1 cell, submit to done {waited:.1f} s, with merge and report "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    # rerunning for the same folder: nothing missing, nothing submitted
    assert (
        main(["slurm", "--profile", "cpu", "--suite", "smoke", "--output", str(out), "--submit", *TINY, *SMALL_TASK])
        == 0
    )
    assert "nothing missing" in capsys.readouterr().out


def _failing_profile(tmp_path: Path) -> Path:
    """The cpu profile whose embedder is the paper's (needs the Hub): the embedding model fails offline, bow runs."""
    text = (REPO / "hardware_profiles" / "cpu.toml").read_text()
    text = text.replace('name = "cpu"', 'name = "slurmfail"').replace(
        'embedder = "all-MiniLM-L6-v2"', 'embedder = "paraphrase-multilingual-mpnet-base-v2"'
    )
    text = text.replace('models = ["linear-bow", "xgboost-tfidf"]', 'models = ["linear-bow", "linear-embedding"]')
    path = tmp_path / "slurmfail.toml"
    path.write_text(text)
    return path


def test_a_failed_task_is_reported_missing_and_a_rerun_submits_only_it(
    slurm_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _failing_profile(tmp_path)
    out = tmp_path / "run"
    argv = ["slurm", "--profile", str(profile), "--suite", "smoke", "--output", str(out), *TINY, *SMALL_TASK]
    job_ids = _submit([*argv, "--submit"], capsys)
    # resubmitting while the array is still queued or running would run every task twice: refused
    assert main([*argv, "--submit"]) == 2
    assert "still pending or running" in capsys.readouterr().err
    _wait_for(job_ids, slurm_env)
    assert main(["merge", str(out)]) == 1  # cells missing
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "task linear-embedding" in line)
    log = out / "logs" / f"bench-slurmfail-1x0-{job_ids[0]}_1.out"
    assert f"job {job_ids[0]}_1" in line and str(log) in line and "failed:" in line
    assert log.is_file()
    assert main(["validate", str(out)]) == 0  # a partial merged run is a valid document
    doc = load_results(out)
    assert doc.status == "interrupted" and any("linear-embedding" in w for w in doc.warnings)
    # the rerun writes an array over the failed task only (and would resume its part)
    capsys.readouterr()
    assert main(argv) == 0
    scripts = sorted((out / "slurm").glob("*retry*.sbatch"))
    assert len(scripts) == 1 and "#SBATCH --array=1\n" in scripts[0].read_text()
    assert "linear-bow" not in scripts[0].read_text().split("case")[1].split("esac")[0]


def _gpu_profile(tmp_path: Path) -> Path:
    """A 4-GPU node profile with a 1-GPU model and a model placed on 2 GPUs (two array scripts)."""
    text = (REPO / "hardware_profiles" / "h100.toml").read_text().replace('name = "h100"', 'name = "fakegpu"')
    text += (
        '\n[suites.probe]\ndescription = "probe"\ndatasets = ["tomatoes-offline"]\n'
        'models = ["linear-bow", "phi-3.5-mini@1x2"]\nrepetitions = 1\n'
    )
    path = tmp_path / "fakegpu.toml"
    path.write_text(text)
    return path


def test_gpu_profile_scripts_ask_for_gpus_and_tasks_receive_them(
    slurm_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["slurm", "--profile", str(_gpu_profile(tmp_path)), "--suite", "probe", "--output", str(out)]
    job_ids = _submit([*argv, *TINY, *SMALL_TASK, "--submit"], capsys)
    assert len(job_ids) == 2  # one array per shape: 1 GPU, 2 GPUs
    assert "#SBATCH --gres=gpu:1\n" in (out / "slurm" / "array-1x1.sbatch").read_text()
    assert "#SBATCH --gres=gpu:2\n" in (out / "slurm" / "array-1x2.sbatch").read_text()
    _wait_for(job_ids, slurm_env)
    seen = {}
    for task in ("linear-bow", "phi-3.5-mini_1x2"):
        (record_path,) = (out / "parts" / task).glob("task-*.json")
        seen[task] = json.loads(record_path.read_text())["cuda_visible_devices"]
    # Slurm handed each task its own GPUs; the kit itself cannot run on the fake ones (no NVML), so its cells are
    # reported missing with the job and log instead of being dropped
    assert len(seen["linear-bow"].split(",")) == 1 and len(seen["phi-3.5-mini_1x2"].split(",")) == 2
    assert main(["merge", str(out)]) == 2  # no task wrote a part: a clear error listing every missing cell
    err = capsys.readouterr().err
    assert "task linear-bow" in err and "task phi-3.5-mini_1x2" in err and "no part written" in err


def test_own_data_and_model_run_as_an_array_and_merge(
    slurm_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench slurm --dataset my.csv --model linear-bow --model clf:<folder>`: the ad-hoc suite ships to the tasks."""
    from tests.integration.test_own_data import write_reviews
    from tests.tiny_models import build_tiny_classifier

    data = write_reviews(tmp_path / "my.csv", n=80, labels=("pos", "neg"))
    folder = build_tiny_classifier(tmp_path / "my-model", {0: "neg", 1: "pos"})
    out = tmp_path / "run"
    own = ["--dataset", str(data), "--text-column", "review", "--label-column", "stars", "--n-train", "30"]
    own += ["--n-test", "30", "--model", "linear-bow", "--model", f"clf:{folder}"]
    job_ids = _submit(["slurm", "--profile", "cpu", "--output", str(out), "--submit", *own, *TINY, *SMALL_TASK], capsys)
    _wait_for(job_ids, slurm_env)
    rc = main(["merge", str(out), "--no-report"])
    merged = capsys.readouterr()
    assert rc == 0, merged.out + merged.err + _logs(out)
    doc = load_results(out)
    assert doc.suite_name == "adhoc" and doc.status == "complete"
    assert {c.model for c in doc.cells} == {"linear-bow", f"clf:{folder.resolve()}"}
    assert all(c.status == "ok" for c in doc.cells) and doc.datasets["my"].n_test == 30
    assert main(["validate", str(out)]) == 0
