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
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Samples above which no copy of the sample is made.
LARGE = 1 << 22
#: Elements taken at once by a pass (8 MB of float64).
BLOCK = 1 << 20
#: A selection stops narrowing once this few candidates remain; they are then partitioned.
GATHER = 1 << 22
#: Threads a pass runs on: NumPy lets go of the interpreter inside each block's work.
THREADS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
_SIGN = np.uint64(1 << 63)
_T = TypeVar("_T")
_LOW63 = np.uint64((1 << 63) - 1)


def _keys(block: FloatArray, nonnegative: bool) -> npt.NDArray[np.uint64]:
    """Unsigned keys in the floats' order: the sign bit flipped for positives, every bit for
    negatives (for a sample with no negative value, setting the sign bit is enough)."""
    bits = block.view(np.uint64)
    keys: npt.NDArray[np.uint64]
    if nonnegative:
        keys = bits | _SIGN
        return keys
    keys = bits ^ ((bits >> np.uint64(63)) * _LOW63 | _SIGN)
    return keys


def _float(key: int) -> float:
    bits = key ^ (1 << 63) if key >> 63 else key ^ ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def _blocks(values: FloatArray, block: int) -> list[FloatArray]:
    return [values[i : i + block] for i in range(0, values.size, block)]


def over_blocks(values: FloatArray, block: int, work: Callable[[list[FloatArray]], _T]) -> list[_T]:
    """``work`` over consecutive shares of the blocks of ``values``, one share a thread
    (NumPy lets go of the interpreter inside each block's work); the shares' results in
    order."""
    blocks = _blocks(values, block)
    threads = min(THREADS, len(blocks))
    if threads <= 1:
        return [work(blocks)]
    share = -(-len(blocks) // threads)
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, [blocks[i : i + share] for i in range(0, len(blocks), share)]))


def order_statistics(
    values: FloatArray, ranks: Sequence[int], *, block: int = BLOCK, gather: int = GATHER
) -> list[float]:
    """``sorted(values)[r]`` for each rank r, without sorting or copying ``values`` (no NaN).

    Each rank is narrowed to the elements that share ever more leading key bits with it
    (20 bits, then 16 more a pass), until few enough remain to partition or the key is known.
    """
    n = values.size
    nonnegative = bool(values.min() >= 0)
    # per rank: the shared key prefix, its length in bits, the rank among those elements
    # and how many there are
    state = [[0, 0, r, n] for r in ranks]
    while True:
        open_ = [s for s in state if s[3] > gather and s[1] < 64]
        if not open_:
            break
        by_length: dict[int, list[tuple[int, int]]] = {}
        for s in open_:
            key = (s[0], s[1])
            if key not in by_length.setdefault(s[1], []):
                by_length[s[1]].append(key)
        hists: dict[tuple[int, int], npt.NDArray[np.int64]] = {}
        for groups in by_length.values():
            hists.update(_histograms(values, groups, nonnegative, block))
        for s in open_:
            prefix, nbits, rank, _ = s
            width = min(_digit(nbits), 64 - nbits)
            cum = np.cumsum(hists[(prefix, nbits)])
            d = int(np.searchsorted(cum, rank, side="right"))
            below = int(cum[d - 1]) if d else 0
            s[:] = [(prefix << width) | d, nbits + width, rank - below, int(cum[d]) - below]
    out: list[float] = []
    wanted = sorted({(s[0], s[1]) for s in state if s[1] < 64})
    pools = _gather(values, wanted, nonnegative, block)
    for prefix, nbits, rank, _ in state:
        if nbits == 64:
            out.append(_float(prefix))
        else:
            out.append(float(np.partition(pools[(prefix, nbits)], rank)[rank]))
    return out


def _digit(nbits: int) -> int:
    """Bits a pass adds: a wide first digit (sign, exponent and 8 bits of mantissa), then
    16 at a time."""
    return 20 if nbits == 0 else 16


def _members(
    keys: npt.NDArray[np.uint64], groups: list[tuple[int, int]]
) -> tuple[npt.NDArray[np.intp] | None, npt.NDArray[np.int16] | None]:
    """Which elements belong to which group: (positions, group numbers); (None, None) when
    every element belongs to the one group of the first pass."""
    nbits = groups[0][1]
    if nbits == 0:
        return None, None
    top = keys >> np.uint64(64 - nbits)
    if len(groups) == 1:
        where = np.flatnonzero(top == groups[0][0])
        return where, np.zeros(where.size, dtype=np.int16)
    if nbits <= 24:  # a table from prefix to group: one lookup an element
        table = np.full(1 << nbits, -1, dtype=np.int16)
        for g, (prefix, _) in enumerate(groups):
            table[prefix] = g
        found = table[top.astype(np.intp)]
        where = np.flatnonzero(found >= 0)
        return where, found[where]
    lookup = {prefix: g for g, (prefix, _) in enumerate(groups)}
    prefixes = np.array(sorted(lookup), dtype=np.uint64)
    at = np.searchsorted(prefixes, top)
    at[at == prefixes.size] = 0
    where = np.flatnonzero(prefixes[at] == top)
    order = np.array([lookup[int(p)] for p in prefixes], dtype=np.int16)
    return where, order[at[where]]


def _histograms(
    values: FloatArray, groups: list[tuple[int, int]], nonnegative: bool, block: int
) -> dict[tuple[int, int], npt.NDArray[np.int64]]:
    """Per group (prefix, its length), the counts of the next digit's values."""
    nbits = groups[0][1]
    width = min(_digit(nbits), 64 - nbits)
    shift = np.uint64(64 - nbits - width)
    mask = np.uint64((1 << width) - 1)
    size = len(groups) << width

    def count(blocks: list[FloatArray]) -> npt.NDArray[np.int64]:
        total = np.zeros(size, dtype=np.int64)
        for blk in blocks:
            keys = _keys(blk, nonnegative)
            where, group = _members(keys, groups)
            sel = keys if where is None else keys[where]
            digit = ((sel >> shift) & mask).astype(np.intp)
            if group is not None and len(groups) > 1:
                digit += group.astype(np.intp) << width
            total += np.bincount(digit, minlength=size)
        return total

    total = sum(over_blocks(values, block, count), np.zeros(size, dtype=np.int64))
    return {g: total[i << width : (i + 1) << width] for i, g in enumerate(groups)}


def _gather(
    values: FloatArray, groups: list[tuple[int, int]], nonnegative: bool, block: int
) -> dict[tuple[int, int], FloatArray]:
    """Per group, its elements (few, by now)."""
    found: dict[tuple[int, int], list[FloatArray]] = {g: [] for g in groups}
    by_length: dict[int, list[tuple[int, int]]] = {}
    for g in groups:
        by_length.setdefault(g[1], []).append(g)
    for same in by_length.values():

        def pick(blocks: list[FloatArray]) -> list[tuple[tuple[int, int], FloatArray]]:
            out: list[tuple[tuple[int, int], FloatArray]] = []
            for blk in blocks:
                keys = _keys(blk, nonnegative)
                where, which = _members(keys, same)  # noqa: B023  # called before the loop goes on
                if where is None or which is None:
                    out.append((same[0], blk))  # noqa: B023
                    continue
                hits = blk[where]
                out.extend((g, hits[which == i]) for i, g in enumerate(same))  # noqa: B023
            return out

        for share in over_blocks(values, block, pick):
            for g, part in share:
                found[g].append(part)
    return {g: np.concatenate(parts) if parts else np.empty(0) for g, parts in found.items()}


def key_histogram(
    values: FloatArray, *, block: int = BLOCK, nonnegative: bool | None = None
) -> npt.NDArray[np.int64]:
    """Counts of the values by the first 20 bits of their keys (sign, exponent and 8 bits
    of mantissa: bins 1/256 of a power of two wide), in the values' order.
    ``nonnegative``: whether no value is below 0, when the caller knows (else a pass)."""
    if nonnegative is None:
        nonnegative = bool(values.min() >= 0)
    return _histograms(values, [(0, 0)], nonnegative, block)[(0, 0)]


def bin_top(b: int) -> float:
    """The largest float in bin ``b`` of :func:`key_histogram`."""
    return _float(((b + 1) << 44) - 1)


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
