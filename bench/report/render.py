"""Render ``report.html`` (one run) and ``compare.html`` (several runs) from results documents.

The page is one self-contained file: CSS inline, charts as inline SVG (``bench.report.svg``), no JavaScript, no
fonts, no links to fetch. It must open offline, years later, from a USB stick. Jinja2 renders it with autoescape on,
so every string that comes from a results file (model names, error messages, environment values) is shown as text.

The work splits in two: ``report_context`` / ``compare_context`` turn documents into a view model of preformatted
strings, tables and SVG (all the judgement lives here and is unit-testable), and small templates lay it out.
Documents are read defensively (``getattr`` with defaults, ``dict.get``): the schema grows (validity reasons,
document warnings, serving modes), and a report of an older or newer document should still render.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

from bench import __version__
from bench.analysis import (
    ModelRow,
    Regression,
    component_summaries,
    energy_duration_regression,
    model_rows,
    pareto_front,
    per_text,
    sound_cells,
    total_energy_j,
)
from bench.report import svg

COMPONENTS = ("gpu", "cpu", "ram")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PAPER_CITATION = (
    "Zschache & Hartwig, “Comparing energy consumption and accuracy in text classification inference”, "
    "arXiv 2508.14170; Scientific Reports 16 (2026), doi 10.1038/s41598-026-45023-0"
)


# --- formatting ---------------------------------------------------------------------------------------------------


def num(value: float | None, sig: int = 3) -> str:
    """A number with ``sig`` significant digits, plain decimals between 1e-4 and 1e6, else a×10ⁿ.
    ``—`` for missing values (never an empty cell, never a silent 0)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1e6:
        digits = max(0, sig - 1 - math.floor(math.log10(magnitude)))
        return f"{value:,.{digits}f}"
    return svg.tick_label(float(f"{value:.{sig}g}"))


def fixed(value: float | None, digits: int = 3) -> str:
    """A number with a fixed count of decimals (accuracies, F1): columns line up digit by digit."""
    return "—" if value is None else f"{value:.{digits}f}"


def net_td(net: float | None, gross: float | None) -> Td:
    """Net energy; '≈ 0' where it is within rounding of zero relative to gross (e.g. a constant-power RAM
    estimate minus its own idle power), rather than a meaningless -1.8×10⁻⁷."""
    if net is not None and gross and abs(net) < 1e-3 * abs(gross):
        return Td("≈ 0", title=f"{net:.3g} J: no measurable difference from idle")
    return Td(num(net))


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def short_hash(value: str | None, n: int = 12) -> str:
    if not value:
        return "—"
    value = str(value)
    return value.split(":", 1)[-1][:n] if ":" in value[:8] else value[:n]


# --- badges: how each number was obtained -------------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    """A small label for the method behind an energy value: ``kind`` is the CSS class."""

    kind: str  # counter | sampled | estimated | unavailable | other
    text: str
    title: str


def badge(method: str | None, reason: str | None = None) -> Badge:
    """The badge for a method label (bench.meters.base.METHODS); unknown labels still show, as 'other'."""
    method = method or "unavailable"
    if method in ("measured:nvml-energy-counter", "measured:rapl"):
        what = "the GPU's energy counter (NVML)" if "nvml" in method else "RAPL energy counters"
        return Badge("counter", "counter", f"{method}: measured by {what}")
    if method in ("measured:nvml-power-sampling", "measured:codecarbon"):
        return Badge("sampled", "sampled", f"{method}: power sampled and integrated over the window")
    if method.startswith("estimated:"):
        return Badge("estimated", "estimated", f"{method}: estimated, not measured")
    if method == "unavailable":
        return Badge("unavailable", "unavailable", f"not measured: {reason}" if reason else "not measured")
    kind = "sampled" if method.startswith("measured:") else "other"
    return Badge(kind, method.split(":", 1)[-1], method)


# --- tables as data -----------------------------------------------------------------------------------------------


@dataclass
class Td:
    """A table cell: preformatted ``text``, an optional ``sub`` line, hover ``title`` and ``badge``."""

    text: str
    title: str = ""
    badge: Badge | None = None
    sub: str = ""
    cls: str = ""


@dataclass
class Column:
    label: str
    unit: str = ""
    numeric: bool = True
    title: str = ""
    badge: Badge | None = None
    group: str = ""


@dataclass
class Table:
    """A table the template lays out generically: numbers right-aligned, units in headers."""

    columns: list[Column]
    rows: list[list[Td]]
    caption: str = ""
    css_class: str = ""
    notes: list[str] = field(default_factory=list)
    #: a badge shown beside a group's label (e.g. how the cpu column group was measured)
    group_badges: dict[str, Badge] = field(default_factory=dict)

    @property
    def groups(self) -> list[tuple[str, int, Badge | None]]:
        """Header groups over consecutive columns (label, span, badge), for a two-level header."""
        out: list[tuple[str, int, Badge | None]] = []
        for col in self.columns:
            if out and out[-1][0] == col.group:
                out[-1] = (col.group, out[-1][1] + 1, out[-1][2])
            else:
                out.append((col.group, 1, self.group_badges.get(col.group)))
        return out

    @property
    def grouped(self) -> bool:
        return any(c.group for c in self.columns)


@dataclass
class Notice:
    """A warning or note shown at the top of a page. ``level``: warning | note."""

    level: str
    text: str
    items: list[str] = field(default_factory=list)


# --- reading documents defensively --------------------------------------------------------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute or key: documents are pydantic objects, but extra fields may arrive as dicts."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _machine(doc: Any) -> dict[str, Any]:
    return dict((_get(doc, "environment") or {}).get("machine") or {})


def _software(doc: Any) -> dict[str, Any]:
    return dict((_get(doc, "environment") or {}).get("software") or {})


def _ok_cells(cells: Iterable[Any]) -> list[Any]:
    return [c for c in cells if _get(c, "status") == "ok"]


def _total(energy: dict[str, Any] | None, key: str = "energy_j") -> float | None:
    """Sum of the components that have a value; None if none has (unmeasured is not zero)."""
    values = [_get(v, key) for v in (energy or {}).values() if _get(v, key) is not None]
    return float(sum(values)) if values else None


def _model_info(doc: Any, model: str) -> dict[str, Any]:
    return dict((_get(doc, "models") or {}).get(model) or {})


def _devices(doc: Any, model: str) -> float:
    """How many accelerators a model used (the paper's regression term). Looked up under the names backends use;
    one device when nothing says otherwise (a CPU or a single GPU)."""
    info = _model_info(doc, model)
    for where in (info.get("params") or {}, info.get("info") or {}, info):
        for key in ("gpus", "n_gpus", "num_gpus", "tensor_parallel_size", "devices"):
            value = where.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
    return 1.0


_SERVING_KEYS = ("serving", "serving_mode", "mode")


def serving_mode(doc: Any, model: str, cell: Any = None) -> str | None:
    """'sequential' or 'batched' where a cell or the model's params/info say so; None where nothing does."""
    for where in (cell, *((_model_info(doc, model).get(k) or {}) for k in ("params", "info"))):
        if where is None:
            continue
        for key in _SERVING_KEYS:
            value = _get(where, key)
            if isinstance(value, str) and value.lower() in ("sequential", "batched"):
                return value.lower()
    return None


def _serving_base(doc: Any, model: str) -> str:
    """What a sequential and a batched variant of one model share: the paper label, or the params without the
    serving key, or the name with a -sequential/-batched suffix removed."""
    info = _model_info(doc, model)
    if info.get("paper_label"):
        return str(info["paper_label"])
    params = {k: v for k, v in (info.get("params") or {}).items() if k not in _SERVING_KEYS}
    if params:
        return repr(sorted(params.items()))
    return re.sub(r"[-_:](sequential|batched|seq|batch)$", "", model)


def _catalog_dataset(name: str) -> Any:
    try:
        from bench.catalog.datasets import DATASETS
    except ImportError:  # pragma: no cover - part of the package
        return None
    return DATASETS.get(name)


def _dataset_names(doc: Any) -> list[str]:
    """Data sets in suite order, then any that only the cells mention."""
    names = list((_get(doc, "suite") or {}).get("datasets") or [])
    for c in _get(doc, "cells") or []:
        if c.dataset not in names:
            names.append(c.dataset)
    return names


# --- the single-run report ----------------------------------------------------------------------------------------


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


def _by_model(cells: Iterable[Any]) -> dict[str, list[Any]]:
    """Cells grouped by model (once per data set, instead of scanning all cells for every row)."""
    by_model: dict[str, list[Any]] = defaultdict(list)
    for c in cells:
        by_model[c.model].append(c)
    return by_model


def _results_table(rows: list[ModelRow], by_model: dict[str, list[Any]]) -> Table:
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
    out = []
    for r in rows:
        cells = _ok_cells(by_model.get(r.model, []))
        loops = [c.window.loops for c in cells if _get(c, "window") is not None]
        capped = any(_get(c.window, "max_loops_reached", False) for c in cells if _get(c, "window") is not None)
        invalid = [c.invalid_rate for c in cells if _get(c, "invalid_rate") is not None]
        acc = r.accuracy
        out.append(
            [
                Td(r.model, title=r.paper_label or "", cls="name"),
                Td(
                    str(r.n_ok) + (f" ({r.n_failed})" if r.n_failed else ""),
                    sub=f"{r.n_flagged} flagged" if r.n_flagged else "",
                    title=(
                        f"{r.n_flagged} cell(s) failed a plausibility check: their accuracy counts, their duration "
                        "and energy are left out of the means"
                        if r.n_flagged
                        else ""
                    ),
                    cls="bad" if r.n_failed or r.n_flagged else "",
                ),
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
    return Table(columns, out, css_class="results")


def _per_token_cell(cells: list[Any]) -> Td:
    """Gross energy per generated token over the LLM cells that counted tokens ('—' for traditional models)."""
    pairs = []
    for c in cells:
        tokens = _get(c, "tokens")
        if tokens and tokens.get("output_tokens"):
            pairs.append((total_energy_j(c.energy) or 0.0, tokens["output_tokens"], tokens.get("input_tokens", 0)))
    if not pairs:
        return Td("—")
    energy, out_tokens, in_tokens = (sum(x) for x in zip(*pairs, strict=True))
    return Td(
        num(1000 * energy / out_tokens), sub=f"{in_tokens / len(pairs):,.0f} in / {out_tokens / len(pairs):,.0f} out"
    )


def _component_methods(cells: list[Any], component: str) -> tuple[set[str], str | None]:
    methods, reason = set(), None
    for c in cells:
        value = c.energy.get(component)
        if value is not None:
            methods.add(value.method)
            reason = reason or value.reason
    return methods, reason


def _energy_table(rows: list[ModelRow], by_model: dict[str, list[Any]]) -> tuple[Table, list[str]]:
    """Gross and net per component with method badges, the kit's total, CodeCarbon's total and their ratio.
    Components unavailable in every row get no columns, only a note (a column of dashes says nothing)."""
    all_cells = _ok_cells(c for r in rows for c in by_model.get(r.model, []))
    shown, notes = [], []
    for comp in COMPONENTS:
        methods, reason = _component_methods(all_cells, comp)
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
            comp_methods, reason = _component_methods(cells, comp)
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
    return Table(columns, out, css_class="energy", group_badges=group_badges), notes


def _paper_table(doc: Any, dataset: str, rows: list[ModelRow], by_model: dict[str, list[Any]]) -> Table | None:
    """Our numbers beside the paper's for the same model and data set; energy as the paper printed it."""
    from bench.reference import paper_value

    spec = _catalog_dataset(dataset)
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
        cells = _ok_cells(by_model.get(r.model, []))
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
    match = re.fullmatch(r"\s*<\s*([0-9.]+)\s*", printed)
    if not match or value is None:
        return None
    return value < float(match.group(1))


def _dataset_facts(doc: Any, name: str, rows: list[ModelRow]) -> list[tuple[str, str]]:
    record = (_get(doc, "datasets") or {}).get(name)
    if record is None:
        return [("data set", name)]
    pin = dict(_get(record, "pin") or {})
    source = pin.get("hub_id") or pin.get("package") or pin.get("source") or "—"
    version = pin.get("revision") or pin.get("package_version") or ""
    return [
        ("source", f"{source} {version}".strip()),
        ("content", short_hash(pin.get("content_sha256") or pin.get("file_sha256"))),
        ("language", str(_get(record, "language", "—"))),
        ("labels", ", ".join(_get(record, "label_names", [])) or "—"),
        ("split", f"{_get(record, 'n_train', '—')} train / {_get(record, 'n_test', '—')} test texts"),
        ("repetitions", str(len(_get(record, "splits", []) or []))),
        ("splits sha256", short_hash(_get(record, "splits_sha256"))),
    ]


def _accuracy_energy_plot(rows: list[ModelRow], title: str) -> Markup:
    """Accuracy against gross energy per text, log x, Pareto front filled and joined."""
    usable = [r for r in rows if r.j_per_text and r.accuracy]
    front = set(pareto_front([(r.j_per_text, r.accuracy.mean) for r in usable]))  # type: ignore[misc]
    points = [
        svg.Point(
            r.j_per_text,  # type: ignore[arg-type]
            r.accuracy.mean,  # type: ignore[union-attr]
            label=r.model,
            tip=f"{r.model}: accuracy {r.accuracy.mean:.3f}, {num(r.j_per_text)} J per text"  # type: ignore[union-attr]
            + (" (Pareto front)" if i in front else ""),
            highlight=i in front,
        )
        for i, r in enumerate(usable)
    ]
    series = [svg.Series("models (filled: on the Pareto front)", points, color=svg.PALETTE[0], front=True)]
    return svg.energy_accuracy_scatter(series, title=title)


def _components_plot(rows: list[ModelRow], by_model: dict[str, list[Any]], title: str) -> Markup:
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


@dataclass
class RegressionView:
    """The runtime-as-proxy section: the fit over every ok cell of the run (one machine, one profile)."""

    plot: Markup
    fit: Regression
    table: Table
    paper: Table | None
    estimated_only: bool
    statement: str


def _fit_line(fit: Regression, xs: Sequence[float], log: bool, devices: float = 1.0) -> list[tuple[float, float]]:
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
    for c in sound_cells(_get(doc, "cells") or []):
        total = _total(c.energy)
        if total is None or c.duration_s is None:
            continue
        durations.append(float(c.duration_s))
        energies.append(total)
        devices.append(_devices(doc, c.model))
        cells.append(c)
    return durations, energies, devices, cells


def _paper_regressions() -> Table | None:
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


def _regression_view(doc: Any) -> RegressionView | None:
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
    series.append(svg.Series(fit_name, [], color="#555", line=_fit_line(fit, durations, log, dev)))
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
    profile = (_get(doc, "profile") or {}).get("name", "this profile")
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
    return RegressionView(plot, fit, table, _paper_regressions(), estimated_only, statement)


@dataclass
class ServingView:
    """Sequential against batched serving, where a run has both for a model."""

    plot: Markup
    table: Table


def _serving_view(doc: Any, rows: list[ModelRow]) -> ServingView | None:
    """Sequential against batched serving, for every model and data set where both ran; None where none did."""
    pairs: dict[tuple[str, str], dict[str, ModelRow]] = defaultdict(dict)
    cells_by = defaultdict(list)
    for c in _get(doc, "cells") or []:
        cells_by[(c.dataset, c.model)].append(c)
    for r in rows:
        cells = cells_by.get((r.dataset, r.model), [])
        modes = {serving_mode(doc, r.model, c) for c in cells} or {serving_mode(doc, r.model)}
        if len(modes) != 1 or None in modes:
            continue
        pairs[(r.dataset, _serving_base(doc, r.model))][modes.pop()] = r
    both = {k: v for k, v in pairs.items() if {"sequential", "batched"} <= v.keys()}
    if not both:
        return None
    labels, seq, bat, table_rows = [], [], [], []
    for (dataset, base), modes in both.items():
        s, b = modes["sequential"], modes["batched"]
        labels.append(f"{base} · {dataset}" if len({d for d, _ in both}) > 1 else base)
        seq.append(s.j_per_text)
        bat.append(b.j_per_text)
        saving = 1 - b.j_per_text / s.j_per_text if s.j_per_text and b.j_per_text is not None else None
        speed = s.duration_s.mean / b.duration_s.mean if s.duration_s and b.duration_s and b.duration_s.mean else None
        table_rows.append(
            [
                Td(base, cls="name"),
                Td(dataset, cls="name"),
                Td(num(s.j_per_text)),
                Td(num(b.j_per_text)),
                Td(pct(saving, 0)),
                Td(num(speed, 2)),
                Td(fixed(s.accuracy.mean if s.accuracy else None)),
                Td(fixed(b.accuracy.mean if b.accuracy else None)),
            ]
        )
    plot = svg.grouped_bars(
        labels,
        {"sequential": seq, "batched": bat},
        title="Energy per text by serving mode",
        x_label=svg.ENERGY_PER_TEXT_LABEL,
    )
    columns = [
        Column("model", numeric=False),
        Column("data set", numeric=False),
        Column("sequential", "J / text"),
        Column("batched", "J / text"),
        Column("saved by batching", "%"),
        Column("speed-up", "×"),
        Column("accuracy sequential"),
        Column("accuracy batched"),
    ]
    return ServingView(plot, Table(columns, table_rows))


def _warnings(doc: Any) -> list[Notice]:
    """Everything a reader must know before trusting a number, most serious first."""
    out: list[Notice] = []
    cells = list(_get(doc, "cells") or [])
    status = _get(doc, "status", "complete")
    if status != "complete":
        out.append(Notice("warning", f"The run is {status}: {len(cells)} cell(s) recorded so far; numbers may change."))
    mismatch = list(_get(doc, "hardware_mismatch") or [])
    if mismatch:
        forced = " and the run was forced (--force)" if _get(doc, "forced") else ""
        out.append(Notice("warning", f"This machine does not match the profile{forced}:", mismatch))
    for w in _get(doc, "warnings", None) or []:  # document-level warnings, where the runner records them
        out.append(Notice("warning", str(w.get("message", w) if isinstance(w, dict) else w)))
    failed = [c for c in cells if _get(c, "status") == "failed"]
    if failed:
        items = [
            f"{c.dataset} · {c.model} · rep {c.repetition}: "
            f"{_get(c.error, 'type', '?')}: {str(_get(c.error, 'message', ''))[:300]}"
            for c in failed[:20]
        ]
        more = [f"… and {len(failed) - 20} more"] if len(failed) > 20 else []
        out.append(Notice("warning", f"{len(failed)} cell(s) failed and are left out of the aggregates:", items + more))
    invalid = [c for c in cells if _get(c, "validity")]
    if invalid:
        items = [
            f"{c.dataset} · {c.model} · rep {c.repetition}: {'; '.join(map(str, c.validity))}" for c in invalid[:20]
        ]
        more = [f"… and {len(invalid) - 20} more"] if len(invalid) > 20 else []
        out.append(
            Notice(
                "warning",
                f"{len(invalid)} cell(s) failed a plausibility check; their accuracy counts, their duration and energy "
                "are left out of every mean, plot and fit:",
                items + more,
            )
        )
    ok = _ok_cells(cells)
    unparsed: dict[str, list[str]] = defaultdict(list)
    worst = 0.0
    for c in ok:
        rate = _get(c, "invalid_rate") or 0.0
        if rate > 0:
            worst = max(worst, rate)
            if c.dataset not in unparsed[c.model]:
                unparsed[c.model].append(c.dataset)
    if unparsed:
        items = [f"{m} ({', '.join(ds)})" for m, ds in list(unparsed.items())[:12]]
        more = [f"… and {len(unparsed) - 12} more model(s)"] if len(unparsed) > 12 else []
        out.append(
            Notice(
                "note",
                f"Some answers could not be mapped to a label and count as wrong (up to {pct(worst)} of a split; "
                "see the 'invalid' column):",
                items + more,
            )
        )
    notes = (_get(doc, "meters") or {}).get("notes") or {}
    for comp in COMPONENTS:
        methods, _ = _component_methods(ok, comp)
        estimated = sorted(m for m in methods if m.startswith("estimated"))
        if estimated:
            why = str(notes.get(comp) or "").removeprefix("estimated: ")
            text = f"{comp} energy is estimated ({', '.join(estimated)}), not measured"
            out.append(Notice("warning", f"{text}: {why}" if why else f"{text}."))
    capped = [c for c in ok if _get(c.window, "max_loops_reached", False)]
    if capped:
        out.append(
            Notice(
                "warning",
                f"{len(capped)} window(s) stayed shorter than the minimum even at the loop cap; their energy is "
                "less reliable.",
            )
        )
    looped = [c for c in ok if c.window is not None and c.window.loops > 1]
    if looped:
        most = max(c.window.loops for c in looped)
        minimum = max(c.window.min_window_s for c in looped)
        out.append(
            Notice(
                "note",
                f"{len(looped)} of {len(ok)} window(s) were extended by repeating the test-set inference (up to "
                f"{most:,} loops) to reach the minimum window of {num(minimum)} s; energy and duration are divided "
                "by the loop count.",
            )
        )
    if not _get(doc, "idle"):
        out.append(Notice("note", "No idle baseline was measured: net energy is not available."))
    return out


def _manifest(doc: Any) -> dict[str, list[tuple[str, str]]]:
    m, s = _machine(doc), _software(doc)
    gpus = m.get("gpus") or []
    gpu_groups: dict[str, int] = defaultdict(int)
    for g in gpus:
        limit = g.get("power_limit_w")
        desc = f"{g.get('name', '?')}, {num(g.get('memory_gb'))} GB" + (
            f", power limit {num(limit)} W" if limit else ""
        )
        gpu_groups[desc] += 1
    machine = [
        ("CPU", f"{m.get('cpu_model', '—')} ({m.get('logical_cpus', '—')} logical CPUs)"),
        ("RAM", f"{num(m.get('ram_gb'))} GB" if m.get("ram_gb") is not None else "—"),
        ("GPUs", "; ".join(f"{n}× {d}" for d, n in gpu_groups.items()) or "none"),
        ("GPU driver", str(m.get("gpu_driver") or "—")),
        ("CUDA", str(m.get("cuda_version") or m.get("cuda") or s.get("cuda") or "—")),
        ("CUDA_VISIBLE_DEVICES", str(m.get("cuda_visible_devices") or "—")),
        ("OS", str(m.get("os") or "—")),
        ("Python", str(m.get("python") or "—")),
        ("host", str(m.get("hostname") or "—")),
        ("NVML", str(m.get("nvml_status") or "—")),
        ("RAPL", str(m.get("rapl_status") or "—")),
    ]
    sessions = (_get(doc, "environment") or {}).get("sessions") or []
    if len(sessions) > 1:
        machine.append(("sessions", f"{len(sessions)} (the run was resumed)"))
    profile = _get(doc, "profile") or {}
    settings = _get(doc, "settings") or {}
    software = [
        ("kit", f"bench {_get(doc, 'kit_version', '?')}"),
        ("git commit", str(s.get("git_commit") or "—")),
        ("container image", str(s.get("container_image") or "— (ran on the host)")),
        ("image id", str(s.get("container_image_id") or "—")),
        ("profile", f"{profile.get('name', '—')}: {profile.get('description', '')}".rstrip(": ")),
        ("suite", f"{_get(doc, 'suite_name', '—')}: {(_get(doc, 'suite') or {}).get('description', '')}".rstrip(": ")),
        (
            "settings",
            ", ".join(
                f"{k} {settings[k]}"
                for k in ("min_window_s", "max_loops", "idle_baseline_s", "warmup_texts", "device")
                if k in settings
            )
            or "—",
        ),
        ("settings sha256", short_hash(_get(doc, "settings_sha256"))),
    ]
    libraries = [(k, str(v)) for k, v in sorted((s.get("libraries") or {}).items()) if v]
    absent = sorted(k for k, v in (s.get("libraries") or {}).items() if not v)
    if absent:
        libraries.append(("not installed", ", ".join(absent)))
    return {"machine": machine, "software": software, "libraries": libraries}


def _meters_table(doc: Any) -> Table:
    meters = _get(doc, "meters") or {}
    components = meters.get("components") or {}
    notes = meters.get("notes") or {}
    idle_list = list(_get(doc, "idle") or [])
    rows = []
    for comp in COMPONENTS:
        info = components.get(comp) or {}
        method = info.get("method")
        if method is None:  # older documents: take the method from the first cell that has this component
            for c in _get(doc, "cells") or []:
                if comp in (_get(c, "energy") or {}):
                    method = c.energy[comp].method
                    break
        detail = info.get("detail") or {}
        facts = "; ".join(
            f"{label} {num(detail[k]) if isinstance(detail[k], float) else detail[k]}"
            for k, label in (("tdp_w", "TDP W"), ("tdp_source", "TDP from"), ("w_per_gb", "W/GB"), ("total_gb", "GB"))
            if detail.get(k) is not None
        )
        # Net energy uses the idle power measured at the start of each session; end-of-session records (where the
        # runner takes them) only say how far idle power drifted meanwhile.
        starts = [i for i in idle_list if _get(i, "phase", "start") == "start"]
        idle_w = [w for w in (_get(i, "power_w", {}).get(comp) for i in starts) if w is not None]
        drifts = [d for d in ((_get(i, "drift") or {}).get(comp) for i in idle_list) if d is not None]
        drift = f"idle power drift by session end {max(drifts, key=abs) * 100:+.1f}%" if drifts else ""
        rows.append(
            [
                Td(comp, cls="name"),
                Td(method or "—", badge=badge(method, info.get("reason")), cls="label"),
                Td(str(info.get("meter") or "—"), cls="label"),
                Td(num(sum(idle_w) / len(idle_w)) if idle_w else "—", title=f"{len(idle_w)} idle phase(s)"),
                Td(
                    ". ".join(x for x in (facts, info.get("reason") or "", notes.get(comp) or "", drift) if x),
                    cls="text",
                ),
            ]
        )
    side = (meters.get("side") or {}).get("codecarbon") or {}
    if side:
        detail = side.get("detail") or {}
        rows.append(
            [
                Td("CodeCarbon", cls="name"),
                Td("side by side" if side.get("enabled") else "off", cls="label"),
                Td(str(detail.get("version") or "—"), cls="label"),
                Td("—"),
                Td(
                    f"tracking mode {detail.get('tracking_mode', '—')}, power sampled every "
                    f"{detail.get('measure_power_secs', '—')} s (the paper's setup)",
                    cls="text",
                ),
            ]
        )
    columns = [
        Column("component", numeric=False),
        Column("method", numeric=False),
        Column("meter", numeric=False),
        Column("idle power", "W", title="mean over the sessions' start idle phases (nothing running)"),
        Column("details", numeric=False),
    ]
    return Table(columns, rows, css_class="meters")


def report_context(doc: Any) -> dict[str, Any]:
    """The view model of ``report.html``: everything preformatted, no logic left for the template."""
    all_rows = model_rows(doc)
    cells = list(_get(doc, "cells") or [])
    by_dataset: dict[str, list[Any]] = defaultdict(list)
    for c in cells:
        by_dataset[c.dataset].append(c)
    datasets = []
    for name in _dataset_names(doc):
        rows = [r for r in all_rows if r.dataset == name and (r.n_ok or r.n_failed)]
        if not rows:
            continue
        by_model = _by_model(by_dataset[name])
        energy_table, energy_notes = _energy_table(rows, by_model)
        energy_table.notes = energy_notes
        cc = [(r.model, r.codecarbon_j, r.energy_j.mean) for r in rows if r.codecarbon_j is not None and r.energy_j]
        cc_line = ""
        if cc:
            ratios = [a / b for _, a, b in cc if b]
            if ratios:
                lo, hi = num(min(ratios), 2), num(max(ratios), 2)
                span = f"{lo}×" if lo == hi else f"{lo}× to {hi}×"
                kit_methods = {v.method for c in _ok_cells(by_dataset[name]) for v in c.energy.values()}
                how = "counters and samplers" if not any(m.startswith("estimated") for m in kit_methods) else "meters"
                cc_line = (
                    f"The paper's method (CodeCarbon, machine scope) says {span} what the kit's {how} say for the "
                    "same windows; both numbers are in the table."
                )
        plots = [
            (
                "Accuracy against energy per text",
                _accuracy_energy_plot(rows, f"{name}: accuracy against energy per text"),
                "Log scale. Filled markers joined by the staircase: the Pareto front (no other model is both cheaper "
                "and more accurate).",
            ),
            (
                "Energy split by component",
                _components_plot(rows, by_model, f"{name}: energy by component"),
                "Share of gross energy per pass by component; pale bars are estimated. Total per pass at the right.",
            ),
        ]
        datasets.append(
            DatasetView(
                name=name,
                facts=_dataset_facts(doc, name, rows),
                results=_results_table(rows, by_model),
                energy=energy_table,
                paper=_paper_table(doc, name, rows, by_model),
                codecarbon_line=cc_line,
                plots=plots,
            )
        )
    ok = len(_ok_cells(cells))
    profile = _get(doc, "profile") or {}
    head = [
        ("status", str(_get(doc, "status", "—"))),
        ("cells", f"{ok} ok, {len(cells) - ok} failed, of {len(cells)}"),
        ("profile", str(profile.get("name", "—"))),
        ("suite", str(_get(doc, "suite_name", "—"))),
        ("created", str(_get(doc, "created_at", "—"))),
        ("updated", str(_get(doc, "updated_at", "—"))),
        ("content hash", short_hash(_get(doc, "content_hash"), 16)),
    ]
    return {
        "title": f"bench report — {_get(doc, 'run_id', 'run')}",
        "run_id": _get(doc, "run_id", "run"),
        "head": head,
        "warnings": _warnings(doc),
        "manifest": _manifest(doc),
        "meters": _meters_table(doc),
        "datasets": datasets,
        "regression": _regression_view(doc),
        "serving": _serving_view(doc, all_rows),
        "hpc": _hpc_view(doc, all_rows),
        "citation": PAPER_CITATION,
        "generated": _generated(),
    }


def _hpc_view(doc: Any, rows: list[ModelRow]) -> dict[str, Any] | None:
    from bench.report.hpc_view import hpc_context  # imports this module: bound late

    return hpc_context(doc, rows)


def _generated() -> str:
    return f"bench {__version__}, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"


# --- comparing runs -----------------------------------------------------------------------------------------------


def _prompt_fingerprint(doc: Any) -> dict[str, str]:
    """Everything that names a prompt: settings keys and model params containing 'prompt' (templates, versions)."""
    out = {}
    for key, value in (_get(doc, "settings") or {}).items():
        if "prompt" in key.lower():
            out[f"settings.{key}"] = repr(value)
    for model, info in (_get(doc, "models") or {}).items():
        for where in ("params", "info"):
            for key, value in (info.get(where) or {}).items():
                if "prompt" in key.lower():
                    out[f"{model}.{key}"] = repr(value)
    return out


def _model_pin(doc: Any, model: str) -> str:
    """What fixes a model's behaviour: its backend params and any pin/revision (not library versions)."""
    info = _model_info(doc, model)
    pin = {k: info.get(k) for k in ("pin", "revision", "backend") if info.get(k) is not None}
    params = {k: v for k, v in (info.get("params") or {}).items() if k not in _SERVING_KEYS}
    return repr(sorted({**pin, **params}.items(), key=lambda kv: kv[0]))


def comparability(docs: Sequence[Any], labels: Sequence[str]) -> list[Notice]:
    """Why the runs may not be comparable: data sets, splits, prompts, kit or model versions that differ."""
    notices: list[Notice] = []

    def differ(what: str, values: dict[str, Any], level: str = "warning") -> None:
        distinct = {repr(v) for v in values.values()}
        if len(distinct) > 1:
            notices.append(Notice(level, what, [f"{lab}: {v}" for lab, v in values.items()]))

    sets = {lab: tuple(_dataset_names(d)) for lab, d in zip(labels, docs, strict=True)}
    if len({frozenset(v) for v in sets.values()}) > 1:
        notices.append(
            Notice(
                "warning",
                "Different data sets: only the ones all runs share are compared side by side.",
                [f"{lab}: {', '.join(v) or '—'}" for lab, v in sets.items()],
            )
        )
    common = set.intersection(*(set(v) for v in sets.values())) if sets else set()
    for dataset in sorted(common):
        records = {lab: (_get(d, "datasets") or {}).get(dataset) for lab, d in zip(labels, docs, strict=True)}
        differ(
            f"{dataset}: different splits (splits_sha256) — accuracy differences may come from other test texts.",
            {lab: short_hash(_get(r, "splits_sha256")) for lab, r in records.items()},
        )
        differ(
            f"{dataset}: different data contents.",
            {lab: short_hash((_get(r, "pin") or {}).get("content_sha256")) for lab, r in records.items()},
        )
    differ(
        "Different prompts: LLM answers are not comparable.",
        {lab: _prompt_fingerprint(d) or "none" for lab, d in zip(labels, docs, strict=True)},
    )
    differ(
        "Different kit versions: measurement code may differ.",
        {lab: _get(d, "kit_version") for lab, d in zip(labels, docs, strict=True)},
    )
    models = set.intersection(*(set((_get(d, "models") or {}).keys()) for d in docs)) if docs else set()
    for model in sorted(models):
        differ(
            f"{model}: different model versions or parameters.",
            {lab: _model_pin(d, model) for lab, d in zip(labels, docs, strict=True)},
        )
    differ(
        "Different measurement settings (minimum window, loop cap, idle baseline).",
        {
            lab: {k: (_get(d, "settings") or {}).get(k) for k in ("min_window_s", "max_loops", "idle_baseline_s")}
            for lab, d in zip(labels, docs, strict=True)
        },
        level="note",
    )
    for lab, d in zip(labels, docs, strict=True):
        if _get(d, "hardware_mismatch"):
            notices.append(
                Notice("warning", f"{lab}: the machine did not match its profile (forced).", list(d.hardware_mismatch))
            )
        if _get(d, "status") != "complete":
            notices.append(Notice("warning", f"{lab}: the run is {_get(d, 'status')}, not complete."))
    return notices


def _machine_line(doc: Any) -> str:
    m = _machine(doc)
    gpus = m.get("gpus") or []
    gpu = f"{len(gpus)}× {gpus[0].get('name', 'GPU')}" if gpus else "no GPU"
    return f"{m.get('cpu_model', '?')} ({m.get('logical_cpus', '?')} CPUs), {gpu}"


def compare_context(docs: Sequence[Any]) -> dict[str, Any]:
    """The view model of ``compare.html``: runs side by side per model, normalized per text, on one scale."""
    labels = [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(len(docs))]
    rows_by_run = [model_rows(d) for d in docs]
    index = [{(r.dataset, r.model): r for r in rows} for rows in rows_by_run]
    datasets: list[str] = []
    for d in docs:
        datasets += [n for n in _dataset_names(d) if n not in datasets]
    # One scale: every chart of the page spans the energy per text of every run and data set.
    all_jpt = [r.j_per_text for rows in rows_by_run for r in rows if r.j_per_text]
    all_acc = [r.accuracy.mean for rows in rows_by_run for r in rows if r.accuracy]
    sections = []
    for dataset in datasets:
        models: list[str] = []
        for idx in index:
            models += [m for (ds, m) in idx if ds == dataset and m not in models]
        present = [i for i, idx in enumerate(index) if any(ds == dataset for ds, _ in idx)]
        columns = [Column("model", numeric=False)]
        for i in present:
            columns += [
                Column("accuracy", group=labels[i]),
                Column("energy", "J / text", group=labels[i], title="gross"),
                Column("net", "J / text", group=labels[i]),
                Column("time", "ms / text", group=labels[i]),
            ]
        if len(present) > 1:
            columns += [Column(f"{labels[i]} / {labels[present[0]]}", "× energy", group="ratio") for i in present[1:]]
        table_rows = []
        series = []
        for i in present:
            pts = []
            for model in models:
                r = index[i].get((dataset, model))
                if r and r.j_per_text and r.accuracy:
                    pts.append(
                        svg.Point(
                            r.j_per_text,
                            r.accuracy.mean,
                            label=model if len(present) == 1 else "",
                            tip=f"{labels[i]} · {model}: accuracy {r.accuracy.mean:.3f}, "
                            f"{num(r.j_per_text)} J per text",
                        )
                    )
            series.append(
                svg.Series(
                    f"{labels[i]}: {_get(docs[i], 'run_id')}",
                    pts,
                    color=svg.PALETTE[i % len(svg.PALETTE)],
                    marker=svg.MARKERS[i % len(svg.MARKERS)],
                )
            )
        bars: dict[str, list[float | None]] = {labels[i]: [] for i in present}
        for model in models:
            line = [Td(model, cls="name")]
            first = None
            for n, i in enumerate(present):
                r = index[i].get((dataset, model))
                n_test = _mean_n_test(docs[i], dataset, model)
                norm = per_text(
                    n_test,
                    r.duration_s.mean if r and r.duration_s else None,
                    r.energy_j.mean if r and r.energy_j else None,
                    r.net_energy_j.mean if r and r.net_energy_j else None,
                    r.accuracy.mean if r and r.accuracy else None,
                )
                jpt = norm.j_per_text if norm else None
                if n == 0:
                    first = jpt
                bars[labels[i]].append(jpt)
                line += [
                    Td(fixed(r.accuracy.mean if r and r.accuracy else None)),
                    Td(num(jpt)),
                    Td(num(norm.net_j_per_text if norm else None)),
                    Td(num(norm.s_per_text * 1000 if norm and norm.s_per_text is not None else None)),
                ]
            for i in present[1:]:
                jpt = bars[labels[i]][-1]
                line.append(Td(num(jpt / first, 3) if jpt is not None and first else "—"))
            table_rows.append(line)
        sections.append(
            {
                "name": dataset,
                "table": Table(columns, table_rows, css_class="compare"),
                "scatter": svg.energy_accuracy_scatter(
                    series,
                    title=f"{dataset}: accuracy against energy per text, all runs",
                    x_domain=all_jpt,
                    y_domain=all_acc,
                ),
                "bars": svg.grouped_bars(
                    models,
                    bars,
                    title=f"{dataset}: energy per text by run",
                    x_label=svg.ENERGY_PER_TEXT_LABEL,
                    x_domain=all_jpt,
                ),
            }
        )
    runs = []
    for lab, d in zip(labels, docs, strict=True):
        cells = list(_get(d, "cells") or [])
        runs.append(
            {
                "label": lab,
                "run_id": _get(d, "run_id"),
                "machine": _machine_line(d),
                "profile": (_get(d, "profile") or {}).get("name", "—"),
                "kit": _get(d, "kit_version", "—"),
                "created": _get(d, "created_at", "—"),
                "cells": f"{len(_ok_cells(cells))} / {len(cells)}",
                "status": _get(d, "status", "—"),
            }
        )
    return {
        "title": "bench compare — " + ", ".join(str(_get(d, "run_id")) for d in docs),
        "runs": runs,
        "notices": comparability(docs, labels),
        "machines": _machines_table(docs, labels),
        "sections": sections,
        "regression": _compare_regression(docs, labels),
        "citation": PAPER_CITATION,
        "generated": _generated(),
    }


def _mean_n_test(doc: Any, dataset: str, model: str) -> float | None:
    values = [c.n_test for c in _ok_cells(_get(doc, "cells") or []) if c.dataset == dataset and c.model == model]
    values = [v for v in values if v]
    return sum(values) / len(values) if values else None


def _machines_table(docs: Sequence[Any], labels: Sequence[str]) -> Table:
    """Machine and software facts, one column per run; rows that differ are marked."""
    facts: dict[str, list[str]] = {}
    for i, d in enumerate(docs):
        manifest = _manifest(d)
        entries = [*manifest["machine"][:5], *manifest["software"][:5]]
        meters = (_get(d, "meters") or {}).get("components") or {}
        entries += [(f"{c} meter", str((meters.get(c) or {}).get("method") or "—")) for c in COMPONENTS]
        for key, value in entries:
            facts.setdefault(key, [""] * len(docs))[i] = value
    rows = []
    for key, values in facts.items():
        same = len(set(values)) == 1
        rows.append([Td(key, cls="name"), *(Td(v, cls="text" + ("" if same else " differs")) for v in values)])
    columns = [Column("", numeric=False)] + [Column(lab, numeric=False) for lab in labels]
    return Table(columns, rows, css_class="machines")


def _compare_regression(docs: Sequence[Any], labels: Sequence[str]) -> dict[str, Any] | None:
    """Each run's own energy~duration fit, and a pooled fit over all runs: the proxy holds within a machine."""
    series, rows = [], []
    pooled_d, pooled_e = [], []
    for i, (lab, d) in enumerate(zip(labels, docs, strict=True)):
        durations, energies, devices, _ = regression_points(d)
        if len(durations) < 3:
            continue
        fit = energy_duration_regression(durations, energies, devices)
        pooled_d += durations
        pooled_e += energies
        color = svg.PALETTE[i % len(svg.PALETTE)]
        pts = [svg.Point(x, y, tip=f"{lab}: {num(x)} s, {num(y)} J") for x, y in zip(durations, energies, strict=True)]
        series.append(
            svg.Series(
                f"{lab} (R² {num(fit.r2, 3)})",
                pts,
                color=color,
                marker=svg.MARKERS[i % 4],
                line=_fit_line(fit, durations, True, devices[0]),
            )
        )
        rows.append(
            [Td(lab, cls="name"), Td(str(fit.n)), Td(num(fit.coefficients.get("duration_s"))), Td(num(fit.r2, 4))]
        )
    if not series:
        return None
    pooled = energy_duration_regression(pooled_d, pooled_e) if len(series) > 1 else None
    if pooled:
        rows.append(
            [
                Td("all runs pooled", cls="name"),
                Td(str(pooled.n)),
                Td(num(pooled.coefficients.get("duration_s"))),
                Td(num(pooled.r2, 4)),
            ]
        )
    table = Table(
        [Column("run", numeric=False), Column("cells"), Column("slope", "W"), Column("R²")], rows, css_class="compact"
    )
    plot = svg.scatter(
        series,
        title="Energy against duration per pass, one fit per run",
        x_label="duration per pass, s (log scale)",
        y_label="energy per pass, J (log)",
        x_log=True,
        y_log=True,
        label_points=False,
    )
    return {"plot": plot, "table": table}


# --- rendering ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # every string from a results file is text, never markup
        undefined=jinja2.StrictUndefined,  # a typo in a template fails the tests instead of rendering blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = num
    return env


def render_report(doc: Any) -> str:
    """The HTML of ``report.html`` for one results document."""
    with svg.page_ids():
        return _environment().get_template("report.html.j2").render(**report_context(doc))


def render_compare(docs: Sequence[Any]) -> str:
    """The HTML of ``compare.html`` for several results documents (at least one)."""
    if not docs:
        raise ValueError("compare needs at least one run")
    with svg.page_ids():
        return _environment().get_template("compare.html.j2").render(**compare_context(docs))


def _write(path: Path, text: str) -> Path:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_report(run: Path | str, output: Path | str | None = None) -> Path:
    """Load ``run`` (a run folder or its results.json) and write its report (default: ``<run folder>/report.html``)."""
    from bench.results import load_results

    run = Path(run)
    doc = load_results(run)
    folder = run if run.is_dir() else run.parent
    return _write(Path(output) if output else folder / "report.html", render_report(doc))


def write_compare(runs: Sequence[Path | str], output: Path | str) -> Path:
    """Load several runs and write the comparison page to ``output``."""
    from bench.results import load_results

    docs = [load_results(Path(r)) for r in runs]
    return _write(Path(output), render_compare(docs))
