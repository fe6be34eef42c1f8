"""The leaderboard says what a number does not (issue 24, items 4 and 7).

- Item 4: a row whose model predicted one class for every test text, and a row whose data set had a test class absent
  from training, show the warning (data set page, submission page, JSON, CSV).
- Item 7: a CO2e derived from an assumed grid intensity (CodeCarbon's average for the profile's country, no
  ``--grid-intensity``) is labelled as assumed, naming the country; a model whose every cell failed is a row shown as
  failed with its count, not dropped; a user's file run with and without ``--label-names`` is one data set (keyed by
  the file and how it was read, not the names), the names shown.
- Revision 0008 upgrades a database at 0007 with its rows kept (re-keying user rows, adding failed models' rows,
  filling the warnings) and downgrades again; shared by SQLite (here) and PostgreSQL (test_postgres).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.data.classes import absent_class_warnings
from bench.data.local import load_local_file
from bench.data.splits import Split
from bench.derived import codecarbon_intensity
from bench.leaderboard import storage
from bench.leaderboard.validate import data_key, prepare
from bench.leaderboard.views import (
    comparability_notes,
    index_page,
    leaderboard_csv,
    leaderboard_data,
    leaderboard_json,
    leaderboard_page,
    report_page,
    submission_page,
)
from bench.results import Cell, CellError, GridRecord, ResultDocument, assumed_grid_country
from tests import factories
from tests.integration.test_own_data import write_reviews
from tests.leaderboard.docs import body, valid_document
from tests.leaderboard.migrations import insert_stored
from tests.leaderboard.migrations import migrate as _migrate
from tests.leaderboard.migrations import table as _table

#: CodeCarbon's table as ``bench.derived.codecarbon_intensity`` names it (its version aside).
GERMANY = "CodeCarbon 3.3.2 data/private_infra/global_energy_mix.json: Germany (DEU), 2023 energy mix"


def failed_cell(rep: int, model: str) -> Cell:
    return Cell(
        dataset="toy",
        model=model,
        repetition=rep,
        status="failed",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
        error=CellError(type="OSError", message="no tokenizer files in /models/clf"),
    )


def warned_run(run_id: str = "warned", **overrides: Any) -> ResultDocument:
    """Three models on 'toy': linear-bow (sound), broken-clf (one class in every repetition), dead-clf (every cell
    failed); a test class absent from training in the run's warnings; the grid assumed (CodeCarbon's Germany)."""
    models = ["linear-bow", "broken-clf", "dead-clf"]
    cells = [factories.cell(r) for r in range(2)]
    cells += [factories.cell(r, model="broken-clf", predictions=[1, 1, 1, 1]) for r in range(2)]
    cells += [failed_cell(r, "dead-clf") for r in range(2)]
    absent = absent_class_warnings("toy", [0, 0, 1, 1, 2], [Split(0, 0, (0, 2), (1, 4))], ["neg", "pos", "x"])
    fields: dict[str, Any] = dict(
        cells=cells,
        suite={"datasets": ["toy"], "models": models, "repetitions": 2},
        models={m: {"paper_label": None, "kind": "classifier"} for m in models},
        warnings=[*absent, "session 0: idle power drifted 6% (not about the data)"],
        grid=GridRecord(country_iso_code="DEU", intensity_gco2e_per_kwh=380.95, intensity_source=GERMANY),
    )
    fields.update(overrides)
    return valid_document(run_id, **fields)


def _store(engine: Any, doc: ResultDocument) -> int:
    return storage.insert_submission(engine, prepare(body(doc)), None)[0]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.engine.Engine]:
    """An SQLite leaderboard at the newest revision (test_postgres runs the same tests on PostgreSQL)."""
    made = storage.make_engine(tmp_path / "lb.db")
    storage.upgrade(made)
    yield made
    made.dispose()


def test_a_row_shows_the_warnings_about_its_model_and_its_data(engine: sa.engine.Engine, tmp_path: Path) -> None:
    rows = {r["model"]: r for r in prepare(body(warned_run())).rows}
    absent = "test class absent from training: data set 'toy', class 'x' (id 2)"
    broken = json.loads(rows["broken-clf"]["warnings"])
    assert len(broken) == 2 and broken[0].startswith(absent)
    assert broken[1].startswith("broken-clf on toy: predicted class 'pos' for every test text in repetition(s) 0-1")
    assert [w[: len(absent)] for w in json.loads(rows["linear-bow"]["warnings"])] == [absent]  # the data's only
    submission = _store(engine, warned_run())
    data = leaderboard_data(engine, "toy", storage.Filters(), "accuracy")
    page = leaderboard_page(engine, data, static=True)
    assert "broken-clf on toy: predicted class &#39;pos&#39; for every test text" in page
    assert page.count("<strong>warning:</strong> test class absent from training") == 3  # every model's row
    assert "idle power drifted" not in page  # the run's other warnings are the report's
    by_model = {r["model"]: r for r in leaderboard_json(data)["rows"]}
    assert len(by_model["broken-clf"]["warnings"]) == 2 and len(by_model["linear-bow"]["warnings"]) == 1
    header, *lines = leaderboard_csv(data["rows"]).splitlines()
    assert "warnings" in header.split(",") and any("predicted class" in line for line in lines)
    shown = submission_page(
        storage.get_submission(engine, submission) or {}, storage.submission_rows(engine, submission), static=True
    )
    assert "broken-clf on toy: predicted class &#39;pos&#39;" in shown


def test_an_assumed_grid_is_labelled_with_its_country(engine: sa.engine.Engine, tmp_path: Path) -> None:
    # The source bench.derived writes for CodeCarbon's table is the one read back.
    table = tmp_path / "mix.json"
    table.write_text(json.dumps({"DEU": {"carbon_intensity": 380.95, "year": 2023, "country_name": "Germany"}}))
    assert assumed_grid_country(codecarbon_intensity("DEU", table)[1]) == "Germany (DEU)"
    assert assumed_grid_country("user, --grid-intensity") is None
    assert assumed_grid_country("the profile's measurement.grid_intensity_gco2e_per_kwh") is None

    given = GridRecord(country_iso_code="DEU", intensity_gco2e_per_kwh=30.0, intensity_source="user, --grid-intensity")
    first = _store(engine, warned_run())
    second = _store(engine, warned_run("given", grid=given))
    data = leaderboard_data(engine, "toy", storage.Filters(), "accuracy")
    rows = leaderboard_json(data)["rows"]
    assumed = sorted((r["submission_id"], r["grid_assumed"]) for r in rows if r["gco2e_per_1000_texts"] is not None)
    assert assumed == [(first, "Germany (DEU)"), (first, "Germany (DEU)"), (second, None), (second, None)]
    page = leaderboard_page(engine, data, static=True)
    assert page.count("assumed grid: Germany (DEU)") == 2  # the two rows with a CO2e on the assumed grid
    assert "2 entries assume the average grid of Germany (DEU)" in page
    assert "grid_assumed" in leaderboard_csv(data["rows"]).splitlines()[0].split(",")
    report = report_page(storage.get_submission(engine, first, with_document=True)["document"])  # type: ignore[index]
    assert "assumed: the average grid of Germany (DEU)" in report and "(assumed grid: Germany (DEU))" in report


def test_a_model_whose_every_cell_failed_is_shown_as_failed(engine: sa.engine.Engine, tmp_path: Path) -> None:
    rows = {r["model"]: r for r in prepare(body(warned_run())).rows}
    dead = rows["dead-clf"]
    assert (dead["n_ok"], dead["n_failed"], dead["accuracy"], dead["j_per_text"]) == (0, 2, None, None)
    assert dead["failure"] == "OSError: no tokenizer files in /models/clf (2 of 2 failed cell(s))"
    assert dead["training_reason"] == "every cell failed (2): no training energy"
    odd = warned_run()
    for cell in odd.cells[-2:]:
        cell.error = CellError(type="ValueError", message="bad\x00byte")
    (odd_row,) = [r for r in prepare(body(odd)).rows if r["model"] == "dead-clf"]  # a NUL does not refuse the run
    assert odd_row["failure"] == "ValueError: bad\\0byte (2 of 2 failed cell(s))"
    _store(engine, warned_run())
    for sort in storage.SORTS:  # ranked last whatever the order: it has no number
        data = leaderboard_data(engine, "toy", storage.Filters(), sort)
        assert [r["model"] for r in data["rows"]][-1] == "dead-clf"
    page = leaderboard_page(engine, data, static=True)
    assert "failed: all 2 cell(s)" in page and "OSError: no tokenizer files in /models/clf" in page
    assert "1 model(s) on this page failed in every cell" in page
    # The calibration note counts the entries with energy: a failed model has none to divide.
    indexed = {"n_ok": 2, "calibration_reference": "gemm-f32-512-v1", "j_per_text_per_index": 1.0}
    assert comparability_notes([indexed, {**indexed, "n_ok": 0, "j_per_text_per_index": None}]) == []


def _reviews(tmp_path: Path, label_map: dict[str, str] | None) -> Any:
    path = tmp_path / "reviews.csv"
    if not path.exists():
        write_reviews(path, n=40, labels=("1", "0"))
    return load_local_file(
        str(path),
        name="toy",
        text_column="review",
        label_column="stars",
        label_names=None,
        language="en",
        label_map=label_map,
    )


def user_run(run_id: str, data: Any) -> ResultDocument:
    """A run over a user's file as ``load_local_file`` read it (its pin and label names)."""
    doc = valid_document(run_id)
    record = doc.datasets["toy"]
    record.pin, record.label_names, record.n_items = dict(data.pin), list(data.label_names), len(data)
    return doc


def test_a_file_run_with_and_without_label_names_is_one_data_set(engine: sa.engine.Engine, tmp_path: Path) -> None:
    plain = _reviews(tmp_path, None)
    named = _reviews(tmp_path, {"0": "negative", "1": "positive"})
    assert plain.labels == named.labels and plain.texts == named.texts  # the same data ...
    assert plain.pin["content_sha256"] != named.pin["content_sha256"]  # ... which the content hash told apart
    assert data_key(plain.pin) == data_key(named.pin) is not None
    _store(engine, user_run("plain", plain))
    _store(engine, user_run("named", named))
    (entry,) = [d for d in storage.datasets(engine)]
    key = data_key(plain.pin)
    assert entry["dataset"] == f"toy@{key[:12]}" and entry["submissions"] == 2 and entry["source"] == "user"  # type: ignore[index]
    data = leaderboard_data(engine, entry["dataset"], storage.Filters(), "accuracy")
    assert data["total"] == 2
    assert sorted(names for names, _ in data["namings"]) == [["0", "1"], ["negative", "positive"]]
    page = leaderboard_page(engine, data, static=True)
    assert "run with different label names" in page and "label names: negative, positive" in page
    assert sorted(r["dataset_label_names"] for r in leaderboard_json(data)["rows"]) == [
        ["0", "1"],
        ["negative", "positive"],
    ]
    assert "one data set whatever label names were given" in index_page(engine, static=True)


def test_another_file_or_another_reading_is_another_data_set(tmp_path: Path) -> None:
    plain = _reviews(tmp_path, None)
    (tmp_path / "b").mkdir()
    write_reviews(tmp_path / "b" / "reviews.csv", n=42, labels=("1", "0"))
    longer = _reviews(tmp_path / "b", None)
    assert data_key(plain.pin) != data_key(longer.pin)
    assert data_key({**plain.pin, "text_column": "title"}) != data_key(plain.pin)
    assert data_key({**plain.pin, "path": "/elsewhere/reviews.csv", "label_values": {"0": "n"}}) == data_key(plain.pin)
    assert data_key({"source": "local", "content_sha256": "ab" * 32}) is None  # no file hash: the content hash keys


# --- revision 0008 ----------------------------------------------------------------------------------------------------


NEW_COLUMNS = ("dataset_label_names", "warnings", "failure")


def check_upgrade_from_0007_keeps_rows(engine: sa.engine.Engine, tmp_path: Path) -> None:
    """A database at 0007 holding a warned run (its failed model left out, as 0007 stored it) and a user file's run
    (keyed by the content hash, as 0007 keyed it): upgrading keeps every row and value, re-keys the user rows by
    their data, fills the names and warnings, and adds the failed model's row; downgrading to 0007 gives back
    exactly what was there."""
    _migrate(engine, "0007", down=storage.current_revision(engine) is not None)
    assert storage.current_revision(engine) == "0007"
    tables = {name: sa.Table(name, sa.MetaData(), autoload_with=engine) for name in ("submissions", "results")}
    assert not any(c in tables["results"].c for c in NEW_COLUMNS)
    plain = _reviews(tmp_path, None)
    for number, doc in enumerate((warned_run(), user_run("plain", plain))):
        prepared = prepare(body(doc))
        values = dict(prepared.fields, submitted_at=f"2026-12-0{number + 1}T00:00:00+00:00", token_id=None)
        values["document_bytes"] = len(values["document"].encode())
        rows = []
        for row in prepared.rows:
            if row["n_ok"] == 0:
                continue  # 0007 stored no row for a model whose every cell failed
            if row["dataset_source"] == "user":  # 0007's key: name@<12 hex of the content sha256>
                content = plain.pin["content_sha256"]
                row = dict(row, dataset=f"toy@{content[:12]}", dataset_sha256=content)
            rows.append(row)
        insert_stored(engine, tables, values, rows)
    before = {name: _table(engine, name) for name in ("submissions", "results")}
    assert len(before["results"]) == 3 and before["results"][2]["dataset"].startswith("toy@")

    storage.upgrade(engine)
    assert storage.current_revision(engine) == storage.head_revision()
    after = _table(engine, "results")
    assert len(after) == 4  # the three rows kept, the failed model's added
    key = data_key(plain.pin)
    for old, new in zip(before["results"], after, strict=False):
        changed = {k for k in old if old[k] != new[k]}
        assert changed == ({"dataset", "dataset_sha256"} if old["dataset_source"] == "user" else set()), changed
    assert after[2]["dataset"] == f"toy@{key[:12]}" and after[2]["dataset_sha256"] == key  # type: ignore[index]
    assert json.loads(after[2]["dataset_label_names"]) == ["0", "1"]
    by_model = {r["model"]: r for r in after[:2] + after[3:]}
    assert "predicted class 'pos'" in by_model["broken-clf"]["warnings"]
    assert by_model["dead-clf"]["n_ok"] == 0 and by_model["dead-clf"]["submission_id"] == after[0]["submission_id"]
    assert by_model["dead-clf"]["failure"].startswith("OSError: no tokenizer files")
    assert by_model["dead-clf"]["hidden"] in (False, 0)
    # New submissions of the same file land on the re-keyed page.
    _store(engine, user_run("named", _reviews(tmp_path, {"0": "negative", "1": "positive"})))
    assert {d["dataset"]: d["submissions"] for d in storage.datasets(engine)}[f"toy@{key[:12]}"] == 2  # type: ignore[index]

    _migrate(engine, "0007", down=True)
    assert storage.current_revision(engine) == "0007"
    kept = _table(engine, "results")
    assert not any(c in kept[0] for c in NEW_COLUMNS)
    assert kept[:3] == before["results"]  # the failed model's row gone, the user key back


def test_a_database_at_0007_upgrades_with_its_rows_kept(tmp_path: Path) -> None:
    made = storage.make_engine(tmp_path / "lb.db")
    check_upgrade_from_0007_keeps_rows(made, tmp_path)
    made.dispose()


def check_rows_on(engine: sa.engine.Engine, tmp_path: Path) -> None:
    """The tests above on ``engine`` (PostgreSQL in test_postgres), each from an empty leaderboard."""
    tests = (
        test_a_row_shows_the_warnings_about_its_model_and_its_data,
        test_an_assumed_grid_is_labelled_with_its_country,
        test_a_model_whose_every_cell_failed_is_shown_as_failed,
        test_a_file_run_with_and_without_label_names_is_one_data_set,
    )
    for number, test in enumerate(tests):
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM results")
            connection.exec_driver_sql("DELETE FROM submissions")
        folder = tmp_path / str(number)
        folder.mkdir()
        test(engine, folder)


def test_a_row_shows_that_most_test_texts_share_no_word_with_training() -> None:
    from bench.data.checks import vocabulary_warnings

    texts = [f"word{i} other{i}" for i in range(8)]
    (disjoint,) = vocabulary_warnings("toy", texts, [Split(0, 0, (0, 1, 2, 3), (4, 5, 6, 7))])
    rows = {r["model"]: r for r in prepare(body(warned_run(warnings=[disjoint]))).rows}
    assert json.loads(rows["linear-bow"]["warnings"]) == [disjoint]  # about the data: every model's row
