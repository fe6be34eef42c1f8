"""The HTML report of a run and the comparison of runs: one self-contained file each (inline CSS and SVG).

Importing this package is light; Jinja2 is imported when a page is rendered.
"""

from __future__ import annotations

from bench.report.render import render_compare, render_report, write_compare, write_report

__all__ = ["render_compare", "render_report", "write_compare", "write_report"]
