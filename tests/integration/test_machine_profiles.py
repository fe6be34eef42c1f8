"""Your machine, whatever it is, gets a profile (issue 25, item 0), on fake GPUs with NVML's real byte counts.

One H100 80GB, four H100 80GB, one L40S and one A10: the kit matches a shipped profile or makes one (the L40S is not
an `l4`), a run of linear-bow and linear-tfidf on a local CSV runs and validates (the models on the CPU, as the other
fake-GPU tests run them), and the run, `bench env` and `bench validate` say which of the paper's LLMs fit and why.

Memory as NVML reports it (nvmlDeviceGetMemoryInfo().total, bytes; nvidia-smi shows it in MiB): an H100 80GB HBM3
81,559 MiB, an L40S 46,068 MiB, an A10 23,028 MiB (ECC on GDDR6 keeps 1/16 of the 24/48 GiB).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_profile, load_profile_file
from bench.environment import check_profile, detect_machine
from bench.machine_profile import auto_profile, find_profile, profile_from_machine
from bench.meters import gpu as nvml_module
from bench.results import load_results
from bench.runner import RunRequest, run
from bench.validation import check_document
from tests.fakes.fake_pynvml import FakeGpu, FakePynvml
from tests.integration.test_own_data import adhoc

MIB = 2**20
H100 = dict(name="NVIDIA H100 80GB HBM3", memory_total_bytes=81_559 * MIB, power_limit_w=700.0, power_w=70.0)
L40S = dict(name="NVIDIA L40S", memory_total_bytes=46_068 * MIB, power_limit_w=350.0, power_w=35.0)
A10 = dict(name="NVIDIA A10", memory_total_bytes=23_028 * MIB, power_limit_w=150.0, power_w=20.0)

#: machine -> (its GPUs, the profile the kit picks or makes, the paper's LLMs that fit it, one that does not)
MACHINES = {
    "1x-h100": ([H100], "h100", "ds-qwen-32b", "llama-3.1-70b"),
    "4x-h100": ([H100] * 4, "h100", "llama-3.1-70b", None),
    "1x-l40s": ([L40S], "local-l40s", "ds-qwen-14b", "ds-qwen-32b"),
    "1x-a10": ([A10], "local-a10", "llama-3.1-8b", "ds-qwen-14b"),
}


def test_the_fake_h100_reports_nvml_s_bytes() -> None:
    assert H100["memory_total_bytes"] == 85_520_809_984


def install(monkeypatch: pytest.MonkeyPatch, machine: str) -> str:
    """The fake GPUs of ``machine`` where the kit imports pynvml; traditional models never touch CUDA."""
    from bench.backends.traditional import TraditionalBackend

    gpus = [FakeGpu(**spec) for spec in MACHINES[machine][0]]
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml(gpus))
    monkeypatch.setattr(nvml_module, "DEFAULT_MIN_WINDOW_S", 0.3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("BENCH_PROFILES_DIR", raising=False)
    monkeypatch.setattr(TraditionalBackend, "synchronize", lambda self: None)
    return machine


@pytest.fixture(params=sorted(MACHINES))
def machine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each machine of ``MACHINES`` in turn."""
    return install(monkeypatch, request.param)


def test_the_kit_matches_or_makes_the_machine_s_profile(machine: str) -> None:
    gpus, expected, fitting, not_fitting = MACHINES[machine]
    found = detect_machine()
    assert [g.name for g in found.gpus] == [g["name"] for g in gpus]
    profile, how = auto_profile(found)
    assert profile.name == expected, how
    assert check_profile(profile, found) == []
    # the count and the memory size are the machine's, not the class's node of 4 x 94 GB
    assert profile.hardware.gpu_count == len(gpus)
    if expected == "h100":
        assert profile.hardware.gpu_memory_gb == 80
    else:
        assert find_profile(found) is None, "no shipped profile takes this GPU"
        assert check_profile(load_profile("l4"), found), "an L40S or an A10 is not an L4"
        assert profile.hardware.gpu_models == [gpus[0]["name"]]
        assert profile.hardware.gpu_memory_gb == pytest.approx(gpus[0]["memory_total_bytes"] / 2**30, abs=0.1)
    assert fitting in profile.suites["paper"].models if expected != "h100" else True
    if not_fitting and expected != "h100":
        assert not_fitting in profile.excluded_models
        assert "GB" in profile.excluded_models[not_fitting]


def write_reviews(path: Path, n: int = 80) -> Path:
    words = (["good", "great", "fine", "superb"], ["bad", "awful", "dull", "poor"])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(n):
            chosen = words[i % 2]
            writer.writerow([f"{chosen[i % 4]} {chosen[(i // 4) % 4]} film {i}", "pos" if i % 2 == 0 else "neg"])
    return path


def test_a_run_on_the_machine_validates_and_says_which_llms_fit(
    machine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gpus, expected, fitting, not_fitting = MACHINES[machine]
    profile, _ = auto_profile(detect_machine())
    data = write_reviews(tmp_path / "reviews.csv")
    models = ["linear-bow", "linear-tfidf"]
    outcome = run(adhoc(tmp_path, profile=profile, datasets=[str(data)], models=models, repetitions=1))
    header = capsys.readouterr().err
    doc = load_results(outcome.results_path)
    assert doc.status == "complete" and check_document(doc) == []
    assert {c.model for c in doc.cells} == {"linear-bow", "linear-tfidf"}
    assert all(c.status == "ok" and c.validity == [] for c in doc.cells)
    assert all(len(c.energy["gpu"].detail["gpus"]) == len(gpus) for c in doc.cells)
    # facts of the run: the GPUs it found, in its profile and its session
    assert doc.profile["name"] == expected and doc.profile["hardware"]["gpu_count"] == len(gpus)
    fit = doc.environment["sessions"][0]["fit"]
    assert fit["gpu_count"] == len(gpus)
    by_model = {f["model"]: f for f in fit["paper_llms"]}
    assert by_model[fitting]["placement"] is not None and by_model[fitting]["reason"] is None
    assert f"{fitting} (1x" in header
    if not_fitting:
        reason = by_model[not_fitting]["reason"]
        assert by_model[not_fitting]["placement"] is None and "GB of bfloat16 weights" in reason
        assert f"does not fit: {not_fitting}: needs ~" in header
    else:
        assert all(f["placement"] for f in fit["paper_llms"]), "4 x H100 80GB hold every paper LLM"

    assert main(["validate", str(outcome.results_path)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("OK ") and f"{fitting} (1x" in said
    if not_fitting:
        assert f"does not fit: {not_fitting}: needs ~" in said

    assert main(["env", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["profile"] == expected and env["profile_mismatch"] == []
    assert env["gpus_as_run"]["gpu_count"] == len(gpus)
    fits = {f["model"]: f for f in env["paper_llms"]}
    assert fits[fitting]["placement"] and (not not_fitting or "needs ~" in fits[not_fitting]["reason"])


def test_one_h100_80gb_places_the_70b_models_nowhere_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, "1x-h100")
    profile, _ = auto_profile(detect_machine())
    from bench.catalog.models import get_model_spec
    from bench.catalog.placement import model_fit

    fit = model_fit(get_model_spec("llama-3.1-70b"), profile, max_nodes=1)
    assert fit.reason == (
        "needs ~141 GB of bfloat16 weights, ~162 GB with the KV cache and activations (x1.15): 4 GPUs of 80 GB; "
        "here 1 x 80 GB per node, 1 node(s) per model"
    )


def test_the_run_leaves_out_the_suite_s_models_that_do_not_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The h100 class's paper suite on one 80 GB H100: the 70B models are left out before any energy is spent,
    each with its reason in the run's notes (its warnings) and the session's fit record."""
    install(monkeypatch, "1x-h100")
    from bench.run.resolve import resolve_plan

    request = RunRequest(profile=load_profile("h100"), suite_name="paper", reports_dir=tmp_path, progress=False)
    plan = resolve_plan(request, machine=True)
    assert "llama-3.1-70b" not in plan.suite.models and "ds-qwen-32b" in plan.suite.models
    assert plan.profile.hardware.gpu_count == 1 and plan.profile.hardware.gpu_memory_gb == 80
    left = {f.model: f.reason for f in plan.checks.left_out}
    assert set(left) == {"llama-3.1-70b", "qwen-72b", "phi-3.5-moe", "jamba-mini-1.5", "ds-llama-70b"}
    assert any(n.startswith("llama-3.1-70b left out: needs ~141 GB") for n in plan.checks.notes)


def test_profiles_init_writes_a_profile_that_runs(
    machine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gpus = MACHINES[machine][0]
    folder = tmp_path / "profiles"  # a profiles folder of the test's own (the made profile's template ships)
    folder.mkdir()
    monkeypatch.setenv("BENCH_PROFILES_DIR", str(folder))
    assert main(["profiles", "init"]) == 0
    said = capsys.readouterr().out
    made = profile_from_machine(detect_machine())
    path = folder / f"{made.name}.toml"
    assert f"wrote {path}" in said and path.is_file()
    written = load_profile_file(path)
    assert written == made
    text = path.read_text()
    assert text.startswith("# Made by `bench profiles init`") and f'"{gpus[0]["name"]}"' in text
    assert written.hardware.gpu_models == [gpus[0]["name"]] and written.hardware.gpu_count == len(gpus)
    assert check_profile(written, detect_machine()) == []
    assert find_profile(detect_machine()).name == made.name  # the written profile is now this machine's
    assert main(["profiles", "init"]) == 2, "an existing file is kept without --force"
    assert "--force" in capsys.readouterr().err
    out = tmp_path / "elsewhere" / "mine.toml"
    assert main(["profiles", "init", "--output", str(out)]) == 0
    assert load_profile_file(out).name == "mine"
