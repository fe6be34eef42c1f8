"""What every section of the report shares: number formats, method badges, tables and notices as data, and the
defensive readers of a results document.

Owns the cell and table model the templates lay out generically (``Td``, ``Column``, ``Table``, ``Notice``,
``Badge``), the number formats (``num``, ``fixed``, ``pct``, ``net_td``, ``short_hash``) and the accessors that read a
document whatever its schema version (``get``, ``environment_machine``, ``ok_cells``, ``serving_mode``, ...).
Documents are read defensively (``getattr`` with defaults, ``dict.get``): the schema grows (validity reasons,
document warnings, serving modes), and a report of an older or newer document should still render.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.report import svg

#: The energy components the kit meters, in the order every table and chart shows them.
COMPONENTS = ("gpu", "cpu", "ram")
#: Where a model's params or a cell say how it was served (sequential or batched).
SERVING_KEYS = ("serving", "serving_mode", "mode")


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
    """A fraction as a percentage with ``digits`` decimals (``—`` for missing)."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def short_hash(value: str | None, n: int = 12) -> str:
    """The first ``n`` characters of a hash, without its ``sha256:`` style prefix (``—`` for missing)."""
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
    if method.endswith("-energy-counter") or method in ("measured:rapl", "measured:apple-ioreport"):
        what = {
            "measured:nvml-energy-counter": "the GPU's energy counter (NVML)",
            "measured:rapl": "RAPL energy counters",
        }.get(method, "the device's energy counter")
        return Badge("counter", "counter", f"{method}: measured by {what}")
    if method.endswith("-power-sampling") or method in ("measured:codecarbon", "measured:jetson-ina3221"):
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
    """A table column: header ``label`` and ``unit``, right-aligned when ``numeric``, under an optional ``group``."""

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
        """Whether any column has a group (the template then draws a two-level header)."""
        return any(c.group for c in self.columns)


@dataclass
class Notice:
    """A warning or note shown at the top of a page. ``level``: warning | note."""

    level: str
    text: str
    items: list[str] = field(default_factory=list)


# --- reading documents defensively --------------------------------------------------------------------------------


def get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute or key: documents are pydantic objects, but extra fields may arrive as dicts."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def environment_machine(doc: Any) -> dict[str, Any]:
    """The document's ``environment.machine`` facts (CPU, RAM, GPUs, drivers); empty when absent."""
    return dict((get(doc, "environment") or {}).get("machine") or {})


def environment_software(doc: Any) -> dict[str, Any]:
    """The document's ``environment.software`` facts (git commit, image, library versions); empty when absent."""
    return dict((get(doc, "environment") or {}).get("software") or {})


def ok_cells(cells: Iterable[Any]) -> list[Any]:
    """The cells that completed (status ok), flagged ones included."""
    return [c for c in cells if get(c, "status") == "ok"]


def total_energy(energy: dict[str, Any] | None, key: str = "energy_j") -> float | None:
    """Sum of the components that have a value; None if none has (unmeasured is not zero)."""
    values = [get(v, key) for v in (energy or {}).values() if get(v, key) is not None]
    return float(sum(values)) if values else None


def component_methods(cells: list[Any], component: str) -> tuple[set[str], str | None]:
    """The method labels that measured ``component`` over ``cells``, and the first reason given for any of them."""
    methods, reason = set(), None
    for c in cells:
        value = c.energy.get(component)
        if value is not None:
            methods.add(value.method)
            reason = reason or value.reason
    return methods, reason


def model_info(doc: Any, model: str) -> dict[str, Any]:
    """What the document records about ``model`` (paper label, params, info, pin); empty when nothing."""
    return dict((get(doc, "models") or {}).get(model) or {})


def device_count(doc: Any, model: str) -> float:
    """How many accelerators a model used (the paper's regression term). Looked up under the names backends use;
    one device when nothing says otherwise (a CPU or a single GPU)."""
    info = model_info(doc, model)
    for where in (info.get("params") or {}, info.get("info") or {}, info):
        for key in ("gpus", "n_gpus", "num_gpus", "tensor_parallel_size", "devices"):
            value = where.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
    return 1.0


def serving_mode(doc: Any, model: str, cell: Any = None) -> str | None:
    """'sequential' or 'batched' where a cell or the model's params/info say so; None where nothing does."""
    for where in (cell, *((model_info(doc, model).get(k) or {}) for k in ("params", "info"))):
        if where is None:
            continue
        for key in SERVING_KEYS:
            value = get(where, key)
            if isinstance(value, str) and value.lower() in ("sequential", "batched"):
                return value.lower()
    return None


def catalog_dataset(name: str) -> Any:
    """The kit's catalog entry of data set ``name`` (paper name, test split size); None for one it does not know."""
    try:
        from bench.catalog.datasets import DATASETS
    except ImportError:  # pragma: no cover - part of the package
        return None
    return DATASETS.get(name)


def dataset_names(doc: Any) -> list[str]:
    """Data sets in suite order, then any that only the cells mention."""
    names = list((get(doc, "suite") or {}).get("datasets") or [])
    for c in get(doc, "cells") or []:
        if c.dataset not in names:
            names.append(c.dataset)
    return names
