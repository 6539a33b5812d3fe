"""How far a percentile of a sample can be trusted: its distribution-free interval (pure).

A p99 from 20 requests is the largest of them; nothing in those 20 says how far above it
the server's p99 lies. The interval here says so in numbers: from order statistics, the
range that holds the population's percentile with at least the asked probability, whatever
the distribution (continuous). With B ~ Binomial(n, q) samples below the q-quantile, the
sorted sample's element of 0-based rank r lies above it with probability P(B <= r); the
interval takes the highest rank whose chance of lying above is at most (1 - level) / 2, and
the lowest whose chance of lying below is, each side on its own. Where even the smallest
(largest) element leaves more than that chance, the side is open: no sample of that size
bounds it, and :func:`samples_to_bound` says how many would.

It is the spread of drawing requests at random from a steady server. Requests of one run
are not independent draws (a queue links neighbours), so the run-to-run spread is wider;
the interval is a floor on the uncertainty, never a ceiling.

A p99 from 20 requests has no upper bound (368 would give one); a median from 100 lies
between the 40th and the 61st of them:

>>> quantile_interval_ranks(20, 0.99), samples_to_bound(0.99)
((18, None), 368)
>>> quantile_interval_ranks(100, 0.5)
(39, 60)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from infermeter.metrics.quantiles import LARGE, order_statistics

#: The probability an interval covers the population's percentile.
LEVEL = 0.95
#: Above this many samples the binomial is taken as normal (n q (1 - q) is then large for
#: every percentile reported): the exact sum is O(n) a percentile.
EXACT_UP_TO = 200_000
_Z = {0.95: 1.959963984540054, 0.9: 1.6448536269514722, 0.99: 2.5758293035489004}


def _binomial_cdf(n: int, q: float) -> npt.NDArray[np.float64]:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, q), 0 < q < 1 (summed in log space)."""
    k = np.arange(n + 1, dtype=np.float64)
    # log C(n, k) by the running product (n - k + 1) / k, then the powers
    steps = np.log(n - k[1:] + 1) - np.log(k[1:])
    log_comb = np.concatenate(([0.0], np.cumsum(steps)))
    log_pmf = log_comb + k * math.log(q) + (n - k) * math.log1p(-q)
    top = log_pmf.max()
    pmf = np.exp(log_pmf - top)
    cdf: npt.NDArray[np.float64] = np.cumsum(pmf)
    out: npt.NDArray[np.float64] = np.minimum(cdf / cdf[-1], 1.0)
    return out


@lru_cache(maxsize=256)  # a run's distributions share a few sizes and the same percentiles
def quantile_interval_ranks(
    n: int, q: float, level: float = LEVEL
) -> tuple[int | None, int | None]:
    """0-based ranks (lower, upper) in the sorted sample of the interval of the q-quantile
    (0 < q < 1); None for a side that n samples cannot bound at ``level``."""
    if n < 1 or not 0.0 < q < 1.0 or not 0.0 < level < 1.0:
        raise ValueError(f"need n >= 1, 0 < q < 1, 0 < level < 1 (got {n}, {q}, {level})")
    tail = (1.0 - level) / 2.0
    if n <= EXACT_UP_TO:
        cdf = _binomial_cdf(n, q)
        # lower: the highest r with P(B <= r) <= tail
        below = np.flatnonzero(cdf <= tail)
        lower = int(below[-1]) if below.size else None
        # upper: the lowest r with P(B >= r + 1) = 1 - P(B <= r) <= tail, r <= n - 1
        above = np.flatnonzero(cdf[:n] >= 1.0 - tail)
        upper = int(above[0]) if above.size else None
        return lower, upper
    z = _Z.get(level)
    if z is None:
        raise ValueError(f"level {level} is not one of {sorted(_Z)} for a large sample")
    half = z * math.sqrt(n * q * (1.0 - q))
    lo = math.floor(n * q - half) - 1
    hi = math.ceil(n * q + half)
    return (lo if lo >= 0 else None), (hi if hi <= n - 1 else None)


def samples_to_bound(q: float, level: float = LEVEL) -> int:
    """The fewest samples whose largest element bounds the q-quantile from above (and whose
    smallest bounds the (1 - q)-quantile from below): q^n <= (1 - level) / 2."""
    return math.ceil(math.log((1.0 - level) / 2.0) / math.log(q))


def quantile_intervals(
    values: npt.NDArray[np.float64], qs: Sequence[float], level: float = LEVEL
) -> list[tuple[float | None, float | None]]:
    """For each percentile in ``qs`` (0-100, exclusive), the (lower, upper) values of its
    interval in ``values``; None for an open side. ``values`` is neither sorted nor copied
    above :data:`~infermeter.metrics.quantiles.LARGE` samples."""
    n = int(values.size)
    if n == 0:
        return [(None, None) for _ in qs]
    ranks = [quantile_interval_ranks(n, p / 100.0, level) for p in qs]
    wanted = sorted({r for pair in ranks for r in pair if r is not None})
    if not wanted:
        return [(None, None) for _ in qs]
    if n <= LARGE:
        picked = np.partition(values, wanted)[wanted].tolist()
    else:
        picked = order_statistics(values, wanted)
    at = dict(zip(wanted, (float(v) for v in picked), strict=True))
    return [(None if lo is None else at[lo], None if hi is None else at[hi]) for lo, hi in ranks]
