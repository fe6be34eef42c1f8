"""`bench env`'s summary (``bench.env_summary``): short, aligned, naming the profile and whether this machine matches
it, each vendor's status, each component's method label or why it is unavailable, the side meters and the paper's
LLMs; every reason in full (its fix included), said once. `--json` keeps the document scripts read."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.env_summary import render_summary
from tests.fakes.fake_pynvml import NVML_DEVICE_MIG_ENABLE, FakeGpu, FakePynvml, PowerTrace
from tests.fakes.fake_rapl import FakeRapl

#: The document's keys as scripts read them (`bench env --json`), unchanged by the summary.
JSON_KEYS = {
    "machine",
    "software",
    "devices",
    "meters",
    "profile",
    "accelerator",
    "profile_mismatch",
    "gpus_as_run",
    "paper_llms",
}


def flat(text: str) -> str:
    """``text`` with its wrapping undone: every run of whitespace one space."""
    return " ".join(text.split())


def env(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, dict[str, Any]]:
    """`bench env ARGS` as the summary, and `bench env ARGS --json` as the document, in this process."""
    capsys.readouterr()
    assert main(["env", *args]) == 0
    summary = capsys.readouterr().out
    assert main(["env", *args, "--json"]) == 0
    return summary, json.loads(capsys.readouterr().out)


def said(summary: str, reason: str) -> bool:
    """Whether ``reason`` is in ``summary`` in full, or as a pointer to the line above that says it in full."""
    text = flat(summary)
    if flat(reason) in text:
        return True
    pointers = text.split("see '")[1:]
    return bool(pointers) and all(p.split("' above")[0] in text for p in pointers)


@pytest.fixture(autouse=True)
def _no_gpu_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """No vendor library, whatever this machine has, and no RAPL unless a test gives one."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    monkeypatch.setenv("BENCH_RAPL_ROOT", "/nonexistent-rapl")
    monkeypatch.setenv("COLUMNS", "100")
    for name in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "BENCH_PROFILES_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_the_summary_names_the_profile_each_vendor_and_each_component(capsys: pytest.CaptureFixture[str]) -> None:
    summary, doc = env(capsys)
    assert set(doc) == JSON_KEYS
    lines = summary.splitlines()
    assert len(lines) < 40 and all(len(line) <= 100 for line in lines), summary
    assert lines[0].startswith("bench env:") and "bench env --json" in lines[0]
    assert "profile      cpu, chosen by --profile auto: this machine matches profile 'cpu'" in summary
    for vendor, probe in doc["devices"].items():  # each vendor's status, its reason (with its fix) in full
        assert not probe["ok"]
        assert f"{vendor + ' GPUs':<12} not usable: " in summary
        assert flat(probe["why"]) in flat(summary)
    assert "install ROCm 6.2+ and the amdsmi matching it" in flat(summary)
    components = doc["meters"]["components"]
    for component, entry in components.items():
        line = next(line for line in lines if line.startswith(f"  {component} "))
        if entry["method"] == "unavailable":
            assert "unavailable: " in line and said(summary, entry["reason"]), (component, summary)
        else:
            assert entry["method"] in line, (component, line)
    assert components["cpu"]["method"] == "estimated:tdp-utilization"
    assert "RAPL is not usable (no powercap directory at /nonexistent-rapl" in flat(summary)
    assert "set [hardware] cpu_tdp_w in the profile" in flat(summary)  # the default TDP, and how to give the CPU's
    assert "  codecarbon side meter (codecarbon " in summary and "machine scope (gpu, cpu, ram)" in flat(summary)
    assert "paper LLMs   profile 'cpu' runs on the CPU: no model is placed on a GPU" in summary


def test_json_is_the_whole_document(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = env(capsys, "--profile", "cpu")
    assert set(doc) == JSON_KEYS and doc["profile"] == "cpu" and doc["profile_mismatch"] == []
    assert set(doc["meters"]) >= {"components", "side", "notes", "min_window_s", "min_window_by"}
    assert set(doc["meters"]["components"]) == {"gpu", "cpu", "ram"}
    assert set(doc["devices"]) == {"nvidia", "amd"} and all(set(v) == {"ok", "why"} for v in doc["devices"].values())


def test_measured_rapl_is_named_with_its_domains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeRapl(tmp_path, cpu=PowerTrace.constant(10.0), dram=PowerTrace.constant(3.0)).install(monkeypatch)
    monkeypatch.setenv("BENCH_RAPL_ROOT", str(tmp_path))
    summary, doc = env(capsys, "--profile", "cpu")
    assert doc["meters"]["components"]["cpu"]["method"] == "measured:rapl"
    cpu = next(line for line in summary.splitlines() if line.startswith("  cpu "))
    ram = next(line for line in summary.splitlines() if line.startswith("  ram "))
    assert cpu.split()[1:2] == ["measured:rapl:"] and ram.split()[1:2] == ["measured:rapl:"]
    assert f"RAPL readable under {tmp_path}" in flat(summary) and "cpu_tdp_w" not in summary


def test_a_mismatching_profile_says_why_and_which_one_matches(capsys: pytest.CaptureFixture[str]) -> None:
    summary, doc = env(capsys, "--profile", "a100")
    assert doc["profile_mismatch"]
    assert "profile      a100: does NOT match this machine (1 problem(s))" in summary
    assert "Make a profile of this machine with `bench profiles init`" in flat(summary)
    assert "  instead    --profile auto: this machine matches profile 'cpu'" in summary
    # the vendors' reasons are said once, on their own lines; the mismatch and the GPU meter point at them
    assert flat(summary).count("install ROCm 6.2+ and the amdsmi matching it") == 1
    assert "(nvidia: see 'nvidia GPUs' above; amd: see 'amd GPUs' above)" in flat(summary)
    assert "  gpu        unavailable: nvidia: see 'nvidia GPUs' above; amd: see 'amd GPUs' above" in summary
    assert "  device     cuda; PyTorch " in summary  # its build and whether it sees a GPU, or that it is missing
    assert "machine of profile 'a100': 4 GPU(s) of A100, 80 GB each" in summary


def test_a_gpu_in_mig_mode_is_said_with_its_fix_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a100 = FakeGpu(name="NVIDIA A100-SXM4-80GB", memory_total_bytes=80 * 2**30, mig_mode=NVML_DEVICE_MIG_ENABLE)
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml([a100]))
    summary, doc = env(capsys, "--profile", "a100")
    assert doc["devices"]["nvidia"]["ok"] and "MIG mode" in doc["devices"]["nvidia"]["why"]
    assert "in MIG mode" in doc["meters"]["refused"]
    assert "nvidia GPUs  found: NVML" in summary and "GPU 0 in MIG mode (runs on it are refused)" in summary
    assert flat(summary).count("sudo nvidia-smi -i 0 -mig 0") == 1, summary  # the fix, in full, once
    assert "  no GPU     GPU 0 (NVIDIA A100-SXM4-80GB) is in MIG mode" in summary
    assert "  refused    a run on this profile is refused (as `bench run` would): see 'no GPU' above" in summary


def test_an_mps_profile_without_its_meter_says_the_run_is_refused_and_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`bench env --profile apple-m` off a Mac: the GPU's reason is the profile's (Apple's GPU, metered only by the
    SoC meter, none here), not a CPU profile's; and the summary says a run is refused, as `bench run` refuses it
    (bench.run.session.refuse_unmetered_soc), instead of listing CPU and RAM estimates as if it would run."""
    from bench.errors import MeterError
    from bench.meters import build_meter_set
    from bench.run.session import refuse_unmetered_soc

    summary, doc = env(capsys, "--profile", "apple-m")
    gpu = doc["meters"]["components"]["gpu"]
    assert gpu["method"] == "unavailable" and "device = 'cpu'" not in gpu["reason"]
    assert gpu["reason"].startswith("an mps profile's GPU is metered only through Zeus's Apple Silicon counters")
    assert "none here: no SoC energy here" in gpu["reason"]
    with pytest.raises(MeterError) as caught:  # what `bench run --profile apple-m` says here
        refuse_unmetered_soc(build_meter_set(use_gpu=False, device="mps"))
    assert doc["meters"]["refused"] == str(caught.value)
    assert "nothing meters it" in str(caught.value) and ".[apple]" in str(caught.value)
    text = flat(summary)
    assert "refused a run on this profile is refused (as `bench run` would): the profile runs on Apple's GPU" in text
    assert "pip install -e '.[apple]'" in text
    assert "estimated:tdp-utilization" not in summary and not any(
        line.startswith(("  cpu ", "  ram ")) for line in summary.splitlines()
    )


def test_a_cpu_profile_s_gpu_reason_is_still_the_cpu_s(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = env(capsys, "--profile", "cpu")
    assert doc["meters"]["components"]["gpu"]["reason"].startswith("the profile runs on the CPU (device = 'cpu')")
    assert "refused" not in doc["meters"]


@pytest.mark.parametrize("columns", [60, 40])
def test_a_narrow_terminal_gets_lines_of_its_width(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], columns: int
) -> None:
    """`COLUMNS=60 bench env` wraps at 60 (a 60-column terminal does not re-wrap it, the hanging indent holds); the
    floor is 40, and the words are the same as at 100."""
    from bench.env_summary import MIN_WIDTH, terminal_width

    wide, _ = env(capsys, "--profile", "cpu")
    monkeypatch.setenv("COLUMNS", str(columns))
    assert terminal_width() == columns
    narrow, _ = env(capsys, "--profile", "cpu")
    lines = narrow.splitlines()
    long_paths = [line for line in lines if len(line) > columns]  # only a word longer than the text column may be
    assert all(len(line.split()) <= 2 for line in long_paths), long_paths
    assert any(columns - 10 < len(line) <= columns for line in lines)
    continued = [line for line in lines[1:] if line.startswith(" " * 13) and line.strip()]
    assert continued and all(not line[13].isspace() for line in continued)  # the hanging indent, 13 columns
    assert flat(narrow).replace("- ", "-") == flat(wide).replace("- ", "-")
    monkeypatch.setenv("COLUMNS", "20")
    assert terminal_width() == MIN_WIDTH == 40


def test_wrapping_keeps_every_word_of_a_long_reason() -> None:
    """Long reasons are wrapped under their label, never cut: paths, commands and the fix at their end stay whole."""
    why = (
        "NVML unavailable: libnvidia-ml.so.1 was not found: no NVIDIA driver is installed here, or the container was "
        "started without GPU access (docker run --gpus all, podman run --device nvidia.com/gpu=all, apptainer exec "
        "--nv)"
    )
    info = {
        "machine": {"hostname": "h", "cpu_model": "c", "logical_cpus": 2, "ram_gb": 8, "os": "Linux", "gpus": []},
        "devices": {"nvidia": {"ok": False, "why": why}},
        "meters": {"components": {"gpu": {"meter": None, "method": "unavailable", "reason": f"nvidia: {why}"}}},
        "profile": "p",
        "profile_mismatch": [],
    }
    for width in (72, 100, 120):
        text = render_summary(info, fits_lines=["profile 'p' runs on the CPU"], width=width)
        assert all(len(line) <= width for line in text.splitlines()), text
        assert flat(why) in flat(text) and "nvidia.com/gpu=all" in text and "--nv)" in text
        nvidia = [line for line in text.splitlines() if line.startswith("nvidia GPUs")]
        assert nvidia and nvidia[0].startswith("nvidia GPUs  not usable: NVML unavailable:")
        assert "  gpu        unavailable: nvidia: see 'nvidia GPUs' above" in text
        assert "  side       none (the profile's [measurement] codecarbon is false)" in text


def test_module_scope_side_meters_off_and_a_soc() -> None:
    """A Grace Hopper module: cpu and ram counted in the gpu component; CodeCarbon absent; an SoC's own label."""
    module = {
        "gpu": {
            "meter": "nvml",
            "method": "measured:nvml-energy-counter",
            "detail": {"scope": "module", "gpus": [{"name": "NVIDIA GH200 480GB"}] * 4, "skipped_gpus": []},
        },
        "cpu": {"meter": None, "method": "unavailable", "reason": "included in the GPU's module-scope reading"},
        "ram": {"meter": None, "method": "unavailable", "reason": "included in the GPU's module-scope reading"},
    }
    side = {"codecarbon": {"enabled": False, "reason": "codecarbon is not installed: pip install codecarbon"}}
    info = {"devices": {}, "meters": {"components": module, "side": side}, "profile": "gh200"}
    text = render_summary(info, fits_lines=[], width=100)
    assert "  gpu        measured:nvml-energy-counter: 4 x NVIDIA GH200 480GB, module scope" in text
    assert "  cpu        unavailable: included in the GPU's module-scope reading" in text
    assert "  codecarbon side meter off: codecarbon is not installed: pip install codecarbon" in text
    fields = {"cpu": ["cpu_total_mj"], "gpu": ["gpu_mj", "gpu_sram_mj"], "ram": ["dram_mj"]}
    detail = {"soc": "AppleSiliconMeasurement", "method": "measured:apple-ioreport", "components": fields}
    soc = {c: {"meter": "soc", "method": "measured:apple-ioreport", "detail": detail} for c in ("gpu", "cpu", "ram")}
    text = render_summary({"meters": {"components": soc}, "profile": "apple-m"}, fits_lines=[], width=100)
    assert "  gpu        measured:apple-ioreport: gpu_mj, gpu_sram_mj (AppleSiliconMeasurement)" in text
    assert "  cpu        measured:apple-ioreport: cpu_total_mj (AppleSiliconMeasurement)" in text
    assert "  ram        measured:apple-ioreport: dram_mj (AppleSiliconMeasurement)" in text
