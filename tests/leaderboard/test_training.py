"""Training energy on the leaderboard (issue 15, item 3): its own column, J per training pass and s, with the method
labels of its components; a row without training (a zero-shot LLM, a run from before the kit metered training, a
row stored before revision 0006) shows None / a dash and the reason, never 0. And revision 0006 itself: a database
at 0005 upgrades with its rows kept (and downgrades again)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.leaderboard import storage
from bench.leaderboard.validate import prepare
from bench.leaderboard.views import (
    TRAINING_NOT_STORED,
    leaderboard_csv,
    leaderboard_data,
    leaderboard_page,
    row_json,
    submission_page,
)
from bench.report.sample import sample_document
from bench.results import EnergyValue, ResultDocument, TrainingWindow
from tests.leaderboard.conftest import Live
from tests.leaderboard.docs import body
from tests.leaderboard.migrations import migrate as _migrate
from tests.leaderboard.migrations import table as _table
from tests.leaderboard.server import post

LLM = "llama-3.1-8b"
#: Per repetition: (gpu J, cpu J, s) of one training pass of linear-bow.
BOW_TRAINING = [(30.0, 10.0, 4.0), (50.0, 14.0, 6.0)]


def training_window(gpu_j: float | None, cpu_j: float | None, seconds: float) -> TrainingWindow:
    def value(joules: float | None, method: str) -> EnergyValue:
        if joules is None:
            return EnergyValue(energy_j=None, method="unavailable", reason=f"{method.split(':')[1]} meter failed")
        return EnergyValue(energy_j=joules, net_energy_j=joules / 2, method=method)

    return TrainingWindow(
        duration_s=seconds,
        loops=1,
        min_window_s=10.0,
        n_train=200,
        energy={
            "gpu": value(gpu_j, "measured:nvml-energy-counter"),
            "cpu": value(cpu_j, "measured:rapl"),
            "ram": EnergyValue(energy_j=None, method="unavailable", reason="no RAM meter in this test"),
        },
    )


def document(seed: int = 0) -> ResultDocument:
    """Six traditional models and one zero-shot LLM on tomatoes, two repetitions: linear-bow trained in metered
    windows, linear-tfidf with windows whose components have no number, the others with none (an older run)."""
    doc = sample_document(
        ("tomatoes",), repetitions=2, models=7, serving=False, n_test=20, failures=False, machine="h100", seed=seed
    )
    assert doc.models[LLM]["kind"] == "llm"
    for cell in doc.cells:
        if cell.model == "linear-bow":
            cell.training = training_window(*BOW_TRAINING[cell.repetition])
        elif cell.model == "linear-tfidf":
            cell.training = training_window(None, None, 3.0)
    return doc


def by_model(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["model"]: r for r in rows}


def test_rows_carry_training_energy_with_its_methods_and_a_reason_where_there_is_none() -> None:
    rows = by_model(prepare(body(document())).rows)
    bow = rows["linear-bow"]
    # Gross J of one pass, components with a number summed (gpu + cpu), mean over the two repetitions; s likewise.
    assert bow["training_energy_j_per_pass"] == pytest.approx(((30 + 10) + (50 + 14)) / 2)
    assert bow["training_duration_s_per_pass"] == pytest.approx(5.0)
    assert (bow["training_gpu_method"], bow["training_cpu_method"], bow["training_ram_method"]) == (
        "measured:nvml-energy-counter",
        "measured:rapl",
        "unavailable",
    )
    assert bow["training_reason"] is None
    # Training stays out of the inference figures: the same as without any training window.
    untrained = by_model(
        prepare(
            body(
                sample_document(
                    ("tomatoes",), repetitions=2, models=7, serving=False, n_test=20, failures=False, machine="h100"
                )
            )
        ).rows
    )
    assert bow["j_per_text"] == untrained["linear-bow"]["j_per_text"]

    llm = rows[LLM]
    assert llm["training_energy_j_per_pass"] is None and llm["training_duration_s_per_pass"] is None
    assert llm["training_reason"].startswith("zero-shot LLM: not trained")
    old = rows["xgboost-bow"]  # a trained kind whose cells have no window: a run from before the kit metered it
    assert old["training_energy_j_per_pass"] is None and "no training window recorded" in old["training_reason"]
    nothing = rows["linear-tfidf"]  # windows, but no component had a number: None with the components' reasons
    assert nothing["training_energy_j_per_pass"] is None and nothing["training_duration_s_per_pass"] == 3.0
    assert "no component of the training window" in nothing["training_reason"]
    assert "nvml-energy-counter meter failed" in nothing["training_reason"]


def test_page_json_and_csv_show_the_column_with_units_and_the_dash(tmp_path: Path) -> None:
    engine = storage.make_engine(tmp_path / "lb.db")
    storage.upgrade(engine)
    submission, _ = storage.insert_submission(engine, prepare(body(document())), None)
    data = leaderboard_data(engine, "tomatoes", storage.Filters(), "accuracy")
    page = leaderboard_page(engine, data, static=True)
    assert "training energy" in page and "J per training pass" in page and "s per training pass" in page
    assert "measured:nvml-energy-counter / measured:rapl / unavailable" in page
    assert 'title="zero-shot LLM: not trained' in page  # the dash says why on hover, and in short under it
    rows = by_model([row_json(r) for r in data["rows"]])
    assert rows["linear-bow"]["training_energy_j_per_pass"] == pytest.approx(52.0)
    assert rows[LLM]["training_energy_j_per_pass"] is None and "zero-shot" in rows[LLM]["training_reason"]
    table = {r["model"]: r for r in csv.DictReader(io.StringIO(leaderboard_csv(data["rows"])))}
    assert table[LLM]["training_energy_j_per_pass"] == "" and "zero-shot" in table[LLM]["training_reason"]
    assert float(table["linear-bow"]["training_duration_s_per_pass"]) == pytest.approx(5.0)
    detail = submission_page(
        storage.get_submission(engine, submission), storage.submission_rows(engine, submission), static=True
    )
    assert "J per training pass" in detail and "zero-shot LLM" in detail


def test_the_service_answers_training_energy(live: Live) -> None:
    sent = post(live.server, body(document()), live.token)
    assert sent.status_code == 201, sent.text
    board = httpx.get(live.url + "/datasets/tomatoes.json", timeout=30).json()
    rows = by_model(board["rows"])
    assert rows["linear-bow"]["training_energy_j_per_pass"] == pytest.approx(52.0)
    assert rows[LLM]["training_energy_j_per_pass"] is None and rows[LLM]["training_reason"]
    one = httpx.get(f"{live.url}/submissions/{sent.json()['id']}.json", timeout=30).json()
    assert by_model(one["rows"])["linear-bow"]["training_cpu_method"] == "measured:rapl"


def _rows(engine: sa.engine.Engine) -> list[dict[str, Any]]:
    return _table(engine, "results")


def check_upgrade_from_0005_keeps_rows(engine: sa.engine.Engine) -> None:
    """A database at revision 0005 with a submission in it: upgrading to head keeps every row and value, the new
    columns are None (the page says the row was stored before training energy was kept); downgrading to 0005 keeps
    the rows too. Shared by the SQLite test here and the PostgreSQL one (test_postgres)."""
    _migrate(engine, "0005", down=storage.current_revision(engine) is not None)  # an empty one, or one at head
    assert storage.current_revision(engine) == "0005"
    prepared = prepare(body(document()))
    old = sa.Table("results", sa.MetaData(), autoload_with=engine)
    old_submissions = sa.Table("submissions", sa.MetaData(), autoload_with=engine)
    assert "training_energy_j_per_pass" not in old.c
    values = dict(prepared.fields, submitted_at="2026-11-30T00:00:00+00:00", token_id=None)
    values["document_bytes"] = len(values["document"].encode())
    values = {k: v for k, v in values.items() if k in old_submissions.c}  # the columns of revision 0005
    with engine.begin() as connection:
        new_id = connection.execute(old_submissions.insert().values(**values)).inserted_primary_key[0]
        copies = {"submission_id": new_id, "hidden": False, "hardware_profile": "h100", "gpu_model": "x"}
        connection.execute(
            old.insert(), [{k: v for k, v in dict(r, **copies).items() if k in old.c} for r in prepared.rows]
        )
    before = _rows(engine)
    assert len(before) == 7

    storage.upgrade(engine)
    assert storage.current_revision(engine) == storage.head_revision()
    after = _rows(engine)
    assert [{k: r[k] for k in before[0]} for r in after] == before
    assert all(r["training_energy_j_per_pass"] is None and r["training_reason"] is None for r in after)
    data = leaderboard_data(engine, "tomatoes", storage.Filters(), "accuracy")
    assert data["total"] == 7
    assert {row_json(r)["training_reason"] for r in data["rows"]} == {TRAINING_NOT_STORED}
    assert "not stored" in leaderboard_page(engine, data, static=True)
    # New submissions get the column at once.
    storage.insert_submission(engine, prepare(body(document(seed=5))), None)
    assert sum(r["training_energy_j_per_pass"] is not None for r in _rows(engine)) == 1

    _migrate(engine, "0005", down=True)
    assert storage.current_revision(engine) == "0005"
    kept = _rows(engine)
    assert len(kept) == 14 and "training_energy_j_per_pass" not in kept[0]
    assert [{k: r[k] for k in before[0]} for r in kept[:7]] == before


def test_a_database_at_0005_upgrades_with_its_rows_kept(tmp_path: Path) -> None:
    engine = storage.make_engine(tmp_path / "lb.db")
    check_upgrade_from_0005_keeps_rows(engine)
    engine.dispose()
