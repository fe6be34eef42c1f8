"""Per-data-set sections of the report (``_datasets.html.j2``): the data set's facts, the table of accuracy, duration
and energy per model, and the accuracy-energy plot; each section also holds the energy by component
(``sections.components``) and the paper comparison (``sections.paper``) of its data set. The hover text of an
accuracy-energy point is shared with the comparison page and the leaderboard (``accuracy_energy_tip``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from bench.analysis import ModelRow, pareto_front, total_energy_j
from bench.derived import per_1000_texts
from bench.report import svg
from bench.report.format import Column, Table, Td, dataset_names, fixed, get, num, ok_cells, pct, short_hash
from bench.report.sections.components import codecarbon_line, components_plot, energy_table
from bench.report.sections.paper import paper_table


@dataclass
class DatasetView:
    """One data set's section of the report."""

    name: str
    facts: list[tuple[str, str]]
    results: Table
    energy: Table
    paper: Table | None
    codecarbon_line: str
    plots: list[tuple[str, Markup, str]]  # (heading, svg, caption)
    #: where LLM rows show their reference ratios: what the references are and what the ratio is not
    limit_note: str = ""


def dataset_views(doc: Any, all_rows: list[ModelRow]) -> list[DatasetView]:
    """One section per data set that has a completed or failed cell, in suite order."""
    by_dataset: dict[str, list[Any]] = defaultdict(list)
    for c in get(doc, "cells") or []:
        by_dataset[c.dataset].append(c)
    views = []
    for name in dataset_names(doc):
        rows = [r for r in all_rows if r.dataset == name and (r.n_ok or r.n_failed)]
        if not rows:
            continue
        by_model = _by_model(by_dataset[name])
        plots = [
            (
                "Accuracy against energy per text",
                accuracy_energy_plot(rows, f"{name}: accuracy against energy per text"),
                "Log scale. Filled markers joined by the staircase: the Pareto front (no other model is both cheaper "
                "and more accurate).",
            ),
            (
                "Energy split by component",
                components_plot(rows, f"{name}: energy by component"),
                "Share of gross energy per pass by component; pale bars are estimated. Total per pass at the right.",
            ),
        ]
        views.append(
            DatasetView(
                name=name,
                facts=dataset_facts(doc, name),
                results=results_table(rows, by_model, get(doc, "grid"), references=limit_references(doc)),
                energy=energy_table(rows, by_model),
                paper=paper_table(name, rows, by_model),
                codecarbon_line=codecarbon_line(rows, by_dataset[name]),
                plots=plots,
                limit_note=limit_note(doc, rows),
            )
        )
    return views


def limit_references(doc: Any) -> dict[str, str]:
    """The J-per-FLOP references of a run (``bench.arithmetic``), by key (``calibration``, ``datasheet``): a label
    with the value, for column titles and the note (a reference that applies to none of the run's GPUs: its label,
    which says why); empty where the run has none."""
    from bench.arithmetic import calibration_j_per_flop, datasheet_reference

    out = {}
    for key, ref in (("calibration", calibration_j_per_flop(doc)), ("datasheet", datasheet_reference(doc))):
        if ref is not None:
            out[key] = ref.label if ref.j_per_flop is None else f"{ref.label}: {ref.j_per_flop:.3g} J per FLOP"
    return out


def limit_note(doc: Any, rows: list[ModelRow]) -> str:
    """A sentence under a table whose LLM rows show reference ratios: the references and what the ratio is (derived,
    not a bound); "" where no row has one."""
    from bench.arithmetic import METHOD, RATIO_NOTE

    if not any(r.flop_per_text is not None for r in rows):
        return ""
    refs = limit_references(doc)
    listed = "; ".join(refs.values()) if refs else "none recorded (no calibration job, no datasheet in the profile)"
    return (
        f"LLM rows: the model's arithmetic per text (2 x parameters x computed tokens, {METHOD}; active parameters for "
        f"mixture-of-experts models) and gross energy per text as x times the energy that arithmetic costs at a "
        f"reference's J per FLOP ({listed}). {RATIO_NOTE[0].upper()}{RATIO_NOTE[1:]}."
    )


def _by_model(cells: Iterable[Any]) -> dict[str, list[Any]]:
    """Cells grouped by model (once per data set, instead of scanning all cells for every row)."""
    by_model: dict[str, list[Any]] = defaultdict(list)
    for c in cells:
        by_model[c.model].append(c)
    return by_model


def results_table(
    rows: list[ModelRow], by_model: dict[str, list[Any]], grid: Any = None, references: dict[str, str] | None = None
) -> Table:
    """Accuracy (with its 95% CI), macro-F1, invalid answers, duration, loops and energy per model; with the run's
    ``grid`` record (``bench.results.GridRecord``), the derived gCO2e and cost per 1,000 texts (``bench.derived``);
    where LLM rows recorded their arithmetic (``ModelRow.flop_per_text``), GFLOP per text and the reference ratios
    (``limit_columns``; ``references``: ``limit_references``' labels for the column titles)."""
    columns = [
        Column("model", numeric=False),
        Column("runs", title="repetitions that completed (failed ones in parentheses)"),
        Column("accuracy", title="mean over repetitions; below it the 95% confidence interval (Student's t)"),
        Column("macro-F1"),
        Column("invalid", "%", title="answers that could not be mapped to a label (count as wrong)"),
        Column("duration", "s / pass", title="one pass over the test split, mean over repetitions"),
        Column("loops", title="passes per metered window (mean); >1 where one pass was shorter than the minimum"),
        Column("energy gross", "J / pass", title="all measured or estimated components, per pass"),
        Column("energy net", "J / pass", title="gross minus idle power × duration"),
        Column("energy", "Wh / 1,000 texts", title="gross"),
        Column("energy", "J / correct", title="gross energy per correctly classified text"),
        Column("energy", "mJ / token", title="LLMs: gross energy per generated token (input tokens beside it)"),
    ]
    carbon = grid is not None and get(grid, "intensity_gco2e_per_kwh") is not None
    cost = grid is not None and get(grid, "price_per_kwh") is not None
    derived_from = (
        f"derived: gross energy x PUE {get(grid, 'pue', 1.0):g} x {get(grid, 'intensity_gco2e_per_kwh')} gCO2e/kWh "
        f"({get(grid, 'intensity_source')})"
        if carbon
        else ""
    )
    if carbon:
        columns.append(Column("CO₂e (derived)", "g / 1,000 texts", title=derived_from))
    if cost:
        price_from = get(grid, "price_source") or "the profile's price"
        columns.append(
            Column(
                "cost (derived)",
                f"{get(grid, 'currency') or ''} / 1,000 texts".strip(),
                title=f"derived: gross energy x PUE {get(grid, 'pue', 1.0):g} x {get(grid, 'price_per_kwh'):g} "
                f"{get(grid, 'currency') or ''} per kWh ({price_from})",
            )
        )
    out = []
    for r in rows:
        cells = ok_cells(by_model.get(r.model, []))
        loops = [c.window.loops for c in cells if get(c, "window") is not None]
        capped = any(get(c.window, "max_loops_reached", False) for c in cells if get(c, "window") is not None)
        invalid = [c.invalid_rate for c in cells if get(c, "invalid_rate") is not None]
        acc = r.accuracy
        out.append(
            [
                Td(r.model, title=r.paper_label or "", cls="name"),
                _runs_td(r),
                Td(
                    fixed(acc.mean if acc else None),
                    sub=f"{fixed(acc.ci95_low)}–{fixed(acc.ci95_high)}" if acc and acc.n > 1 else "",
                    title=f"n={acc.n}, sd={acc.std:.4f}" if acc else "",
                ),
                Td(fixed(r.macro_f1.mean if r.macro_f1 else None)),
                Td(
                    pct(sum(invalid) / len(invalid) if invalid else None),
                    # a few unparsable LLM answers are normal; flag where they move accuracy noticeably
                    cls="bad" if invalid and max(invalid) > 0.05 else "",
                ),
                Td(
                    num(r.duration_s.mean if r.duration_s else None),
                    title=f"cv {pct(r.duration_s.cv)}" if r.duration_s and r.duration_s.cv is not None else "",
                ),
                Td(
                    num(sum(loops) / len(loops), 3) if loops else "—",
                    cls="bad" if capped else "",
                    title="the loop cap was reached before the minimum window" if capped else "",
                ),
                Td(
                    num(r.energy_j.mean if r.energy_j else None),
                    sub=f"±{num(r.energy_j.ci95_high - r.energy_j.mean, 2)}" if r.energy_j and r.energy_j.n > 1 else "",
                    title=f"cv {pct(r.energy_j.cv)}" if r.energy_j and r.energy_j.cv is not None else "",
                ),
                Td(num(r.net_energy_j.mean if r.net_energy_j else None)),
                Td(num(r.wh_per_1000_texts)),
                Td(num(r.j_per_correct)),
                _per_token_cell(cells),
            ]
        )
        if carbon or cost:
            derived = per_1000_texts(r.j_per_text, grid)
            if carbon:
                out[-1].append(Td(num(derived.gco2e if derived else None), title=derived_from))
            if cost:
                out[-1].append(Td(num(derived.cost if derived else None)))
    limit, limit_cells = limit_columns(rows, references or {})
    columns += limit
    for line, extra in zip(out, limit_cells, strict=True):
        line += extra
    return Table(columns, out, css_class="results")


def limit_columns(rows: list[ModelRow], references: dict[str, str]) -> tuple[list[Column], list[list[Td]]]:
    """The columns of how far each LLM row is from the limit, and each row's cells ('—' for other models): GFLOP per
    text (derived: 2 x parameters x computed tokens), and gross energy as x times the calibration's and the
    datasheet's J per FLOP for the same arithmetic. No columns where no row recorded its arithmetic; the datasheet
    column only where some row has it (GPU profiles that cite one)."""
    from bench.arithmetic import METHOD, RATIO_NOTE

    if not any(r.flop_per_text is not None for r in rows):
        return [], [[] for _ in rows]
    columns = [Column("arithmetic (derived)", "GFLOP / text", title=f"{METHOD}: 2 x parameters x computed tokens")]
    keys = ["x_calibration"] + (["x_datasheet"] if any(r.x_datasheet is not None for r in rows) else [])
    names = {"x_calibration": "calibration", "x_datasheet": "datasheet peak"}
    for key in keys:
        reference = references.get(names[key].split()[0], "not recorded")
        columns.append(
            Column(
                f"energy / {names[key]} J per FLOP",
                "× (derived)",
                title=f"{reference}. {RATIO_NOTE}",
            )
        )
    cells = []
    for r in rows:
        line = [Td(num(r.flop_per_text / 1e9 if r.flop_per_text is not None else None))]
        line += [Td(num(getattr(r, key), 3)) for key in keys]
        cells.append(line)
    return columns, cells


def _per_token_cell(cells: list[Any]) -> Td:
    """Gross energy per generated token over the LLM cells that counted tokens ('—' for traditional models)."""
    pairs = []
    for c in cells:
        tokens = get(c, "tokens")
        if tokens and tokens.get("output_tokens"):
            pairs.append((total_energy_j(c.energy) or 0.0, tokens["output_tokens"], tokens.get("input_tokens", 0)))
    if not pairs:
        return Td("—")
    energy, out_tokens, in_tokens = (sum(x) for x in zip(*pairs, strict=True))
    return Td(
        num(1000 * energy / out_tokens), sub=f"{in_tokens / len(pairs):,.0f} in / {out_tokens / len(pairs):,.0f} out"
    )


def dataset_facts(doc: Any, name: str) -> list[tuple[str, str]]:
    """Where the data set came from (source, version, content hash), its labels, split sizes and repetitions."""
    record = (get(doc, "datasets") or {}).get(name)
    if record is None:
        return [("data set", name)]
    pin = dict(get(record, "pin") or {})
    source = pin.get("hub_id") or pin.get("package") or pin.get("source") or "—"
    version = pin.get("revision") or pin.get("package_version") or ""
    return [
        ("source", f"{source} {version}".strip()),
        ("content", short_hash(pin.get("content_sha256") or pin.get("file_sha256"))),
        ("language", str(get(record, "language", "—"))),
        ("labels", ", ".join(get(record, "label_names", [])) or "—"),
        ("split", f"{get(record, 'n_train', '—')} train / {get(record, 'n_test', '—')} test texts"),
        ("repetitions", str(len(get(record, "splits", []) or []))),
        ("splits sha256", short_hash(get(record, "splits_sha256"))),
    ]


def accuracy_energy_tip(who: str, accuracy: float, j_per_text: float) -> str:
    """The hover text of one point of an accuracy-energy scatter: ``who``, then its accuracy and energy per text."""
    return f"{who}: accuracy {accuracy:.3f}, {num(j_per_text)} J per text"


def accuracy_energy_plot(rows: list[ModelRow], title: str) -> Markup:
    """Accuracy against gross energy per text, log x, Pareto front filled and joined."""
    usable = [r for r in rows if r.j_per_text and r.accuracy]
    front = set(pareto_front([(r.j_per_text, r.accuracy.mean) for r in usable]))  # type: ignore[misc]
    points = [
        svg.Point(
            r.j_per_text,  # type: ignore[arg-type]
            r.accuracy.mean,  # type: ignore[union-attr]
            label=r.model,
            tip=accuracy_energy_tip(r.model, r.accuracy.mean, r.j_per_text)  # type: ignore[union-attr, arg-type]
            + (" (Pareto front)" if i in front else ""),
            highlight=i in front,
        )
        for i, r in enumerate(usable)
    ]
    series = [svg.Series("models (filled: on the Pareto front)", points, color=svg.PALETTE[0], front=True)]
    return svg.energy_accuracy_scatter(series, title=title)


def _runs_td(row: Any) -> Td:
    """A row's ok cells (failed ones in parentheses), with how many were left out of the duration and energy means:
    invalid (an implausible reading) and flagged (a condition of the machine during the window) said apart."""
    sub, titles = [], []
    if row.n_invalid:
        sub.append(f"{row.n_invalid} invalid")
        titles.append(
            f"{row.n_invalid} cell(s) failed a plausibility check: their accuracy counts, their duration and energy "
            "are left out of the means"
        )
    if row.n_flagged:
        sub.append(f"{row.n_flagged} flagged")
        titles.append(
            f"{row.n_flagged} cell(s) flagged (other processes, throttling or a temperature out of range during the "
            "window): their accuracy counts, their duration and energy are left out of the means until redone"
        )
    return Td(
        str(row.n_ok) + (f" ({row.n_failed})" if row.n_failed else ""),
        sub=", ".join(sub),
        title="; ".join(titles),
        cls="bad" if row.n_failed or sub else "",
    )
