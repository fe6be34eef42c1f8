"""The terminal summary says only what the data supports: one sample has no interval."""

from __future__ import annotations

import pytest

from bench.cli import main
from tests.golden import document_path


def test_a_model_run_once_shows_no_interval(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(document_path("cpu-default"))]) == 0
    lines = {line.split("│")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.count("│") > 3}
    assert "0.505 (n = 1)" in lines["smollm2-135m"] and "±" not in lines["smollm2-135m"]
    assert "0.630 ± 0.699" in lines["linear-bow"]  # two repetitions: mean ± the 95% CI's half width
