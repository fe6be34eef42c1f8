"""The time left in a run, from what each model's cells cost (bench.run.progress.Eta)."""

from __future__ import annotations

import pytest

from bench.results import Window
from bench.run.progress import Eta, format_duration
from tests.factories import cell, document


def _todo(**cells_per_model: int) -> list[tuple[str, str, int]]:
    return [(model, "toy", r) for model, n in cells_per_model.items() for r in range(n)]


def test_each_model_costs_what_its_own_cells_cost() -> None:
    """The case a new user met: fast cells first, then an LLM whose cells take far longer. After the fast model's
    cells, the LLM is not priced at the fast model's average."""
    eta = Eta(_todo(fast=3, llm=2), profile="cpu", min_window_s=2.0, floor_cell_s=2.0)
    eta.model_loaded("fast", 0.1)
    for _ in range(3):
        eta.cell_done("fast", "toy", 2.5)
    left = eta.remaining()
    assert left.lower_bound and left.untimed == ("llm",)
    assert left.seconds == pytest.approx(2 * 2.0)  # the floor, said to be one
    assert left.short() == "≥ 4 s" and "not timed yet: llm" in left.long()
    eta.model_loaded("llm", 30.0)
    eta.cell_done("llm", "toy", 90.0)
    left = eta.remaining()
    assert not left.lower_bound and left.seconds == pytest.approx(90.0)


def test_earlier_runs_of_the_profile_price_a_model_before_it_runs() -> None:
    """The second `make bench` knows what SmolLM2 cost in the first: cell (fit + warm-up + window) and load time."""
    llm_cells = [
        cell(
            0,
            model="llm",
            load_s=12.0,
            train_s=0.0,
            duration_s=80.0,
            window=Window(duration_s=80.0, loops=1, min_window_s=2.0),
        ),
        cell(
            1,
            model="llm",
            load_s=0.0,
            train_s=0.0,
            duration_s=80.0,
            window=Window(duration_s=80.0, loops=1, min_window_s=2.0),
        ),
    ]
    earlier = document(llm_cells, profile={"name": "cpu"}, settings={"min_window_s": 2.0})
    other_machine = document(
        [cell(0, model="llm", load_s=1.0, duration_s=1.0, window=Window(duration_s=1.0, loops=1, min_window_s=2.0))],
        profile={"name": "h100"},
        settings={"min_window_s": 2.0},
    )
    eta = Eta(_todo(llm=3), history=[earlier, other_machine], profile="cpu", min_window_s=2.0, floor_cell_s=2.0)
    left = eta.remaining()
    # per cell: fit 0 s + warm-up (8 texts: at most one pass of the 4 test texts, 80 s) + window 80 s; one load 12 s
    assert not left.lower_bound
    assert left.seconds == pytest.approx(3 * (0.0 + 80.0 + 80.0) + 12.0)
    eta.model_loaded("llm", 12.0)  # loaded now: its loading no longer counts
    assert eta.remaining().seconds == pytest.approx(3 * 160.0)


def test_runs_with_another_window_minimum_do_not_teach() -> None:
    earlier = document([cell(0, model="m")], profile={"name": "cpu"}, settings={"min_window_s": 0.2})
    eta = Eta(_todo(m=1), history=[earlier], profile="cpu", min_window_s=2.0, floor_cell_s=2.0)
    assert eta.remaining().untimed == ("m",)


def test_a_model_on_another_data_set_is_better_than_nothing() -> None:
    eta = Eta([("m", "a", 0), ("m", "b", 0)], profile="cpu", min_window_s=2.0, floor_cell_s=2.0)
    eta.model_loaded("m", 0.0)
    eta.cell_done("m", "a", 7.0)
    assert eta.remaining().seconds == pytest.approx(7.0) and not eta.remaining().lower_bound


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0 s"), (42, "42 s"), (185, "3 min 05 s"), (7620, "2 h 07 min")])
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_configured_model_keeps_its_configuration_in_the_log_lines() -> None:
    """`smollm2-135m[serving=batched,batch_size=4]` is not rich markup: without escaping, rich dropped the brackets and
    every configuration of the serving suite read `smollm2-135m` in the per-cell lines and the ETA."""
    import io

    from rich.console import Console

    from bench.run.progress import RunProgress

    configured = "smollm2-135m[serving=batched,batch_size=4]"
    other = "smollm2-135m[serving=scoring]"
    out = io.StringIO()
    console = Console(file=out, width=400, force_terminal=False)
    eta = Eta(_todo(**{configured: 1, other: 1}), profile="cpu", min_window_s=2.0, floor_cell_s=2.0)
    with RunProgress(console, 2, eta, enabled=True) as progress:
        progress.cell_finished(cell(0, model=configured, validity=["other processes used [60%]"]), 3.0)
    printed = out.getvalue()
    assert f"[1/2] {configured} · toy · rep 0" in printed
    assert f"not timed yet: {other}" in printed
    assert "other processes used [60%]" in printed
