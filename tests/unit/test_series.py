"""The report's timeline series, computed from the request table's columns, are the ones the
per-record definitions give (written out here, record by record, as the reference): exactly,
and the in-flight means to rounding (the same integrals, summed in another order)."""

from __future__ import annotations

import itertools
import math
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_table import records as table_records

import infermeter.report.html.series as series
from infermeter.metrics.per_request import request_metrics
from infermeter.metrics.table import chunk_arrivals, request_table
from infermeter.records.schema import RequestRecord
from infermeter.report.charts import nice_step
from infermeter.report.html.series import inflight_series, request_points, throughput_series


@st.composite
def records(draw: st.DrawFn) -> RequestRecord:
    """The table tests' records, plus answers not streamed that came in several chunks, and
    times as far from the clock's origin as a proxy running for weeks gets."""
    r = draw(table_records())
    if draw(st.booleans()):
        shift = draw(st.integers(0, 2 * 10**15))
        r.t_sched_ns += shift
        r.t_send_ns += shift
        r.t_end_ns += shift
        r.chunk_ns = [t + shift for t in r.chunk_ns]
        r.t_first_ns = r.chunk_ns[0] if r.chunk_ns else None
        r.t_last_ns = r.chunk_ns[-1] if r.chunk_ns else None
    if r.ok and len(r.chunk_ns) >= 2 and draw(st.integers(0, 5)) == 0:
        r.streamed = False
    return r


def measured(recs: list[RequestRecord]) -> list[RequestRecord]:
    return [r for r in recs if r.phase == "measure"]


def ref_throughput(
    recs: list[RequestRecord], t0: int, duration_s: float
) -> tuple[list[tuple[float, float]], float]:
    width = max(nice_step(duration_s, 60), 1e-3)
    n = max(math.ceil(duration_s / width - 1e-9), 1)
    tokens = np.zeros(n, dtype=float)
    for r in measured(recs):
        if not r.ok:
            continue
        for i, t in enumerate(r.chunk_ns):
            b = min(max(int((t - t0) / 1e9 / width), 0), n - 1)
            tokens[b] += r.chunk_tokens[i] if i < len(r.chunk_tokens) else 1
    pts = []
    for b in range(n):
        span = min(width, duration_s - b * width)
        pts.append((b * width, float(tokens[b]) / span if span > 0 else 0.0))
    pts.append((duration_s, pts[-1][1]))
    return pts, width


def ref_inflight(
    recs: list[RequestRecord], t0: int, duration_s: float, width_s: float
) -> list[tuple[float, float]]:
    events: list[tuple[float, int]] = []
    for r in measured(recs):
        events.append(((r.t_send_ns - t0) / 1e9, 1))
        events.append(((max(r.t_end_ns, r.t_send_ns) - t0) / 1e9, -1))
    if not events:
        return []
    events.sort()
    n = max(math.ceil(duration_s / width_s - 1e-9), 1)
    acc = np.zeros(n, dtype=float)
    level = 0
    for (x0, d), (x1, _) in itertools.pairwise(events):
        level += d
        if level <= 0 or x1 <= x0:
            continue
        for b in range(max(int(x0 / width_s), 0), min(int(x1 / width_s), n - 1) + 1):
            lo, hi = max(x0, b * width_s), min(x1, (b + 1) * width_s)
            if hi > lo:
                acc[b] += level * (hi - lo)
    out = []
    for b in range(n):
        span = min(width_s, duration_s - b * width_s)
        out.append((b * width_s, float(acc[b] / span) if span > 0 else 0.0))
    out.append((duration_s, out[-1][1]))
    return out


def ref_points(recs: list[RequestRecord], t0: int) -> tuple[list, list, list]:
    ttft, e2e, failed = [], [], []
    for r in sorted(measured(recs), key=lambda r: r.t_send_ns):
        x = (r.t_send_ns - t0) / 1e9
        if r.ok:
            m = request_metrics(r)
            if m.ttft_ms is None or m.e2e_ms is None:
                continue
            ttft.append((x, m.ttft_ms))
            e2e.append((x, m.e2e_ms))
        else:
            failed.append((x, max(r.t_end_ns - r.t_send_ns, 0) / 1e6))
    return ttft, e2e, failed


@given(st.lists(records(), max_size=14), st.integers(1, 4))
@settings(max_examples=300, deadline=None)
def test_series_equal_the_per_record_definitions(recs: list[RequestRecord], block: int) -> None:
    table = request_table(recs)
    done = [r for r in measured(recs) if r.ok]
    arrivals = list(chunk_arrivals(table, block=block))
    times = np.concatenate([t for t, _ in arrivals]) if arrivals else np.empty(0)
    ks = np.concatenate([k for _, k in arrivals]) if arrivals else np.empty(0)
    assert times.tolist() == [t for r in done for t in r.chunk_ns]
    want_k = [
        r.chunk_tokens[i] if i < len(r.chunk_tokens) else 1
        for r in done
        for i in range(len(r.chunk_ns))
    ]
    assert ks.tolist() == want_k
    if not measured(recs):
        return
    t0 = min(r.t_send_ns for r in measured(recs))
    end = max(max(r.t_end_ns, r.t_send_ns) for r in measured(recs))
    duration = max((end - t0) / 1e9, 1e-3)
    pts, width = throughput_series(table, t0, duration)
    assert (pts, width) == ref_throughput(recs, t0, duration)
    got_inflight = inflight_series(table, t0, duration, width)
    want_inflight = ref_inflight(recs, t0, duration, width)
    # the same integrals summed in another order: equal to rounding
    assert [x for x, _ in got_inflight] == [x for x, _ in want_inflight]
    for (_, a), (_, b) in zip(got_inflight, want_inflight, strict=True):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    got = request_points(table, t0)
    assert (got.ttft, got.e2e, got.failed) == ref_points(recs, t0)


@given(
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=20, max_size=400),
    st.integers(0, 3),
)
@settings(max_examples=200, deadline=None)
def test_the_blockwise_histogram_is_numpys(values: list[float], heavy: int) -> None:
    """Past a few million samples the histogram is counted a block at a time without a sort;
    the bins are NumPy's, value for value (edges included)."""

    arr = np.array(values + [values[0]] * heavy * 50)
    want = series.histogram(arr, float(np.percentile(arr, 50)), float(np.percentile(arr, 99)))
    edges = np.asarray(want[0])
    on_edges = np.concatenate([arr, edges[(edges >= arr.min()) & (edges <= want[3])]])
    for sample in (arr, on_edges):
        p50, p99 = float(np.percentile(sample, 50)), float(np.percentile(sample, 99))
        small = series.histogram(sample, p50, p99)
        with patch.object(series, "LARGE", 0):
            large = series.histogram(sample, p50, p99)
        assert large == small


@given(
    st.lists(st.floats(-1e3, 1e4, allow_nan=False), min_size=1, max_size=300),
    st.integers(1, 50),
)
@settings(max_examples=200, deadline=None)
def test_extent_is_numpys_min_max_and_positives(values: list[float], block: int) -> None:
    """The one-pass extent, block by block on several threads, says what NumPy says."""

    arr = np.array(values)
    with patch.object(series, "LARGE", 0), patch.object(series, "BLOCK", block):
        got = series.extent(arr)
    above = arr[arr > 0]
    assert (got.lo, got.hi) == (arr.min(), arr.max())
    assert got.positive == above.size
    assert got.least_positive == (float(above.min()) if above.size else None)


@given(
    st.sampled_from([1e9, -5e6, 3.0e12]),
    st.lists(st.integers(0, 400), min_size=20, max_size=200),
)
@settings(max_examples=100, deadline=None)
def test_the_blockwise_histogram_far_from_zero(offset: float, steps: list[int]) -> None:
    """Values far from 0 in bin widths, many of them on the edges: NumPy's bins still."""

    arr = offset + np.array(steps, dtype=float) * 0.25
    p50, p99 = float(np.percentile(arr, 50)), float(np.percentile(arr, 99))
    small = series.histogram(arr, p50, p99)
    with patch.object(series, "LARGE", 0):
        large = series.histogram(arr, p50, p99)
    assert large == small


@pytest.mark.parametrize(
    "values",
    [
        [3e12] * 19 + [3e12 + 37.5],  # edges rounded into equal pairs; a value half a width in
        [0.0] * 19 + [5e-311],  # a width too small to invert
        [1e300] * 5 + [1.7e308] * 15,  # differences near the largest float
    ],
)
def test_the_blockwise_histogram_at_the_floats_edges(values: list[float]) -> None:
    arr = np.array(values)
    p50, p99 = float(np.percentile(arr, 50)), float(np.percentile(arr, 99))
    small = series.histogram(arr, p50, p99)
    with patch.object(series, "LARGE", 0):
        assert series.histogram(arr, p50, p99) == small
