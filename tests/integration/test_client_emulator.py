"""The client against the ground-truth emulator: exact timing and stream shapes."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from infermeter.clients import (
    ChatCompletions,
    Completions,
    HttpTransport,
    RequestOptions,
    StreamingClient,
)
from infermeter.metrics import request_metrics
from infermeter.records.schema import RequestRecord
from infermeter.workload.types import Prompt


def send(url: str, prompt: Prompt, *, api: str = "chat", **opts: object) -> RequestRecord:
    async def go() -> RequestRecord:
        async with HttpTransport() as t:
            fmt = ChatCompletions() if api == "chat" else Completions()
            client = StreamingClient(
                t,
                url + "/v1",
                fmt,
                RequestOptions(model="ground-truth", **opts),  # type: ignore[arg-type]
                t0_ns=time.perf_counter_ns(),
            )
            return await client.send(0, prompt, time.perf_counter_ns())

    return asyncio.run(go())


def test_timing_matches_the_ground_truth(emulator) -> None:
    with emulator(ttft_ms=40, itl_ms=8) as srv:
        rec = send(srv.url, Prompt("a b c", 20))
    m = request_metrics(rec)
    assert rec.ok and rec.n_out == 20 and rec.n_in == 3
    assert rec.n_other_chunks == 3  # role-only first, finish chunk, usage-only last
    assert m.ttft_ms == pytest.approx(40, abs=5)
    assert m.tpot_ms == pytest.approx(8, abs=1)
    assert m.e2e_ms == pytest.approx(40 + 19 * 8, abs=8)


def test_multi_token_chunks_spread_by_text(emulator) -> None:
    with emulator(ttft_ms=1, itl_ms=1, tokens_per_chunk=3) as srv:
        rec = send(srv.url, Prompt("x", 16))
    assert rec.n_out == 16 and rec.n_out_source == "server"
    assert rec.chunk_tokens == [3, 3, 3, 3, 3, 1] and rec.chunk_tokens_source == "spread"
    # ITL samples come from chunks after the first (spec section 3): 3+3+3+3+1.
    assert len(request_metrics(rec).itl_ms) == 13


def test_per_chunk_usage_gives_exact_tokens_per_chunk(emulator) -> None:
    with emulator(ttft_ms=1, itl_ms=1, tokens_per_chunk=4) as srv:
        rec = send(srv.url, Prompt("x", 10), per_chunk_usage=True)
    assert rec.chunk_tokens == [4, 4, 2] and rec.chunk_tokens_source == "server-stream"


def test_completions_api_and_missing_done(emulator) -> None:
    with emulator(ttft_ms=1, itl_ms=1, fault="no_done") as srv:
        rec = send(srv.url, Prompt("one two", 5), api="completions")
    assert rec.ok and rec.n_out == 5 and rec.finish_reason == "length"


def test_no_usage_falls_back_to_counting_chunks(emulator) -> None:
    with emulator(ttft_ms=1, itl_ms=1) as srv:
        rec = send(srv.url, Prompt("x", 7), include_usage=False)
    assert rec.ok and rec.n_out == 7 and rec.n_out_source == "chunks"


def test_100k_token_stream_and_one_huge_chunk(emulator) -> None:
    with emulator(ttft_ms=0, itl_ms=0, tokens_per_chunk=500) as srv:
        rec = send(srv.url, Prompt("x", 100_000))
    assert rec.ok and rec.n_out == 100_000 and sum(rec.chunk_tokens) == 100_000
    with emulator(ttft_ms=0, itl_ms=0, tokens_per_chunk=100_000) as srv:
        rec = send(srv.url, Prompt("x", 100_000))  # one SSE line of ~400 KB
    assert rec.ok and rec.n_out == 100_000 and len(rec.chunk_ns) == 1


def test_open_loop_max_concurrency_shows_as_queue_delay(emulator, tmp_path) -> None:
    from infermeter import BenchConfig, run_benchmark

    with emulator(ttft_ms=100, itl_ms=5) as srv:
        run = run_benchmark(
            BenchConfig.build(
                url=srv.url,
                rate=50.0,
                num_requests=20,
                max_concurrency=2,
                arrival="constant",
                input_tokens="4",
                output_tokens="4",
                out=tmp_path / "r",
            )
        )
    s = run.results["summary"]
    assert s["requests_completed"] == 20
    # Two at a time, ~115 ms each: the schedule (one every 20 ms) cannot be kept, and the
    # wait for a slot is client queue delay, not TTFT.
    assert s["achieved_concurrency"] <= 2.05
    assert run.results["distributions"]["queue_delay_ms"]["max"] > 500
    assert run.results["distributions"]["ttft_ms"]["max"] < 250


def test_ramp_up_starts_streams_evenly(emulator, tmp_path) -> None:
    from infermeter import BenchConfig, run_benchmark

    with emulator(ttft_ms=700, itl_ms=2) as srv:
        run = run_benchmark(
            BenchConfig.build(
                url=srv.url,
                concurrency=4,
                num_requests=8,
                ramp_up_s=0.6,
                input_tokens="4",
                output_tokens="4",
                out=tmp_path / "r",
            )
        )
    assert run.results["summary"]["requests_completed"] == 8
    firsts = sorted(r.t_send_ns for r in run.records)[:4]
    gaps_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(firsts)]
    # streams 0..3 first send at 0, 150, 300, 450 ms (a request takes ~710 ms: these four
    # sends are the four streams' first)
    assert all(130 < g < 190 for g in gaps_ms), gaps_ms


@pytest.mark.parametrize("workers", [1, 2])
def test_duration_bounded_open_loop_sends_at_the_rate(emulator, tmp_path, workers: int) -> None:
    from infermeter import BenchConfig, run_benchmark

    with emulator(ttft_ms=5, itl_ms=1) as srv:
        run = run_benchmark(
            BenchConfig.build(
                url=srv.url,
                rate=9.0,
                duration_s=4.0,
                input_tokens="8",
                output_tokens="4",
                workers=workers,
                telemetry=False,
                out=tmp_path / "run",
            )
        )
    s = run.results["summary"]
    assert s["requests_sent"] == 36  # ceil(9 x 4): the schedule, not a Poisson count
    # the sends keep to it within the client's own lateness
    assert s["achieved_send_rate_rps"] == pytest.approx(9.0, rel=0.05)
