"""A scripted in-memory stream transport: the client's timing loop, error ladder and token
accounting exercised in microseconds, with no socket and exact arrival times.

Each request takes the next :class:`Reply` of the script: a status and content type, the body
in pieces with the instant each arrives (nanoseconds after the request was sent), and what
goes wrong, if anything (an exception raised before the response or after some pieces).

    replies = [Reply.sse([("role", 5), ("Hel", 10), ("lo", 12)], usage=(8, 2))]
    client = StreamingClient(ScriptedTransport(replies), "http://x/v1", ChatCompletions(),
                             RequestOptions(model="m"), t0_ns=0)
    record = await client.send(0, Prompt("hi", max_tokens=2), 0)

It ships with infermeter beside the emulator (docs/emulator.md) for tests of code that builds
on the client; real servers remain the test of the client's I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from infermeter.clients.rawhttp import Exchange, ResponseSink

MS = 1_000_000


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    status: int = 200
    content_type: str = "text/event-stream"
    #: (arrival in ns after the send, bytes) in order.
    pieces: Sequence[tuple[int, bytes]] = ()
    #: Raised instead of any response (a refused connection, a stale pooled one).
    fail_before: Exception | None = None
    #: Raised after the pieces, instead of the response's end (a connection lost mid-stream).
    fail_after: Exception | None = None
    #: The end of the response, in ns after the send (default: 1 ms after the last piece).
    end_ns: int | None = None

    @classmethod
    def sse(
        cls,
        chunks: Sequence[tuple[str | None, float]],
        *,
        usage: tuple[int, int] | None = None,
        per_chunk_usage: bool = False,
        done: bool = True,
        finish: str | None = "length",
        prompt_tokens: int = 0,
    ) -> Reply:
        """A chat-completions stream: each chunk's text (None: a role-only chunk) and its
        arrival in ms; the final usage (prompt, completion) and ``[DONE]`` where asked."""
        pieces: list[tuple[int, bytes]] = []
        completion = 0
        for i, (text, t_ms) in enumerate(chunks):
            delta: dict[str, object] = {"role": "assistant"} if text is None else {"content": text}
            last = i == len(chunks) - 1
            choice: dict[str, object] = {"index": 0, "delta": delta}
            if last and finish is not None:
                choice["finish_reason"] = finish
            event: dict[str, object] = {"choices": [choice]}
            if text is not None:
                completion += 1
            if per_chunk_usage:
                event["usage"] = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion,
                    "total_tokens": prompt_tokens + completion,
                }
            pieces.append((int(t_ms * MS), b"data: " + orjson.dumps(event) + b"\n\n"))
        t_end = pieces[-1][0] if pieces else 0
        if usage is not None:
            body = {
                "choices": [],
                "usage": {
                    "prompt_tokens": usage[0],
                    "completion_tokens": usage[1],
                    "total_tokens": sum(usage),
                },
            }
            pieces.append((t_end, b"data: " + orjson.dumps(body) + b"\n\n"))
        if done:
            pieces.append((t_end, b"data: [DONE]\n\n"))
        return cls(pieces=pieces)

    @classmethod
    def error(cls, status: int, message: str) -> Reply:
        """An OpenAI-style error answer."""
        body = orjson.dumps({"error": {"message": message, "code": status}})
        return cls(status=status, content_type="application/json", pieces=[(MS, body)])


@dataclass
class ScriptedTransport:
    """Plays its replies in order, one per request; ``requests`` keeps what was sent."""

    replies: Iterable[Reply]
    requests: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._next = iter(self.replies)

    async def post_stream(
        self, url: str, body: bytes, sink: ResponseSink, exchange: Exchange
    ) -> None:
        reply = next(self._next)
        self.requests.append((url, body))
        t_send = exchange.t_send_ns or time.perf_counter_ns()
        exchange.t_send_ns = t_send
        if reply.fail_before is not None:
            raise reply.fail_before
        sink.start(reply.status, reply.content_type)
        for t, data in reply.pieces:
            sink.feed(t_send + t, data)
        if reply.fail_after is not None:
            raise reply.fail_after
        last = reply.pieces[-1][0] if reply.pieces else 0
        sink.finish(t_send + (reply.end_ns if reply.end_ns is not None else last + MS))
