"""The results format: atomic write, hash, schema, migrations, and the bad files a user can produce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import results
from bench.errors import ResultsError
from bench.results import load_results, write_results
from bench.validation import check_document, validate_file
from tests.factories import cell, document


def test_roundtrip_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "run" / "results.json"
    digest = write_results(document(), path)
    assert digest.startswith("sha256:")
    loaded = load_results(path)
    assert loaded.content_hash == digest
    assert loaded.cells[0].energy["gpu"].reason == "no GPU"
    assert load_results(path.parent).run_id == "cpu-default-test"  # a run folder works too
    assert not list(path.parent.glob("*.tmp")), "no temp file left behind"


def test_truncated_file_is_named_with_position(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(document(), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ResultsError, match=r"not valid JSON at line \d+, column \d+.*truncated"):
        load_results(path)


def test_hand_edit_is_a_hash_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(document(), path)
    data = json.loads(path.read_text())
    data["cells"][0]["accuracy"] = 0.99
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="content hash mismatch"):
        load_results(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("  \n")
    with pytest.raises(ResultsError, match="empty"):
        load_results(tmp_path / "results.json")
    with pytest.raises(ResultsError, match="no such results file"):
        load_results(tmp_path / "nope.json")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    data = document().model_dump(mode="json")
    data["schema_version"] = 99
    data["content_hash"] = results.content_hash(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="newer than this kit"):
        load_results(path)


def test_old_schema_goes_through_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    data = document().model_dump(mode="json")
    data["schema_version"] = 0
    data.pop("kind")

    def v0_to_v1(old: dict) -> dict:
        return {**old, "schema_version": 1, "kind": "bench.results"}

    monkeypatch.setitem(results.MIGRATIONS, 0, v0_to_v1)
    data["content_hash"] = results.content_hash(data)
    assert results.parse_results(data).kind == "bench.results"


def test_a_v1_document_loads_as_v2(tmp_path: Path) -> None:
    """Files written before cells had gpus/nodes and documents had parts load unchanged, with their hash intact."""
    data = document().model_dump(mode="json")
    data["schema_version"] = 1
    for c in data["cells"]:
        del c["gpus"], c["nodes"]
    del data["parts"]
    data["content_hash"] = results.content_hash(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    doc = load_results(path)
    assert doc.schema_version == results.SCHEMA_VERSION == 6
    assert doc.parts == [] and all(c.gpus is None and c.nodes is None for c in doc.cells)


def test_a_v3_document_reads_as_v4_without_the_new_cell_fields(tmp_path: Path) -> None:
    data = document().model_dump(mode="json")
    data["schema_version"] = 3
    for c in data["cells"]:
        for key in ("truncated", "power_series", "serving", "training", "arithmetic"):
            c.pop(key, None)
    data["content_hash"] = results.content_hash(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    doc = load_results(path)
    assert doc.schema_version == 6
    assert all(c.truncated is None and c.power_series is None and c.serving is None for c in doc.cells)
    data["schema_version"] = 7
    data["content_hash"] = results.content_hash(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"schema_version 7 is newer than this kit understands \(6\)"):
        load_results(path)


def test_a_v5_document_reads_as_v6_without_arithmetic_and_a_v6_cell_keeps_it(tmp_path: Path) -> None:
    data = document().model_dump(mode="json")
    data["schema_version"] = 5
    for c in data["cells"]:
        c.pop("arithmetic", None)
    data["content_hash"] = results.content_hash(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    doc = load_results(path)
    assert doc.schema_version == 6 and all(c.arithmetic is None for c in doc.cells)
    doc.cells[0].arithmetic = results.Arithmetic(
        prompt_tokens=1000,
        cached_tokens=400,
        generated_tokens=10,
        computed_tokens=610,
        params=135_000_000,
        params_source="test",
        flop=2 * 135e6 * 610,
    )
    results.write_results(doc, path)
    again = load_results(path)
    assert again.cells[0].arithmetic == doc.cells[0].arithmetic
    assert again.cells[0].arithmetic.method == "derived:2*params*tokens"


def test_a_v4_document_splits_machine_conditions_from_validity_into_flags(tmp_path: Path) -> None:
    data = document().model_dump(mode="json")
    data["schema_version"] = 4
    del data["repairs"]
    shared = "other processes used 14.0% of the machine's CPU time (limit 10%; 1.00 CPU-s of 3.57 s x 2 CPUs)"
    implausible = "energy.cpu: measured exactly 0 J (meter not counting?)"
    for c in data["cells"]:
        del c["flags"]
    data["cells"][0]["validity"] = [shared, implausible]
    data["content_hash"] = results.content_hash(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    doc = load_results(path)
    assert doc.cells[0].flags == [shared]
    assert doc.cells[0].validity == [implausible]
    assert all(c.flags == [] for c in doc.cells[1:]) and doc.repairs == []


def test_schema_violation_names_the_field(tmp_path: Path) -> None:
    data = document().model_dump(mode="json")
    data["cells"][0]["accuracy"] = "high"
    data["content_hash"] = results.content_hash(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"cells\.0\.accuracy"):
        load_results(path)


def test_no_silent_zero_energy_without_reason() -> None:
    with pytest.raises(ValueError, match="without a reason"):
        results.EnergyValue(energy_j=None, method="unavailable")


def test_ok_cell_needs_every_component() -> None:
    with pytest.raises(ValueError, match=r"energy\.gpu"):
        cell(energy={})


def test_nan_is_refused_on_write(tmp_path: Path) -> None:
    doc = document()
    doc.cells[0].duration_s = float("nan")
    with pytest.raises(ResultsError, match="non-finite"):
        write_results(doc, tmp_path / "results.json")


def test_consistency_checks_catch_wrong_accuracy_and_short_window() -> None:
    doc = document(
        cells=[cell(0, accuracy=1.0), cell(1, window=results.Window(duration_s=0.5, loops=1, min_window_s=2.0))]
    )
    problems = [str(p) for p in check_document(doc)]
    assert any("accuracy 1.0 but predictions give 0.750000" in p for p in problems)
    assert any("shorter than the minimum" in p for p in problems)


def test_consistency_checks_pass_on_a_good_document(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(document(status="complete"), path)
    _, problems = validate_file(path)
    assert problems == []


def test_complete_with_missing_cells_is_flagged() -> None:
    problems = [str(p) for p in check_document(document(cells=[cell(0)], status="complete"))]
    assert any("status complete but 1 cells for a grid of 2" in p for p in problems)


def test_same_data_means_same_content_and_splits_wherever_the_file_lay() -> None:
    """Resume and merge both ask this: a part read from another path is comparable, other content or splits are not."""
    record = next(iter(document().datasets.values()))
    moved = record.model_copy(update={"pin": {**record.pin, "path": "/elsewhere/data.csv"}})
    assert record.same_data(moved)
    edited = record.model_copy(update={"pin": {**record.pin, "content_sha256": "f" * 64}})
    assert not record.same_data(edited)
    resplit = record.model_copy(update={"splits_sha256": "0" * 64})
    assert not record.same_data(resplit)
