"""Time to read one huge streamed chunk (a long answer sent in one SSE message), raw
transport against aiohttp, from the ground-truth emulator on loopback.

    python bench/big_chunks.py [--mb 1,4,10] [--repeat 3]

Prints one line per size and transport: the median seconds of a request whose whole answer
is one chunk of that many megabytes. Linear readers take ~10× as long for 10× the bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from infermeter.clients.formats import RequestOptions
from infermeter.clients.openai_completions import Completions
from infermeter.clients.stream import StreamingClient
from infermeter.clients.transport import Timeouts, open_clients
from infermeter.testing.emulator import EmulatorConfig, ThreadedServer
from infermeter.workload.types import Prompt


async def _one(transport: str, url: str, tokens: int) -> float:
    http, raw = open_clients({}, Timeouts())
    async with http, raw:
        streamer = http if transport == "aiohttp" else raw
        fmt = Completions()
        client = StreamingClient(
            streamer, url + "/v1", fmt, RequestOptions(model="ground-truth"), t0_ns=0
        )
        t = time.perf_counter()
        rec = await client.send(0, Prompt("a b c", tokens, None), time.perf_counter_ns())
        assert rec.ok, rec.error_message
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", default="1,4,10")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for mb in (float(x) for x in args.mb.split(",")):
        tokens = int(mb * (1 << 20) / 4)  # the emulator's token is " tok": 4 bytes
        cfg = EmulatorConfig(ttft_ms=1, itl_ms=0, tokens_per_chunk=tokens)
        with ThreadedServer(cfg) as srv:
            for transport in ("raw", "aiohttp"):
                times = [asyncio.run(_one(transport, srv.url, tokens)) for _ in range(args.repeat)]
                print(f"{mb:5.1f} MB  {transport:8s} {statistics.median(times):7.3f} s")


if __name__ == "__main__":
    main()
