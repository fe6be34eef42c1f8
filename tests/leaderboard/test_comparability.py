"""The leaderboard's comparability columns (issue 16): energy per text divided by the run's machine index, the derived
CO2e per 1,000 texts with its grid, and the notice when entries' calibration versions differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.calibration import UNIT_FLOP
from bench.leaderboard import storage
from bench.leaderboard.validate import prepare
from bench.leaderboard.views import comparability_notes, leaderboard_csv, leaderboard_data, leaderboard_page
from bench.results import Calibration, EnergyValue, GridRecord, ResultDocument
from tests.leaderboard.docs import body, gpu_document


def with_index(doc: ResultDocument, reference: str, j_per_unit: float, intensity: float | None) -> ResultDocument:
    doc.calibration = [
        Calibration(
            session=0,
            reference=reference,
            device="cpu",
            unit_flop=UNIT_FLOP,
            measured_at="2026-01-01T00:00:00+00:00",
            loops=10,
            duration_s=2.0,
            s_per_unit=0.2,
            j_per_unit=j_per_unit,
            energy={"cpu": EnergyValue(energy_j=j_per_unit, method="measured:rapl")},
        )
    ]
    if intensity is not None:
        doc.grid = GridRecord(intensity_gco2e_per_kwh=intensity, intensity_source="user, --grid-intensity", pue=1.5)
    return doc


def test_rows_carry_the_index_and_the_derived_co2e() -> None:
    rows = {r["model"]: r for r in prepare(body(with_index(gpu_document(), "gemm-f32-512-v1", 4.0, 400.0))).rows}
    row = rows["linear-bow"]
    assert row["calibration_reference"] == "gemm-f32-512-v1" and row["calibration_j_per_unit"] == 4.0
    assert row["j_per_text_per_index"] == pytest.approx(row["j_per_text"] / 4.0)
    # J per text x 1,000 / 3.6e6 J per kWh x PUE 1.5 x 400 gCO2e/kWh
    assert row["gco2e_per_1000_texts"] == pytest.approx(row["j_per_text"] * 1000 / 3.6e6 * 1.5 * 400.0)
    assert (row["grid_intensity_gco2e_per_kwh"], row["grid_source"]) == (400.0, "user, --grid-intensity")
    bare = prepare(body(gpu_document())).rows[0]  # no calibration, no grid: nothing is made up
    assert all(
        bare[k] is None
        for k in ("calibration_reference", "j_per_text_per_index", "gco2e_per_1000_texts", "grid_source")
    )


def test_notes_say_when_calibration_versions_differ() -> None:
    def row(reference: str | None, co2: float | None = None, intensity: float | None = None) -> dict[str, Any]:
        return {
            "calibration_reference": reference,
            "j_per_text_per_index": 1.0 if reference else None,
            "gco2e_per_1000_texts": co2,
            "grid_intensity_gco2e_per_kwh": intensity,
        }

    assert comparability_notes([row("gemm-f32-512-v1"), row("gemm-f32-512-v1")]) == []
    notes = comparability_notes([row("gemm-f32-512-v1"), row("gemm-f32-1024-v2"), row(None)])
    assert "Calibration versions differ between these entries (gemm-f32-1024-v2, gemm-f32-512-v1)" in notes[0]
    assert notes[1].startswith("1 of 3 entries have no energy / index")
    grids = comparability_notes([row(None, 1.0, 400.0), row(None, 2.0, 30.0)])
    assert len(grids) == 1 and "derived, not measured" in grids[0] and "compares grids as well" in grids[0]
    assert comparability_notes([]) == []


def test_page_and_csv_show_the_columns_and_the_notice(tmp_path: Path) -> None:
    engine = storage.make_engine(tmp_path / "lb.db")
    storage.upgrade(engine)
    storage.insert_submission(
        engine, prepare(body(with_index(gpu_document(seed=1), "gemm-f32-512-v1", 4.0, 400.0))), None
    )
    storage.insert_submission(
        engine, prepare(body(with_index(gpu_document(seed=2), "gemm-f32-999-v9", 8.0, 30.0))), None
    )
    data = leaderboard_data(engine, "tomatoes", storage.Filters(), "accuracy")
    assert {r["calibration_reference"] for r in data["rows"]} == {"gemm-f32-512-v1", "gemm-f32-999-v9"}
    page = leaderboard_page(engine, data, static=True)
    assert "energy / index" in page and "CO₂e (derived)" in page and "reference units per text" in page
    assert "Calibration versions differ between these entries" in page
    assert "derived at 400 gCO2e/kWh: user, --grid-intensity" in page
    header = leaderboard_csv(data["rows"]).splitlines()[0].split(",")
    start = header.index("calibration_reference")
    assert header[start : start + 7] == [
        "calibration_reference",
        "calibration_j_per_unit",
        "j_per_text_per_index",
        "gco2e_per_1000_texts",
        "grid_intensity_gco2e_per_kwh",
        "grid_source",
        "grid_assumed",
    ]
