"""Runtime as a proxy for energy: the least-squares fit of energy ~ duration (× devices) over a run's sound cells, its
plot, coefficients and one-sentence statement, beside the paper's fits (``_proxy.html.j2``). The comparison page
fits each run with the same points and fitted line (``regression_points``, ``fit_line``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from bench.analysis import Regression, energy_duration_regression, sound_cells
from bench.report import svg
from bench.report.format import Column, Table, Td, device_count, get, num, total_energy
from bench.report.sections.paper import paper_regressions


@dataclass
class RegressionView:
    """The runtime-as-proxy section: the fit over every ok cell of the run (one machine, one profile)."""

    plot: Markup
    fit: Regression
    table: Table
    paper: Table | None
    estimated_only: bool
    statement: str


def fit_line(fit: Regression, xs: Sequence[float], log: bool, devices: float = 1.0) -> list[tuple[float, float]]:
    """Points of the fitted line over the x range (sampled, so it curves correctly on log axes)."""
    positive = [x for x in xs if x > 0]
    if not positive or not fit.coefficients:
        return []
    lo, hi = min(positive), max(positive)
    if hi == lo:
        return []
    steps = 48
    grid = (
        [lo * (hi / lo) ** (i / steps) for i in range(steps + 1)]
        if log
        else [lo + (hi - lo) * i / steps for i in range(steps + 1)]
    )
    return [(x, fit.predict({"duration_s": x, "devices": devices, "duration_x_devices": x * devices})) for x in grid]


def regression_points(doc: Any) -> tuple[list[float], list[float], list[float], list[Any]]:
    """Per ok cell with a total: duration per pass (s), gross energy per pass (J), devices, and the cell."""
    durations, energies, devices, cells = [], [], [], []
    for c in sound_cells(get(doc, "cells") or []):
        total = total_energy(c.energy)
        if total is None or c.duration_s is None:
            continue
        durations.append(float(c.duration_s))
        energies.append(total)
        devices.append(device_count(doc, c.model))
        cells.append(c)
    return durations, energies, devices, cells


def regression_view(doc: Any) -> RegressionView | None:
    """Fit energy ~ duration (x devices) over the run's ok cells; None with fewer than 3 points (no real fit)."""
    durations, energies, devices, cells = regression_points(doc)
    if len(durations) < 3:
        return None
    fit = energy_duration_regression(durations, energies, devices)
    log = max(durations) / max(min(durations), 1e-12) > 100
    by_dataset: dict[str, list[svg.Point]] = defaultdict(list)
    for d, e, c in zip(durations, energies, cells, strict=True):
        by_dataset[c.dataset].append(
            svg.Point(d, e, tip=f"{c.model} on {c.dataset}, repetition {c.repetition}: {num(d)} s, {num(e)} J")
        )
    series = [
        svg.Series(name, pts, color=svg.PALETTE[i % len(svg.PALETTE)], marker=svg.MARKERS[i % len(svg.MARKERS)])
        for i, (name, pts) in enumerate(by_dataset.items())
    ]
    dev = devices[0] if len(set(devices)) == 1 else 1.0
    fit_name = f"fit, R² = {num(fit.r2, 3)}" + ("" if len(set(devices)) == 1 else ", drawn for 1 device")
    series.append(svg.Series(fit_name, [], color="#555", line=fit_line(fit, durations, log, dev)))
    plot = svg.scatter(
        series,
        title="Energy against duration per pass, with the least-squares fit",
        x_label="duration per pass, s" + (" (log scale)" if log else ""),
        y_label="energy per pass, J (gross" + (", log scale)" if log else ")"),
        x_log=log,
        y_log=log,
        label_points=False,
    )
    names = {
        "const": ("intercept", "J"),
        "duration_s": ("duration", "J / s = W"),
        "devices": ("devices", "J / device"),
        "duration_x_devices": ("duration × devices", "W / device"),
    }
    coef_rows = [
        [Td(names[k][0], cls="name"), Td(names[k][1], cls="unit"), Td(num(v, 4))] for k, v in fit.coefficients.items()
    ]
    coef_rows.append([Td("R² (adjusted)", cls="name"), Td(""), Td(f"{num(fit.r2, 4)} ({num(fit.adj_r2, 4)})")])
    coef_rows.append([Td("cells", cls="name"), Td(""), Td(str(fit.n))])
    table = Table(
        [Column("term", numeric=False), Column("unit", numeric=False), Column("coefficient")],
        coef_rows,
        css_class="compact",
        notes=[f"Left out (constant on this machine, so not separable): {', '.join(fit.dropped)}"]
        if fit.dropped
        else [],
    )
    methods = {v.method for c in cells for v in c.energy.values() if v.energy_j is not None}
    estimated_only = bool(methods) and all(m.startswith("estimated") for m in methods)
    slope = fit.coefficients.get("duration_s")
    profile = (get(doc, "profile") or {}).get("name", "this profile")
    terms = {
        "const": "{} J",
        "duration_s": "{} W × duration",
        "devices": "{} J × devices",
        "duration_x_devices": "{} W × duration × devices",
    }
    formula = " + ".join(terms[k].format(num(v)) for k, v in fit.coefficients.items()).replace("+ -", "− ")
    statement = (
        f"on this machine (profile {profile}), energy per pass ≈ {formula}; R² = {num(fit.r2, 3)} over {fit.n} cells."
        if slope is not None
        else "too little variation in duration to fit a line."
    )
    return RegressionView(plot, fit, table, paper_regressions(), estimated_only, statement)
