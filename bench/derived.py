"""Carbon and cost derived from the measured energy: gCO2e and cost per 1,000 texts and per run (issue 16, part 3).

Every number here is derived, never measured: ``energy (J) / 3.6e6 (J per kWh) x PUE x grid intensity (gCO2e/kWh)``
and ``... x PUE x price per kWh``. What they rest on is fixed when a run starts and stored in the results
(``ResultDocument.grid``, ``bench.results.GridRecord``), so reports read nothing but the results:

- the grid's carbon intensity: the profile's ``measurement.grid_intensity_gco2e_per_kwh`` when set, else the table
  CodeCarbon ships (``codecarbon/data/private_infra/global_energy_mix.json``, ``carbon_intensity`` in gCO2e/kWh per
  country ISO code, from Our World in Data's energy mix of the year it names) for ``measurement.country_iso_code``;
  the source string names the file, CodeCarbon's version and the data's year;
- PUE: ``measurement.pue`` (1.0: the machine's own draw, as the paper reports it);
- the price: ``measurement.price_per_kwh`` in ``measurement.currency`` (None: no cost is derived).

``bench run --grid-intensity G`` (gCO2e/kWh), ``--price-per-kwh P`` and ``--currency XXX`` override the profile's
settings for one run: they are stored in the results' profile like any measurement setting, and the grid record names
them as the source (``user, --grid-intensity``). The table is read from the installed package's files without
importing CodeCarbon (``import bench`` stays light; codecarbon's import is slow).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import GridRecord

#: Joules per kilowatt-hour.
J_PER_KWH = 3.6e6
#: The file of CodeCarbon's package with each country's energy mix and carbon intensity.
CODECARBON_MIX = ("data", "private_infra", "global_energy_mix.json")


def codecarbon_mix_path() -> Path | None:
    """Where the installed CodeCarbon keeps its per-country energy mix (None where CodeCarbon is not installed)."""
    try:
        spec = importlib.util.find_spec("codecarbon")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder).joinpath(*CODECARBON_MIX)
        if path.is_file():
            return path
    return None


def codecarbon_intensity(country_iso_code: str, path: Path | None = None) -> tuple[float | None, str]:
    """The carbon intensity (gCO2e/kWh) of ``country_iso_code``'s grid in CodeCarbon's table, and its source (file,
    CodeCarbon version, the data's year); (None, why) where the table or the country is missing."""
    path = path or codecarbon_mix_path()
    if path is None:
        return None, "no carbon intensity: CodeCarbon is not installed and the profile sets none"
    try:
        version = importlib.metadata.version("codecarbon")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    where = f"CodeCarbon {version} data/private_infra/global_energy_mix.json"
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"no carbon intensity: {where} could not be read ({exc})"
    entry = table.get(country_iso_code) if isinstance(table, dict) else None
    value = entry.get("carbon_intensity") if isinstance(entry, dict) else None
    if not isinstance(value, int | float):
        return None, f"no carbon intensity for {country_iso_code} in {where}"
    year = entry.get("year", "?")
    name = entry.get("country_name", country_iso_code)
    return float(value), f"{where}: {name} ({country_iso_code}), {year} energy mix"


#: The ``bench run`` options that set a grid field, by MeasurementSpec field (the source the grid record names).
USER_OPTIONS = {
    "grid_intensity_gco2e_per_kwh": "--grid-intensity",
    "price_per_kwh": "--price-per-kwh",
    "currency": "--currency",
}


def grid_record(measurement: Any, options: dict[str, str] | None = None) -> GridRecord:
    """What a run's derived carbon and cost rest on, from a profile's ``measurement`` settings.

    ``options``: the settings given on the command line (MeasurementSpec field -> option, e.g.
    ``{"grid_intensity_gco2e_per_kwh": "--grid-intensity"}``); their source reads ``user, --grid-intensity``, the
    others' the profile's field or CodeCarbon's table."""
    options = options or {}
    country = getattr(measurement, "country_iso_code", None)
    fixed = getattr(measurement, "grid_intensity_gco2e_per_kwh", None)
    if fixed is not None:
        field_name = "grid_intensity_gco2e_per_kwh"
        source = f"user, {options[field_name]}" if field_name in options else f"the profile's measurement.{field_name}"
        intensity = float(fixed)
    else:
        intensity, source = codecarbon_intensity(country) if country else (None, "no country given")
    price = getattr(measurement, "price_per_kwh", None)
    price_source = None
    if price is not None:
        given = [options[f] for f in ("price_per_kwh", "currency") if f in options]
        price_source = f"user, {', '.join(given)}" if given else "the profile's measurement.price_per_kwh and currency"
    return GridRecord(
        country_iso_code=country,
        intensity_gco2e_per_kwh=intensity,
        intensity_source=source,
        pue=float(getattr(measurement, "pue", 1.0)),
        price_per_kwh=float(price) if price is not None else None,
        currency=getattr(measurement, "currency", None) if price is not None else None,
        price_source=price_source,
    )


@dataclass(frozen=True)
class Derived:
    """Carbon and cost of an amount of energy (None where the grid record lacks what they need)."""

    kwh_at_the_wall: float  # the energy x PUE
    gco2e: float | None
    cost: float | None


def derive(energy_j: float | None, grid: GridRecord | None) -> Derived | None:
    """gCO2e and cost of ``energy_j`` (J, as measured) on ``grid``: J / 3.6e6 x PUE x intensity (x price)."""
    if energy_j is None or grid is None:
        return None
    kwh = energy_j / J_PER_KWH * grid.pue
    gco2e = kwh * grid.intensity_gco2e_per_kwh if grid.intensity_gco2e_per_kwh is not None else None
    cost = kwh * grid.price_per_kwh if grid.price_per_kwh is not None else None
    return Derived(kwh, gco2e, cost)


def per_1000_texts(j_per_text: float | None, grid: GridRecord | None) -> Derived | None:
    """Carbon and cost of classifying 1,000 texts at ``j_per_text`` (gross J per text of one pass)."""
    return derive(j_per_text * 1000 if j_per_text is not None else None, grid)


def run_energy_j(doc: Any) -> tuple[float | None, int]:
    """The energy of one pass of every ok cell that passed its checks, summed (J, gross), and how many cells: the
    run's inference as the paper counts it (training, loading, repeated loops and idle phases not included)."""
    from bench.analysis import total_energy_j

    total, n = 0.0, 0
    for cell in getattr(doc, "cells", None) or []:
        if getattr(cell, "status", None) != "ok" or getattr(cell, "validity", None) or getattr(cell, "flags", None):
            continue
        energy = total_energy_j(getattr(cell, "energy", {}) or {})
        if energy is not None:
            total += energy
            n += 1
    return (total if n else None), n
