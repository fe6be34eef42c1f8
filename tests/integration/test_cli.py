"""The `bench` command as a user runs it: real subprocesses, real signals, exit codes and messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results import load_results, write_results
from tests.factories import document

BENCH = [sys.executable, "-m", "bench.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300)


def test_profiles_list_show_validate() -> None:
    listed = bench("profiles", "list")
    assert listed.returncode == 0
    for name in ("cpu", "h100", "a30", "v100", "a100", "l4", "h200", "b200", "gh200", "mi300x", "mi250x", "apple-m"):
        assert name in listed.stdout
    shown = bench("profiles", "show", "h100")
    assert shown.returncode == 0 and json.loads(shown.stdout)["hardware"]["gpu_count"] == 4
    assert bench("profiles", "validate").returncode == 0


def test_profiles_validate_names_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ndescription = "x"\nembeder = "y"\n')
    result = bench("profiles", "validate", str(bad))
    assert result.returncode == 1
    assert "embeder: unknown key" in result.stdout and "hardware: required key is missing" in result.stdout


def test_unknown_profile_is_exit_2_with_suggestion() -> None:
    result = bench("run", "--profile", "h10")
    assert result.returncode == 2
    assert "unknown hardware profile 'h10'" in result.stderr and "h100" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_data_option_is_explained() -> None:
    result = bench("run", "--data", "fktg")
    assert result.returncode == 2 and "NAME=PATH" in result.stderr


def test_validate_good_tampered_truncated(tmp_path: Path) -> None:
    good = tmp_path / "good" / "results.json"
    write_results(document(status="complete"), good)
    ok = bench("validate", str(good))
    assert ok.returncode == 0 and ok.stdout.startswith("OK")

    tampered = tmp_path / "tampered.json"
    data = json.loads(good.read_text())
    data["cells"][0]["energy"]["cpu"]["energy_j"] = 0.001
    tampered.write_text(json.dumps(data))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[:500])
    result = bench("validate", str(good), str(tampered), str(truncated))
    assert result.returncode == 1
    assert "content hash mismatch" in result.stdout and "not valid JSON" in result.stdout


def test_env_reports_machine_and_meters() -> None:
    result = bench("env", "--json")
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert set(info) == {"machine", "software", "devices", "meters", "profile", "accelerator", "profile_mismatch",
                         "gpus_as_run", "paper_llms"}  # fmt: skip
    assert info["machine"]["logical_cpus"] >= 1
    assert set(info["meters"]["components"]) == {"gpu", "cpu", "ram"}
    assert info["profile_mismatch"] == []

    # the default: a short summary of the same document, wrapped to the terminal ($COLUMNS)
    summary = subprocess.run(
        [*BENCH, "env"], capture_output=True, text=True, env={**ENV, "COLUMNS": "100"}, timeout=300
    )
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert len(lines) < 40 and lines[0].startswith("bench env: ")
    assert f"profile      {info['profile']}, chosen by --profile auto: " in summary.stdout
    assert all(f"{vendor + ' GPUs':<12} " in summary.stdout for vendor in info["devices"])
    for component, entry in info["meters"]["components"].items():
        line = next(line for line in lines if line.startswith(f"  {component} "))
        assert (entry["method"] if entry["method"] != "unavailable" else "unavailable: ") in line


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_leaves_a_valid_partial_result(tmp_path: Path, sig: signal.Signals) -> None:
    args = [
        "run",
        "--suite",
        "smoke",
        "--repetitions",
        "40",
        "--min-window-s",
        "0.3",
        "--idle-s",
        "0",
        "--no-codecarbon",
        "--reports-dir",
        str(tmp_path),
        "--run-id",
        "sig",
    ]
    proc = subprocess.Popen([*BENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    results = tmp_path / "sig" / "results.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and load_results(results).cells:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("no cell finished within 120 s")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "partial result is valid" in err and "--run-id sig" in err
    doc = load_results(results)
    assert doc.status == "interrupted" and 1 <= len(doc.cells) < 80
    assert bench("validate", str(results)).returncode == 0
    assert not (tmp_path / "sig" / ".bench-run.holder.json").exists(), "the run folder is let go on a signal too"


def test_run_json_prints_the_stored_document_to_stdout(tmp_path: Path) -> None:
    result = bench(
        "run",
        "--suite",
        "smoke",
        "--repetitions",
        "1",
        "--min-window-s",
        "0.2",
        "--idle-s",
        "0.1",
        "--no-codecarbon",
        "--no-report",
        "--reports-dir",
        str(tmp_path),
        "--run-id",
        "j",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((tmp_path / "j" / "results.json").read_text())
    assert "accuracy" in result.stderr  # the summary table went to stderr


def test_run_exits_1_when_cells_are_invalid(tmp_path: Path) -> None:
    """A window that cannot reach its minimum (here: one loop allowed) is flagged, and the run says so in its code."""
    text = (Path(__file__).resolve().parents[2] / "hardware_profiles" / "cpu.toml").read_text()
    profile = tmp_path / "cpu.toml"
    profile.write_text(text.replace("[measurement]\n", "[measurement]\nmax_loops = 1\n", 1))
    result = bench(
        "run",
        "--profile",
        str(profile),
        "--suite",
        "smoke",
        "--repetitions",
        "1",
        "--idle-s",
        "0.1",
        "--no-codecarbon",
        "--no-report",
        "--reports-dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 1, result.stderr
    assert "2 invalid" in result.stdout


def test_run_takes_the_grid_intensity_and_price_and_records_who_gave_them(tmp_path: Path) -> None:
    args = ["--suite", "smoke", "--model", "linear-bow", "--repetitions", "1", "--min-window-s", "0.2"]
    args += ["--idle-s", "0.1", "--no-codecarbon", "--no-report", "--reports-dir", str(tmp_path), "--run-id", "g"]
    result = bench("run", *args, "--grid-intensity", "100", "--price-per-kwh", "0.25", "--currency", "usd")
    assert result.returncode == 0, result.stderr
    doc = load_results(tmp_path / "g")
    assert doc.grid.intensity_gco2e_per_kwh == 100.0 and doc.grid.intensity_source == "user, --grid-intensity"
    assert (doc.grid.price_per_kwh, doc.grid.currency) == (0.25, "USD")
    assert doc.grid.price_source == "user, --price-per-kwh, --currency"
    assert doc.profile["measurement"]["grid_intensity_gco2e_per_kwh"] == 100.0  # part of the profile, as recorded
    bad = bench("run", *args, "--grid-intensity", "-3")
    assert bad.returncode == 2 and "--grid-intensity -3.0" in bad.stderr and "gCO2e per kWh" in bad.stderr
