"""The one timing loop: send a request, read its stream, build its RequestRecord.

Transport (bytes, arrival stamps) and API formats (what a message means) are plugged in;
this module owns the timestamps and the token accounting of ``docs/metrics.md`` sections
1 and 2. A request's failure is stored on its record, never raised.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from infermeter.clients.formats import ApiFormat, ChunkDelta, RequestOptions
from infermeter.clients.rawhttp import (
    ConnectFailed,
    ConnectionLost,
    Exchange,
    MalformedResponse,
    RequestTimeout,
    ResponseSink,
    StaleConnection,
)
from infermeter.clients.reasoning import ThinkTags
from infermeter.clients.secrets import redact
from infermeter.clients.sse import SSEParser
from infermeter.clients.transport import STALE_RETRIES
from infermeter.metrics.stamps import first_stamp_shared
from infermeter.metrics.tokens import spread_tokens
from infermeter.records.schema import ErrorKind, RequestRecord
from infermeter.workload.types import Prompt

TokenCounter = Callable[[str], int]


class _StreamFailure(Exception):
    def __init__(self, kind: ErrorKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class _Accumulator:
    """Per-request state while its stream is read."""

    __slots__ = (
        "answer",
        "answer_at",
        "chunk_abs",
        "chunk_chars",
        "cum_usage",
        "done",
        "finish",
        "need_text",
        "other",
        "reason_chunks",
        "responded",
        "texts",
        "think",
        "timings",
        "usage",
        "whole",
    )

    def __init__(
        self, need_text: bool, think_tags: bool = False, answer: list[str] | None = None
    ) -> None:
        self.chunk_abs: list[int] = []
        self.chunk_chars: list[int] = []
        self.cum_usage: list[int | None] = []
        self.texts: list[str] = []
        self.need_text = need_text
        self.usage: dict[str, Any] | None = None
        self.timings: dict[str, Any] | None = None
        self.finish: str | None = None
        self.done = False
        self.responded = False
        self.other = 0
        self.reason_chunks = 0
        #: The first chunk of answer (content or a tool call, not reasoning); None: none yet.
        self.answer_at: int | None = None
        #: Where the answer's text (not the thinking) goes, for a conversation to go on.
        self.answer = answer
        #: Reads ``<think>`` blocks inside the content (``--think-tags``).
        self.think = ThinkTags() if think_tags else None
        #: The server answered with one JSON document, not a stream.
        self.whole = False

    def add(self, t_ns: int, d: ChunkDelta) -> None:
        if d.error:
            raise _StreamFailure("server_error", f"server sent an error in the stream: {d.error}")
        if d.usage:
            self.usage = d.usage
        if d.timings:
            self.timings = d.timings
        if d.finish_reason:
            self.finish = d.finish_reason
        if d.text:
            self.chunk_abs.append(t_ns)
            self.chunk_chars.append(len(d.text))
            done = d.usage.get("completion_tokens") if d.usage else None
            self.cum_usage.append(done if isinstance(done, int) else None)
            if self.answer is not None and not d.reasoning:
                self.answer.append(d.text)
            if d.reasoning:
                self.reason_chunks += 1
            elif self.answer_at is None:
                index = len(self.chunk_abs) - 1  # only until the answer starts: a hot path
                if self.think is None:
                    self.answer_at = index
                else:
                    self.answer_at = self.think.answer_start(d.text, index)
                    if self.answer_at is None or self.answer_at < index:
                        self.reason_chunks += 1
            if self.need_text:
                self.texts.append(d.text)
        else:
            self.other += 1


class _Handler:
    """The response sink of one request: SSE framing, then the API format's meaning of each
    message, into the accumulator. Runs inside the transport's read callback."""

    __slots__ = (
        "acc",
        "body",
        "error_body",
        "fmt",
        "json_mode",
        "parser",
        "saw_event",
        "status",
        "t_last",
    )

    def __init__(self, fmt: ApiFormat, acc: _Accumulator) -> None:
        self.fmt = fmt
        self.acc = acc
        self.parser = SSEParser()
        self.status = 0
        self.json_mode = False
        self.error_body: bytearray | None = None
        self.body = bytearray()  # grows in place: a large answer is not re-copied per read
        self.t_last = 0
        self.saw_event = False

    def start(self, status: int, content_type: str) -> None:
        self.acc.responded = True
        self.status = status
        if status >= 400:
            self.error_body = bytearray()
        # A server that ignored stream=true answers with one JSON document.
        self.json_mode = content_type == "application/json"

    def feed(self, t_ns: int, data: bytes) -> None:
        if self.error_body is not None:
            if len(self.error_body) < 4096:
                self.error_body += data[: 4096 - len(self.error_body)]
            return
        if self.json_mode:
            self.body += data
            self.t_last = t_ns
            return
        # Fast path: a read holding exactly one "data: ...\n\n" message, as servers send
        # one message per write; anything else goes through the full SSE parser.
        if (
            data.startswith(b"data: ")
            and data.find(b"\n", 6) == len(data) - 2
            and data.endswith(b"\n\n")
            and not self.parser.pending
        ):
            self._event(t_ns, data[6:-2])
            return
        for _event, payload in self.parser.feed(data):
            self._event(t_ns, payload)

    def _event(self, t_ns: int, payload: bytes) -> None:
        self.saw_event = True
        if payload == b"[DONE]":
            self.acc.done = True
            return
        self.acc.add(t_ns, self.fmt.parse(_loads(payload)))

    def finish(self, t_ns: int) -> None:
        if self.error_body is not None:
            detail = _error_detail(self.error_body.decode("utf-8", "replace").strip())
            raise _StreamFailure(
                "http",
                f"HTTP {self.status}: {detail}" if detail else f"HTTP {self.status}",
                self.status,
            )
        if self.json_mode:
            self.acc.add(self.t_last or t_ns, self.fmt.parse_full(_loads(bytes(self.body))))
            self.acc.done = True
            self.acc.whole = True
            return
        for _event, payload in self.parser.flush():
            self._event(t_ns, payload)
        if not self.saw_event and not self.acc.done:
            raise _StreamFailure("protocol", "response is not an event stream")


class StreamTransport(Protocol):
    """What the timing loop needs of a transport (RawHttpClient, or HttpTransport/aiohttp)."""

    async def post_stream(
        self, url: str, body: bytes, sink: ResponseSink, exchange: Exchange
    ) -> None: ...


class StreamingClient:
    """Sends prompts in one API format over one transport and returns records.

    Example (needs a server or files at hand)::

        client = StreamingClient(RawHttpClient(), "http://127.0.0.1:8080/v1", ChatCompletions(),
                                 RequestOptions(model="m"), t0_ns=time.perf_counter_ns())
        record = await client.send(0, Prompt("hello", max_tokens=16), time.perf_counter_ns())
    """

    def __init__(
        self,
        transport: StreamTransport,
        base_url: str,
        fmt: ApiFormat,
        options: RequestOptions,
        *,
        t0_ns: int,
        count_tokens: TokenCounter | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.transport = transport
        self.url = base_url.rstrip("/") + fmt.path
        self.fmt = fmt
        self.options = options
        self.t0_ns = t0_ns
        self.count_tokens = count_tokens
        self._secrets = tuple(s for s in secrets if s)

    @property
    def arrival_stamps(self) -> str:
        """Where arrival times come from: ``kernel`` (the kernel's receive time of each read)
        or ``loop`` (the event loop's poll, or the read's handling)."""
        return "kernel" if getattr(self.transport, "kernel_stamped", 0) else "loop"

    async def send(
        self,
        rid: int,
        prompt: Prompt,
        t_sched_abs_ns: int,
        *,
        phase: str = "measure",
        worker: int = 0,
        answer: list[str] | None = None,
    ) -> RequestRecord:
        """Send ``prompt`` and time its stream; ``answer``, when given, receives the
        answer's text (a conversation's next turn sends it back)."""
        t0 = self.t0_ns
        body = orjson.dumps(self.fmt.payload(prompt, self.options))
        acc = _Accumulator(self.count_tokens is not None, self.options.think_tags, answer)
        rec = RequestRecord(
            id=rid,
            phase=phase,
            api=self.fmt.name,
            worker=worker,
            t_sched_ns=t_sched_abs_ns - t0,
            n_in_target=prompt.n_in_target,
            n_out_target=prompt.max_tokens,
        )
        clock = time.perf_counter_ns
        exchange = Exchange(t_send_ns=clock())
        try:
            for attempt in range(STALE_RETRIES + 1):
                exchange = Exchange(t_send_ns=clock())
                try:
                    await self.transport.post_stream(
                        self.url, body, _Handler(self.fmt, acc), exchange
                    )
                    break
                except StaleConnection:
                    # A pooled keep-alive connection the server had already closed (llama.cpp
                    # closes after each streamed response) before any response byte: the
                    # request never reached the server, so it goes again on a fresh one.
                    if attempt == STALE_RETRIES:
                        raise ConnectionLost("connection closed before any response") from None
                    rec.send_retries += 1
            if not (acc.done or acc.finish):
                raise _StreamFailure(
                    "incomplete_stream",
                    f"stream ended after {len(acc.chunk_abs)} token chunks without "
                    "finish_reason or [DONE]",
                )
            if not acc.chunk_abs and prompt.max_tokens > 0:
                raise _StreamFailure("incomplete_stream", "stream finished with no output token")
            rec.ok = True
        except _StreamFailure as exc:
            rec.error_kind, rec.error_message, rec.http_status = exc.kind, exc.args[0], exc.status
        except RequestTimeout as exc:
            rec.error_kind = "timeout"
            rec.error_message = (
                f"{exc} after {(clock() - exchange.t_send_ns) / 1e9:.1f} s "
                f"({len(acc.chunk_abs)} token chunks received)"
            )
        except ConnectFailed as exc:
            rec.error_kind, rec.error_message = "connection", str(exc)
        except MalformedResponse as exc:
            rec.error_kind = "protocol"
            rec.error_message = f"{exc} (after {len(acc.chunk_abs)} token chunks)"
        except ConnectionLost as exc:
            rec.error_kind = "incomplete_stream" if acc.chunk_abs else "connection"
            rec.error_message = f"{exc} (after {len(acc.chunk_abs)} token chunks)"
        except OSError as exc:
            rec.error_kind, rec.error_message = "connection", f"{type(exc).__name__}: {exc}"
        rec.t_send_ns = exchange.t_send_ns - t0
        rec.connect_ns = exchange.connect_ns
        rec.t_end_ns = clock() - t0
        if rec.error_message:
            rec.error_message = redact(rec.error_message, self._secrets)[:500]
        self._account(rec, acc, prompt)
        return rec

    def _account(self, rec: RequestRecord, acc: _Accumulator, prompt: Prompt) -> None:
        account(rec, acc, prompt, self.t0_ns, self.count_tokens)


def _loads(payload: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        snippet = payload[:80].decode("utf-8", "replace")
        raise _StreamFailure(
            "protocol", f"malformed stream message (not JSON): {snippet!r}"
        ) from None
    if not isinstance(obj, dict):
        raise _StreamFailure("protocol", f"malformed stream message (not an object): {obj!r:.80}")
    return obj


def _error_detail(text: str) -> str:
    """The message of an OpenAI-style error body, or the body. Not cut here: a cut before
    the record's redaction could leave half a secret showing; the record cuts after it."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return " ".join(text.split())
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err
            return " ".join(str(msg).split())
        return " ".join(str(err).split())
    return " ".join(text.split())


def account(
    rec: RequestRecord,
    acc: _Accumulator,
    prompt: Prompt,
    t0_ns: int,
    count_tokens: TokenCounter | None = None,
) -> None:
    """Fill a record from an accumulated stream: chunk times on the run clock (``t0_ns``),
    token counts and their sources, best first: server, server-stream, tokenizer, chunks.
    Shared by the benchmark client and the proxy."""
    t0 = t0_ns
    rec.chunk_ns = [t - t0 for t in acc.chunk_abs]
    rec.n_other_chunks = acc.other
    rec.streamed = not acc.whole
    if rec.chunk_ns:
        rec.t_first_ns, rec.t_last_ns = rec.chunk_ns[0], rec.chunk_ns[-1]
    usage = acc.usage or {}
    rec.usage = acc.usage
    rec.server_timings = acc.timings
    rec.finish_reason = acc.finish
    n_chunks = len(acc.chunk_abs)
    cum = acc.cum_usage
    per_chunk_exact = (
        n_chunks > 0
        and all(c is not None for c in cum)
        and all(b >= a for a, b in itertools.pairwise(cum))  # type: ignore[operator]
    )
    completion = usage.get("completion_tokens")
    if isinstance(completion, int) and rec.ok:
        rec.n_out, rec.n_out_source = completion, "server"
    elif per_chunk_exact:
        rec.n_out, rec.n_out_source = int(cum[-1] or 0), "server-stream"
    elif count_tokens is not None and acc.texts:
        rec.n_out, rec.n_out_source = count_tokens("".join(acc.texts)), "tokenizer"
    else:
        rec.n_out, rec.n_out_source = n_chunks, "chunks"
    if per_chunk_exact and int(cum[-1] or 0) == rec.n_out:
        ks = [int(cum[0] or 0)] + [int(b or 0) - int(a or 0) for a, b in itertools.pairwise(cum)]
        rec.chunk_tokens, rec.chunk_tokens_source = ks, "server-stream"
    else:
        rec.chunk_tokens = spread_tokens(rec.n_out, acc.chunk_chars)
        rec.chunk_tokens_source = "one-per-chunk" if rec.n_out == n_chunks else "spread"
    rec.first_stamp_shared = first_stamp_shared(rec.chunk_ns, rec.chunk_tokens)
    prompt_tokens = usage.get("prompt_tokens")
    if isinstance(prompt_tokens, int):
        rec.n_in, rec.n_in_source = prompt_tokens, "server"
    elif prompt.n_in_target is not None:
        rec.n_in, rec.n_in_source = prompt.n_in_target, "tokenizer"
    details = usage.get("completion_tokens_details") or {}
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    rec.answer_chunk = acc.answer_at
    if isinstance(reasoning, int):
        rec.n_reason = reasoning
    elif acc.reason_chunks:
        # the tokens of the chunks before the answer (all of them where none came)
        upto = acc.answer_at if acc.answer_at is not None else len(rec.chunk_tokens)
        rec.n_reason = sum(rec.chunk_tokens[:upto])
    prompt_details = usage.get("prompt_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
    if isinstance(cached, int):
        rec.n_cached = cached
    elif acc.timings and isinstance(acc.timings.get("cache_n"), int):
        rec.n_cached = acc.timings["cache_n"]


#: Public names for the stream accounting (used by the proxy).
StreamAccumulator = _Accumulator
ChunkHandler = _Handler
StreamFailure = _StreamFailure
