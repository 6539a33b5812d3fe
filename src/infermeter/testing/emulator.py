"""A ground-truth streaming server: an OpenAI-compatible emulator with exact, known timing.

It answers ``/v1/chat/completions`` and ``/v1/completions`` with a stream whose first token is
sent ``ttft_ms`` after the request arrived and each next one ``itl_ms`` later, on an absolute
schedule (no drift), and stamps every chunk with the instant the request arrived
(``x_read_ns``: when the emulator's poll returned with its last bytes, so a burst of requests
waiting for the emulator's loop does not move it) and the instant the chunk was written
(``x_sent_ns``), both
``time.perf_counter_ns()``, which on Linux is CLOCK_MONOTONIC and so comparable across
processes on one machine. A client's measured arrival minus that stamp is its own overhead.

It can also misbehave on purpose (``fault``), for tests of error handling:
``http_500``, ``http_429`` (an error status), ``malformed`` (a non-JSON data line),
``stall`` (stops sending but keeps the connection open), ``drop`` (closes the socket mid-stream),
``no_done`` (no ``[DONE]``, which is legal), ``no_finish`` (ends cleanly with neither
``finish_reason`` nor ``[DONE]``), ``no_stream`` (answers with one JSON document although a
stream was asked for), ``bad_chunk_size`` (a chunk-size line that is not
hexadecimal). Stream faults strike after ``fault_after`` tokens, so a short
request (a pre-flight probe asking one token) still succeeds.

Its tokenizer counts whitespace-separated words (``/tokenize``), so usage figures are exact.

    $ infermeter serve-ground-truth --port 9000 --ttft-ms 50 --itl-ms 10
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, SupportsIndex

import orjson

from infermeter.clients.clock import arrival_ns, new_event_loop

FAULTS = (
    "http_500",
    "http_429",
    "malformed",
    "bad_chunk_size",
    "stall",
    "drop",
    "no_done",
    "no_finish",
    "no_stream",
)


#: How the emulator sends a reasoning model's thinking.
REASONING_STYLES = ("reasoning_content", "reasoning", "think_tags")


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
    #: Misbehave this many times, then serve well (None: no end); a transient fault.
    fault_limit: int | None = None
    model: str = "ground-truth"
    ctx_per_slot: int = 1_000_000
    #: Keep every generation request's arrival and prompt text in ``prompts`` (tests of what
    #: a workload sends; off by default: a long run's prompts would fill memory).
    keep_prompts: bool = False
    #: The first N output tokens of every answer are reasoning, sent as ``reasoning_style``
    #: says: ``reasoning_content`` or ``reasoning`` deltas (with usage's
    #: ``completion_tokens_details.reasoning_tokens``), or ``think_tags`` (``<think>``, words,
    #: ``</think>`` inside the content, the tags counted among the N).
    reasoning_tokens: int = 0
    reasoning_style: str = "reasoning_content"


def count_words(text: str) -> int:
    return len(text.split())


class _Request:
    __slots__ = ("body", "method", "path", "t_read")

    def __init__(self, method: str, path: str, body: bytes, t_read: int) -> None:
        self.method, self.path, self.body, self.t_read = method, path, body, t_read


class _StampedReader(asyncio.StreamReader):
    """A stream reader that notes when its latest bytes arrived: the instant the loop's
    poll returned with them (``clients/clock.py``), not when the request's coroutine got to
    run. With hundreds of requests arriving together, the difference is the emulator's own
    queue, and the schedule (and ``x_read_ns``) start from arrival."""

    stamp_ns = 0

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        self.stamp_ns = arrival_ns()
        super().feed_data(data)


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
    stamp = getattr(reader, "stamp_ns", 0) or time.perf_counter_ns()
    return _Request(method, path.split("?")[0], body, stamp)


def _response(status: int, obj: Any, reason: str = "OK") -> bytes:
    body = orjson.dumps(obj)
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class GroundTruthServer:
    """``async with GroundTruthServer(cfg) as srv: ... srv.url ...`` or ``start_in_thread``."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        reuse_port: bool = False,
    ) -> None:
        self.reuse_port = reuse_port
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._streams = 0
        self._ticker = _Ticker()
        self.requests_seen = 0
        self.disconnects = 0
        #: Whole answers written: streams ended with a finish reason, and non-streamed
        #: answers. A client that lost nothing has a good record of each (fault tests count
        #: records against it).
        self.completed = 0
        #: Faults served so far.
        self.faults = 0
        #: With ``keep_prompts``: (arrival, ``perf_counter_ns``; prompt text) per request.
        self.prompts: list[tuple[int, str]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> GroundTruthServer:
        loop = asyncio.get_running_loop()

        def connection() -> asyncio.StreamReaderProtocol:
            reader = _StampedReader(limit=1 << 22, loop=loop)
            return asyncio.StreamReaderProtocol(reader, self._handle, loop=loop)

        self._server = await loop.create_server(
            connection,
            self.host,
            self.port,
            backlog=4096,
            reuse_port=self.reuse_port or None,
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
        t_read = req.t_read
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
        max_tokens = int(obj.get("max_completion_tokens") or obj.get("max_tokens") or 16)
        if chat:
            prompt_tokens = sum(
                count_words(str(m.get("content", ""))) for m in obj.get("messages", [])
            )
        else:
            prompt_tokens = count_words(str(obj.get("prompt", "")))
        if cfg.keep_prompts:
            text = (
                " ".join(str(m.get("content", "")) for m in obj.get("messages", []))
                if chat
                else str(obj.get("prompt", ""))
            )
            self.prompts.append((t_read, text))
        opts = obj.get("stream_options") or {}
        include_usage = bool(opts.get("include_usage"))
        continuous = bool(opts.get("continuous_usage_stats"))
        self._streams += 1
        fault = cfg.fault if cfg.fault and self._streams % cfg.fault_every == 0 else None
        if fault is not None and cfg.fault_limit is not None:
            fault = fault if self.faults < cfg.fault_limit else None
        self.faults += fault is not None
        if fault in ("http_500", "http_429"):
            status = 500 if fault == "http_500" else 429
            writer.write(
                _response(status, {"error": {"message": f"emulated HTTP {status}"}}, "Error")
            )
            await writer.drain()
            return True
        if not obj.get("stream") or fault == "no_stream":
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
            self.completed += 1
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        stream = _Stream(
            writer,
            cfg,
            chat=chat,
            max_tokens=max_tokens,
            t_read=t_read,
            prompt_tokens=prompt_tokens,
            include_usage=include_usage,
            continuous=continuous,
            fault=fault,
        )
        if chat and cfg.role_chunk:
            stream.write_role_chunk()
        self._ticker.add(stream)
        keep = await stream.done
        self.completed += stream.ended
        if keep:
            try:
                await writer.drain()
            except ConnectionError:
                self.disconnects += 1
                return False
        return keep


#: Faults that strike a stream after ``fault_after`` tokens.
_MID_STREAM = frozenset({"stall", "drop", "malformed", "bad_chunk_size"})


class _Stream:
    """One response being streamed; the ticker calls ``emit`` when its next chunk is due."""

    __slots__ = (
        "chat",
        "continuous",
        "done",
        "ended",
        "fault",
        "fault_after",
        "include_usage",
        "k",
        "max_tokens",
        "prefix",
        "prompt_tokens",
        "reasoning",
        "sent",
        "step",
        "style",
        "t_first",
        "t_read",
        "token_fmt",
        "transport",
        "writer",
    )

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        cfg: EmulatorConfig,
        *,
        chat: bool,
        max_tokens: int,
        t_read: int,
        prompt_tokens: int,
        include_usage: bool,
        continuous: bool,
        fault: str | None,
    ) -> None:
        self.writer = writer
        self.chat = chat
        self.max_tokens = max_tokens
        self.t_read = t_read
        self.prompt_tokens = prompt_tokens
        self.include_usage = include_usage
        self.continuous = continuous
        self.fault = fault
        self.fault_after = cfg.fault_after
        self.k = max(cfg.tokens_per_chunk, 1)
        self.reasoning = min(cfg.reasoning_tokens, max_tokens)
        self.style = cfg.reasoning_style
        self.sent = 0
        self.ended = False
        self.t_first = t_read + int(cfg.ttft_ms * 1e6)
        self.step = int(cfg.itl_ms * 1e6)
        kind = b"chat.completion.chunk" if chat else b"text_completion"
        self.prefix = b'{"id":"emu","object":"%s","model":%s,"choices":[{"index":0,' % (
            kind,
            orjson.dumps(cfg.model),
        )
        # A full chunk of k tokens, all but usage and the send stamp: one format per chunk.
        self.token_fmt = (
            self._tokens(self.k).replace(b"%", b"%%")
            + b'%%s,"x_read_ns":%d,"x_sent_ns":%%d}' % t_read
        )
        self.transport = writer.transport
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def _tokens(self, n: int) -> bytes:
        """A chunk of ``n`` tokens up to its closing ``]`` (usage and stamps follow)."""
        body = (
            b'"finish_reason":null,"delta":{"content":"%s"}}]'
            if self.chat
            else b'"finish_reason":null,"text":"%s"}]'
        )
        return self.prefix + body % (b" tok" * n)

    def _reasoning_chunk(self, first: int, n: int) -> bytes:
        """Tokens ``first`` to ``first + n`` of an answer that starts with reasoning (a chunk
        that reaches past the reasoning is sent whole as reasoning, or with think tags
        ends its block inside it)."""
        if self.style == "think_tags" or not self.chat:
            words = []
            for i in range(first, first + n):
                if i == 0:
                    words.append("<think>")
                elif i == self.reasoning - 1:
                    words.append(" </think>")
                else:
                    words.append(" tok")
            field = b'"delta":{"content":"%s"}}]' if self.chat else b'"text":"%s"}]'
            return self.prefix + b'"finish_reason":null,' + field % "".join(words).encode()
        key = b"reasoning" if self.style == "reasoning" else b"reasoning_content"
        return self.prefix + b'"finish_reason":null,"delta":{"%s":"%s"}}]' % (key, b" tok" * n)

    def _write(self, payload: bytes) -> None:
        # One SSE message in one HTTP chunk: "data: " + payload + "\n\n" is 8 bytes more.
        self.transport.write(b"%x\r\ndata: %s\n\n\r\n" % (len(payload) + 8, payload))

    def write_role_chunk(self) -> None:
        self._write(
            self.prefix + b'"finish_reason":null,"delta":{"role":"assistant","content":""}}],'
            b'"x_read_ns":%d,"x_sent_ns":%d}' % (self.t_read, time.perf_counter_ns())
        )

    def next_due(self) -> int:
        """When the chunk that ends with token ``sent + n`` is due (absolute schedule)."""
        n = min(self.k, self.max_tokens - self.sent)
        return self.t_first + (self.sent + n - 1) * self.step

    def emit(self) -> bool:
        """Write the next chunk; True while more are to come."""
        if self.transport.is_closing():
            self._finish(False)
            return False
        n = min(self.k, self.max_tokens - self.sent)
        if self.fault in _MID_STREAM and self.sent + n > self.fault_after:
            if self.fault == "drop":
                self.writer.transport.abort()
                self._finish(False)
            elif self.fault == "bad_chunk_size":
                # Not a hexadecimal size: the HTTP framing itself is broken from here on.
                self.transport.write(b"zz\r\ndata: {}\n\n\r\n")
                self._finish(False)
            elif self.fault == "malformed":
                self._write(b"{this is not json")
                self.writer.write(b"0\r\n\r\n")
                self._finish(True)
            # "stall": write nothing more and keep the connection open.
            return False
        self.sent += n
        usage = b""
        if self.continuous and self.include_usage:
            usage = b',"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}' % (
                self.prompt_tokens,
                self.sent,
                self.prompt_tokens + self.sent,
            )
        if self.sent - n < self.reasoning:  # a chunk that starts in the reasoning
            self._write(
                self._reasoning_chunk(self.sent - n, n)
                + usage
                + b',"x_read_ns":%d,"x_sent_ns":%d}' % (self.t_read, time.perf_counter_ns())
            )
        elif n == self.k:
            self._write(self.token_fmt % (usage, time.perf_counter_ns()))
        else:  # the last chunk of a stream whose length is not a multiple of k
            self._write(
                self._tokens(n)
                + usage
                + b',"x_read_ns":%d,"x_sent_ns":%d}' % (self.t_read, time.perf_counter_ns())
            )
        if self.sent < self.max_tokens:
            return True
        self._end()
        return False

    def _end(self) -> None:
        if self.fault != "no_finish":
            end = b'"finish_reason":"length",' + (
                b'"delta":{}}]}' if self.chat else b'"text":""}]}'
            )
            self._write(self.prefix + end)
            if self.include_usage:
                self._write(
                    self.prefix[: self.prefix.index(b'"choices"')]
                    + (
                        b'"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,'
                        b'"total_tokens":%d%s}}'
                        % (
                            self.prompt_tokens,
                            self.sent,
                            self.prompt_tokens + self.sent,
                            self._reasoning_usage(),
                        )
                    )
                )
            if self.fault != "no_done":
                self._write(b"[DONE]")
        self.writer.write(b"0\r\n\r\n")
        # A stream with no finish reason reached its end but is not a whole answer.
        self.ended = self.fault != "no_finish"
        self._finish(True)

    def _reasoning_usage(self) -> bytes:
        if not self.reasoning or self.style == "think_tags" or not self.chat:
            return b""
        return b',"completion_tokens_details":{"reasoning_tokens":%d}' % self.reasoning

    def _finish(self, keep: bool) -> None:
        if not self.done.done():
            self.done.set_result(keep)


class _Ticker:
    """Writes every stream's chunks from one timer: a heap of due times, one loop callback per
    wake-up instead of one sleeping coroutine per stream (what lets one core serve ~100K
    chunks/s). The stamps in each chunk are the real write instants, whatever the lateness."""

    SLICE_NS = 2_000_000

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, _Stream]] = []
        self._seq = 0
        self._handle: asyncio.TimerHandle | None = None
        self._handle_due = 0

    def add(self, stream: _Stream) -> None:
        self._push(stream)

    def _push(self, stream: _Stream) -> None:
        due = stream.next_due()
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, stream))
        if self._handle is None or due < self._handle_due:
            self._schedule(due)

    def _schedule(self, due: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        loop = asyncio.get_running_loop()
        delay = max(due - time.perf_counter_ns(), 0) / 1e9
        self._handle_due = due
        self._handle = loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._handle = None
        heap = self._heap
        now = time.perf_counter_ns()
        # A slice of at most SLICE_NS, then back to the loop: an emulator that cannot keep up
        # writes late (every chunk's stamp says when) but still reads requests as they come.
        stop = now + self.SLICE_NS
        while heap and heap[0][0] <= now < stop:
            _, _, stream = heapq.heappop(heap)
            if stream.emit():
                due = stream.next_due()
                self._seq += 1
                heapq.heappush(heap, (due, self._seq, stream))
            now = time.perf_counter_ns()
        if heap:
            self._schedule(heap[0][0])


class ThreadedServer:
    """Runs a GroundTruthServer on its own event loop in a daemon thread (for tests)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.server = GroundTruthServer(config)
        self._loop = new_event_loop()
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
