"""Arrival processes: pure, seeded schedules of request start offsets (seconds from the
start of the measured phase). The first arrival is at 0."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

ArrivalKind = Literal["poisson", "gamma", "constant"]


def _intervals(
    rng: np.random.Generator, rate: float, kind: ArrivalKind, burstiness: float, size: int
) -> npt.NDArray[np.float64]:
    if kind == "constant":
        return np.full(size, 1.0 / rate)
    # Gamma with shape b and mean 1/rate: b = 1 is Poisson (exponential gaps); b < 1 is
    # burstier, b > 1 smoother (the convention of vLLM's --burstiness).
    shape = 1.0 if kind == "poisson" else burstiness
    return rng.gamma(shape=shape, scale=1.0 / (rate * shape), size=size)


def arrival_offsets(
    rate: float,
    n: int,
    *,
    kind: ArrivalKind = "poisson",
    burstiness: float = 1.0,
    seed: int = 0,
    exact_rate: bool = True,
) -> npt.NDArray[np.float64]:
    """Offsets of ``n`` arrivals at ``rate`` per second.

    With ``exact_rate`` the n-1 gaps are rescaled so that they sum to ``(n-1)/rate``: the
    schedule keeps its shape (the gaps' coefficient of variation) while its realised rate
    is exactly the target, so a short run is not judged against the noise of its own draw.
    """
    if rate <= 0 or n <= 0:
        raise ValueError("rate and n must be positive")
    rng = np.random.default_rng(seed)
    gaps = _intervals(rng, rate, kind, burstiness, n - 1)
    if exact_rate and n > 1 and gaps.sum() > 0:
        gaps *= ((n - 1) / rate) / gaps.sum()
    return np.concatenate(([0.0], np.cumsum(gaps)))


def schedule(
    rate: float,
    num_requests: int | None,
    duration_s: float | None,
    *,
    kind: ArrivalKind = "poisson",
    burstiness: float = 1.0,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """An open loop's whole schedule, at exactly ``rate``, whichever of the count and the
    duration ends it: a duration alone holds ``ceil(rate × duration)`` arrivals, the last one
    before the duration ends (two runs "at rate 3" are then the same load, not 3.6 and 2.8)."""
    if num_requests is None and duration_s is None:
        raise ValueError("an open loop needs a request count or a duration")
    n = num_requests if num_requests is not None else 1 << 62
    if duration_s is not None:
        n = min(n, max(math.ceil(rate * duration_s - 1e-9), 1))
    return arrival_offsets(rate, n, kind=kind, burstiness=burstiness, seed=seed)
