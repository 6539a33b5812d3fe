"""A ground-truth streaming server: an OpenAI-compatible emulator with exact, known timing.

It answers ``/v1/chat/completions`` and ``/v1/completions`` with a stream whose first token is
sent ``ttft_ms`` after the request was read and each next one ``itl_ms`` later, on an absolute
schedule (no drift), and stamps every chunk with the instant the request was read
(``x_read_ns``) and the instant the chunk was written (``x_sent_ns``), both
``time.perf_counter_ns()``, which on Linux is CLOCK_MONOTONIC and so comparable across
processes on one machine. A client's measured arrival minus that stamp is its own overhead.

It can also misbehave on purpose (``fault``), for tests of error handling:
``http_500``, ``http_429`` (an error status), ``malformed`` (a non-JSON data line),
``stall`` (stops sending but keeps the connection open), ``drop`` (closes the socket mid-stream),
``no_done`` (no ``[DONE]``, which is legal), ``no_finish`` (ends cleanly with neither
``finish_reason`` nor ``[DONE]``). Stream faults strike after ``fault_after`` tokens, so a short
request (a pre-flight probe asking one token) still succeeds.

Its tokenizer counts whitespace-separated words (``/tokenize``), so usage figures are exact.

    $ infermeter serve-ground-truth --port 9000 --ttft-ms 50 --itl-ms 10
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

FAULTS = ("http_500", "http_429", "malformed", "stall", "drop", "no_done", "no_finish")


@dataclass(frozen=True)
class EmulatorConfig:
    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    #: Tokens per stream chunk (several tokens per SSE message, as some servers do).
    tokens_per_chunk: int = 1
    #: Send a role-only first chunk (as vLLM and llama.cpp do for chat).
    role_chunk: bool = True
    fault: str | None = None
    fault_after: int = 3
    #: Apply the fault to every Nth streamed request (1: all of them).
    fault_every: int = 1
    model: str = "ground-truth"
    ctx_per_slot: int = 1_000_000


def count_words(text: str) -> int:
    return len(text.split())


class _Request:
    __slots__ = ("body", "method", "path")

    def __init__(self, method: str, path: str, body: bytes) -> None:
        self.method, self.path, self.body = method, path, body


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = ([*lines[0].split(" "), "", "", ""])[:3]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    body = await reader.readexactly(length) if length else b""
    return _Request(method, path.split("?")[0], body)


def _response(status: int, obj: Any, reason: str = "OK") -> bytes:
    body = orjson.dumps(obj)
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class GroundTruthServer:
    """``async with GroundTruthServer(cfg) as srv: ... srv.url ...`` or ``start_in_thread``."""

    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._streams = 0
        self.requests_seen = 0
        self.disconnects = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> GroundTruthServer:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, backlog=4096, limit=1 << 22
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> GroundTruthServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    break
                keep = await self._dispatch(req, writer)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            self.disconnects += 1
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, req: _Request, writer: asyncio.StreamWriter) -> bool:
        cfg = self.config
        if req.method == "GET" and req.path in ("/health", "/v1/health"):
            writer.write(_response(200, {"status": "ok"}))
        elif req.method == "GET" and req.path == "/v1/models":
            writer.write(
                _response(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": cfg.model, "object": "model", "owned_by": "infermeter-emulator"}
                        ],
                    },
                )
            )
        elif req.method == "GET" and req.path == "/props":
            writer.write(
                _response(
                    200,
                    {
                        "default_generation_settings": {"n_ctx": cfg.ctx_per_slot},
                        "total_slots": 0,
                        "build_info": "infermeter ground-truth emulator",
                    },
                )
            )
        elif req.method == "POST" and req.path == "/apply-template":
            obj = orjson.loads(req.body or b"{}")
            text = " ".join(str(m.get("content", "")) for m in obj.get("messages", []))
            writer.write(_response(200, {"prompt": text}))
        elif req.method == "POST" and req.path == "/tokenize":
            obj = orjson.loads(req.body or b"{}")
            n = count_words(str(obj.get("content", obj.get("prompt", ""))))
            writer.write(_response(200, {"tokens": list(range(n))}))
        elif req.method == "POST" and req.path in ("/v1/chat/completions", "/v1/completions"):
            return await self._stream(req, writer)
        else:
            writer.write(
                _response(404, {"error": {"message": f"no route {req.path}"}}, "Not Found")
            )
        await writer.drain()
        return True

    async def _stream(self, req: _Request, writer: asyncio.StreamWriter) -> bool:
        cfg = self.config
        t_read = time.perf_counter_ns()
        self.requests_seen += 1
        try:
            obj = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            writer.write(_response(400, {"error": {"message": "body is not JSON"}}, "Bad Request"))
            await writer.drain()
            return True
        chat = req.path.endswith("chat/completions")
        if obj.get("model") != cfg.model:
            writer.write(
                _response(
                    404,
                    {"error": {"message": f"model {obj.get('model')!r} not found"}},
                    "Not Found",
                )
            )
            await writer.drain()
            return True
        max_tokens = int(obj.get("max_tokens") or 16)
        if chat:
            prompt_tokens = sum(
                count_words(str(m.get("content", ""))) for m in obj.get("messages", [])
            )
        else:
            prompt_tokens = count_words(str(obj.get("prompt", "")))
        opts = obj.get("stream_options") or {}
        include_usage = bool(opts.get("include_usage"))
        continuous = bool(opts.get("continuous_usage_stats"))
        self._streams += 1
        fault = cfg.fault if cfg.fault and self._streams % cfg.fault_every == 0 else None
        if fault in ("http_500", "http_429"):
            status = 500 if fault == "http_500" else 429
            writer.write(
                _response(status, {"error": {"message": f"emulated HTTP {status}"}}, "Error")
            )
            await writer.drain()
            return True
        if not obj.get("stream"):
            writer.write(
                _response(
                    200,
                    {
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "length",
                                "message" if chat else "text": (
                                    {"role": "assistant", "content": " tok" * max_tokens}
                                    if chat
                                    else " tok" * max_tokens
                                ),
                            }
                        ],
                        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens},
                    },
                )
            )
            await writer.drain()
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        base: dict[str, Any] = {
            "id": "emu",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "model": cfg.model,
        }
        clock = time.perf_counter_ns
        if chat and cfg.role_chunk:
            msg = {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
                "x_sent_ns": clock(),
            }
            writer.write(_chunk(b"data: " + orjson.dumps(msg) + b"\n\n"))
        sent = 0
        k = max(cfg.tokens_per_chunk, 1)
        t0 = t_read + int(cfg.ttft_ms * 1e6)
        step = int(cfg.itl_ms * 1e6)
        while sent < max_tokens:
            n = min(k, max_tokens - sent)
            if fault in ("stall", "drop", "malformed") and sent + n > cfg.fault_after:
                await writer.drain()
                if fault == "stall":
                    await asyncio.sleep(3600)
                if fault == "drop":
                    writer.transport.abort()
                    return False
                writer.write(_chunk(b"data: {this is not json\n\n"))
                await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return True
            due = t0 + (sent + n - 1) * step
            delay = (due - clock()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            text = " tok" * n
            delta: dict[str, Any] = {"content": text} if chat else {}
            choice = {
                "index": 0,
                "finish_reason": None,
                **({"delta": delta} if chat else {"text": text}),
            }
            sent += n
            msg = {**base, "choices": [choice]}
            if continuous and include_usage:
                msg["usage"] = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": sent,
                    "total_tokens": prompt_tokens + sent,
                }
            msg["x_read_ns"] = t_read
            msg["x_sent_ns"] = clock()
            writer.write(_chunk(b"data: " + orjson.dumps(msg) + b"\n\n"))
            if writer.transport.get_write_buffer_size() > 1 << 16:
                await writer.drain()
        if fault != "no_finish":
            end: dict[str, Any] = {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "length",
                        **({"delta": {}} if chat else {"text": ""}),
                    }
                ],
            }
            writer.write(_chunk(b"data: " + orjson.dumps(end) + b"\n\n"))
            if include_usage:
                usage = {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": sent,
                        "total_tokens": prompt_tokens + sent,
                    },
                }
                writer.write(_chunk(b"data: " + orjson.dumps(usage) + b"\n\n"))
            if fault != "no_done":
                writer.write(_chunk(b"data: [DONE]\n\n"))
        writer.write(b"0\r\n\r\n")
        try:
            await writer.drain()
        except ConnectionError:
            self.disconnects += 1
            return False
        return True


class ThreadedServer:
    """Runs a GroundTruthServer on its own event loop in a daemon thread (for tests)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.server = GroundTruthServer(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
