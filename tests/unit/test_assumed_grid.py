"""The report labels a grid intensity it assumed (issue 24, item 7): CodeCarbon's average for the profile's country,
used when the run gave none, is named as an assumption with its country; one given by the user is not."""

from __future__ import annotations

from bench.report.sections.facts import carbon_facts
from bench.results import GridRecord
from tests import factories

GERMANY = "CodeCarbon 3.3.2 data/private_infra/global_energy_mix.json: Germany (DEU), 2023 energy mix"


def test_the_report_says_which_grid_it_assumed() -> None:
    assumed = GridRecord(country_iso_code="DEU", intensity_gco2e_per_kwh=380.95, intensity_source=GERMANY)
    facts = dict(carbon_facts(factories.document(grid=assumed)))
    assert facts["grid (for derived CO₂e)"].startswith("assumed: the average grid of Germany (DEU), the profile's")
    assert facts["run CO₂e (derived)"].endswith("(assumed grid: Germany (DEU))")
    assert assumed.assumed_country() == "Germany (DEU)"
    given = GridRecord(country_iso_code="DEU", intensity_gco2e_per_kwh=30.0, intensity_source="user, --grid-intensity")
    facts = dict(carbon_facts(factories.document(grid=given)))
    assert "assumed" not in " ".join(facts.values()) and given.assumed_country() is None
    none = GridRecord(country_iso_code="XYZ", intensity_gco2e_per_kwh=None, intensity_source="no country given")
    assert none.assumed_country() is None
