"""Sweep and capacity-search strategies: which load points to run, when to stop (pure).

A sweep walks one load variable (closed-loop concurrency or open-loop rate) upwards for each
input/output length pair. It stops a walk early once the server is saturated (more offered
load no longer buys throughput while latency climbs) or too many requests fail.

A capacity search looks for the highest load whose run meets an SLA, assuming the verdict is
monotone in the load (it passes below some capacity and fails above): first bracketing (double
the load until a run fails), then bisection between the highest pass and the lowest fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from infermeter.errors import UsageError

Variable = Literal["concurrency", "rate"]

#: A point is "flat" when one more step of load adds less than this share of throughput...
SATURATION_GAIN = 0.05
#: ...while its median latency (TTFT or E2E) rises by at least this share.
SATURATION_LATENCY_RISE = 0.25


def parse_values(text: str, variable: Variable) -> list[float]:
    """``1,2,4,8`` or a geometric range ``1:64`` (doubling) or ``1:64:x4`` / ``0.5:4:+0.5``."""
    flag = f"--{variable}"
    values: list[float] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if ":" in part:
            values.extend(_range(part, flag))
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise UsageError(f"{flag}: cannot read {part!r}; e.g. 1,2,4,8 or 1:64") from None
    if not values:
        raise UsageError(f"{flag}: no values given")
    for v in values:
        if not v > 0 or not math.isfinite(v):
            raise UsageError(f"{flag}: values must be positive, got {v:g}")
        if variable == "concurrency" and v != int(v):
            raise UsageError(f"{flag}: concurrency must be a whole number, got {v:g}")
    return sorted(set(values))


def _range(part: str, flag: str) -> list[float]:
    bits = part.split(":")
    try:
        lo, hi = float(bits[0]), float(bits[1])
        step = bits[2] if len(bits) > 2 else "x2"
        if len(bits) > 3 or step[:1] not in ("x", "+"):
            raise ValueError
        amount = float(step[1:])
    except (ValueError, IndexError):
        raise UsageError(
            f"{flag}: cannot read the range {part!r}; use LO:HI, LO:HI:xF or LO:HI:+D"
        ) from None
    if not 0 < lo <= hi or (step[0] == "x" and amount <= 1) or (step[0] == "+" and amount <= 0):
        raise UsageError(f"{flag}: the range {part!r} does not go up from a positive start")
    out: list[float] = []
    v = lo
    while v <= hi * (1 + 1e-9) and len(out) < 1000:
        out.append(round(v, 9))
        v = v * amount if step[0] == "x" else v + amount
    return out


def auto_rates(saturation_rps: float, points: int) -> list[float]:
    """Rates spread evenly up to the measured saturation throughput: k/N × it, k = 1..N
    (three significant digits)."""
    if saturation_rps <= 0:
        raise UsageError("the saturation probe finished no requests; cannot choose rates")
    return [float(f"{saturation_rps * k / points:.3g}") for k in range(1, points + 1)]


@dataclass(frozen=True)
class PointFigures:
    """What the stop rules read from a finished point."""

    value: float
    output_tok_s: float
    ttft_p50_ms: float | None
    e2e_p50_ms: float | None
    error_rate: float
    waiting_mean: float | None = None


def saturation(prev: PointFigures, cur: PointFigures) -> str | None:
    """Why ``cur`` shows a saturated server compared with the lighter ``prev``, or None."""
    if prev.output_tok_s <= 0:
        return None
    gain = cur.output_tok_s / prev.output_tok_s - 1
    if gain >= SATURATION_GAIN:
        return None
    for name, a, b in (
        ("TTFT p50", prev.ttft_p50_ms, cur.ttft_p50_ms),
        ("E2E p50", prev.e2e_p50_ms, cur.e2e_p50_ms),
    ):
        if a and b and b / a - 1 >= SATURATION_LATENCY_RISE:
            queue = ""
            if cur.waiting_mean is not None and prev.waiting_mean is not None:
                queue = f"; waiting requests {prev.waiting_mean:.1f} -> {cur.waiting_mean:.1f}"
            return (
                f"output throughput {prev.output_tok_s:,.0f} -> {cur.output_tok_s:,.0f} tok/s "
                f"({gain:+.0%}) while {name} rose {a:,.1f} -> {b:,.1f} ms{queue}"
            )
    return None


def too_many_errors(cur: PointFigures, limit: float) -> str | None:
    if cur.error_rate > limit:
        return f"{cur.error_rate:.0%} of requests failed (limit {limit:.0%})"
    return None


@dataclass
class CapacitySearch:
    """Bracketing then bisection for the highest passing load.

    ``integer`` loads (concurrency) bisect to adjacent integers; rates until the fail/pass
    ratio is within ``1 + rel_tol``. At most ``max_runs`` runs are asked for.

    >>> s = CapacitySearch(start=1, upper=64, integer=True)
    >>> s.next_value()
    1.0
    """

    start: float
    upper: float
    integer: bool
    rel_tol: float = 0.1
    max_runs: int = 12
    tried: dict[float, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.start <= self.upper:
            raise UsageError(
                f"the search range {self.start:g}..{self.upper:g} does not go up from "
                "a positive start"
            )

    @property
    def best_pass(self) -> float | None:
        passes = [v for v, ok in self.tried.items() if ok]
        return max(passes) if passes else None

    @property
    def lowest_fail(self) -> float | None:
        fails = [v for v, ok in self.tried.items() if not ok]
        return min(fails) if fails else None

    def record(self, value: float, passed: bool) -> None:
        self.tried[value] = passed

    def next_value(self) -> float | None:
        """The next load to run, or None when the capacity is pinned down (or runs are up)."""
        if len(self.tried) >= self.max_runs:
            return None
        lo, hi = self.best_pass, self.lowest_fail
        if hi is None:  # still bracketing: go up
            if lo is None:
                return self._fresh(self.start)
            if lo >= self.upper:
                return None  # passes at the top of the range
            return self._fresh(min(lo * 2, self.upper))
        if lo is None:  # fails already at the start: go down
            if hi <= self.start and self.integer and hi <= 1:
                return None
            down = hi / 2
            if self.integer:
                down = math.floor(down)
                if down < 1 or down in self.tried:
                    return None
            elif down < self.start / 64:
                return None
            return self._fresh(down)
        if lo >= hi:  # not monotone: a pass above a fail; stop where we are
            return None
        if self.integer:
            if hi - lo <= 1:
                return None
            return self._fresh(math.floor((lo + hi) / 2))
        if hi / lo <= 1 + self.rel_tol:
            return None
        return self._fresh(round(math.sqrt(lo * hi), 6))

    def _fresh(self, value: float) -> float | None:
        value = float(int(value)) if self.integer else value
        return None if value in self.tried else value

    @property
    def monotone(self) -> bool:
        """No run passed above a run that failed."""
        lo, hi = self.best_pass, self.lowest_fail
        return lo is None or hi is None or lo < hi
