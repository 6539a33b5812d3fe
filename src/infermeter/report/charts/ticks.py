"""Axis ticks and number formatting."""

from __future__ import annotations

import math

# --------------------------------------------------------------------------------------
# ticks and number formatting


def _clean(x: float) -> float:
    """Drop binary noise such as 0.30000000000000004."""
    return float(f"{x:.12g}")


def nice_step(span: float, target: int = 5) -> float:
    """The 1-2-5 step giving about ``target`` intervals over ``span`` (Heckbert, 1990)."""
    if not math.isfinite(span) or span <= 0:
        return 1.0
    raw = span / max(target, 1)
    if raw <= 0:  # a denormal span that divides to nothing
        return 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * mag * (1 + 1e-9):
            return _clean(m * mag)
    return _clean(10 * mag)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round ticks from at or below ``lo`` to at or above ``hi``, a 1-2-5 step apart.

    >>> nice_ticks(0.3, 9.2)
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    """
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, target)
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    n = round((end - start) / step)
    return [_clean(start + i * step) for i in range(n + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten covering [lo, hi] (lo > 0); with 2 and 5 between them over two decades
    or fewer, and every other power over more than eight.

    >>> log_ticks(3, 400)
    [1.0, 10.0, 100.0, 1000.0]
    """
    if lo <= 0 or hi <= 0:
        raise ValueError("log ticks need positive bounds")
    if hi < lo:
        lo, hi = hi, lo
    a = math.floor(math.log10(lo) + 1e-9)
    b = math.ceil(math.log10(hi) - 1e-9)
    if b == a:
        b += 1
    decades = b - a
    if decades <= 2:
        ticks = [_clean(m * 10.0**e) for e in range(a, b) for m in (1, 2, 5)]
        ticks.append(_clean(10.0**b))
        # Keep the 2s and 5s only around the data, so the axis is not cluttered.
        return [t for t in ticks if lo / 2.5 <= t <= hi * 2.5 or t in (10.0**a, 10.0**b)]
    every = 1 if decades <= 8 else math.ceil(decades / 8)
    return [_clean(10.0**e) for e in range(a, b + 1, every)]


_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_tick(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs; 10,000 and above as 10k, 1.5M.

    >>> format_tick(0.05, 0.05), format_tick(1500, 500), format_tick(20000, 5000)
    ('0.05', '1,500', '20k')
    """
    if value == 0:
        return "0"
    step = abs(step) or abs(value)
    a = abs(value)
    if a >= 1e4:
        for div, suffix in _SI:
            if a >= div:
                decimals = min(max(0, math.ceil(-round(math.log10(step / div), 9))), 3)
                return f"{value / div:.{decimals}f}{suffix}"
    decimals = 0 if step >= 1 else min(math.ceil(-round(math.log10(step), 9)), 8)
    return f"{value:,.{decimals}f}"


def format_value(value: float | None, digits: int = 3) -> str:
    """A readable number with about ``digits`` significant digits: 3.14, 52.1, 1,056, 0.00477."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 10 ** (digits - 1) or (a >= 1 and float(value).is_integer()):
        return f"{value:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(a))
    return f"{value:,.{max(decimals, 0)}f}"
