"""Fix the report's "rendered by" stamp (kit version and time of rendering) so pages can be compared byte for byte."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock


@contextmanager
def fixed_stamp(stamp: str) -> Iterator[None]:
    # SVG clip/pattern ids come from one counter per process: start it afresh, as in the process that stored the pages,
    # so the pages do not depend on how many charts other tests rendered first.
    with (
        mock.patch("bench.report.page._generated", lambda: stamp),
        mock.patch("bench.report.svg._ids", itertools.count()),
    ):
        yield
