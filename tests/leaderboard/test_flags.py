"""Flagged cells and repaired runs on the leaderboard (issue 22).

A valid run with flagged cells (conditions of the machine during a window) is accepted, locally by `bench submit` and
by the service; its flagged cells count per row and stay out of every mean and ranking. A repaired document of the
same run from the same submitter replaces the earlier submission instead of counting twice; another submitter's, or
another run of the same name, is stored beside it as before. Revision 0007 upgrades a database with its rows kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.leaderboard import storage
from bench.leaderboard.validate import prepare
from bench.results import OtherLoad, Repair, RepairedCell, ResultDocument, write_results
from bench.validation import Expectations, cell_flags
from tests import factories
from tests.leaderboard.conftest import Live
from tests.leaderboard.docs import body, valid_document
from tests.leaderboard.migrations import insert_stored
from tests.leaderboard.migrations import migrate as _migrate
from tests.leaderboard.migrations import table as _table
from tests.leaderboard.server import post

RUN = "flagged-run"
#: The flagged cell's energy (J per pass, cpu + ram): far from the sound cells' 1.5 J, so a mean that took it is seen.
FLAGGED_J = 100.5


def flagged_cell(rep: int) -> Any:
    """A plausible cell whose window other processes shared (25% of the machine's CPU time), flagged as the runner
    flags it."""
    others = OtherLoad(
        wall_s=2.0, logical_cpus=4, machine_busy_cpu_s=4.0, own_cpu_s=2.0, other_cpu_share=0.25, judged=True
    )
    cell = factories.cell(rep, energy=factories.energy(cpu_j=FLAGGED_J - 0.5, ram_j=0.5), others=others)
    cell.flags = cell_flags(cell, Expectations())
    assert cell.flags and cell.validity == []
    return cell


def flagged_run(run_id: str = RUN, **overrides: Any) -> ResultDocument:
    """Three repetitions, the first flagged."""
    cells = [flagged_cell(0), factories.cell(1), factories.cell(2)]
    return valid_document(run_id, cells=cells, repetitions=3, **overrides)


def repaired_run(run_id: str = RUN, **overrides: Any) -> ResultDocument:
    """The same run after `bench run --run-id X --redo-flagged`: the first cell redone in session 1 (quiet), a later
    ``updated_at``, the repair recorded."""
    repair = Repair(
        session=1,
        started_at="2026-01-02T00:00:00+00:00",
        finished_at="2026-01-02T00:01:00+00:00",
        cells=[
            RepairedCell(
                dataset="toy", model="linear-bow", repetition=0, before="flagged", reasons=flagged_cell(0).flags
            )
        ],
    )
    fields: dict[str, Any] = {"updated_at": "2026-01-02T00:01:00+00:00", "repairs": [repair]}
    fields.update(overrides)
    return valid_document(run_id, cells=[factories.cell(r) for r in range(3)], repetitions=3, **fields)


def _get(live: Live, path: str, **params: str) -> Any:
    answer = httpx.get(live.url + path, params=params, timeout=30)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return answer


def test_a_flagged_run_is_accepted_with_its_flagged_cells_out_of_the_means() -> None:
    prepared = prepare(body(flagged_run()))
    (row,) = prepared.rows
    assert (row["n_ok"], row["n_failed"], row["n_flagged"]) == (3, 0, 1)
    assert row["energy_j_per_pass"] == pytest.approx(1.5)  # the two sound cells; the flagged 100.5 J left out
    assert row["j_per_text"] == pytest.approx(1.5 / 4)
    assert row["accuracy"] == pytest.approx(0.75)  # predictions are the model's: every ok cell's count
    assert prepared.fields["n_flagged"] == 1 and prepared.fields["n_repairs"] == 0
    assert prepared.fields["run_created_at"] == "2026-01-01T00:00:00+00:00"


def test_a_flag_cleared_by_hand_is_still_refused() -> None:
    """Clearing the stored flags would let the disturbed window into the means: that edit is invalid."""
    from bench.leaderboard.validate import Invalid

    edited = flagged_run()
    edited.cells[0].flags = []
    with pytest.raises(Invalid) as refused:
        prepare(body(edited))
    assert any("not in the cell's stored flags" in r for r in refused.value.reasons), refused.value.reasons


def test_the_service_shows_flagged_cells_and_ranks_without_them(live: Live) -> None:
    sent = post(live.server, body(flagged_run()), live.token)
    assert sent.status_code == 201, sent.text
    answer = sent.json()
    assert answer["flagged_cells"] == 1 and answer["replaced"] == [] and answer["run_id"] == RUN
    board = _get(live, "/datasets/toy.json", sort="j_per_text").json()
    (row,) = board["rows"]
    assert row["n_flagged"] == 1 and row["j_per_text"] == pytest.approx(1.5 / 4)
    assert "n_flagged" in _get(live, "/datasets/toy.csv").text.splitlines()[0].split(",")
    assert "1 flagged" in _get(live, "/datasets/toy.html").text
    page = _get(live, f"/submissions/{answer['id']}.html").text
    assert "flagged cells" in page and "1 flagged" in page
    assert _get(live, f"/submissions/{answer['id']}.json").json()["n_flagged"] == 1
    assert "1 cell(s) flagged" in _get(live, "/").text


def test_a_repaired_run_replaces_its_earlier_submission(live: Live) -> None:
    first = post(live.server, body(flagged_run()), live.token).json()["id"]
    repaired = post(live.server, body(repaired_run()), live.token)
    assert repaired.status_code == 201, repaired.text
    second = repaired.json()["id"]
    assert repaired.json()["replaced"] == [first] and repaired.json()["flagged_cells"] == 0
    # Counted once: the lists, the counts and the rankings hold the repaired run only.
    assert storage.count_submissions(live.engine) == 1
    assert storage.count_submissions(live.engine, include_hidden=True) == 2
    assert [s["id"] for s in _get(live, "/submissions.json").json()["submissions"]] == [second]
    (entry,) = _get(live, "/datasets.json").json()["datasets"]
    assert entry["submissions"] == 1 and entry["rows"] == 1
    (row,) = _get(live, "/datasets/toy.json").json()["rows"]
    assert row["submission_id"] == second and row["n_flagged"] == 0 and row["n_ok"] == 3
    # The earlier one is kept and says what replaced it; the repaired one says what it replaced.
    old = _get(live, f"/submissions/{first}.json").json()
    assert old["replaced_by"] == second and old["replaces"] == []
    assert (
        f'Replaced by <a href="{second}.html">submission {second}</a>' in _get(live, f"/submissions/{first}.html").text
    )
    new = _get(live, f"/submissions/{second}.json").json()
    assert new["replaces"] == [first] and new["replaced_by"] is None and new["n_repairs"] == 1
    assert "1 redo session(s)" in _get(live, f"/submissions/{second}.html").text
    # Its report shows the repair (rendered by the leaderboard from the stored document).
    assert '<section id="repairs">' in _get(live, f"/submissions/{second}/report.html").text
    # Showing the replaced one again (the admin's unhide) does not bring its rows back into the rankings.
    storage.set_hidden(live.engine, first, True, "test")
    storage.set_hidden(live.engine, first, False)
    assert _get(live, "/datasets/toy.json").json()["total"] == 1
    # The earlier document sent again: refused (a newer one of the run is stored), nothing stored.
    again = post(live.server, body(flagged_run()), live.token)
    assert again.status_code == 200 and again.json()["id"] == first  # the same content hash: the stored id
    older = post(live.server, body(flagged_run(updated_at="2026-01-01T12:00:00+00:00")), live.token)
    assert older.status_code == 409, older.text
    assert f"submission {second} holds a newer document of run {RUN!r}" in older.json()["reasons"][0]
    assert storage.count_submissions(live.engine, include_hidden=True) == 2


def test_another_submitter_or_another_run_of_the_same_name_is_stored_beside_it(live: Live) -> None:
    other = storage.create_token(live.engine, "bob")
    first = post(live.server, body(flagged_run()), live.token).json()["id"]
    by_bob = post(live.server, body(repaired_run()), other)
    assert by_bob.status_code == 201 and by_bob.json()["replaced"] == []
    renamed = post(live.server, body(repaired_run(created_at="2026-01-01T06:00:00+00:00")), live.token)
    assert renamed.status_code == 201 and renamed.json()["replaced"] == []  # another run that has the same id
    assert storage.count_submissions(live.engine) == 3
    assert storage.get_submission(live.engine, first)["replaced_by"] is None  # type: ignore[index]


def test_bench_submit_sends_a_flagged_run_and_says_what_it_replaced(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main

    folder = tmp_path / "reports" / RUN
    write_results(flagged_run(), folder / "results.json")
    assert main(["submit", str(folder), "--to", live.url, "--token", live.token]) == 0
    out = capsys.readouterr().out
    first = int(out.split("stored: submission ")[1].split()[0])
    assert (
        "1 cell(s) flagged" in out and f"bench run --reports-dir {folder.parent} --run-id {RUN} --redo-flagged" in out
    )
    write_results(repaired_run(), folder / "results.json")
    (folder / "report.html").unlink(missing_ok=True)
    assert main(["submit", str(folder), "--to", live.url, "--token", live.token]) == 0
    out = capsys.readouterr().out
    assert f"replaces submission(s) {first}" in out and "flagged" not in out


# --- revision 0007 ----------------------------------------------------------------------------------------------------


def check_upgrade_from_0006_keeps_rows(engine: sa.engine.Engine) -> None:
    """A database at 0006 with two submissions: upgrading keeps every row and value, counts no flagged cell and no
    repair (0006 refused flagged runs), and fills each submission's run times from its stored document; a repaired
    run then replaces its earlier submission stored before the upgrade; downgrading to 0006 keeps every row, and
    the replaced one counts again as it did before 0007. Shared by SQLite (here) and PostgreSQL (test_postgres)."""
    _migrate(engine, "0006", down=storage.current_revision(engine) is not None)
    assert storage.current_revision(engine) == "0006"
    tables = {name: sa.Table(name, sa.MetaData(), autoload_with=engine) for name in ("submissions", "results")}
    assert "n_flagged" not in tables["results"].c and "replaced_by" not in tables["submissions"].c
    token = storage.create_token(engine, "before-0007")
    owner = storage.token_id(engine, token)
    for number, doc in enumerate((valid_document(RUN), valid_document("another-run"))):
        prepared = prepare(body(doc))
        values = dict(prepared.fields, submitted_at=f"2026-12-0{number + 1}T00:00:00+00:00", token_id=owner)
        values["document_bytes"] = len(values["document"].encode())
        insert_stored(engine, tables, values, prepared.rows)
    before = {name: _table(engine, name) for name in ("submissions", "results")}
    assert len(before["submissions"]) == 2 and len(before["results"]) == 2

    storage.upgrade(engine)
    assert storage.current_revision(engine) == storage.head_revision()  # 0007, and what came after it
    after = {name: _table(engine, name) for name in ("submissions", "results")}
    for name in after:
        assert [{k: r[k] for k in before[name][0]} for r in after[name]] == before[name], name
    assert all(r["n_flagged"] == 0 for r in after["results"])
    assert [(s["n_flagged"], s["n_repairs"], s["replaced_by"]) for s in after["submissions"]] == [(0, 0, None)] * 2
    assert [s["run_created_at"] for s in after["submissions"]] == ["2026-01-01T00:00:00+00:00"] * 2
    assert [s["run_updated_at"] for s in after["submissions"]] == ["2026-01-01T00:00:00+00:00"] * 2
    # A repair of the run stored before the upgrade replaces it.
    stored = storage.store_submission(engine, prepare(body(repaired_run(RUN))), owner)
    assert stored.created and stored.replaced == (before["submissions"][0]["id"],)
    assert storage.count_submissions(engine) == 2 and storage.count_submissions(engine, include_hidden=True) == 3

    _migrate(engine, "0006", down=True)
    assert storage.current_revision(engine) == "0006"
    kept = {name: _table(engine, name) for name in ("submissions", "results")}
    assert len(kept["submissions"]) == 3 and len(kept["results"]) == 3
    assert "replaced_by" not in kept["submissions"][0] and "n_flagged" not in kept["results"][0]
    assert [{k: r[k] for k in before["results"][0]} for r in kept["results"][:2]] == before["results"]
    assert not any(r["hidden"] for r in kept["results"])  # before 0007 every submission counted


def test_a_database_at_0006_upgrades_with_its_rows_kept(tmp_path: Path) -> None:
    engine = storage.make_engine(tmp_path / "lb.db")
    check_upgrade_from_0006_keeps_rows(engine)
    engine.dispose()


def test_the_upgrade_reads_run_times_defensively() -> None:
    from importlib import import_module

    revision = import_module("bench.leaderboard.migrations.versions.0007_flags_and_repairs")
    assert revision._timestamps(json.dumps({"created_at": "a", "updated_at": "b"})) == ("a", "b")
    assert revision._timestamps(json.dumps({"created_at": "x" * 41, "updated_at": 3})) == (None, None)
    assert revision._timestamps("not json") == (None, None)
