"""How much does infermeter's own client add? Measured against the ground-truth emulator.

The emulator (a separate process, pinned to one core where possible) streams 128 tokens per
request: the first 50 ms after it read the request, then one every 10 ms, and stamps each
chunk with the instant it read the request (``x_read_ns``) and wrote the chunk
(``x_sent_ns``). infermeter's real client path (StreamingClient + Runner + JSONL sink) runs in
this process, pinned to another core, closed loop at N streams. Both use CLOCK_MONOTONIC.

Reported per N: token chunks per second received (and the ideal 100 per stream per second),
arrival-minus-send per chunk (p50/p99), TTFT error = measured TTFT - true TTFT (p50/p99),
client CPU per chunk, and client memory per open stream.

    python bench/client_overhead.py --streams 1 100 1000 --seconds 8
"""

from __future__ import annotations

import argparse
import array
import asyncio
import operator
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from infermeter.clients import ChatCompletions, HttpTransport, RequestOptions, StreamingClient
from infermeter.clients import clock as stamping_loop
from infermeter.clients.formats import ChunkDelta
from infermeter.clients.rawhttp import RawHttpClient
from infermeter.load.runner import LoadPlan, Runner
from infermeter.records.sink import JsonlSink
from infermeter.workload.types import Prompt


class StampedChat(ChatCompletions):
    """Chat format that also keeps the emulator's stamps of each token chunk (one instance
    per request: parsing runs in the transport's read callback, outside the request's task).
    Two int lists, not a tuple per chunk: the bench itself should not feed the collector."""

    def __init__(self) -> None:
        self.read_ns: list[int] = []
        self.sent_ns: list[int] = []

    def parse(self, obj: dict[str, Any]) -> ChunkDelta:
        d = super().parse(obj)
        if d.text and "x_sent_ns" in obj:
            self.read_ns.append(obj["x_read_ns"])
            self.sent_ns.append(obj["x_sent_ns"])
        return d


def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def measure(
    url: str, streams: int, seconds: float, tokens: int, transport_name: str, ramp: float = 0.0
) -> dict[str, float]:
    t0 = time.perf_counter_ns()
    # Raw int64s, not a list of ints: the bench's own per-chunk data (~8 B a chunk rather
    # than ~36) must not pass for the client's memory per stream.
    errors_chunk = array.array("q")
    errors_ttft: list[int] = []
    delivery: list[int] = []  # request sent -> the emulator saw it (its poll stamp)
    base_rss = rss_kb()
    peak_rss = base_rss
    if transport_name == "aiohttp":
        transport = HttpTransport()
    else:  # "raw": kernel receive stamps where available; "raw-poll": the poll's stamp only
        transport = RawHttpClient(kernel_stamps=transport_name == "raw")
    async with transport:
        options = RequestOptions(model="ground-truth")

        async def send(rid: int, prompt: Prompt, t_sched: int, phase: str):
            fmt = StampedChat()
            client = StreamingClient(transport, url + "/v1", fmt, options, t0_ns=t0)
            rec = await client.send(rid, prompt, t_sched, phase=phase)
            if rec.ok and len(fmt.sent_ns) == len(rec.chunk_ns):
                # arrival - sent, less t0 (added back at the end): at C speed, so that the
                # bench's own bookkeeping stays out of the client's burst of completions
                errors_chunk.extend(map(operator.sub, rec.chunk_ns, fmt.sent_ns))
                measured = rec.t_first_ns - rec.t_send_ns
                errors_ttft.append(measured - (fmt.sent_ns[0] - fmt.read_ns[0]))
                delivery.append(fmt.read_ns[0] - (rec.t_send_ns + t0))
            return rec

        async def sample_rss() -> None:
            nonlocal peak_rss
            while True:
                peak_rss = max(peak_rss, rss_kb())
                await asyncio.sleep(0.2)

        with tempfile.TemporaryDirectory() as tmp, JsonlSink(Path(tmp) / "r.jsonl") as sink:
            plan = LoadPlan(concurrency=streams, duration_s=seconds, ramp_up_s=ramp)
            runner = Runner(send, plan, listeners=[sink])
            sampler = asyncio.ensure_future(sample_rss())
            cpu0 = time.process_time()
            w0 = time.perf_counter()
            state = await runner.run([Prompt("hello world", tokens)] * 4)
            wall = time.perf_counter() - w0
            cpu = time.process_time() - cpu0
            sampler.cancel()
    chunks = len(errors_chunk)
    ch = (np.frombuffer(errors_chunk, dtype=np.int64) + t0) / 1e6
    tt = np.array(errors_ttft) / 1e6
    return {
        "streams": streams,
        "requests": state.finished,
        "failed": state.failed,
        "chunks_per_s": chunks / wall,
        "ideal_chunks_per_s": streams * 1000.0 / 10.0,
        "arrival_minus_send_p50_ms": float(np.percentile(ch, 50)) if chunks else float("nan"),
        "arrival_minus_send_p99_ms": float(np.percentile(ch, 99)) if chunks else float("nan"),
        "ttft_error_p50_ms": float(np.percentile(tt, 50)) if len(tt) else float("nan"),
        "ttft_error_p99_ms": float(np.percentile(tt, 99)) if len(tt) else float("nan"),
        "delivery_p50_ms": float(np.percentile(delivery, 50)) / 1e6 if delivery else float("nan"),
        "delivery_p99_ms": float(np.percentile(delivery, 99)) / 1e6 if delivery else float("nan"),
        "cpu_us_per_chunk": cpu / max(chunks, 1) * 1e6,
        "kb_per_stream": (peak_rss - base_rss) / streams,
    }


async def measure_reference(
    url: str, streams: int, seconds: float, tokens: int
) -> dict[str, float]:
    """The same figures for the bare reference client (``bench/reference_client.py``)."""
    import reference_client

    base_rss = rss_kb()
    cpu0 = time.process_time()
    w0 = time.perf_counter()
    out = await reference_client.run(url, streams, seconds, tokens)
    wall = time.perf_counter() - w0
    cpu = time.process_time() - cpu0
    chunks = sum(out["chunks"])
    tt = np.array(out["ttft_err"]) / 1e6
    return {
        "streams": streams,
        "requests": len(out["chunks"]),
        "failed": 0,
        "chunks_per_s": chunks / wall,
        "ideal_chunks_per_s": streams * 1000.0 / 10.0,
        "arrival_minus_send_p50_ms": float("nan"),
        "arrival_minus_send_p99_ms": float("nan"),
        "ttft_error_p50_ms": float(np.percentile(tt, 50)) if len(tt) else float("nan"),
        "ttft_error_p99_ms": float(np.percentile(tt, 99)) if len(tt) else float("nan"),
        "delivery_p50_ms": float("nan"),
        "delivery_p99_ms": float("nan"),
        "cpu_us_per_chunk": cpu / max(chunks, 1) * 1e6,
        "kb_per_stream": (rss_kb() - base_rss) / streams,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 100, 1000])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--port", type=int, default=9311)
    ap.add_argument(
        "--transport",
        nargs="+",
        default=["raw", "aiohttp"],
        choices=["raw", "raw-poll", "aiohttp", "reference"],
    )
    ap.add_argument(
        "--ramp-up",
        type=float,
        default=0.0,
        help="spread the streams' first requests over S seconds (0: all at once, lock-step)",
    )
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    server_cmd = [
        sys.executable,
        "-m",
        "infermeter",
        "serve-ground-truth",
        "--port",
        str(args.port),
        "--ttft-ms",
        "50",
        "--itl-ms",
        "10",
    ]
    if len(cores) >= 2:
        server_cmd = ["taskset", "-c", str(cores[0]), *server_cmd]
        os.sched_setaffinity(0, {cores[1]})
    server = subprocess.Popen(server_cmd, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        url = f"http://127.0.0.1:{args.port}"
        print(
            "| transport | streams | requests | chunks/s (ideal) | arrival-send p50 / p99 ms | TTFT error p50 / p99 ms | request sent→seen p50 / p99 ms | client CPU µs/chunk | client KB/stream |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        runs = [(name, n) for name in args.transport for n in args.streams]
        for name, n in runs:
            if name == "reference":
                r = asyncio.run(measure_reference(url, n, args.seconds, args.tokens))
            else:
                r = stamping_loop.run(
                    measure(url, n, args.seconds, args.tokens, name, args.ramp_up)
                )
            print(
                f"| {name} | {n} | {r['requests']} ({r['failed']} failed) | {r['chunks_per_s']:,.0f} ({r['ideal_chunks_per_s']:,.0f}) "
                f"| {r['arrival_minus_send_p50_ms']:.2f} / {r['arrival_minus_send_p99_ms']:.2f} "
                f"| {r['ttft_error_p50_ms']:.2f} / {r['ttft_error_p99_ms']:.2f} "
                f"| {r['delivery_p50_ms']:.2f} / {r['delivery_p99_ms']:.2f} "
                f"| {r['cpu_us_per_chunk']:.1f} | {r['kb_per_stream']:.1f} |",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
