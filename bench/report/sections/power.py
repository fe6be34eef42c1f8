"""GPU power limits and locked clocks (issue 26): for a model run under several ``power_limit_w`` (or
``gpu_clock_mhz``) values on one data set, energy per text against latency, one point per setting, with a table of
what each setting saved and cost against the highest one (``_serving.html.j2``, section ``power-limits``).

Latency is the median per request where the cells recorded it (LLMs: ``Cell.serving``); for other models, which
record no per-request latency, the seconds per text of a pass (the pass's duration / its texts), and the axis says
which."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from bench.analysis import ModelRow
from bench.report import svg
from bench.report.format import Column, Table, Td, fixed, get, num, pct

#: The serving keys a device setting is made of, in the order the table shows them.
DEVICE_KEYS = ("power_limit_w", "gpu_clock_mhz")


@dataclass
class PowerView:
    """One model on one data set under several device settings: energy per text against latency, and a table."""

    title: str
    plot: Markup
    table: Table


def _split(model: str) -> tuple[str, dict[str, Any]] | None:
    """(the model's name without its device keys, its device settings); None for a name this kit cannot parse."""
    from bench.catalog.models import serving_name, split_serving

    try:
        base, config = split_serving(model)
    except Exception:
        return None
    rest = {k: v for k, v in config.items() if k not in DEVICE_KEYS}
    return serving_name(base, rest), {k: config[k] for k in DEVICE_KEYS if k in config}


def _texts(doc: Any, dataset: str, model: str) -> int | None:
    """Texts in one pass of the model's cells on ``dataset`` (their predictions), None where none is stored."""
    for c in get(doc, "cells") or []:
        if c.dataset == dataset and c.model == model and c.status == "ok" and c.predictions:
            return len(c.predictions)
    return None


def _latency(doc: Any, r: ModelRow) -> tuple[float | None, bool]:
    """(latency in s, whether it is the median per request) of one row."""
    if r.latency_median_s is not None:
        return r.latency_median_s, True
    n = _texts(doc, r.dataset, r.model)
    if r.duration_s is None or not n:
        return None, False
    return r.duration_s.mean / n, False


def _setting_label(settings: dict[str, Any]) -> str:
    parts = []
    if "power_limit_w" in settings:
        parts.append(f"{settings['power_limit_w']} W")
    if "gpu_clock_mhz" in settings:
        parts.append(f"{settings['gpu_clock_mhz']} MHz")
    return ", ".join(parts)


def power_views(rows: list[ModelRow], doc: Any = None) -> list[PowerView]:
    """Per model (its serving configuration without the device keys) and data set run under at least two device
    settings: one point per setting (energy per text against latency), and a table of each setting's energy per
    text, latency, accuracy and change against the highest setting. Empty when no run compares settings."""
    groups: dict[tuple[str, str], list[tuple[dict[str, Any], ModelRow]]] = defaultdict(list)
    for r in rows:
        split = _split(r.model)
        if split is None or not split[1] or not r.j_per_text:
            continue
        groups[(r.dataset, split[0])].append((split[1], r))
    views = []
    for (dataset, base), members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (-m[0].get("power_limit_w", 0), -m[0].get("gpu_clock_mhz", 0)))
        views.append(_view(doc, dataset, base, members))
    return views


def _view(doc: Any, dataset: str, base: str, members: list[tuple[dict[str, Any], ModelRow]]) -> PowerView:
    top_settings, top = members[0]
    top_latency, per_request = _latency(doc, top)
    points, table_rows = [], []
    for settings, r in members:
        label = _setting_label(settings)
        latency, _ = _latency(doc, r)
        accuracy = r.accuracy.mean if r.accuracy else None
        saved = 1 - r.j_per_text / top.j_per_text if top.j_per_text and r.j_per_text is not None else None
        slower = latency / top_latency if latency is not None and top_latency else None
        if latency is not None and r.j_per_text:
            points.append(
                svg.Point(
                    latency,
                    r.j_per_text,
                    label=label,
                    tip=f"{label}: {num(r.j_per_text)} J per text, latency {num(latency)} s, "
                    f"accuracy {fixed(accuracy)}",
                )
            )
        table_rows.append(
            [
                Td(label, cls="name"),
                Td(num(r.j_per_text)),
                Td(num(latency)),
                Td(fixed(accuracy)),
                Td(pct(saved, 0) if r is not top else "—"),
                Td(num(slower, 2) if r is not top and slower is not None else "—"),
            ]
        )
    x_label = "median latency per request, s" if per_request else "seconds per text (a pass / its texts)"
    title = f"{base} on {dataset}: energy per text against latency, one point per setting"
    plot = svg.scatter(
        [svg.Series("device settings", points, color=svg.PALETTE[1])],
        title=title,
        x_label=x_label,
        y_label="energy per text, J (gross)",
        label_points=True,
        legend=False,
    )
    columns = [
        Column("setting", numeric=False, title="power_limit_w / gpu_clock_mhz the cells ran under"),
        Column("energy", "J / text"),
        Column("latency", "s", title=x_label),
        Column("accuracy"),
        Column("energy saved", "%", title=f"against {_setting_label(top_settings)}"),
        Column("slower", "×", title=f"latency / the latency under {_setting_label(top_settings)}"),
    ]
    return PowerView(title, plot, Table(columns, table_rows))
