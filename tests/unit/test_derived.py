"""Carbon and cost derived from measured energy (issue 16, part 3): the intensity from CodeCarbon's shipped table
(or the profile), the arithmetic, and how the report and compare page label them as derived."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from bench.config import MeasurementSpec
from bench.derived import codecarbon_intensity, codecarbon_mix_path, derive, grid_record, per_1000_texts, run_energy_j
from bench.report.compare import comparability
from bench.report.format import num
from bench.report.sections.datasets import results_table
from bench.report.sections.facts import carbon_facts
from bench.results import GridRecord
from tests.factories import cell, document


def test_intensity_comes_from_the_table_codecarbon_ships_with_its_version_and_year() -> None:
    path = codecarbon_mix_path()
    assert path is not None and path.name == "global_energy_mix.json"
    entry = json.loads(path.read_text())["DEU"]
    value, source = codecarbon_intensity("DEU")
    assert value == entry["carbon_intensity"]
    version = importlib.metadata.version("codecarbon")
    assert source.startswith(f"CodeCarbon {version} data/private_infra/global_energy_mix.json: Germany (DEU)")
    assert f"{entry['year']} energy mix" in source
    assert codecarbon_intensity("XXX") == (
        None,
        f"no carbon intensity for XXX in CodeCarbon {version} data/private_infra/global_energy_mix.json",
    )


def test_grid_record_from_profile_settings() -> None:
    default = grid_record(MeasurementSpec(min_window_s=2.0))
    assert default.country_iso_code == "DEU" and default.pue == 1.0 and default.price_per_kwh is None
    assert default.intensity_gco2e_per_kwh == codecarbon_intensity("DEU")[0]
    own = grid_record(MeasurementSpec(min_window_s=2.0, grid_intensity_gco2e_per_kwh=120.0, pue=1.4, price_per_kwh=0.3))
    assert (own.intensity_gco2e_per_kwh, own.pue, own.price_per_kwh, own.currency) == (120.0, 1.4, 0.3, "EUR")
    assert own.intensity_source == "the profile's measurement.grid_intensity_gco2e_per_kwh"


def test_grid_record_names_command_line_options_as_the_source() -> None:
    spec = MeasurementSpec(min_window_s=2.0, grid_intensity_gco2e_per_kwh=55.0, price_per_kwh=0.2, currency="USD")
    given = grid_record(
        spec, options={"grid_intensity_gco2e_per_kwh": "--grid-intensity", "price_per_kwh": "--price-per-kwh"}
    )
    assert given.intensity_gco2e_per_kwh == 55.0 and given.intensity_source == "user, --grid-intensity"
    assert (given.price_per_kwh, given.currency, given.price_source) == (0.2, "USD", "user, --price-per-kwh")
    both = grid_record(spec, options={"currency": "--currency"})
    assert both.intensity_source == "the profile's measurement.grid_intensity_gco2e_per_kwh"
    assert both.price_source == "user, --currency"
    assert grid_record(MeasurementSpec(min_window_s=2.0)).price_source is None  # no price, no source


def test_report_names_who_gave_the_price() -> None:
    grid = GridRecord(
        intensity_gco2e_per_kwh=100.0,
        intensity_source="user, --grid-intensity",
        price_per_kwh=0.25,
        currency="USD",
        price_source="user, --price-per-kwh, --currency",
    )
    doc = document([cell(0), cell(1)])
    doc.grid = grid
    facts = dict(carbon_facts(doc))
    assert "user, --grid-intensity" in facts["grid (for derived CO₂e)"]
    notes = [n for n in comparability([doc, document([cell(0)])], ["A", "B"]) if n.text.startswith("CO₂e per")]
    assert notes[0].items[0] == "A: 100.0 gCO2e/kWh, PUE 1.0 (user, --grid-intensity)"
    assert facts["run cost (derived)"].endswith("USD at 0.25/kWh (user, --price-per-kwh, --currency)")


def test_the_arithmetic_is_energy_times_pue_times_intensity_and_price() -> None:
    grid = GridRecord(intensity_gco2e_per_kwh=400.0, intensity_source="test", pue=1.5, price_per_kwh=0.3)
    derived = derive(3.6e6, grid)  # 1 kWh measured, 1.5 kWh at the wall
    assert derived is not None
    assert derived.kwh_at_the_wall == pytest.approx(1.5)
    assert derived.gco2e == pytest.approx(600.0) and derived.cost == pytest.approx(0.45)
    per_k = per_1000_texts(3.6, grid)  # 3.6 J per text: 3.6 kJ per 1,000 texts = 1e-3 kWh
    assert per_k is not None and per_k.gco2e == pytest.approx(0.6)
    assert derive(None, grid) is None and derive(1.0, None) is None
    no_intensity = GridRecord(intensity_source="none", price_per_kwh=None)
    assert derive(1.0, no_intensity) == derive(1.0, no_intensity) and derive(1.0, no_intensity).gco2e is None


def test_report_and_compare_label_the_derived_numbers_with_their_source() -> None:
    flagged = cell(1)
    flagged.validity = ["something"]
    doc = document([cell(0), flagged])
    doc.grid = GridRecord(intensity_gco2e_per_kwh=400.0, intensity_source="the test's grid", pue=1.2)
    energy, n = run_energy_j(doc)
    assert n == 1  # the flagged cell's energy does not count
    facts = dict(carbon_facts(doc))
    assert facts["grid (for derived CO₂e)"] == "400 gCO2e/kWh, PUE 1.2; the test's grid"
    expected = derive(energy, doc.grid)
    assert expected is not None and expected.gco2e == pytest.approx(energy / 3.6e6 * 1.2 * 400.0)  # type: ignore[operator]
    assert facts["run CO₂e (derived)"].startswith(f"{num(expected.gco2e)} g from {num(energy)} J gross")
    assert "run cost (derived)" not in facts
    from bench.analysis import model_rows

    table = results_table(model_rows(doc), {"linear-bow": doc.cells}, doc.grid)
    assert table.columns[-1].label == "CO₂e (derived)" and "the test's grid" in table.columns[-1].title
    assert results_table(model_rows(doc), {"linear-bow": doc.cells}).columns[-1].label != "CO₂e (derived)"
    older = document([cell(0)])
    notes = [n for n in comparability([doc, older], ["A", "B"]) if n.text.startswith("CO₂e per 1,000 texts")]
    assert len(notes) == 1 and notes[0].items[1].startswith("B: no grid recorded")
    assert carbon_facts(older) == []
