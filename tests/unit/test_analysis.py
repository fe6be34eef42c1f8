"""Aggregates against numpy/scipy/sklearn on known data."""

from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import accuracy, macro_f1, summarize, t_quantile_975


def test_accuracy_counts_invalid_as_wrong() -> None:
    assert accuracy([0, 1, 1, 0], [0, 1, -1, 1]) == 0.5
    with pytest.raises(ValueError):
        accuracy([0, 1], [0])


def test_macro_f1_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for _ in range(20):
        truth = rng.integers(0, 4, 50).tolist()
        pred = rng.integers(0, 5, 50).tolist()
        assert macro_f1(truth, pred) == pytest.approx(metrics.f1_score(truth, pred, average="macro"))


def test_t_quantiles_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 5, 9, 30):
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-3)


def test_summary_ci_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    data = [0.55, 0.61, 0.58, 0.6, 0.57, 0.62, 0.59, 0.56, 0.6, 0.58]
    s = summarize(data)
    assert s is not None and s.n == 10
    low, high = stats.t.interval(0.95, len(data) - 1, loc=np.mean(data), scale=stats.sem(data))
    assert s.mean == pytest.approx(np.mean(data))
    assert s.std == pytest.approx(np.std(data, ddof=1))
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert s.cv == pytest.approx(s.std / s.mean)


def test_summary_ignores_nulls_and_handles_one_value() -> None:
    assert summarize([None, None]) is None
    one = summarize([2.0, None])
    assert one is not None and one.n == 1 and one.ci95_low == one.ci95_high == 2.0
