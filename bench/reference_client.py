"""The issue's yardstick: a ~60-line raw-asyncio streaming client that does nothing else.

One connection per stream, kept alive; the request in one write; lines read with asyncio
streams; the first token chunk's JSON parsed (for the emulator's stamps), the others only
counted. ``bench/client_overhead.py --transport reference`` runs it beside infermeter's
client against the same ground-truth emulator.
"""

from __future__ import annotations

import asyncio
import time

import orjson

CONTENT = b'"content":"'


async def stream_loop(
    host: str,
    port: int,
    deadline_ns: int,
    tokens: int,
    out: dict[str, list[int]],
    requests: int | None = None,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    import os

    if os.environ.get("MAXSIZE"):
        writer.transport.max_size = int(os.environ["MAXSIZE"])
    body = orjson.dumps(
        {
            "model": "ground-truth",
            "stream": True,
            "max_tokens": tokens,
            "messages": [{"role": "user", "content": "hello world"}],
        }
    )
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s:%d\r\n" % (host.encode(), port)
    req = head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    clock = time.perf_counter_ns
    sent = 0
    while clock() < deadline_ns and (requests is None or sent < requests):
        sent += 1
        t_send = clock()
        writer.write(req)
        while (await reader.readline()) != b"\r\n":  # status line and headers
            pass
        first = True
        chunks = 0
        while True:
            size = int(await reader.readline(), 16)
            if size == 0:
                await reader.readline()
                break
            data = await reader.readexactly(size + 2)
            at = data.find(CONTENT)
            if at >= 0 and data[at + len(CONTENT)] != 34:  # a non-empty content string
                chunks += 1
                if first:
                    first = False
                    t = clock()
                    obj = orjson.loads(data[6:].strip())
                    out["ttft"].append(t - t_send)
                    out["ttft_err"].append((t - t_send) - (obj["x_sent_ns"] - obj["x_read_ns"]))
        out["chunks"].append(chunks)
    writer.close()


async def run(
    url: str, streams: int, seconds: float, tokens: int, requests: int | None = None
) -> dict[str, list[int]]:
    """``streams`` closed-loop streams for ``seconds`` (or ``requests`` each)."""
    host, port = url.split("//")[1].split(":")
    out: dict[str, list[int]] = {"ttft": [], "ttft_err": [], "chunks": []}
    deadline = time.perf_counter_ns() + int(seconds * 1e9)
    await asyncio.gather(
        *(stream_loop(host, int(port), deadline, tokens, out, requests) for _ in range(streams))
    )
    return out


def main() -> None:
    """``python bench/reference_client.py URL STREAMS REQUESTS_PER_STREAM``: one JSON line."""
    import sys

    url, streams, per_stream = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    out = asyncio.run(run(url, streams, 3600.0, 128, per_stream))
    wall = time.perf_counter() - t0
    ttft = sorted(out["ttft"])

    def pick(q: float) -> float:
        return ttft[min(int(q * len(ttft)), len(ttft) - 1)] / 1e6

    summary = {"p50": pick(0.5), "p99": pick(0.99), "tok_s": sum(out["chunks"]) / wall}
    print(orjson.dumps({**summary, "ok": len(out["chunks"])}).decode())


if __name__ == "__main__":
    main()
