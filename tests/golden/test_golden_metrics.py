"""Hand-computed metrics for small hand-written record sets (docs/metrics.md, by the letter).

Record A: multi-token chunks after a role-only first chunk (role chunk carries no token).
  t_sched 0, t_send 1 ms; token chunks at 101, 131, 161 ms carrying k = 1, 3, 2 (n_out 6);
  t_end 162 ms; n_in 100.
  TTFT 100, TTFT incl. queue 101, queue delay 1, E2E 160, TPOT (161-101)/5 = 12 ms,
  ITL 30/3 x3 and 30/2 x2 = [10, 10, 10, 15, 15], inter-chunk [30, 30],
  prefill TPS 100/0.1 = 1000, decode TPS 1000/12, per-request TPS 6/0.16 = 37.5.
Record B: n_out = 1. t_send 10, one chunk at 60, t_end 61; n_in 50.
  TTFT 50, E2E 50, TPOT undefined, no ITL.
Record C: failed (HTTP 500) between 20 and 30 ms.
Window D = 162 - 1 = 161 ms.
"""

from __future__ import annotations

import pytest

from infermeter.metrics import compute_run_metrics, parse_slo, request_metrics
from infermeter.records.schema import RequestRecord

MS = 1_000_000


def records() -> list[RequestRecord]:
    a = RequestRecord(
        id=0,
        t_sched_ns=0,
        t_send_ns=1 * MS,
        t_first_ns=101 * MS,
        t_last_ns=161 * MS,
        t_end_ns=162 * MS,
        chunk_ns=[101 * MS, 131 * MS, 161 * MS],
        chunk_tokens=[1, 3, 2],
        n_other_chunks=2,
        n_in=100,
        n_in_source="server",
        n_out=6,
        n_out_source="server",
        ok=True,
    )
    b = RequestRecord(
        id=1,
        t_sched_ns=10 * MS,
        t_send_ns=10 * MS,
        t_first_ns=60 * MS,
        t_last_ns=60 * MS,
        t_end_ns=61 * MS,
        chunk_ns=[60 * MS],
        chunk_tokens=[1],
        n_in=50,
        n_in_source="server",
        n_out=1,
        n_out_source="server",
        ok=True,
    )
    c = RequestRecord(
        id=2,
        t_sched_ns=20 * MS,
        t_send_ns=20 * MS,
        t_end_ns=30 * MS,
        ok=False,
        error_kind="http",
        http_status=500,
        error_message="HTTP 500: boom",
    )
    warm = RequestRecord(id=3, phase="warmup", t_send_ns=0, t_end_ns=10_000 * MS, ok=True, n_out=9)
    return [a, b, c, warm]


def test_request_a_multi_token_chunks() -> None:
    m = request_metrics(records()[0])
    assert m.ttft_ms == pytest.approx(100.0)
    assert m.ttft_incl_queue_ms == pytest.approx(101.0)
    assert m.queue_delay_ms == pytest.approx(1.0)
    assert m.e2e_ms == pytest.approx(160.0)
    assert m.tpot_ms == pytest.approx(12.0)
    assert m.itl_ms == pytest.approx((10.0, 10.0, 10.0, 15.0, 15.0))
    assert m.inter_chunk_ms == pytest.approx((30.0, 30.0))
    assert m.prefill_tps == pytest.approx(1000.0)
    assert m.decode_tps == pytest.approx(1000.0 / 12.0)
    assert m.request_tps == pytest.approx(37.5)
    # The spec's identity: E2E = TTFT + TPOT * (n_out - 1).
    assert m.e2e_ms == pytest.approx(m.ttft_ms + m.tpot_ms * 5)


def test_request_b_single_token() -> None:
    m = request_metrics(records()[1])
    assert m.ttft_ms == pytest.approx(50.0) and m.e2e_ms == pytest.approx(50.0)
    assert m.tpot_ms is None and m.decode_tps is None
    assert m.itl_ms.size == 0 and m.inter_chunk_ms.size == 0


def test_run_aggregates() -> None:
    run = compute_run_metrics(records(), target_concurrency=2)
    s = run.summary
    d = 0.161
    assert s.requests_sent == 3 and s.requests_completed == 2 and s.requests_failed == 1
    assert s.duration_s == pytest.approx(d)
    assert s.request_throughput_rps == pytest.approx(2 / d)
    assert s.request_throughput_rpm == pytest.approx(120 / d)
    assert s.output_token_throughput_tok_s == pytest.approx(7 / d)
    assert s.input_token_throughput_tok_s == pytest.approx(150 / d)
    assert s.total_token_throughput_tok_s == pytest.approx(157 / d)
    assert s.achieved_concurrency == pytest.approx((0.160 + 0.050) / d)
    assert s.error_rate == pytest.approx(1 / 3)
    assert s.goodput_rps is None and s.slo_attainment is None
    assert run.errors_by_kind == {"http_500": 1}
    ttft = run.distributions["ttft_ms"]
    assert (ttft.count, ttft.mean, ttft.min, ttft.max) == (2, 75.0, 50.0, 100.0)
    # numpy's linear interpolation between the two order statistics.
    assert ttft.p50 == pytest.approx(75.0)
    assert ttft.p90 == pytest.approx(95.0)
    assert ttft.p99 == pytest.approx(99.5)
    assert ttft.std == pytest.approx(25.0)
    # two requests bound no median at 95 % (each side leaves 25 %); the p90 and p99 lie
    # above the smaller with at least 97.5 %: P(both below p90) = 0.81, so not the larger
    assert ttft.intervals["p50"] == (None, None)
    assert ttft.intervals["p90"] == (50.0, None) and ttft.intervals["p99"] == (100.0, None)
    itl = run.distributions["itl_ms"]
    assert itl.count == 5 and itl.mean == pytest.approx(12.0)
    assert itl.intervals == {} and "interval95" not in itl.to_dict()  # per token: none
    assert run.distributions["inter_chunk_ms"].count == 2
    assert run.distributions["tpot_ms"].count == 1  # B has no TPOT
    assert run.distributions["output_tokens"].mean == pytest.approx(3.5)


def test_goodput_and_slo_attainment_count_failures_as_misses() -> None:
    run = compute_run_metrics(records(), slo=parse_slo("ttft_ms=80,p90_ttft_ms=120"))
    s = run.summary
    assert s.goodput_rps == pytest.approx(1 / 0.161)  # only B meets TTFT <= 80
    assert s.slo_attainment == pytest.approx(1 / 3)
    assert run.slo is not None
    plain, pct = run.slo.terms
    assert plain.attainment == pytest.approx(1 / 3) and plain.passed is None
    # 2 of 3 requests (the failure is a miss) have TTFT <= 120: 66.7 % < 90 % -> fail.
    assert pct.attainment == pytest.approx(2 / 3) and pct.passed is False
    assert pct.measured == pytest.approx(95.0)
    assert run.slo.passed is False


def test_tpot_slo_is_met_by_single_token_requests() -> None:
    run = compute_run_metrics(records()[:2], slo=parse_slo("tpot_ms=5"))
    # A's TPOT is 12 ms (miss), B has no decode phase (met).
    assert run.slo is not None and run.slo.requests_meeting == 1


def test_empty_and_all_failed_runs_do_not_divide_by_zero() -> None:
    assert compute_run_metrics([]).summary.request_throughput_rps == 0.0
    failed = compute_run_metrics([records()[2]])
    assert failed.summary.requests_failed == 1 and failed.distributions["ttft_ms"].count == 0


def test_an_answer_sent_whole_has_e2e_only() -> None:
    """Metrics spec section 7: one body with 8 tokens, sent 1 ms in, read at 81 ms."""
    whole = RequestRecord(
        id=9, t_sched_ns=0, t_send_ns=1 * MS, t_first_ns=81 * MS, t_last_ns=81 * MS,
        t_end_ns=81 * MS, chunk_ns=[81 * MS], chunk_tokens=[8], streamed=False, n_in=100,
        n_out=8, ok=True,
    )  # fmt: skip
    m = request_metrics(whole)
    assert m.e2e_ms == pytest.approx(80.0) and m.request_tps == pytest.approx(100.0)
    assert m.ttft_ms is None and m.ttft_incl_queue_ms is None and m.prefill_tps is None
    assert m.tpot_ms is None and m.decode_tps is None and m.itl_ms.size == 0
    run = compute_run_metrics([*records(), whole])
    assert run.distributions["ttft_ms"].count == 2 and run.distributions["e2e_ms"].count == 3
    assert run.not_streamed == 1
