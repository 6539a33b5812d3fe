"""Arrival stamps that a busy client cannot delay (``clients/sockio.py``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from infermeter.clients import ChatCompletions, RequestOptions, StreamingClient, clock, sockio
from infermeter.clients.rawhttp import RawHttpClient
from infermeter.metrics import request_metrics
from infermeter.records.schema import RequestRecord
from infermeter.workload.types import Prompt

pytestmark = pytest.mark.skipif(
    not sockio.kernel_stamps_supported(), reason="kernel receive stamps: 64-bit Linux only"
)


def stalled_send(url: str, *, kernel_stamps: bool) -> tuple[RequestRecord, int]:
    """One request whose first token arrives while the client's loop is stuck."""

    async def go() -> tuple[RequestRecord, int]:
        loop = asyncio.get_running_loop()
        async with RawHttpClient(kernel_stamps=kernel_stamps) as http:
            client = StreamingClient(
                http,
                url + "/v1",
                ChatCompletions(),
                RequestOptions(model="ground-truth"),
                t0_ns=time.perf_counter_ns(),
            )
            await client.send(0, Prompt("warm", 1), time.perf_counter_ns())  # pools a connection
            # The loop is stuck from 10 to 160 ms after the request leaves; the first token
            # (due 40 ms after it) waits in the socket meanwhile.
            loop.call_later(0.01, time.sleep, 0.15)
            rec = await client.send(1, Prompt("a b c", 2), time.perf_counter_ns())
            return rec, http.kernel_stamped

    return clock.run(go())


def test_a_stuck_client_still_stamps_arrival_right(emulator) -> None:
    with emulator(ttft_ms=40, itl_ms=400) as srv:
        rec, stamped = stalled_send(srv.url, kernel_stamps=True)
        late, unstamped = stalled_send(srv.url, kernel_stamps=False)
    assert rec.ok and late.ok
    assert stamped == 1 and unstamped == 0
    assert request_metrics(rec).ttft_ms == pytest.approx(40, abs=5)
    # The same stall stamped at the poll: the client's own delay reported as the server's.
    assert request_metrics(late).ttft_ms > 150


def test_a_host_name_is_resolved_once_for_many_connections(emulator) -> None:
    async def go(url: str) -> tuple[list[RequestRecord], int]:
        async with RawHttpClient() as http:
            client = StreamingClient(
                http,
                url + "/v1",
                ChatCompletions(),
                RequestOptions(model="ground-truth"),
                t0_ns=time.perf_counter_ns(),
            )
            recs = await asyncio.gather(
                *(client.send(i, Prompt("a", 2), time.perf_counter_ns()) for i in range(8))
            )
            return list(recs), len(http._resolved)

    with emulator(ttft_ms=1, itl_ms=1) as srv:
        recs, lookups = clock.run(go(srv.url.replace("127.0.0.1", "localhost")))
    assert all(r.ok for r in recs) and lookups == 1


def test_an_unknown_host_name_is_a_one_line_connection_error() -> None:
    async def go() -> RequestRecord:
        async with RawHttpClient() as http:
            client = StreamingClient(
                http,
                "http://no-such-host.invalid:8000/v1",
                ChatCompletions(),
                RequestOptions(model="m"),
                t0_ns=time.perf_counter_ns(),
            )
            return await client.send(0, Prompt("a", 2), time.perf_counter_ns())

    rec = clock.run(go())
    assert not rec.ok and rec.error_kind == "connection"
    assert "no-such-host.invalid" in rec.error_message and "\n" not in rec.error_message
