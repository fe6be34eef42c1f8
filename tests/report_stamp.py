"""Fix the report's "rendered by" stamp (kit version and time of rendering) so pages can be compared byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock


@contextmanager
def fixed_stamp(stamp: str) -> Iterator[None]:
    with mock.patch("bench.report.page._generated", lambda: stamp):
        yield
