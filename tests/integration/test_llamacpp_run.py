"""Acceptance of issue 27's llama.cpp backend: offline, `bench run --dataset <a CSV> --model
'smollm2-135m-gguf[serving=scoring]'` runs the packaged GGUF file through llama.cpp and `bench validate` accepts the
run. Fails instead of skipping in CI (CI=true) when the llamacpp extra is missing (``require_llama_cpp``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.results import load_results
from tests.integration.test_own_data import write_reviews
from tests.unit.test_llamacpp import require_llama_cpp


def test_a_csv_runs_on_the_gguf_entry_by_scoring_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_llama_cpp()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = write_reviews(tmp_path / "reviews.csv", n=24, labels=("positive", "negative"))
    reports = tmp_path / "reports"
    model = "smollm2-135m-gguf[serving=scoring]"
    args = ["run", "--dataset", str(data), "--text-column", "review", "--label-column", "stars", "--model", model]
    args += ["--repetitions", "1", "--n-train", "8", "--n-test", "8", "--reports-dir", str(reports)]
    args += ["--min-window-s", "0.1", "--idle-s", "0.1", "--no-codecarbon", "--no-progress"]
    args += ["--max-other-cpu-share", "1"]  # the pass takes seconds: CI's neighbours may run
    status, out = main(args), capsys.readouterr()
    assert status == 0, out.err
    assert "n_ctx_train" not in out.out + out.err  # llama.cpp's log stays quiet
    (run_dir,) = reports.iterdir()
    assert main(["validate", str(run_dir)]) == 0
    assert capsys.readouterr().out.startswith("OK ")
    doc = load_results(run_dir / "results.json")
    (cell,) = doc.cells
    assert cell.model == model and cell.status == "ok", (cell.error, cell.validity)
    assert all(p in (0, 1) for p in cell.predictions)  # scoring always picks a label
    assert cell.tokens["requests"] == 8 and cell.tokens["input_tokens"] > 8 * 150
    assert cell.tokens["output_tokens"] == 0 and cell.tokens["cached_tokens"] > 0
    # the arithmetic counts only what was decoded: the prefix read from the KV cache is not computed again
    assert cell.arithmetic is not None and cell.arithmetic.cached_tokens == cell.tokens["cached_tokens"]
    assert cell.arithmetic.computed_tokens == cell.tokens["input_tokens"] - cell.tokens["cached_tokens"]
    info = doc.models[model]["info"]
    assert doc.models[model]["backend"] == "bench.backends.llamacpp_backend:LlamaCppBackend"
    assert info["backend"] == "llamacpp" and info["serving"] == "scoring" and info["gguf_type"] == "Q4_1"
    assert info["dtype"] == "auto" and info["pin"]["source"] == "package-gguf"


def test_a_gguf_file_of_ones_own_runs_through_llama_cpp_and_a_wrong_file_is_refused_before_the_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model hf:/path/file.gguf``: the user's GGUF file, run by llama.cpp and pinned by its sha256; a file that
    is not GGUF and a missing folder are refused before any idle baseline or cell (nothing is written)."""
    import shutil

    from bench.catalog.resolve import smollm2_gguf

    require_llama_cpp()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = write_reviews(tmp_path / "reviews.csv", n=24, labels=("positive", "negative"))
    own = tmp_path / "my model.gguf"
    shutil.copyfile(smollm2_gguf(), own)
    base = ["run", "--dataset", str(data), "--text-column", "review", "--label-column", "stars"]
    base += ["--repetitions", "1", "--n-train", "8", "--n-test", "8", "--min-window-s", "0.1", "--idle-s", "0.1"]
    base += ["--no-codecarbon", "--no-progress", "--max-other-cpu-share", "1"]
    reports = tmp_path / "reports"
    assert main([*base, "--model", f"hf:{own}", "--reports-dir", str(reports)]) == 0, capsys.readouterr().err
    (run_dir,) = reports.iterdir()
    doc = load_results(run_dir / "results.json")
    (cell,) = doc.cells
    assert cell.status == "ok" and doc.models[cell.model]["backend"].endswith("LlamaCppBackend")
    assert doc.models[cell.model]["info"]["serving"] == "scoring"
    not_gguf, refused = tmp_path / "weights.gguf", tmp_path / "refused"
    not_gguf.write_bytes(b"PK\x03\x04 a zip, not GGUF")
    missing = tmp_path / "no-such-model"
    for model, says in ((f"hf:{not_gguf}", "is not a GGUF file"), (f"hf:{missing}", "no such folder")):
        capsys.readouterr()
        assert main([*base, "--model", model, "--reports-dir", str(refused)]) != 0
        assert says in capsys.readouterr().err
        assert not refused.exists() or not any(refused.rglob("results.json"))
