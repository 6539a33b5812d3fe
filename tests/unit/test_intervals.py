"""Percentile intervals from order statistics: the textbook ranks, their coverage, and the
same values however large the sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infermeter.metrics import intervals
from infermeter.metrics.intervals import (
    quantile_interval_ranks,
    quantile_intervals,
    samples_to_bound,
)


@pytest.mark.parametrize(
    ("n", "q", "want"),
    [
        # the median's 95 % interval, 1-based ranks in the tables: (2, 9), (40, 61)
        (10, 0.5, (1, 8)),
        (100, 0.5, (39, 60)),
        # five samples cannot bound a median at 95 % (each side 1/32 > 2.5 %); six can
        (5, 0.5, (None, None)),
        (6, 0.5, (0, 5)),
        # a p99's upper side needs 368 samples
        (367, 0.99, (358, None)),
        (368, 0.99, (359, 367)),
    ],
)
def test_ranks_are_the_textbook_ones(n: int, q: float, want: tuple) -> None:
    assert quantile_interval_ranks(n, q) == want


def test_each_side_leaves_at_most_its_share() -> None:
    """The exact ranks: the chance a side misses is at most 2.5 %, and one rank tighter
    would miss more often (computed from the binomial directly, not the module)."""
    for n, q in [(20, 0.5), (50, 0.9), (400, 0.99), (1000, 0.95)]:
        lo, hi = quantile_interval_ranks(n, q)
        pmf = [math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(n + 1)]
        cdf = np.cumsum(pmf)
        assert lo is not None and hi is not None
        assert cdf[lo] <= 0.025 < cdf[lo + 1]
        assert 1 - cdf[hi] <= 0.025 < 1 - cdf[hi - 1]


def test_coverage_holds_on_drawn_samples() -> None:
    rng = np.random.default_rng(7)
    truth = math.log(10.0)  # the exponential's 90th percentile
    hits = 0
    trials = 2000
    for _ in range(trials):
        lo, hi = quantile_intervals(rng.exponential(1.0, 60), [90.0])[0]
        hits += (lo is None or lo <= truth) and (hi is None or truth <= hi)
    assert hits / trials >= 0.93  # at least 95 % by construction; 2,000 draws wobble ±1 %


def test_normal_side_agrees_with_exact_at_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    for q in (0.5, 0.9, 0.99):
        exact = quantile_interval_ranks(150_000, q)
        monkeypatch.setattr(intervals, "EXACT_UP_TO", 0)
        approx = quantile_interval_ranks(150_000, q)
        monkeypatch.undo()
        assert all(p is not None for p in (*exact, *approx))
        assert abs(exact[0] - approx[0]) <= 3 and abs(exact[1] - approx[1]) <= 3, (q, exact)


def test_values_are_order_statistics_small_and_large(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(3).lognormal(3.0, 0.7, 5001)
    ordered = np.sort(values)
    got = quantile_intervals(values, [50.0, 99.0, 99.9])
    for (lo, hi), q in zip(got, (0.5, 0.99, 0.999), strict=True):
        r = quantile_interval_ranks(values.size, q)
        assert lo == (None if r[0] is None else ordered[r[0]])
        assert hi == (None if r[1] is None else ordered[r[1]])
    monkeypatch.setattr(intervals, "LARGE", 0)  # the in-place selection of large samples
    assert quantile_intervals(values, [50.0, 99.0, 99.9]) == got


def test_bounds_and_bad_arguments() -> None:
    assert samples_to_bound(0.5) == 6 and samples_to_bound(0.95) == 72
    assert quantile_intervals(np.array([]), [50.0]) == [(None, None)]
    # two samples: the p99 lies above both with chance 98 %, so the larger is its lower side
    assert quantile_intervals(np.array([4.0, 1.0]), [99.0]) == [(4.0, None)]
    for bad in [(0, 0.5), (10, 0.0), (10, 1.0)]:
        with pytest.raises(ValueError):
            quantile_interval_ranks(*bad)
