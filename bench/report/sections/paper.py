"""The paper comparison: our accuracy and energy per run beside the numbers Zschache & Hartwig published for the same
model and data set (``_paper.html.j2``), and the paper's own runtime-energy fits, shown beside ours in the runtime
as a proxy section. The paper's tables are read from ``bench.reference`` when a section is built."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from bench.analysis import ModelRow
from bench.report.format import Column, Table, Td, catalog_dataset, fixed, num, ok_cells


def paper_table(dataset: str, rows: list[ModelRow], by_model: dict[str, list[Any]]) -> Table | None:
    """Our numbers beside the paper's for the same model and data set; energy as the paper printed it. None where
    the data set is not the paper's or no model of the run is."""
    from bench.reference import paper_value

    spec = catalog_dataset(dataset)
    paper_name = getattr(spec, "paper_name", None)
    paper_n = getattr(spec, "n_test", None)
    if not paper_name or not any(r.paper_accuracy is not None or r.paper_energy_wh is not None for r in rows):
        return None
    columns = [
        Column("model", numeric=False, title="the paper's row label"),
        Column("paper", group="accuracy"),
        Column("ours", group="accuracy"),
        Column("Δ", "points", group="accuracy", title="ours minus the paper's, in percentage points"),
        Column("paper", "Wh / run", group="energy per run", title="as printed (machine-level CodeCarbon, gross)"),
        Column("ours, kit", "Wh / run", group="energy per run"),
        Column("ours, CodeCarbon", "Wh / run", group="energy per run", title="the paper's method on this machine"),
        Column("kit / paper", "×", group="energy per run"),
    ]
    out, scaled, table_name = [], False, ""
    for r in rows:
        if not r.paper_label:  # models not in the paper (pipeline checks, new models) have no row
            continue
        value = paper_value(r.paper_label, paper_name)
        table_name = table_name or (value.table if value else "")
        cells = ok_cells(by_model.get(r.model, []))
        n_test = cells[0].n_test if cells else None
        # The paper's energy is per run over its test split: scale ours to that split size if it differs.
        factor = paper_n / n_test if paper_n and n_test and paper_n != n_test else 1.0
        scaled = scaled or factor != 1.0
        ours_wh = r.energy_j.mean * factor / 3600 if r.energy_j else None
        cc_wh = r.codecarbon_j * factor / 3600 if r.codecarbon_j is not None else None
        paper_e = r.paper_energy_wh
        if isinstance(paper_e, float):
            ratio_td = Td(num(ours_wh / paper_e, 2) if ours_wh is not None and paper_e else "—")
            paper_td = Td(f"{paper_e:g}")
        elif isinstance(paper_e, str):
            # "<0.01": below the paper's print resolution; say whether ours is, too, instead of a made-up ratio.
            below = _below(paper_e, ours_wh)
            paper_td = Td(paper_e, title="as printed in the paper")
            ratio_td = Td(
                "both below" if below else ("above" if below is False else "—"),
                title=f"ours compared with the paper's {paper_e}",
                cls="bad" if below is False else "",
            )
        else:
            paper_td, ratio_td = Td("—"), Td("—")
        delta = (r.accuracy.mean - r.paper_accuracy) * 100 if r.accuracy and r.paper_accuracy is not None else None
        out.append(
            [
                Td(r.paper_label, sub=r.model if r.model != r.paper_label else "", cls="name"),
                Td(fixed(r.paper_accuracy, 2)),
                Td(fixed(r.accuracy.mean if r.accuracy else None)),
                Td("—" if delta is None else f"{delta:+.1f}"),
                paper_td,
                Td(num(ours_wh)),
                Td(num(cc_wh)),
                ratio_td,
            ]
        )
    notes = [
        f"Paper: Table {table_name or '?'}, Capella cluster (NVIDIA H100 nodes); energy is machine-level CodeCarbon "
        "sampled every 15 s, which for runs of 0.01 s is mostly noise. Ours is per pass over the test split."
    ]
    if scaled:
        notes.append(f"Our energy is scaled to the paper's {paper_n} test texts per run.")
    return Table(columns, out, css_class="paper", notes=notes)


def _below(printed: str, value: float | None) -> bool | None:
    """Whether ``value`` is below a bound the paper printed as '<x'; None where either is missing."""
    match = re.fullmatch(r"\s*<\s*([0-9.]+)\s*", printed)
    if not match or value is None:
        return None
    return value < float(match.group(1))


def paper_regressions() -> Table | None:
    """The paper's energy ~ duration fits per cluster (its Table 3 / B6); None without the reference file."""
    from bench.reference import REFERENCE_DIR

    path = Path(REFERENCE_DIR) / "runtime_regression.csv"
    if not path.is_file():
        return None
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                slope_w = float(row["coef_duration"]) * 3600  # Wh per s -> W
            except (KeyError, ValueError):
                slope_w = None
            rows.append(
                [
                    Td(row.get("scope", ""), cls="name"),
                    Td(row.get("n", "")),
                    Td(row.get("coef_duration", "")),
                    Td(num(slope_w)),
                    Td(row.get("r2", "") or "—"),
                ]
            )
    columns = [
        Column("paper: cluster", numeric=False),
        Column("n"),
        Column("slope", "Wh / s"),
        Column("slope", "W"),
        Column("R²"),
    ]
    return Table(columns, rows, caption="The paper's fits (Table 3 / B6), energy in Wh per run", css_class="compact")
