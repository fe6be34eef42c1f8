"""Hand-made inline SVG charts for the report: small, dependency-free, no JavaScript.

Every chart is a function that takes plain numbers and strings and returns ``Markup`` (safe to insert into a Jinja
template). All text that reaches the SVG — model names, axis labels, tooltips — goes through ``escape``: a model
named ``<script>`` is drawn as those characters, never run. Tooltips are SVG ``<title>`` elements, which browsers
show on hover without any script, and which print as nothing.

Coordinates are rounded to 0.1 px: a 1,000-point scatter stays around 100 kB and renders fast.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

#: Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale print (with markers).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999933")
#: One colour per energy component, the same in every chart of a page.
COMPONENT_COLORS = {"gpu": "#0072B2", "cpu": "#E69F00", "ram": "#009E73"}
MARKERS = ("circle", "square", "diamond", "triangle")

_LEGEND_PAD = 34.0  # marker, gap and trailing space around a legend label, px
#: Ids for <pattern>/<clipPath>, unique within a page (many SVGs share one HTML id namespace) and numbered from the
#: page's start, so a page's bytes do not depend on what the process rendered before it (``page_ids``).
#: Outside ``page_ids`` (a chart made on its own) one process-wide numbering keeps ids unique.
_ids: ContextVar[itertools.count[int] | None] = ContextVar("svg_ids", default=None)
_process_ids = itertools.count()


@contextmanager
def page_ids() -> Iterator[None]:
    """Number the SVG ids of the charts made inside from 0: wrap the rendering of one whole page in it."""
    token = _ids.set(itertools.count())
    try:
        yield
    finally:
        _ids.reset(token)


def _uid(prefix: str) -> str:
    return f"{prefix}{next(_ids.get() or _process_ids)}"


def _n(value: float) -> str:
    """A coordinate, short: 0.1 px is finer than any screen or printer needs."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def tick_label(value: float) -> str:
    """A tick label: plain decimals in the readable range, 10ⁿ or a×10ⁿ outside it."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e5:
        return f"{value:.6g}"
    exponent = math.floor(math.log10(magnitude))
    mantissa = value / 10**exponent
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    if math.isclose(mantissa, 1.0):
        return power
    return f"{mantissa:.3g}×{power}"


# --- scales -------------------------------------------------------------------------------------------------------


@dataclass
class Scale:
    """Maps a data interval onto a pixel interval, linearly or in log10."""

    lo: float
    hi: float
    px_lo: float
    px_hi: float
    log: bool = False
    ticks: list[float] = field(default_factory=list)

    def __call__(self, value: float) -> float:
        if self.log:
            value = math.log10(max(value, 1e-300))
            lo, hi = math.log10(self.lo), math.log10(self.hi)
        else:
            lo, hi = self.lo, self.hi
        frac = 0.5 if hi == lo else (value - lo) / (hi - lo)
        return self.px_lo + frac * (self.px_hi - self.px_lo)


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * magnitude:
            return mult * magnitude
    return 10 * magnitude


def linear_scale(
    values: Sequence[float],
    px_lo: float,
    px_hi: float,
    *,
    target_ticks: int = 5,
    zero: bool = False,
    clamp: tuple[float, float] | None = None,
) -> Scale:
    """A linear scale over ``values`` widened to round tick values (``zero``: include 0)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, target_ticks)
    lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    if clamp is not None:
        lo, hi = max(lo, clamp[0]), min(hi, clamp[1])
    ticks = []
    tick = math.ceil(lo / step - 1e-9) * step
    while tick <= hi + step * 1e-9:
        ticks.append(round(tick, 12))
        tick += step
    return Scale(lo, hi, px_lo, px_hi, False, ticks)


def log_scale(values: Sequence[float], px_lo: float, px_hi: float) -> Scale:
    """A log10 scale over the positive ``values``, widened to whole decades; ticks at decades (and 2, 5 within a
    decade when the data span at most two decades, so a short axis still has labels)."""
    positive = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not positive:
        positive = [1.0]
    lo_dec = math.floor(math.log10(min(positive)))
    hi_dec = math.ceil(math.log10(max(positive)))
    if hi_dec == lo_dec:
        hi_dec += 1
    decades = hi_dec - lo_dec
    ticks: list[float] = []
    stride = max(1, math.ceil(decades / 8))  # at most ~8 labelled decades on a long axis
    for dec in range(lo_dec, hi_dec + 1):
        if (dec - lo_dec) % stride == 0:
            ticks.append(10.0**dec)
        if decades <= 2 and dec < hi_dec:
            ticks.extend((2 * 10.0**dec, 5 * 10.0**dec))
    return Scale(10.0**lo_dec, 10.0**hi_dec, px_lo, px_hi, True, sorted(ticks))


# --- building blocks ----------------------------------------------------------------------------------------------


def _svg_open(width: int, height: int, title: str, css_class: str = "chart") -> list[str]:
    return [
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]


def _marker(shape: str, x: float, y: float, size: float, fill: str, stroke: str, tip: str) -> str:
    tip_el = f"<title>{escape(tip)}</title>" if tip else ""
    attrs = f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"'
    if shape == "square":
        return f'<rect x="{_n(x - size)}" y="{_n(y - size)}" width="{_n(2 * size)}" height="{_n(2 * size)}" {attrs}>{tip_el}</rect>'  # noqa: E501
    if shape == "diamond":
        s = size * 1.3
        pts = f"{_n(x)},{_n(y - s)} {_n(x + s)},{_n(y)} {_n(x)},{_n(y + s)} {_n(x - s)},{_n(y)}"
        return f'<polygon points="{pts}" {attrs}>{tip_el}</polygon>'
    if shape == "triangle":
        s = size * 1.3
        pts = f"{_n(x)},{_n(y - s)} {_n(x + s)},{_n(y + s * 0.8)} {_n(x - s)},{_n(y + s * 0.8)}"
        return f'<polygon points="{pts}" {attrs}>{tip_el}</polygon>'
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(size)}" {attrs}>{tip_el}</circle>'


def _axes(
    out: list[str],
    xs: Scale,
    ys: Scale,
    x_label: str,
    y_label: str,
    left: float,
    top: float,
    right: float,
    bottom: float,
) -> None:
    """Grid lines, ticks, tick labels and axis titles."""
    out.append('<g class="grid">')
    for t in xs.ticks:
        x = xs(t)
        out.append(f'<line x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(bottom)}"/>')
    for t in ys.ticks:
        y = ys(t)
        out.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}"/>')
    out.append("</g>")
    out.append(
        f'<g class="axis"><line x1="{_n(left)}" y1="{_n(bottom)}" x2="{_n(right)}" y2="{_n(bottom)}"/>'
        f'<line x1="{_n(left)}" y1="{_n(top)}" x2="{_n(left)}" y2="{_n(bottom)}"/></g>'
    )
    out.append('<g class="ticks">')
    for t in xs.ticks:
        out.append(f'<text x="{_n(xs(t))}" y="{_n(bottom + 16)}" text-anchor="middle">{escape(tick_label(t))}</text>')
    for t in ys.ticks:
        out.append(f'<text x="{_n(left - 6)}" y="{_n(ys(t) + 4)}" text-anchor="end">{escape(tick_label(t))}</text>')
    out.append("</g>")
    out.append(
        f'<text class="axis-title" x="{_n((left + right) / 2)}" y="{_n(bottom + 36)}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text class="axis-title" transform="translate(14 {_n((top + bottom) / 2)}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )


def _legend(out: list[str], entries: Sequence[tuple[str, str, str]], x: float, y: float, width: float) -> float:
    """Legend entries (label, colour, marker) in rows from (x, y); returns the y below the legend."""
    cx, cy = x, y
    for label, color, shape in entries:
        text = label if len(label) <= 40 else label[:39] + "…"
        w = _LEGEND_PAD + 6.6 * len(text)
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 18
        if shape == "swatch":
            out.append(f'<rect x="{_n(cx)}" y="{_n(cy - 9)}" width="12" height="12" fill="{color}"/>')
        elif shape == "hatch":
            out.append(
                f'<rect x="{_n(cx)}" y="{_n(cy - 9)}" width="12" height="12" fill="{color}" fill-opacity="0.45" '
                f'stroke="{color}"/>'
            )
        elif shape == "solid":
            out.append(
                f'<line x1="{_n(cx)}" y1="{_n(cy - 3)}" x2="{_n(cx + 14)}" y2="{_n(cy - 3)}" '
                f'stroke="{color}" stroke-width="2"/>'
            )
        elif shape == "line":
            out.append(
                f'<line x1="{_n(cx)}" y1="{_n(cy - 3)}" x2="{_n(cx + 14)}" y2="{_n(cy - 3)}" '
                f'stroke="{color}" stroke-width="2" stroke-dasharray="5 3"/>'
            )
        else:
            out.append(_marker(shape, cx + 6, cy - 3, 4.5, color, color, ""))
        out.append(f'<text class="legend" x="{_n(cx + 18)}" y="{_n(cy + 1)}">{escape(text)}</text>')
        cx += w
    return cy + 14


# --- charts -------------------------------------------------------------------------------------------------------


@dataclass
class Point:
    """One plotted point; ``label`` is drawn next to it (when the chart has few points), ``tip`` on hover."""

    x: float
    y: float
    label: str = ""
    tip: str = ""
    highlight: bool = False  # drawn filled (e.g. on the Pareto front); others hollow


@dataclass
class Series:
    """Points of one colour and marker, with a legend entry."""

    name: str
    points: list[Point]
    color: str = PALETTE[0]
    marker: str = "circle"
    #: optional fitted line, as x/y pairs in data units (drawn as a dashed polyline)
    line: list[tuple[float, float]] = field(default_factory=list)
    #: draw the highlighted points joined as a step front (lower cost and higher score to the left)
    front: bool = False


def scatter(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log: bool = False,
    y_log: bool = False,
    y_clamp: tuple[float, float] | None = None,
    x_domain: Sequence[float] = (),
    y_domain: Sequence[float] = (),
    width: int = 560,
    height: int = 360,
    label_points: bool | None = None,
    legend: bool = True,
) -> Markup:
    """A scatter plot with optional log axes, fitted lines and Pareto fronts.

    ``x_domain`` / ``y_domain`` add values the axes must cover (to put several charts on one scale).
    Point labels are drawn when there are at most 24 points (else they would overprint); tooltips always.
    """
    pts = [p for s in series for p in s.points if _plottable(p.x, x_log) and _plottable(p.y, y_log)]
    line_xy = [xy for s in series for xy in s.line]
    n_legend = len(series) if (legend and len(series) > 1) or any(s.line or s.front for s in series) else 0
    legend_rows = (
        0 if not n_legend else 1 + int(sum(_LEGEND_PAD + 6.6 * min(len(s.name), 40) for s in series) // (width - 80))
    )
    left, right, top = 64.0, width - 28.0, 12.0
    bottom = height - 46.0 - 18 * legend_rows
    xs_vals = [p.x for p in pts] + [x for x, _ in line_xy] + list(x_domain)
    ys_vals = [p.y for p in pts] + list(y_domain)
    xs = log_scale(xs_vals, left, right) if x_log else linear_scale(xs_vals, left, right)
    ys = log_scale(ys_vals, bottom, top) if y_log else linear_scale(ys_vals, bottom, top, clamp=y_clamp)
    out = _svg_open(width, height, title)
    if not pts:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="empty">no data</text></svg>')
        return Markup("".join(out))
    _axes(out, xs, ys, x_label, y_label, left, top, right, bottom)
    clip = _uid("clip")
    out.append(
        f'<clipPath id="{clip}"><rect x="{_n(left)}" y="{_n(top)}" width="{_n(right - left)}" '
        f'height="{_n(bottom - top)}"/></clipPath>'
    )
    show_labels = label_points if label_points is not None else len(pts) <= 60
    labelled: list[tuple[float, float, Point]] = []
    for s in series:
        visible = [p for p in s.points if _plottable(p.x, x_log) and _plottable(p.y, y_log)]
        if s.line:
            line_pts = [
                (xs(x), ys(y)) for x, y in s.line if _plottable(x, x_log) and _plottable(y, y_log)
            ]  # a fitted line may dip below zero where a log axis cannot go: those parts are left out
            if len(line_pts) >= 2:
                path = " ".join(f"{_n(x)},{_n(y)}" for x, y in line_pts)
                out.append(
                    f'<polyline clip-path="url(#{clip})" points="{path}" fill="none" stroke="{s.color}" '
                    'stroke-width="2" stroke-dasharray="6 4"/>'
                )
        if s.front:
            front = sorted((p for p in visible if p.highlight), key=lambda p: p.x)
            if len(front) >= 2:
                # A staircase: each front point is best until the next cheaper-but-better one takes over.
                steps = [f"{_n(xs(front[0].x))},{_n(ys(front[0].y))}"]
                for a, b in itertools.pairwise(front):
                    steps.append(f"{_n(xs(b.x))},{_n(ys(a.y))}")
                    steps.append(f"{_n(xs(b.x))},{_n(ys(b.y))}")
                out.append(
                    f'<polyline class="front" points="{" ".join(steps)}" fill="none" stroke="{s.color}" '
                    'stroke-width="1.5" stroke-opacity="0.6"/>'
                )
        out.append('<g class="series">')
        for p in visible:
            x, y = xs(p.x), ys(p.y)
            fill = s.color if p.highlight or not s.front else "#fff"
            out.append(_marker(s.marker, x, y, 4.5 if len(pts) <= 200 else 3, fill, s.color, p.tip))
        out.append("</g>")
        if show_labels:
            labelled.extend((xs(p.x), ys(p.y), p) for p in visible if p.label)
    if labelled:
        out.append(_place_labels(labelled, left, right, top, bottom))
    if n_legend:
        entries = [(s.name, s.color, "line" if s.line and not s.points else s.marker) for s in series]
        if any(s.line and s.points for s in series):
            entries.append(("least-squares fit", "#555", "line"))
        _legend(out, entries, left, bottom + 58, right - left)
    out.append("</svg>")
    return Markup("".join(out))


ENERGY_PER_TEXT_LABEL = "energy per text, J (gross, log scale)"


def energy_accuracy_scatter(series: Sequence[Series], *, title: str, **options: Any) -> Markup:
    """Accuracy against energy per text on a log x axis, the kit's (and the paper's) headline chart.

    One definition of its axes for the report, the comparison page and the leaderboard, so they read alike.
    """
    return scatter(
        series,
        title=title,
        x_label=ENERGY_PER_TEXT_LABEL,
        y_label="accuracy",
        x_log=True,
        y_clamp=(0.0, 1.0),
        **options,
    )


@dataclass
class Timeline:
    """One component's power over a window: mean power per equal bin from ``t0_s``, and its idle level (W)."""

    name: str
    t0_s: float
    interval_s: float
    watts: list[float]
    color: str = PALETTE[0]
    idle_w: float | None = None
    tip: str = ""


def timeline(
    lines: Sequence[Timeline],
    *,
    title: str,
    x_label: str = "time since the window opened, s",
    y_label: str = "power, W",
    width: int = 560,
    height: int = 280,
) -> Markup:
    """Power over time: each line a step curve (its bins' mean power), its idle level a dashed line of its colour.

    The y axis starts at zero, so a step's height reads as the share of the draw it is.
    """
    drawn = [ln for ln in lines if ln.watts and ln.interval_s > 0]
    entries: list[tuple[str, str, str]] = []
    for ln in drawn:
        entries.append((ln.name, ln.color, "solid"))
        if ln.idle_w is not None:
            entries.append((f"{ln.name} idle {tick_label(round(ln.idle_w, 3))} W", ln.color, "line"))
    legend_rows = (
        1 + int(sum(_LEGEND_PAD + 6.6 * min(len(e[0]), 40) for e in entries) // (width - 80)) if entries else 0
    )
    left, right, top = 64.0, width - 28.0, 12.0
    bottom = height - 46.0 - 18 * legend_rows
    out = _svg_open(width, height, title)
    if not drawn:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="empty">no data</text></svg>')
        return Markup("".join(out))
    ends = [ln.t0_s + ln.interval_s * len(ln.watts) for ln in drawn]
    xs = linear_scale([min(ln.t0_s for ln in drawn), max(ends)], left, right)
    ys_values = [w for ln in drawn for w in ln.watts] + [ln.idle_w for ln in drawn if ln.idle_w is not None]
    ys = linear_scale(ys_values, bottom, top, zero=True)
    _axes(out, xs, ys, x_label, y_label, left, top, right, bottom)
    for ln in drawn:
        steps: list[str] = []
        for k, w in enumerate(ln.watts):
            a, b = ln.t0_s + k * ln.interval_s, ln.t0_s + (k + 1) * ln.interval_s
            steps.append(f"{_n(xs(a))},{_n(ys(w))} {_n(xs(b))},{_n(ys(w))}")
        tip = f"<title>{escape(ln.tip)}</title>" if ln.tip else ""
        out.append(
            f'<polyline class="power" points="{" ".join(steps)}" fill="none" stroke="{ln.color}" '
            f'stroke-width="1.8">{tip}</polyline>'
        )
        if ln.idle_w is not None:
            y = ys(ln.idle_w)
            out.append(
                f'<line class="idle" x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" stroke="{ln.color}" '
                f'stroke-width="1.2" stroke-dasharray="5 3"><title>{escape(ln.name)} idle: '
                f"{escape(tick_label(round(ln.idle_w, 3)))} W</title></line>"
            )
    _legend(out, entries, left, bottom + 58, right - left)
    out.append("</svg>")
    return Markup("".join(out))


def _place_labels(
    labelled: Sequence[tuple[float, float, Point]], left: float, right: float, top: float, bottom: float
) -> str:
    """Point labels placed greedily where they overlap neither another label nor a marker; highlighted points
    (the Pareto front) first. A label with no free spot is left out: its point still has its hover tooltip."""
    char_w, text_h = 6.0, 11.0  # at the 10.5 px label font
    markers = [(x - 5, y - 5, x + 5, y + 5) for x, y, _ in labelled]
    placed: list[tuple[float, float, float, float]] = []
    out = ['<g class="labels">']
    for x, y, p in sorted(labelled, key=lambda t: not t[2].highlight):
        w = char_w * len(p.label)
        for dx, dy, anchor in ((8, -6, "start"), (-8, -6, "end"), (8, 13, "start"), (-8, 13, "end")):
            x0 = x + dx if anchor == "start" else x + dx - w
            box = (x0, y + dy - text_h + 2, x0 + w, y + dy + 2)
            if box[0] < left or box[2] > right or box[1] < top or box[3] > bottom:
                continue
            if any(_overlap(box, other) for other in placed) or any(
                _overlap(box, m) for m in markers if not (m[0] < x < m[2] and m[1] < y < m[3])
            ):
                continue
            placed.append(box)
            out.append(f'<text x="{_n(x + dx)}" y="{_n(y + dy)}" text-anchor="{anchor}">{escape(p.label)}</text>')
            break
    out.append("</g>")
    return "".join(out)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _plottable(value: float | None, log: bool) -> bool:
    return value is not None and math.isfinite(value) and (value > 0 or not log)


def share_bars(
    categories: Sequence[str],
    parts: dict[str, Sequence[float | None]],
    *,
    title: str,
    totals_text: Sequence[str],
    hatched: dict[str, Sequence[bool]] | None = None,
    tips: dict[str, Sequence[str]] | None = None,
    width: int = 560,
) -> Markup:
    """Horizontal 100% stacked bars: each category's energy split into ``parts`` (gpu/cpu/ram), the absolute total
    written at the right. Shares rather than absolute lengths because totals across models span orders of
    magnitude; the split is what this chart is for. ``hatched`` marks estimated parts (drawn pale with an outline).
    """
    label_w = min(200.0, 20 + 6.6 * max((len(c) for c in categories), default=4))
    total_w = 96.0
    left, right, top = label_w, width - total_w, 8.0
    bar_h, gap = 16.0, 8.0
    height = int(top + len(categories) * (bar_h + gap) + 62)
    out = _svg_open(width, height, title)
    xs = Scale(0.0, 1.0, left, right, False, [0, 0.25, 0.5, 0.75, 1.0])
    bottom = top + len(categories) * (bar_h + gap)
    out.append('<g class="grid">')
    for t in xs.ticks:
        out.append(f'<line x1="{_n(xs(t))}" y1="{_n(top)}" x2="{_n(xs(t))}" y2="{_n(bottom)}"/>')
    out.append('</g><g class="ticks">')
    for t in xs.ticks:
        out.append(f'<text x="{_n(xs(t))}" y="{_n(bottom + 14)}" text-anchor="middle">{int(t * 100)}%</text>')
    out.append("</g>")
    for i, category in enumerate(categories):
        y = top + i * (bar_h + gap)
        values = {k: (v[i] or 0.0) for k, v in parts.items()}
        total = sum(values.values())
        name = category if len(category) <= 30 else category[:29] + "…"
        out.append(
            f'<text class="cat" x="{_n(left - 6)}" y="{_n(y + bar_h - 4)}" text-anchor="end">{escape(name)}'
            f"<title>{escape(category)}</title></text>"
        )
        x0 = 0.0
        for key, value in values.items():
            if total <= 0 or value <= 0:
                continue
            share = value / total
            color = COMPONENT_COLORS.get(key, PALETTE[len(out) % len(PALETTE)])
            pale = bool(hatched and hatched.get(key, [False] * len(categories))[i])
            style = f'fill="{color}" fill-opacity="0.45" stroke="{color}"' if pale else f'fill="{color}"'
            tip = (tips or {}).get(key, [""] * len(categories))[i] or f"{key}: {share:.0%}"
            out.append(
                f'<rect x="{_n(xs(x0))}" y="{_n(y)}" width="{_n(xs(x0 + share) - xs(x0))}" height="{_n(bar_h)}" '
                f"{style}><title>{escape(tip)}</title></rect>"
            )
            x0 += share
        if total <= 0:
            out.append(f'<text class="empty" x="{_n(left + 4)}" y="{_n(y + bar_h - 4)}">not measured</text>')
        out.append(f'<text class="total" x="{_n(right + 6)}" y="{_n(y + bar_h - 4)}">{escape(totals_text[i])}</text>')
    entries = []
    for key in parts:
        color = COMPONENT_COLORS.get(key, "#777")
        pale = bool(hatched and any(hatched.get(key, [])))
        entries.append((key + (" (estimated)" if pale else ""), color, "hatch" if pale else "swatch"))
    _legend(out, entries, left, bottom + 36, right - left)
    out.append("</svg>")
    return Markup("".join(out))


def grouped_bars(
    categories: Sequence[str],
    groups: dict[str, Sequence[float | None]],
    *,
    title: str,
    x_label: str,
    log: bool = True,
    value_text: dict[str, Sequence[str]] | None = None,
    x_domain: Sequence[float] = (),
    width: int = 560,
) -> Markup:
    """Horizontal grouped bars: for each category (a model), one bar per group (a run, a serving mode).
    Log scale by default, so values orders of magnitude apart remain visible; ``x_domain`` puts several charts on
    one scale."""
    label_w = min(200.0, 20 + 6.6 * max((len(c) for c in categories), default=4))
    left, right, top = label_w, width - 20.0, 8.0
    n_groups = max(1, len(groups))
    bar_h = 12.0 if n_groups > 1 else 16.0
    block = n_groups * bar_h + 10
    bottom = top + len(categories) * block
    legend_rows = 1 + int(sum(_LEGEND_PAD + 6.6 * min(len(g), 40) for g in groups) // (right - left))
    height = int(bottom + 44 + 18 * legend_rows)
    values = [v for vs in groups.values() for v in vs if v is not None] + list(x_domain)
    xs = log_scale(values, left, right) if log else linear_scale(values, left, right, zero=True)
    out = _svg_open(width, height, title)
    out.append('<g class="grid">')
    for t in xs.ticks:
        out.append(f'<line x1="{_n(xs(t))}" y1="{_n(top)}" x2="{_n(xs(t))}" y2="{_n(bottom)}"/>')
    out.append('</g><g class="ticks">')
    for t in xs.ticks:
        out.append(f'<text x="{_n(xs(t))}" y="{_n(bottom + 14)}" text-anchor="middle">{escape(tick_label(t))}</text>')
    out.append("</g>")
    out.append(
        f'<text class="axis-title" x="{_n((left + right) / 2)}" y="{_n(bottom + 32)}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    base = xs.px_lo
    for i, category in enumerate(categories):
        y0 = top + i * block
        name = category if len(category) <= 30 else category[:29] + "…"
        out.append(
            f'<text class="cat" x="{_n(left - 6)}" y="{_n(y0 + n_groups * bar_h / 2 + 4)}" text-anchor="end">'
            f"{escape(name)}<title>{escape(category)}</title></text>"
        )
        for g, (group, vals) in enumerate(groups.items()):
            value = vals[i]
            y = y0 + g * bar_h
            color = PALETTE[g % len(PALETTE)]
            text = (value_text or {}).get(group, [""] * len(categories))[i]
            if value is None or (log and value <= 0):
                out.append(f'<text class="empty" x="{_n(base + 4)}" y="{_n(y + bar_h - 2)}">— {escape(group)}</text>')
                continue
            w = max(1.0, xs(value) - base)
            out.append(
                f'<rect x="{_n(base)}" y="{_n(y + 1)}" width="{_n(w)}" height="{_n(bar_h - 2)}" fill="{color}">'
                f"<title>{escape(group)}: {escape(text or tick_label(value))}</title></rect>"
            )
    _legend(
        out, [(g, PALETTE[i % len(PALETTE)], "swatch") for i, g in enumerate(groups)], left, bottom + 54, right - left
    )
    out.append("</svg>")
    return Markup("".join(out))
