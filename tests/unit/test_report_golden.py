"""The report and the comparison page render stored results byte for byte as they did when the pages were stored
(``tests/golden.py`` says which documents and how to update the pages after a deliberate change)."""

from __future__ import annotations

import difflib

import pytest

from tests.golden import DOCUMENTS, GENERATED, page_path, render_pages
from tests.report_stamp import fixed_stamp

PAGES = [f"{name}.report" for name in DOCUMENTS] + ["compare"]


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    with fixed_stamp(GENERATED):
        return render_pages()


@pytest.mark.parametrize("page", PAGES)
def test_page_is_byte_identical_to_the_stored_one(rendered: dict[str, str], page: str) -> None:
    stored = page_path(page).read_text(encoding="utf-8")
    if rendered[page] != stored:
        diff = "".join(
            list(
                difflib.unified_diff(
                    stored.splitlines(keepends=True),
                    rendered[page].splitlines(keepends=True),
                    fromfile=f"stored {page}",
                    tofile=f"rendered {page}",
                )
            )[:60]
        )
        pytest.fail(f"{page} differs from {page_path(page)} (python -m tests.golden --update if deliberate):\n{diff}")


def test_the_stamp_is_what_varies() -> None:
    """The fixed stamp is in the page, so the comparison above is not blind to the real one."""
    assert GENERATED in page_path("compare").read_text(encoding="utf-8")


def test_a_page_does_not_depend_on_what_was_rendered_before() -> None:
    """SVG ids are numbered per page: the same page rendered twice in one process is the same bytes."""
    with fixed_stamp(GENERATED):
        first = render_pages()
        second = render_pages()
    assert first == second
