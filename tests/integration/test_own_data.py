"""Your own data (and models) from the command line, end to end (issue 13): a local file as an ad-hoc suite,
recorded whole in the results, resumable by its run id, accepted by `bench validate`."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_profile
from bench.errors import ConfigError, DataError
from bench.results import load_results
from bench.runner import RunInterrupted, RunRequest, run
from bench.validation import check_document

POS = ["good", "great", "fine", "lovely", "superb", "wonderful"]
NEG = ["bad", "awful", "boring", "dull", "poor", "tedious"]


def write_reviews(path: Path, n: int = 120, *, labels: tuple[str, str] = ("1", "0"), delimiter: str = ",") -> Path:
    """``n`` short reviews, half positive (label ``labels[0]``), each text unique."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["review", "stars"])
        for i in range(n):
            words = POS if i % 2 == 0 else NEG
            writer.writerow([f"{words[i % 6]} {words[(i // 6) % 6]} movie number {i}", labels[i % 2]])
    return path


def adhoc(tmp_path: Path, **overrides: object) -> RunRequest:
    fields: dict = dict(
        profile=load_profile("cpu"),
        suite_given=False,
        reports_dir=tmp_path / "reports",
        repetitions=2,
        min_window_s=0.2,
        idle_baseline_s=0.1,
        codecarbon=False,
        progress=False,
    )
    fields.update(overrides)
    return RunRequest(**fields)


def test_a_csv_file_runs_as_an_adhoc_suite_recorded_whole(tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv", delimiter=";")
    outcome = run(
        adhoc(
            tmp_path,
            datasets=[str(data)],
            models=["linear-bow"],
            text_column="review",
            label_column="stars",
            label_names={"0": "negative", "1": "positive"},
            language="en",
        )
    )
    doc = load_results(outcome.results_path)
    assert doc.suite_name == "adhoc" and doc.suite["datasets"] == ["reviews"] and doc.suite["models"] == ["linear-bow"]
    recorded = doc.settings["data_files"]["reviews"]
    assert recorded == {
        "path": str(data.resolve()),
        "text_column": "review",
        "label_column": "stars",
        "label_names": {"0": "negative", "1": "positive"},
        "language": "en",
        "encoding": None,
    }
    record = doc.datasets["reviews"]
    assert record.pin["file_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert record.label_names == ["negative", "positive"] and record.language == "en"
    # 120 rows do not hold the paper's 200 + 200: the run says so and what it used
    assert (record.n_train, record.n_test) == (60, 60)
    assert any("has 120 rows" in w and "used 60 train + 60 test" in w for w in doc.warnings)
    assert doc.status == "complete" and check_document(doc) == []
    assert all(c.status == "ok" and c.accuracy > 0.9 for c in doc.cells)


def test_an_adhoc_run_resumes_by_its_run_id_alone(tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv", labels=("pos", "neg"))

    def stop(cell: object) -> None:
        raise KeyboardInterrupt

    first = adhoc(
        tmp_path,
        run_id="mine",
        datasets=[f"rv={data}"],
        models=["linear-bow"],
        n_train=40,
        n_test=40,
        text_column="review",
        label_column="stars",
    )
    with pytest.raises(RunInterrupted):
        run(first, on_cell=stop)
    # `bench run --run-id mine`: nothing else named, the stored run says what it was
    outcome = run(adhoc(tmp_path, run_id="mine", repetitions=None, min_window_s=None, idle_baseline_s=None))
    assert outcome.resumed and outcome.skipped == 1 and outcome.ran == 1
    doc = load_results(outcome.results_path)
    assert doc.status == "complete" and doc.datasets["rv"].n_train == 40 and check_document(doc) == []


def test_file_errors_come_before_any_energy_is_spent(tmp_path: Path) -> None:
    small = write_reviews(tmp_path / "small.csv", n=30)
    with pytest.raises(DataError, match=r"'small'.*has 30 rows, fewer than n_train \+ n_test = 20 \+ 20 = 40"):
        run(
            adhoc(
                tmp_path,
                datasets=[str(small)],
                models=["linear-bow"],
                n_train=20,
                n_test=20,
                text_column="review",
                label_column="stars",
            )
        )
    with pytest.raises(DataError, match=r"no text column 'text'.*'review', 'stars'.*--text-column"):
        run(adhoc(tmp_path, datasets=[str(small)], models=["linear-bow"]))
    with pytest.raises(ConfigError, match=r"'tomatoes-offline' is the name of the catalog data set"):
        run(adhoc(tmp_path, datasets=[f"tomatoes-offline={small}"], models=["linear-bow"]))
    with pytest.raises(ConfigError, match=r"--dataset tomatos: neither a file.*Did you mean: tomatoes"):
        run(adhoc(tmp_path, datasets=["tomatos"], models=["linear-bow"]))
    assert not (tmp_path / "reports").exists(), "nothing written for a refused run"


def test_cli_runs_a_file_and_validate_accepts_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_reviews(tmp_path / "my.csv", n=80)
    reports = tmp_path / "reports"
    common = ["--min-window-s", "0.2", "--idle-s", "0.1", "--no-codecarbon", "--no-progress"]
    args = ["run", "--dataset", str(data), "--text-column", "review", "--label-column", "stars", "--model"]
    status = main([*args, "linear-bow", "--repetitions", "1", "--reports-dir", str(reports), *common])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "used 40 train + 40 test" in out.out + out.err
    (run_dir,) = reports.iterdir()
    assert (run_dir / "report.html").is_file()
    assert main(["validate", str(run_dir)]) == 0
    assert capsys.readouterr().out.startswith("OK ")


def test_acceptance_own_file_with_linear_bow_and_a_clf_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench run --dataset my.csv --model linear-bow --model clf:<folder>` offline, then `bench validate`."""
    from bench.fsutil import folder_sha256
    from tests.tiny_models import build_tiny_classifier

    folder = build_tiny_classifier(tmp_path / "my-model", {0: "LABEL_0", 1: "LABEL_1"})
    data = write_reviews(tmp_path / "my.csv", n=80, labels=("positive", "negative"))
    reports = tmp_path / "reports"
    args = ["run", "--dataset", str(data), "--text-column", "review", "--label-column", "stars"]
    args += ["--model", "linear-bow", "--model", f"clf:{folder}", "--repetitions", "2", "--reports-dir", str(reports)]
    args += ["--min-window-s", "0.2", "--idle-s", "0.1", "--no-codecarbon", "--no-progress"]
    # generic LABEL_n names: refused before anything is written, naming both sides and --label-map
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'LABEL_0', 'LABEL_1'" in err and "'negative', 'positive'" in err and "--label-map" in err
    assert not reports.exists()
    assert main([*args, "--label-map", "LABEL_0=negative,LABEL_1=Positive"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    (run_dir,) = reports.iterdir()
    assert main(["validate", str(run_dir)]) == 0
    assert capsys.readouterr().out.startswith("OK ")
    doc = load_results(run_dir / "results.json")
    model = f"clf:{folder.resolve()}"
    assert doc.suite["models"] == ["linear-bow", model] and doc.settings["label_map"] == {
        "LABEL_0": "negative",
        "LABEL_1": "Positive",
    }
    assert doc.datasets["my"].pin["file_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    pin = doc.models[model]["info"]["pin"]
    assert pin["source"] == "local" and pin["folder_sha256"] == folder_sha256(folder)
    assert doc.models[model]["kind"] == "classifier"
    assert {(c.model, c.status) for c in doc.cells} == {("linear-bow", "ok"), (model, "ok")} and len(doc.cells) == 4


def test_duplicates_are_reported_and_an_empty_vocabulary_refused_before_any_energy(tmp_path: Path) -> None:
    data = tmp_path / "dups.csv"
    rows = [f"{POS[i % 6]} movie {i % 20}" if i % 2 == 0 else f"{NEG[i % 6]} film {i % 20}" for i in range(100)]
    data.write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(rows)))
    doc = run(adhoc(tmp_path, datasets=[str(data)], models=["linear-bow"], repetitions=1)).document
    assert any("'dups'" in w and "rep 0:" in w and "duplicated rows" in w for w in doc.warnings)

    symbols = tmp_path / "symbols.csv"
    symbols.write_text("text,label\n" + "".join(f"{'!?'[i % 2]} {i % 10},{i % 2}\n" for i in range(40)))
    with pytest.raises(DataError, match=r"'symbols', repetition 0: none of its 20 training texts has a word"):
        run(adhoc(tmp_path, reports_dir=tmp_path / "r2", datasets=[str(symbols)], models=["linear-bow"]))
    assert not (tmp_path / "r2").exists()


def test_an_hf_folder_llm_end_to_end_with_its_context_window_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench run --dataset my.csv --model hf:<folder>`: prompts over the model's context window stop the run before
    the grid, naming the rows; with --truncate they are cut, recorded per text, and the run validates."""
    pytest.importorskip("transformers")
    from bench.fsutil import folder_sha256
    from tests.tiny_models import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "tiny-llm", max_position_embeddings=400)
    data = write_reviews(tmp_path / "my.csv", n=40, labels=("positive", "negative"))
    lines = data.read_text().splitlines()
    lines[3] = f'"{" ".join(["wonderful acting, a great movie"] * 40)}",positive'  # row 3 of the data: 40 phrases
    data.write_text("\n".join(lines) + "\n")
    reports = tmp_path / "reports"
    args = ["run", "--dataset", str(data), "--text-column", "review", "--label-column", "stars"]
    args += ["--model", f"hf:{folder}", "--repetitions", "1", "--n-train", "8", "--n-test", "32"]
    args += ["--reports-dir", str(reports), "--min-window-s", "0.1", "--idle-s", "0.1", "--no-codecarbon"]
    args += ["--no-progress", "--max-other-cpu-share", "1"]  # the LLM pass takes seconds: CI's neighbours may run
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 of 32 test texts make prompts longer than the 368 tokens its context window of 400" in err, err
    assert "row 3 (" in err and "--truncate" in err and "wonderful acting" not in err  # rows, never texts
    assert not reports.exists(), "nothing is written before the grid"

    assert main([*args, "--truncate"]) == 0, capsys.readouterr().err
    out = capsys.readouterr()
    (run_dir,) = reports.iterdir()
    assert main(["validate", str(run_dir)]) == 0
    doc = load_results(run_dir / "results.json")
    model = f"hf:{folder.resolve()}"
    (cell,) = doc.cells
    assert cell.model == model and cell.status == "ok" and cell.validity == [], (cell.error, cell.validity)
    (cut,) = cell.truncated
    assert cut.kept_tokens <= 368 < cut.prompt_tokens
    assert doc.settings["llm"]["truncate"] is True
    assert any("--truncate cuts them to fit" in w and "row 3 (" in w for w in doc.warnings)
    info = doc.models[model]["info"]
    assert info["pin"]["folder_sha256"] == folder_sha256(folder) and info["context_window"] == 400
    assert "--truncate" in out.err or "--truncate" in out.out  # the warning is printed
    assert "cut to fit the model&#39;s context window" in (run_dir / "report.html").read_text()
    # the cell's arithmetic (issue 27): the loaded weights' count, 2 x params x the tokens the pass computed
    arithmetic = cell.arithmetic
    assert arithmetic is not None and arithmetic.params == info["n_params"] > 0
    assert arithmetic.prompt_tokens == cell.tokens["input_tokens"] and arithmetic.cached_tokens == 0
    assert arithmetic.flop == 2 * arithmetic.params * (arithmetic.prompt_tokens + arithmetic.generated_tokens)
    if any(c.j_per_unit for c in doc.calibration):  # the session's GEMM ran: the LLM row shows the reference ratio
        assert "energy / calibration J per FLOP" in (run_dir / "report.html").read_text()


def test_the_terminal_prints_each_warning_once_and_explains_the_energy_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "dups.csv"
    rows = [f"{POS[i % 6]} movie {i % 20}" if i % 2 == 0 else f"{NEG[i % 6]} film {i % 20}" for i in range(100)]
    data.write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(rows)))
    args = ["run", "--dataset", str(data), "--model", "linear-bow", "--repetitions", "2", "--no-report"]
    args += ["--reports-dir", str(tmp_path / "reports"), "--min-window-s", "0.1", "--idle-s", "0.1", "--run-id", "d"]
    args += ["--no-codecarbon", "--no-progress", "--max-other-cpu-share", "1"]
    calls = []

    def stop_after_one(cell: object) -> None:
        calls.append(cell)
        raise KeyboardInterrupt

    import bench.runner

    real_run = bench.runner.run
    with pytest.MonkeyPatch.context() as patch:  # the first session stops after one cell
        patch.setattr(bench.runner, "run", lambda request: real_run(request, on_cell=stop_after_one))
        assert main(args) == 130
    first = capsys.readouterr()
    assert "no stored run d under" in first.err and (first.out + first.err).count("duplicated rows") == 1
    assert main(args) == 0  # resumed: the earlier session's warnings recalled once, none repeated
    out = capsys.readouterr()
    printed = out.out + out.err
    assert printed.count("duplicated rows") == 1, printed
    assert "no stored run" not in printed
    assert re.search(r"\d+ run warning\(s\) \(printed above", printed), printed
    assert "net J: the same less the idle baseline" in " ".join(printed.split())


def test_a_resumed_run_refuses_a_local_model_folder_that_changed(tmp_path: Path) -> None:
    from tests.tiny_models import build_tiny_classifier

    folder = build_tiny_classifier(tmp_path / "my-model", {0: "neg", 1: "pos"})
    data = write_reviews(tmp_path / "reviews.csv", labels=("pos", "neg"))

    def stop(cell: object) -> None:
        raise KeyboardInterrupt

    fields = dict(run_id="mine", datasets=[f"rv={data}"], models=[f"clf:{folder}"], n_train=40, n_test=40)
    fields.update(text_column="review", label_column="stars")
    with pytest.raises(RunInterrupted):
        run(adhoc(tmp_path, **fields), on_cell=stop)
    config = folder / "config.json"
    original = config.read_text()
    config.write_text(original.replace('"num_hidden_layers": 1', '"num_hidden_layers": 1, "note": "retrained"'))
    resume = adhoc(tmp_path, run_id="mine", repetitions=None, min_window_s=None, idle_baseline_s=None)
    with pytest.raises(ConfigError, match=r"clf:.*its folder's sha256 is \w{12} now but \w{12} when this run started"):
        run(resume)
    config.write_text(original)
    outcome = run(resume)
    assert outcome.resumed and outcome.ran == 1 and load_results(outcome.results_path).status == "complete"


def test_an_llm_on_bare_label_ids_is_told_to_name_them(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from bench.catalog.models import get_model_spec
    from bench.run.models import check_context
    from tests.tiny_models import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "llm")
    split = SimpleNamespace(repetition=0, train_idx=[0], test_idx=[1, 2])
    record = SimpleNamespace(label_names=["0", "1"], language="en", splits=[split])
    prepared = SimpleNamespace(record=record, texts=["a great movie", "a bad film", "boring plot"])
    (note,) = check_context(get_model_spec(f"hf:{folder}"), load_profile("cpu"), {"mine": prepared})
    assert "labels are bare ids (0, 1)" in note and "--label-names 0=NAME,1=NAME" in note
    record.label_names = ["negative", "positive"]
    assert check_context(get_model_spec(f"hf:{folder}"), load_profile("cpu"), {"mine": prepared}) == []


def test_labels_written_with_spaces_are_one_class_with_those_without_and_the_run_says_so(tmp_path: Path) -> None:
    """``"pos "`` and ``"pos"``: read as one class (stray spaces are almost never a class of their own), recorded in
    the data set's pin and warned about in the results, so that a file meaning them apart is noticed."""
    data = tmp_path / "spaced.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "stars"])
        for i in range(40):
            words, label = (POS, ("pos", "pos ")[i % 4 == 0]) if i % 2 == 0 else (NEG, "neg")
            writer.writerow([f"{words[i % 6]} {words[(i // 6) % 6]} movie number {i}", label])
    outcome = run(adhoc(tmp_path, datasets=[str(data)], models=["linear-bow"], text_column="review",
                        label_column="stars", repetitions=1))  # fmt: skip
    doc = load_results(outcome.results_path)
    record = doc.datasets["spaced"]
    assert record.label_names == ["neg", "pos"] and record.pin["labels_stripped"] == {"'pos '": "pos"}
    assert any("'pos ' as 'pos'" in w and "one class" in w for w in doc.warnings), doc.warnings
    assert check_document(doc) == []
