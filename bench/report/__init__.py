"""The HTML report of a run and the comparison of runs: one self-contained file each (inline CSS and SVG).

Rooms: ``format`` (numbers, badges, tables as data, defensive document readers), ``sections`` (one module per
section of the report), ``compare`` (the comparison of runs), ``page`` (templates, rendering, writing), ``svg``
(the charts). Importing this package is light: the pages' modules load on first use of the names below, and Jinja2
when a page is rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report.page import render_compare, render_report, write_compare, write_report

__all__ = ["render_compare", "render_report", "write_compare", "write_report"]


def __getattr__(name: str) -> Any:
    """``render_report`` and the other page functions, imported from ``bench.report.page`` when first asked for."""
    if name in __all__:
        from bench.report import page

        value = getattr(page, name)
        globals()[name] = value  # asked once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
