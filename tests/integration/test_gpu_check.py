"""``benchmarks/gpu_check.py --fake-nvml`` end to end on a fake GPU at a constant 90 W: every window's counter,
10 Hz sampled integral and their ratio are checkable; then the kit's own run over the same texts writes results.json
and report.html that `bench validate` accepts."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from bench.cli import main as bench_main
from bench.meters import gpu as nvml_module
from bench.results import load_results

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.py"


def test_gpu_check_on_the_fake_nvml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(nvml_module, "DEFAULT_MIN_WINDOW_S", nvml_module.DEFAULT_MIN_WINDOW_S)  # restored after
    monkeypatch.setitem(sys.modules, "pynvml", sys.modules.get("pynvml"))  # the script installs its fake there
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--out", str(tmp_path), "--fake-nvml", "--window-s", "1.0", "--fake-power-w", "90"]
    rc = module.main([*args, "--max-other-cpu-share", "1"])  # CI's neighbours may run beside it
    printed = capsys.readouterr().out
    assert rc == 0, printed
    doc = json.loads((tmp_path / "gpu-check.json").read_text())
    assert doc["fake_nvml"] is True
    metered = [w for w in doc["windows"] if "counter_j" in w]
    assert [w["window"].split(":")[0].split(" (")[0] for w in metered] == [
        "idle",
        "traditional",
        "embedding",
        "decoder",
        "decoder",
        "decoder",
    ]
    assert [w["window"] for w in metered][-3:] == [
        f"decoder: hf pipeline {s}" for s in ("sequential", "batched", "scoring")
    ]
    for w in metered:
        assert w["counter_method"] == "measured:nvml-energy-counter"
        assert w["gpu_power_w"] == pytest.approx(90.0, rel=0.01)
        assert w["counter_vs_sampling"] == pytest.approx(1.0, abs=0.02)
    assert doc["problems"] and not any(doc["problems"].values())
    assert "on a FAKE NVML" in printed

    # The kit's own run: written where it says, accepted by `bench validate` as the CLI runs it
    results, report = Path(doc["run"]["results"]), Path(doc["run"]["report"])
    assert results.parent.parent == tmp_path and results.is_file() and report == results.parent / "report.html"
    assert f"results: {results}" in printed and f"report: {report}" in printed and "bench validate" in printed
    assert doc["run"]["validation"] == []
    assert bench_main(["validate", str(results)]) == 0
    run = load_results(results)
    models = [c.model for c in run.cells]
    assert models[0] == "linear-bow" and [m.rsplit("[", 1)[1] for m in models[1:]] == [
        f"serving={s},batch_size=16]" for s in ("sequential", "batched", "scoring")
    ]
    for cell in run.cells:
        assert cell.status == "ok" and cell.validity == [], (cell.model, cell.error, cell.validity)
        assert cell.energy["gpu"].method == "measured:nvml-energy-counter"
        assert cell.energy["gpu"].energy_j / cell.duration_s == pytest.approx(90.0, rel=0.02)
    assert run.profile["hardware"]["device"] == "cuda" and run.profile["hardware"]["gpu_count"] == 1
    (calibration,) = run.calibration  # the torch path, on CPU tensors: not the GPU reference, and it says so
    assert calibration.reference == "gemm-torch-f32-256-v1" and calibration.device == "cpu"
    assert calibration.j_per_unit is not None and calibration.energy["gpu"].method == "measured:nvml-energy-counter"
    assert "gemm-torch-f32-256-v1 on cpu" in printed
    assert "report.html" in report.name and "gpu-check" in report.read_text()


def test_a_bad_wheels_folder_is_named_with_how_to_rebuild_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--wheels DIR` missing, empty, or holding a wheel pip refuses: the check stops naming DIR and the make target,
    not with a traceback, and leaves no install folder behind."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    empty, broken = tmp_path / "empty", tmp_path / "broken"
    empty.mkdir()
    broken.mkdir()
    (broken / "x-1.0-py3-none-any.whl").write_text("not a zip")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(module.tempfile, "tempdir", str(temp))  # where the install folder would be made
    for folder, says in ((tmp_path / "none", "no such folder"), (empty, "no .whl files"), (broken, "pip could not")):
        with pytest.raises(SystemExit, match=rf"--wheels {folder}: {says}.*make gpu-check-wheels WHEELS={folder}"):
            module.install_wheels(folder)
    assert list(temp.iterdir()) == []
