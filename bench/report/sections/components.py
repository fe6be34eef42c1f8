"""Energy by component, per data set: gross and net energy of each component with its method badge, the kit's total
beside CodeCarbon's (the paper's method), the sentence that compares the two (``_components.html.j2``), and the chart
of each component's share (drawn among the data set's plots)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from bench.analysis import ModelRow, component_summaries, sound_cells
from bench.report import svg
from bench.report.format import (
    COMPONENTS,
    Badge,
    Column,
    Table,
    Td,
    badge,
    component_methods,
    net_td,
    num,
    ok_cells,
    pct,
)


def energy_table(rows: list[ModelRow], by_model: dict[str, list[Any]]) -> Table:
    """Gross and net per component with method badges, the kit's total, CodeCarbon's total and their ratio.
    Components unavailable in every row get no columns, only a note (a column of dashes says nothing)."""
    all_cells = ok_cells(c for r in rows for c in by_model.get(r.model, []))
    shown, notes = [], []
    for comp in COMPONENTS:
        methods, reason = component_methods(all_cells, comp)
        if methods and methods != {"unavailable"}:
            shown.append((comp, methods))
        elif methods:
            notes.append(f"{comp}: not measured — {reason or 'no meter'}")
    columns = [Column("model", numeric=False)]
    group_badges: dict[str, Badge] = {}
    for comp, methods in shown:
        if len(methods) == 1:  # one method for the whole column: say it once, in the header
            group_badges[comp] = badge(next(iter(methods)))
        columns.append(Column("gross", "J", group=comp))
        columns.append(Column("net", "J", group=comp, title="gross minus idle power × duration"))
    columns += [
        Column("gross", "J", group="total (kit meters)"),
        Column("net", "J", group="total (kit meters)"),
        Column("CodeCarbon", "J", group="the paper's method", title="CodeCarbon in machine scope, as the paper ran it"),
        Column("CC / kit", "×", group="the paper's method", title="CodeCarbon's number divided by the kit's"),
    ]
    out = []
    for r in rows:
        cells = sound_cells(by_model.get(r.model, []))  # as ModelRow's energy: flagged cells' joules left out
        line = [Td(r.model, cls="name")]
        for comp, methods in shown:
            gross, net = component_summaries(cells, comp)
            comp_methods, reason = component_methods(cells, comp)
            cell_badge = badge(next(iter(comp_methods)), reason) if len(methods) > 1 and comp_methods else None
            line.append(
                Td(num(gross.mean if gross else None), badge=cell_badge, title=reason or "" if not gross else "")
            )
            line.append(net_td(net.mean if net else None, gross.mean if gross else None))
        kit = r.energy_j.mean if r.energy_j else None
        ratio = r.codecarbon_j / kit if r.codecarbon_j is not None and kit else None
        line += [
            Td(num(kit)),
            net_td(r.net_energy_j.mean if r.net_energy_j else None, kit),
            Td(num(r.codecarbon_j)),
            Td(num(ratio, 2) if ratio is not None else "—"),
        ]
        out.append(line)
    return Table(columns, out, css_class="energy", notes=notes, group_badges=group_badges)


def codecarbon_line(rows: list[ModelRow], cells: list[Any]) -> str:
    """The sentence comparing CodeCarbon's totals with the kit's over one data set's ``cells``; '' without
    CodeCarbon numbers."""
    cc = [(r.model, r.codecarbon_j, r.energy_j.mean) for r in rows if r.codecarbon_j is not None and r.energy_j]
    if not cc:
        return ""
    ratios = [a / b for _, a, b in cc if b]
    if not ratios:
        return ""
    lo, hi = num(min(ratios), 2), num(max(ratios), 2)
    span = f"{lo}×" if lo == hi else f"{lo}× to {hi}×"
    kit_methods = {v.method for c in ok_cells(cells) for v in c.energy.values()}
    how = "counters and samplers" if not any(m.startswith("estimated") for m in kit_methods) else "meters"
    return (
        f"The paper's method (CodeCarbon, machine scope) says {span} what the kit's {how} say for the "
        "same windows; both numbers are in the table."
    )


def components_plot(rows: list[ModelRow], title: str) -> Markup:
    """Each model's gross energy per pass split by component (estimated parts hatched), its total at the right."""
    parts: dict[str, list[float | None]] = {c: [] for c in COMPONENTS}
    hatched: dict[str, list[bool]] = {c: [] for c in COMPONENTS}
    tips: dict[str, list[str]] = {c: [] for c in COMPONENTS}
    for r in rows:
        for comp in COMPONENTS:
            value = r.component_j.get(comp)
            method = r.component_methods.get(comp, "")
            parts[comp].append(value)
            hatched[comp].append(method.startswith("estimated"))
            share = value / r.energy_j.mean if value is not None and r.energy_j and r.energy_j.mean else None
            tips[comp].append(f"{comp}: {num(value)} J per pass ({pct(share, 0)}), {method}")
    parts = {k: v for k, v in parts.items() if any(x for x in v)}
    return svg.share_bars(
        [r.model for r in rows],
        parts,
        title=title,
        totals_text=[f"{num(r.energy_j.mean if r.energy_j else None)} J" for r in rows],
        hatched={k: hatched[k] for k in parts},
        tips={k: tips[k] for k in parts},
    )
