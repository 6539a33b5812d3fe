"""A multi-turn run's figures by turn and its sessions' durations, from records (pure)."""

from __future__ import annotations

import pytest

from infermeter.metrics import compute_run_metrics
from infermeter.metrics.sessions import session_stats
from infermeter.records.schema import RequestRecord

MS = 1_000_000


def _turn(rid: int, session: int, turn: int, send_ms: int, ok: bool = True) -> RequestRecord:
    first, last = (send_ms + 10 + 5 * turn) * MS, (send_ms + 30) * MS
    return RequestRecord(
        id=rid, session=session, turn=turn, ok=ok, t_sched_ns=send_ms * MS,
        t_send_ns=send_ms * MS, t_first_ns=first if ok else None, t_last_ns=last if ok else None,
        t_end_ns=last + MS, chunk_ns=[first, last] if ok else [], chunk_tokens=[1, 1] if ok else [],
        n_in=100 * (turn + 1), n_in_source="server", n_out=2 if ok else 0,
        n_cached=0 if turn == 0 else 100 * turn, error_kind=None if ok else "http",
    )  # fmt: skip


def test_turns_and_durations() -> None:
    recs = [
        _turn(0, 0, 0, 0), _turn(1, 0, 1, 100), _turn(2, 0, 2, 200),
        _turn(3, 1, 0, 0), _turn(4, 1, 1, 150, ok=False),  # session 1 ends at a failure
    ]  # fmt: skip
    m = compute_run_metrics(recs)
    s = session_stats(m.table, m.requests)
    assert s is not None and s.sessions == 2 and s.completed == 1 and s.turns_mean == 2.5
    assert s.duration_s.max == pytest.approx(0.231) and s.duration_s.min == pytest.approx(0.181)
    t0, t1, t2 = s.by_turn
    assert (t0.requests, t0.completed, t1.requests, t1.completed) == (2, 2, 2, 1)
    assert t0.ttft_ms.p50 == 10.0 and t1.ttft_ms.p50 == 15.0 and t2.ttft_ms.p50 == 20.0
    assert t0.cached_share == 0.0 and t1.cached_share == pytest.approx(0.5)
    assert t2.cached_share == pytest.approx(200 / 300)
    one = compute_run_metrics([_turn(0, 0, 0, 0)])
    assert session_stats(one.table, one.requests) is not None
    plain = compute_run_metrics([RequestRecord(id=0, ok=False)])
    assert session_stats(plain.table, plain.requests) is None
