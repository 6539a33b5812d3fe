"""The columnar fold of records: the same numbers as the per-record formulas, bit for bit, and
a summary that keeps no record."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infermeter.metrics import compute_run_metrics, request_metrics
from infermeter.metrics.per_request import RequestMetrics
from infermeter.metrics.table import request_table
from infermeter.records.schema import RequestRecord

MS = 1_000_000


@st.composite
def records(draw: st.DrawFn) -> RequestRecord:
    sched = draw(st.integers(0, 10**12))
    send = sched + draw(st.integers(0, 10**9))
    ok = draw(st.booleans())
    n_chunks = draw(st.integers(0, 6)) if ok else draw(st.integers(0, 2))
    gaps = draw(st.lists(st.integers(0, 10**8), min_size=n_chunks, max_size=n_chunks))
    chunk_ns = [send + sum(gaps[: i + 1]) + 1 for i in range(n_chunks)]
    ks = draw(st.lists(st.integers(0, 4), min_size=n_chunks, max_size=n_chunks))
    if ks:
        ks[0] = max(ks[0], 1)
    n_in = draw(st.none() | st.integers(0, 5000))
    timings = draw(
        st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "prompt_ms": st.floats(0, 1e4) | st.integers(0, 10**4),
                "predicted_per_token_ms": st.floats(0, 1e3) | st.integers(0, 10**3),
            },
        )
    )
    return RequestRecord(
        id=draw(st.integers(0, 10**6)),
        phase=draw(st.sampled_from(["measure", "measure", "measure", "warmup"])),
        t_sched_ns=sched,
        t_send_ns=send,
        connect_ns=draw(st.integers(0, send - sched)),
        t_first_ns=chunk_ns[0] if chunk_ns else None,
        t_last_ns=chunk_ns[-1] if chunk_ns else None,
        t_end_ns=(chunk_ns[-1] if chunk_ns else send) + draw(st.integers(0, 10**7)),
        chunk_ns=chunk_ns,
        chunk_tokens=ks,
        streamed=draw(st.booleans()) if n_chunks == 1 else True,
        n_in=n_in,
        n_in_source=draw(st.sampled_from([None, "server", "tokenizer"])),
        n_in_target=draw(st.none() | st.integers(0, 5000)),
        n_cached=draw(st.none() | st.integers(0, 5000)),
        n_out=sum(ks),
        ok=ok,
        http_status=None if ok else draw(st.sampled_from([None, 500, 429])),
        error_kind=None if ok else draw(st.sampled_from(["http", "timeout", "protocol"])),
        error_message=None if ok else draw(st.text(max_size=8)),
        server_timings=timings,
    )


def same(a: RequestMetrics, b: RequestMetrics) -> bool:
    for name in RequestMetrics.__slots__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            if not (x.dtype == y.dtype and x.tobytes() == y.tobytes()):
                return False
        elif x != y or type(x) is not type(y):
            return False
    return True


@given(st.lists(records(), max_size=12))
@settings(max_examples=300, deadline=None)
def test_columns_give_the_per_record_formulas_bit_for_bit(recs: list[RequestRecord]) -> None:
    m = compute_run_metrics(recs)
    done = [r for r in recs if r.phase == "measure" and r.ok]
    rows = m.per_request
    assert len(rows) == len(done)
    for r, row in zip(done, rows, strict=True):
        assert same(request_metrics(r), row), r
    # The run's ITL and inter-chunk samples are every request's, in record order.
    itl = [x for r in done for x in request_metrics(r).itl_ms]
    assert m.distributions["itl_ms"].count == len(itl)
    if itl:
        assert m.distributions["itl_ms"].p50 == float(np.percentile(itl, 50))
    assert m.summary.requests_sent == sum(r.phase == "measure" for r in recs)


def test_multi_token_chunks_keep_their_own_itl_samples() -> None:
    """Once a request spreads a chunk over several tokens, ITL samples are kept apart from
    the gaps; the requests before it keep theirs."""
    one = RequestRecord(
        id=0, ok=True, t_first_ns=10, t_last_ns=30, chunk_ns=[10, 20, 30],
        chunk_tokens=[1, 1, 1], n_out=3,
    )  # fmt: skip
    multi = RequestRecord(
        id=1, ok=True, t_first_ns=10, t_last_ns=50, chunk_ns=[10, 50],
        chunk_tokens=[1, 4], n_out=5,
    )  # fmt: skip
    t = request_table([one, multi])
    assert t.gaps_ms.tolist() == [1e-5, 1e-5, 4e-5]
    assert t.itl_ms.tolist() == [1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5]
    assert t.itl_offsets.tolist() == [0, 2, 6] and t.gap_offsets.tolist() == [0, 2, 3]


def _stream(n: int, tokens: int) -> Iterator[RequestRecord]:
    for i in range(n):
        send = i * 10 * MS
        chunks = [send + (20 + 5 * k) * MS + i for k in range(tokens)]
        yield RequestRecord(
            id=i, ok=True, t_sched_ns=send, t_send_ns=send, t_first_ns=chunks[0],
            t_last_ns=chunks[-1], t_end_ns=chunks[-1] + MS, chunk_ns=chunks,
            chunk_tokens=[1] * tokens, n_in=512, n_in_source="server", n_out=tokens,
            n_out_source="server", usage={"prompt_tokens": 512, "completion_tokens": tokens},
        )  # fmt: skip


def test_a_summary_keeps_no_record() -> None:
    """Records folded from a stream leave ~8 bytes a token and ~200 a request behind; as
    objects they took ~7 KB each (64 tokens), so a run's summary once held them all."""
    n, tokens = 20_000, 64
    tracemalloc.start()
    try:
        m = compute_run_metrics(_stream(n, tokens))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert m.summary.requests_completed == n
    assert m.distributions["itl_ms"].count == n * (tokens - 1)
    per_request = peak / n
    # Columns of about 130 bytes, and 8 bytes a gap three times over while the doubling
    # buffer copies itself; a list of the records alone is over 5,600 bytes each.
    assert per_request < 400 + 3 * 8 * tokens, per_request
