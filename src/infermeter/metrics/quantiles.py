"""Exact percentiles, mean and standard deviation of a sample too large to copy (pure).

A million requests of 128 tokens give 127 million ITL samples: 1 GB as float64. NumPy's
``percentile`` partitions a copy (another gigabyte) and ``std`` squares one. Above
:data:`LARGE` samples these functions take the same statistics in place: the order
statistics are found by radix selection over the floats' bit patterns (a histogram of the
leading bits per pass, in blocks), then interpolated exactly as NumPy's ``linear`` method does,
so a percentile is the very float ``numpy.percentile`` gives. Below it they call NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Samples above which no copy of the sample is made.
LARGE = 1 << 22
#: Elements taken at once by a pass (8 MB of float64).
BLOCK = 1 << 20
#: A selection stops narrowing once this few candidates remain; they are then partitioned.
GATHER = 1 << 22
_DIGIT = 16
_SIGN = np.uint64(1 << 63)
_LOW63 = np.uint64((1 << 63) - 1)


def _keys(block: FloatArray) -> npt.NDArray[np.uint64]:
    """Unsigned keys in the floats' order: the sign bit flipped for positives, every bit for
    negatives."""
    bits = block.view(np.uint64)
    keys: npt.NDArray[np.uint64] = bits ^ ((bits >> np.uint64(63)) * _LOW63 | _SIGN)
    return keys


def _float(key: int) -> float:
    bits = key ^ (1 << 63) if key >> 63 else key ^ ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def _blocks(values: FloatArray, block: int) -> list[FloatArray]:
    return [values[i : i + block] for i in range(0, values.size, block)]


def order_statistics(
    values: FloatArray, ranks: Sequence[int], *, block: int = BLOCK, gather: int = GATHER
) -> list[float]:
    """``sorted(values)[r]`` for each rank r, without sorting or copying ``values`` (no NaN).

    Each rank is narrowed to the elements that share ever more leading key bits with it
    (16 more a pass), until few enough remain to partition or the key is fully known.
    """
    n = values.size
    # per rank: the shared key prefix, its length in bits, the rank among those elements
    # and how many there are
    state = [[0, 0, r, n] for r in ranks]
    while True:
        open_ = [s for s in state if s[3] > gather and s[1] < 64]
        if not open_:
            break
        groups = sorted({(s[0], s[1]) for s in open_})
        hists: dict[tuple[int, int], npt.NDArray[np.int64]] = {}
        for blk in _blocks(values, block):
            keys = _keys(blk)
            for prefix, nbits in groups:
                width = min(_DIGIT, 64 - nbits)
                sel = keys if nbits == 0 else keys[(keys >> np.uint64(64 - nbits)) == prefix]
                digit = (sel >> np.uint64(64 - nbits - width)) & np.uint64((1 << width) - 1)
                counts = np.bincount(digit.astype(np.intp), minlength=1 << width)
                acc = hists.get((prefix, nbits))
                hists[(prefix, nbits)] = counts if acc is None else acc + counts
        for s in open_:
            prefix, nbits, rank, _ = s
            width = min(_DIGIT, 64 - nbits)
            cum = np.cumsum(hists[(prefix, nbits)])
            d = int(np.searchsorted(cum, rank, side="right"))
            below = int(cum[d - 1]) if d else 0
            s[:] = [(prefix << width) | d, nbits + width, rank - below, int(cum[d]) - below]
    out: list[float] = []
    known = {s[0] for s in state if s[1] == 64}
    wanted = sorted({(s[0], s[1]) for s in state if s[1] < 64})
    found: dict[tuple[int, int], list[FloatArray]] = {g: [] for g in wanted}
    if wanted:
        for blk in _blocks(values, block):
            keys = _keys(blk)
            for prefix, nbits in wanted:
                hit = blk if nbits == 0 else blk[(keys >> np.uint64(64 - nbits)) == prefix]
                found[(prefix, nbits)].append(hit)
    pools = {g: np.concatenate(parts) for g, parts in found.items()}
    for prefix, nbits, rank, _ in state:
        if nbits == 64:
            assert prefix in known
            out.append(_float(prefix))
        else:
            pool = pools[(prefix, nbits)]
            out.append(float(np.partition(pool, rank)[rank]))
    return out


def _lerp(a: float, b: float, t: float) -> float:
    """NumPy's linear interpolation, operation for operation."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1 - t)
    return a + diff * t


def percentiles(values: FloatArray, qs: Sequence[float], *, large: int = LARGE) -> list[float]:
    """``numpy.percentile(values, qs, method="linear")``, without copying a large sample."""
    n = values.size
    if n <= large:
        return [float(v) for v in np.percentile(values, list(qs), method="linear")]
    fractions = np.true_divide(np.asarray(qs, dtype=np.float64), 100)
    virtual = (n - 1) * fractions
    picks: list[tuple[int, int, float]] = []
    for v in virtual.tolist():
        lo = math.floor(v)
        hi = lo + 1
        if v >= n - 1:
            lo = hi = -1
        picks.append((lo % n, hi % n, v - lo))
    ranks = sorted({i for lo, hi, _ in picks for i in (lo, hi)})
    stat = dict(zip(ranks, order_statistics(values, ranks), strict=True))
    return [_lerp(stat[lo], stat[hi], t) for lo, hi, t in picks]


def std(values: FloatArray, *, large: int = LARGE, block: int = BLOCK) -> float:
    """Population standard deviation (ddof 0). Above ``large`` samples the squared deviations
    are summed a block at a time (no temporary of the sample's size): the result may differ
    from NumPy's in the last bits, as any other summation order would."""
    if values.size <= large:
        return float(values.std())
    mean = values.mean()
    total = 0.0
    for blk in _blocks(values, block):
        dev = blk - mean
        total += float(np.dot(dev, dev))
    return math.sqrt(total / values.size)
