"""Axes and the scales that map data onto pixels."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from infermeter.report.charts.ticks import format_tick, log_ticks, nice_ticks

# --------------------------------------------------------------------------------------
# scales


@dataclass(frozen=True)
class Scale:
    """Maps a data interval [lo, hi] onto a pixel interval [r0, r1], linearly or by log10."""

    lo: float
    hi: float
    r0: float
    r1: float
    log: bool = False

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo * 1e-6)
            a, b, x = math.log10(self.lo), math.log10(self.hi), math.log10(v)
        else:
            a, b, x = self.lo, self.hi, v
        if b == a:
            return (self.r0 + self.r1) / 2
        return self.r0 + (x - a) / (b - a) * (self.r1 - self.r0)


@dataclass(frozen=True)
class Axis:
    """What one axis shows: its label (with the unit), log or linear, and its range.

    ``lo``/``hi`` fix the range (else it follows the data, widened to round ticks when
    ``nice``); ``ticks`` replaces the automatic ticks; ``fmt`` formats tick labels.
    """

    label: str
    log: bool = False
    lo: float | None = None
    hi: float | None = None
    include_zero: bool = False
    nice: bool = True
    ticks: Sequence[float] | None = None
    fmt: Callable[[float], str] | None = None
    target_ticks: int = 5
    #: Room left above the data, as a share of its span (so labels clear the top).
    headroom: float = 0.0


def _domain(axis: Axis, values: Sequence[float]) -> tuple[float, float, list[float]]:
    """The axis's final [lo, hi] and its ticks, from the values it must show."""
    vals = [v for v in values if math.isfinite(v) and (not axis.log or v > 0)]
    if axis.log:
        lo = axis.lo if axis.lo is not None else (min(vals) if vals else 1.0)
        hi = axis.hi if axis.hi is not None else (max(vals) if vals else 10.0)
        lo, hi = max(lo, 1e-12), max(hi, 1e-12)
        if hi <= lo:
            hi = lo * 10
        ticks = log_ticks(lo, hi)
        if axis.nice and axis.lo is None:
            lo = ticks[0]
        if axis.nice and axis.hi is None:
            hi = ticks[-1]
    else:
        lo = axis.lo if axis.lo is not None else (min(vals) if vals else 0.0)
        hi = axis.hi if axis.hi is not None else (max(vals) if vals else 1.0)
        if axis.include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if axis.headroom and axis.hi is None:
            hi += (hi - lo) * axis.headroom
        if hi == lo:
            pad = abs(hi) * 0.1 or 1.0
            lo = lo if axis.lo is not None or (axis.include_zero and lo == 0) else lo - pad
            hi = hi + pad
        ticks = nice_ticks(lo, hi, axis.target_ticks)
        if axis.nice and axis.lo is None:
            lo = ticks[0]
        if axis.nice and axis.hi is None:
            hi = ticks[-1]
    if axis.ticks is not None:
        ticks = [float(t) for t in axis.ticks]
    eps = (hi - lo) * 1e-9
    ticks = [t for t in ticks if lo - eps <= t <= hi + eps]
    return lo, hi, ticks


def _tick_labels(axis: Axis, ticks: Sequence[float]) -> list[str]:
    if axis.fmt is not None:
        return [axis.fmt(t) for t in ticks]
    if axis.log or axis.ticks is not None:
        return [format_tick(t, t if axis.log else _min_gap(ticks)) for t in ticks]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else (abs(ticks[0]) if ticks else 1.0)
    return [format_tick(t, step) for t in ticks]


def _min_gap(ticks: Sequence[float]) -> float:
    gaps = [b - a for a, b in itertools.pairwise(ticks) if b > a]
    return min(gaps) if gaps else (abs(ticks[0]) if ticks else 1.0)
