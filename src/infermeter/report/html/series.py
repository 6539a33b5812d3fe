"""Data series for the report's charts, computed from records and telemetry (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from infermeter.analysis.telemetry import fast_level
from infermeter.metrics.quantiles import BLOCK, LARGE, bin_top, key_histogram, over_blocks
from infermeter.metrics.table import MISSING, RequestTable, chunk_arrivals, row_tokens
from infermeter.report.charts import (
    format_value,
    nice_step,
)
from infermeter.report.html.page import (
    CDF_POINTS,
    MAX_SCATTER_POINTS,
    MAX_TOOLTIPS,
)

#: A metric's samples: a list, or a column of the run's metrics.
Values = Sequence[float] | npt.NDArray[np.float64]

# --------------------------------------------------------------------------------------
# data for the charts (pure)


@dataclass(frozen=True)
class Extent:
    """A sample's least and greatest values, how many are above 0 and the least of those."""

    lo: float
    hi: float
    positive: int
    least_positive: float | None


def extent(values: Values) -> Extent:
    """The :class:`Extent` of a non-empty sample: one pass, a block at a time past a few
    million values (the charts of a sample read it once instead of a pass each)."""
    arr = np.asarray(values, dtype=float)

    def scan(blocks: list[npt.NDArray[np.float64]]) -> tuple[float, float, int, float]:
        lo, hi, count, least = math.inf, -math.inf, 0, math.inf
        for block in blocks:
            b_lo, b_hi = float(block.min()), float(block.max())
            lo, hi = min(lo, b_lo), max(hi, b_hi)
            if b_lo > 0:  # the usual block: every value positive, no selection
                count += block.size
                least = min(least, b_lo)
            elif b_hi > 0:
                above = block > 0
                count += int(np.count_nonzero(above))
                least = min(least, float(np.min(block, where=above, initial=math.inf)))
        return lo, hi, count, least

    shares = over_blocks(arr, BLOCK, scan) if arr.size > LARGE else [scan([arr])]
    count = sum(c for _, _, c, _ in shares)
    least = min(s[3] for s in shares)
    return Extent(
        lo=min(s[0] for s in shares),
        hi=max(s[1] for s in shares),
        positive=count,
        least_positive=least if count else None,
    )


def histogram(
    values: Values,
    p50: float | None,
    p99: float | None,
    target_bins: int | None = None,
    *,
    span: Extent | None = None,
) -> tuple[list[float], list[int], int, float]:
    """Nice-width bins over the values; a long tail beyond 1.5 × p99 is cut off the axis.
    About 2·n^(1/3) bins (the Rice rule), between 10 and 40, unless ``target_bins``.
    ``span``: the values' :func:`extent`, when the caller has it.

    Returns (edges, counts, how many values were beyond the cut, the cut).
    """
    arr = np.asarray(values, dtype=float)
    if target_bins is None:
        target_bins = min(max(round(2 * arr.size ** (1 / 3)), 10), 40)
    lo, hi = (span.lo, span.hi) if span else (float(arr.min()), float(arr.max()))
    cut = hi
    if p99 is not None and p50 is not None and arr.size >= 20 and hi > 1.5 * p99 and p99 > lo:
        cut = 1.5 * p99
    if cut <= lo:
        cut = lo + (abs(lo) * 0.1 or 1.0)
    width = nice_step(cut - lo, target_bins)
    start = math.floor(lo / width) * width
    n = max(math.ceil((cut - start) / width - 1e-9), 1)
    if start + n * width <= cut:  # the maximum sits exactly on an edge: give it a bin
        n += 1
    edges = [float(f"{start + i * width:.12g}") for i in range(n + 1)]
    if arr.size <= LARGE:
        shown = arr[arr <= cut]
        counts, _ = np.histogram(shown, bins=edges)
        return edges, [int(c) for c in counts], int(arr.size - shown.size), cut
    return (edges, *_large_histogram(arr, edges, cut))


#: Blocks of the large histogram: its temporaries stay in the core's cache.
_HIST_BLOCK = 1 << 17


def _large_histogram(
    arr: npt.NDArray[np.float64], edges: list[float], cut: float
) -> tuple[list[int], int, float]:
    """np.histogram of the values up to ``cut`` (bins [a, b), the last [a, b]), a block at a
    time and without its sort. A value's bin comes from arithmetic on the bins' width; the
    values whose arithmetic lands within rounding of an edge are placed by the float edges
    themselves (a binary search), so the bins are NumPy's, value for value."""
    n = len(edges) - 1
    e = np.asarray(edges)
    width = (edges[-1] - edges[0]) / n
    # Arithmetic slot 0: below the first edge; 1..n: the bins; n + 1: above the last edge.
    # The edges are rounded to 12 significant digits: far from 0 in widths, that rounding
    # moves an edge by more than the arithmetic's own error (and may even make two equal);
    # then, or where the width is too small to invert, every value goes by the float edges.
    arithmetic = width > 0 and math.isfinite(1.0 / width)
    near = 1e-9 + 1e-10 * max(abs(edges[0]), abs(edges[-1])) / width if arithmetic else 1.0
    arithmetic = arithmetic and near < 0.01
    base = edges[0] - width
    inverse = 1.0 / width if arithmetic else 0.0

    def exact(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """The slots of ``values`` by the float edges themselves (a binary search)."""
        slot = np.searchsorted(e, values, side="right")
        slot[values == e[-1]] = n  # the last bin is closed
        slot[values > cut] = n + 1  # not drawn: with those above the last edge
        return np.bincount(slot, minlength=n + 2)

    def count(blocks: list[npt.NDArray[np.float64]]) -> tuple[npt.NDArray[np.int64], int]:
        counts = np.zeros(n + 2, dtype=np.int64)
        beyond = 0
        for block in blocks:
            over = block > cut
            beyond += int(np.count_nonzero(over))
            if not arithmetic:
                counts += exact(block)
                continue
            t = block - base
            t *= inverse
            np.clip(t, 0.0, n + 1.5, out=t)
            np.putmask(t, over, n + 1.5)
            slot = t.astype(np.int64)
            t -= slot
            doubt = (t < near) | (t > 1.0 - near)
            if doubt.any():
                counts += exact(block[doubt])
                slot = slot[~doubt]
            counts += np.bincount(slot, minlength=n + 2)
        return counts, beyond

    shares = over_blocks(arr, _HIST_BLOCK, count)
    slots = sum((c for c, _ in shares), np.zeros(n + 2, dtype=np.int64))
    beyond = sum(b for _, b in shares)
    return [int(c) for c in slots[1 : n + 1]], int(beyond), cut


def cdf_points(
    values: Values, max_points: int = CDF_POINTS, *, span: Extent | None = None
) -> tuple[list[tuple[float, float]], bool]:
    """The empirical CDF as (value, % of values ≤ it); exact steps for few values, else
    ``max_points`` quantiles. Returns (points, whether they are steps). ``span``: the
    values' :func:`extent`, when the caller has it."""
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n <= max_points:
        arr = np.sort(arr)
        pts = [(float(arr[0]), 0.0)] + [(float(v), 100.0 * (i + 1) / n) for i, v in enumerate(arr)]
        return pts, True
    if n > LARGE:
        return _binned_cdf(arr, max_points, span or extent(arr)), False
    qs = np.linspace(0, 100, max_points)
    xs = np.percentile(arr, qs)
    return [(float(x), float(q)) for x, q in zip(xs, qs, strict=True)], False


def _binned_cdf(
    arr: npt.NDArray[np.float64], max_points: int, span: Extent
) -> list[tuple[float, float]]:
    """The CDF of a sample too large to sort, as exact points (x, % of values ≤ x) at the
    edges of fine bins (1/256 of a power of two wide), about ``max_points`` of them: each
    share is the true one at its x; only where the points fall is set by the bins."""
    counts = key_histogram(arr, nonnegative=span.lo >= 0)
    cum = np.cumsum(counts)
    n = int(cum[-1])
    targets = np.linspace(0, n, max_points)
    bins = np.unique(np.searchsorted(cum, targets, side="left").clip(0, counts.size - 1))
    pts = [(span.lo, 0.0)]
    for b in bins.tolist():
        if not counts[b]:
            continue
        pts.append((bin_top(b), 100.0 * int(cum[b]) / n))
    pts.append((span.hi, 100.0))
    return sorted(set(pts))


def _stride(n: int, cap: int) -> int:
    return max(1, math.ceil(n / cap))


@dataclass(frozen=True)
class RequestPoints:
    """Per-request points of the timeline, x in seconds since the first measured send."""

    ttft: list[tuple[float, float]]
    e2e: list[tuple[float, float]]
    failed: list[tuple[float, float]]
    ttft_tips: list[str] | None
    e2e_tips: list[str] | None
    failed_tips: list[str] | None
    stride: int


def request_points(table: RequestTable, t0_ns: int) -> RequestPoints:
    """TTFT and E2E of each completed request by its send time; failures at their time to
    failure. Above MAX_SCATTER_POINTS requests, every k-th one (by send time) is drawn."""
    order = np.argsort(table.t_send_ns, kind="stable")
    k = _stride(order.size, MAX_SCATTER_POINTS)
    shown = order[::k]
    tips = shown.size <= MAX_TOOLTIPS
    labels = [("error" if label == "unknown" else label) for label in table.errors_by_kind]
    ttft: list[tuple[float, float]] = []
    e2e: list[tuple[float, float]] = []
    failed: list[tuple[float, float]] = []
    t_tips: list[str] = []
    e_tips: list[str] = []
    f_tips: list[str] = []
    for i in shown.tolist():
        send = int(table.t_send_ns[i])
        x = (send - t0_ns) / 1e9
        if table.ok[i]:
            first, last = int(table.t_first_ns[i]), int(table.t_last_ns[i])
            if not table.streamed[i] or first == MISSING or last == MISSING:
                continue  # no TTFT (an answer sent whole) or no E2E
            ttft_ms = (first - send) / 1e6
            e2e_ms = (last - send) / 1e6
            ttft.append((x, ttft_ms))
            e2e.append((x, e2e_ms))
            if tips:
                rid = int(table.id[i])
                t_tips.append(f"request {rid} sent at {x:.2f} s: TTFT {format_value(ttft_ms)} ms")
                e_tips.append(
                    f"request {rid} sent at {x:.2f} s: E2E {format_value(e2e_ms)} ms, "
                    f"{int(table.n_out[i])} output tokens"
                )
        else:
            y = max(int(table.t_end_ns[i]) - send, 0) / 1e6
            failed.append((x, y))
            if tips:
                kind = labels[int(table.error_code[i])]
                f_tips.append(
                    f"request {int(table.id[i])} sent at {x:.2f} s: failed ({kind}) after "
                    f"{format_value(y)} ms"
                )
    return RequestPoints(
        ttft,
        e2e,
        failed,
        t_tips if tips else None,
        e_tips if tips else None,
        f_tips if tips else None,
        k,
    )


def throughput_series(
    table: RequestTable, t0_ns: int, duration_s: float, target_bins: int = 60
) -> tuple[list[tuple[float, float]], float]:
    """Output tokens per second in bins of a round width, from the chunks' arrival times
    and their token counts (completed requests, as the run's output throughput counts).

    Returns step points (bin start, tok/s), closed at the window's end, and the bin width.
    """
    if duration_s <= 0:
        return [], 0.0
    width = max(nice_step(duration_s, target_bins), 1e-3)
    n = max(math.ceil(duration_s / width - 1e-9), 1)

    def bin_of(times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.clip(((times - t0_ns) / 1e9 / width).astype(np.int64), 0, n - 1)

    tokens = np.zeros(n, dtype=float)
    # A request whose first and last chunk fall in one bin has all its tokens there (a bin
    # grows with the arrival time, and a stream's arrivals do): counted a request at a time.
    # The others, and any whose gaps are not all >= 0, are counted chunk by chunk.
    done = table.ok & (table.n_chunks > 0)
    first = bin_of(np.where(done, table.first_chunk_ns, t0_ns))
    last = bin_of(np.where(done, table.last_chunk_ns, t0_ns))
    whole = done & (first == last)
    whole[table.loose_rows] = False
    if table.gaps_ms.size and float(table.gaps_ms.min()) < 0:
        whole[:] = False
    per_row = row_tokens(table)
    tokens += np.bincount(first[whole], weights=per_row[whole], minlength=n)
    for times, ks in chunk_arrivals(table, rows=~whole):
        tokens += np.bincount(bin_of(times), weights=ks, minlength=n)
    pts: list[tuple[float, float]] = []
    for b in range(n):
        start = b * width
        span = min(width, duration_s - start)
        pts.append((start, float(tokens[b]) / span if span > 0 else 0.0))
    pts.append((duration_s, pts[-1][1]))
    return pts, width


def inflight_series(
    table: RequestTable, t0_ns: int, duration_s: float, width_s: float
) -> list[tuple[float, float]]:
    """Requests in flight (sent, not yet ended), as the time-weighted mean over bins of
    ``width_s``: its mean over the window is the achieved concurrency (Little's law), and
    the instants between one request's end and the next one's send do not draw spikes."""
    if len(table) == 0 or duration_s <= 0 or width_s <= 0:
        return []
    n = max(math.ceil(duration_s / width_s - 1e-9), 1)
    # The integral of the level over a bin is the sum of each request's time in flight
    # inside the bin: no sort of the sends and ends needed. What lies outside the bins'
    # [0, n × width] is not drawn.
    limit = n * width_s
    x0 = np.clip((table.t_send_ns - t0_ns) / 1e9, 0.0, limit)
    x1 = np.clip((np.maximum(table.t_end_ns, table.t_send_ns) - t0_ns) / 1e9, 0.0, limit)
    live = x1 > x0
    x0, x1 = x0[live], x1[live]
    b0 = np.minimum((x0 / width_s).astype(np.int64), n - 1)
    b1 = np.minimum((x1 / width_s).astype(np.int64), n - 1)
    one = b0 == b1
    acc = np.zeros(n, dtype=float)
    acc += np.bincount(b0[one], weights=x1[one] - x0[one], minlength=n)
    b0, b1, x0, x1 = b0[~one], b1[~one], x0[~one], x1[~one]
    acc += np.bincount(b0, weights=(b0 + 1) * width_s - x0, minlength=n)  # the first bin's part
    acc += np.bincount(b1, weights=x1 - b1 * width_s, minlength=n)  # the last bin's part
    whole = np.cumsum(np.bincount(b0 + 1, minlength=n + 1) - np.bincount(b1, minlength=n + 1))
    acc += whole[:n] * width_s  # the bins between, each covered whole
    out = []
    for k in range(n):
        span = min(width_s, duration_s - k * width_s)
        out.append((k * width_s, float(acc[k] / span) if span > 0 else 0.0))
    out.append((duration_s, out[-1][1]))
    return out


def _window(points: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """Points inside [lo, hi] plus the nearest one outside on each side (lines reach the
    edges; the chart clips them)."""
    pts = sorted(points)
    inside = [i for i, p in enumerate(pts) if lo <= p[0] <= hi]
    if not inside:
        before = [p for p in pts if p[0] < lo][-1:]
        after = [p for p in pts if p[0] > hi][:1]
        return before + after if before and after else []
    a, b = max(inside[0] - 1, 0), min(inside[-1] + 1, len(pts) - 1)
    return pts[a : b + 1]


@dataclass(frozen=True)
class TelemetrySeries:
    """Telemetry as time series (x: seconds since the first measured send)."""

    gpu_util: dict[int, list[tuple[float, float]]]
    gpu_mem_gb: dict[int, list[tuple[float, float]]]
    gpu_total_gb: dict[int, float]
    gpu_names: dict[int, str]
    kv_cache_pct: list[tuple[float, float]]
    running: list[tuple[float, float]]
    waiting: list[tuple[float, float]]
    host_cpu: list[tuple[float, float]]
    client_cpu: list[tuple[float, float]]
    #: A server on this host that infermeter started or found on the loopback port measured.
    local_server_cpu: list[tuple[float, float]]
    #: The core probe as a speed: the window's fast level over each sample's time (%).
    core_speed_pct: list[tuple[float, float]]
    #: The same on the CPU of the local server's busiest thread.
    server_core_speed_pct: list[tuple[float, float]]
    steal: list[tuple[float, float]]
    server_kind: str | None

    @property
    def empty(self) -> bool:
        return not (
            self.gpu_util or self.kv_cache_pct or self.running or self.host_cpu or self.client_cpu
        )


def telemetry_series(
    samples: Sequence[dict[str, Any]], t0_ns: int, duration_s: float
) -> TelemetrySeries:
    gpu_util: dict[int, list[tuple[float, float]]] = {}
    gpu_mem: dict[int, list[tuple[float, float]]] = {}
    gpu_total: dict[int, float] = {}
    names: dict[int, str] = {}
    kv: list[tuple[float, float]] = []
    running: list[tuple[float, float]] = []
    waiting: list[tuple[float, float]] = []
    host: list[tuple[float, float]] = []
    client: list[tuple[float, float]] = []
    local: list[tuple[float, float]] = []
    probe: list[tuple[float, float]] = []
    pinned: list[tuple[float, float]] = []
    steal: list[tuple[float, float]] = []
    kind: str | None = None

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    for s in samples:
        x = (float(s["t_ns"]) - t0_ns) / 1e9
        src = s.get("source")
        if src == "gpu":
            for g in s.get("gpus") or []:
                if not isinstance(g, dict):
                    continue
                i = int(g.get("index", 0))
                if (u := num(g.get("util_percent"))) is not None:
                    gpu_util.setdefault(i, []).append((x, u))
                if (m := num(g.get("memory_used_bytes"))) is not None:
                    gpu_mem.setdefault(i, []).append((x, m / 1e9))
                if (t := num(g.get("memory_total_bytes"))) is not None:
                    gpu_total[i] = t / 1e9
                if g.get("name"):
                    names[i] = str(g["name"])
        elif src == "server":
            kind = str(s.get("kind") or kind or "") or None
            mapped = s.get("mapped") or {}
            if (v := num(mapped.get("kv_cache_usage"))) is not None:
                kv.append((x, 100 * v))
            if (v := num(mapped.get("requests_running"))) is not None:
                running.append((x, v))
            if (v := num(mapped.get("requests_waiting"))) is not None:
                waiting.append((x, v))
        elif src == "host":
            if (v := num(s.get("cpu_percent"))) is not None:
                host.append((x, v))
            if (v := num(s.get("client_cpu_percent"))) is not None:
                client.append((x, v))
            if (v := num(s.get("local_server_cpu_percent"))) is not None:
                local.append((x, v))
            if (v := num(s.get("core_probe_us"))) is not None and v > 0:
                probe.append((x, v))
            if (v := num(s.get("server_core_probe_us"))) is not None and v > 0:
                pinned.append((x, v))
            if (v := num(s.get("steal_percent"))) is not None:
                steal.append((x, v))

    def w(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return _window(pts, 0.0, duration_s)

    def as_speed(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """Each probe as a speed against the window's fast level (the same 10th percentile
        the run's summary uses)."""
        pts = w(pts)
        if not pts:
            return []
        fast = fast_level([v for _, v in pts])
        return [(x, 100 * fast / v) for x, v in pts]

    return TelemetrySeries(
        gpu_util={i: p for i, v in sorted(gpu_util.items()) if (p := w(v))},
        gpu_mem_gb={i: p for i, v in sorted(gpu_mem.items()) if (p := w(v))},
        gpu_total_gb=gpu_total,
        gpu_names=names,
        kv_cache_pct=w(kv),
        running=w(running),
        waiting=w(waiting),
        host_cpu=w(host),
        client_cpu=w(client),
        local_server_cpu=w(local),
        core_speed_pct=as_speed(probe),
        server_core_speed_pct=as_speed(pinned),
        steal=w(steal) if any(v >= 1 for _, v in steal) else [],
        server_kind=kind,
    )
