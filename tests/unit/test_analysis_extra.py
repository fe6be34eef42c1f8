"""The report's aggregates against brute force, numpy and scipy on known data: Pareto front, OLS, per-text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.analysis import component_summaries, energy_duration_regression, ols, pareto_front, per_text
from tests import factories


def _brute_force_front(points: list[tuple[float, float]]) -> set[int]:
    """Non-dominated points by definition: nobody at most as costly and at least as good, and better in one."""
    front = set()
    for i, (x, y) in enumerate(points):
        dominated = any((xo <= x and yo >= y) and (xo < x or yo > y) for j, (xo, yo) in enumerate(points) if j != i)
        if not dominated:
            front.add(i)
    return front


def test_pareto_front_on_a_known_example() -> None:
    #           cheap+bad   dominated    mid          dominated    expensive+best
    points = [(0.01, 0.55), (0.02, 0.50), (0.1, 0.80), (0.5, 0.79), (10.0, 0.91)]
    assert pareto_front(points) == [0, 2, 4]


def test_pareto_front_ties_and_same_cost() -> None:
    # Same cost, different accuracy: only the better one. Exact duplicates: both (neither beats the other).
    assert pareto_front([(1.0, 0.5), (1.0, 0.7)]) == [1]
    assert sorted(pareto_front([(1.0, 0.7), (1.0, 0.7), (2.0, 0.6)])) == [0, 1]
    # Same accuracy, more cost: dominated.
    assert pareto_front([(1.0, 0.7), (2.0, 0.7)]) == [0]
    assert pareto_front([]) == []


def test_pareto_front_matches_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 15))
        # Rounded values make ties common, where a sloppy front goes wrong.
        points = [(float(x), float(y)) for x, y in zip(rng.integers(1, 6, n), rng.integers(1, 6, n) / 5, strict=True)]
        assert set(pareto_front(points)) == _brute_force_front(points)


def test_ols_matches_numpy_lstsq_and_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    duration = rng.uniform(1, 100, 40)
    energy = 3.0 + 0.25 * duration + rng.normal(0, 1.0, 40)
    fit = ols({"duration_s": duration}, energy)
    expected = stats.linregress(duration, energy)
    assert fit.coefficients["duration_s"] == pytest.approx(expected.slope)
    assert fit.coefficients["const"] == pytest.approx(expected.intercept)
    assert fit.r2 == pytest.approx(expected.rvalue**2)
    assert fit.n == 40 and fit.dropped == ()
    assert fit.predict({"duration_s": 10.0}) == pytest.approx(expected.intercept + 10 * expected.slope)


def test_paper_regression_with_devices_matches_lstsq() -> None:
    rng = np.random.default_rng(2)
    duration = rng.uniform(5, 300, 60)
    devices = rng.choice([1, 2, 4], 60).astype(float)
    energy = -6.2 + 0.097 * duration - 0.5 * devices + 0.09 * duration * devices + rng.normal(0, 0.5, 60)
    fit = energy_duration_regression(duration, energy, devices)
    design = np.column_stack([np.ones(60), duration, devices, duration * devices])
    coef, *_ = np.linalg.lstsq(design, energy, rcond=None)
    got = [fit.coefficients[k] for k in ("const", "duration_s", "devices", "duration_x_devices")]
    assert got == pytest.approx(coef.tolist())
    residual = energy - design @ coef
    r2 = 1 - residual @ residual / np.sum((energy - energy.mean()) ** 2)
    assert fit.r2 == pytest.approx(r2)
    assert fit.adj_r2 == pytest.approx(1 - (1 - r2) * (60 - 1) / (60 - 3 - 1))


def test_constant_devices_are_dropped_not_fitted_arbitrarily() -> None:
    duration = [1.0, 2.0, 3.0, 4.0]
    energy = [10.0, 20.0, 30.0, 40.0]
    fit = energy_duration_regression(duration, energy, [1.0] * 4)
    assert fit.dropped == ("devices", "duration_x_devices")
    assert fit.coefficients["duration_s"] == pytest.approx(10.0)
    assert fit.coefficients["const"] == pytest.approx(0.0, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0)


def test_ols_degenerate_inputs() -> None:
    flat = ols({"x": [1.0, 2.0, 3.0]}, [5.0, 5.0, 5.0])
    assert flat.r2 is None  # no variance to explain: R² undefined, not 1 or 0
    assert ols({"x": []}, []).coefficients == {}
    with pytest.raises(ValueError, match="3 values for 2"):
        ols({"x": [1.0, 2.0, 3.0]}, [1.0, 2.0])
    two = ols({"x": [1.0, 2.0]}, [1.0, 3.0])
    assert two.adj_r2 is None  # zero residual degrees of freedom


def test_per_text_normalization() -> None:
    norm = per_text(200, duration_s=2.0, energy_j=72.0, net_energy_j=36.0, accuracy_mean=0.5)
    assert norm is not None
    assert norm.s_per_text == pytest.approx(0.01)
    assert norm.j_per_text == pytest.approx(0.36)
    assert norm.net_j_per_text == pytest.approx(0.18)
    assert norm.wh_per_1000_texts == pytest.approx(0.36 * 1000 / 3600)
    assert norm.j_per_correct == pytest.approx(72.0 / 100)
    assert per_text(0, 1.0, 1.0) is None
    partial = per_text(10, None, None)
    assert partial is not None and partial.j_per_text is None and partial.j_per_correct is None


def test_component_summaries_skip_failed_and_unmeasured() -> None:
    cells = [factories.cell(r, energy=factories.energy(cpu_j=c)) for r, c in enumerate((1.0, 3.0))]
    failed = factories.cell(2).model_copy(update={"status": "failed"})
    gross, net = component_summaries([*cells, failed], "cpu")
    assert gross is not None and gross.n == 2 and gross.mean == pytest.approx(2.0)
    assert net is None  # the factory's values carry no idle subtraction
    assert component_summaries(cells, "gpu") == (None, None)  # null with a reason is not zero


@pytest.mark.parametrize("n", [1, 2, 3])
def test_pareto_front_is_sorted_by_cost(n: int) -> None:
    for perm in itertools.permutations([(3.0, 0.9), (1.0, 0.5), (2.0, 0.7)][:n]):
        front = pareto_front(list(perm))
        assert [perm[i][0] for i in front] == sorted(perm[i][0] for i in front)
