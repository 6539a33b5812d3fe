"""HTTP transport: POST a body, stream the response, stamp every read on arrival.

Kept apart from API formats: it knows bytes and status codes, nothing of OpenAI. The
timestamp of a read is taken the moment the bytes are handed to us, before any parsing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp.http_exceptions import HttpProcessingError

from infermeter.clients.rawhttp import (
    ConnectFailed,
    ConnectionLost,
    Exchange,
    MalformedResponse,
    RawHttpClient,
    RequestTimeout,
    ResponseSink,
    StaleConnection,
)

#: Reads from the socket are handed over in pieces of at most this many bytes; large enough
#: that a 100K-token final chunk is a handful of reads, small enough to stay cache-friendly.
READ_BUFSIZE = 1 << 18
#: Fresh-connection retries after a pooled keep-alive connection turned out to be closed.
STALE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Timeouts:
    #: Whole request, from send to the last byte.
    total_s: float | None = 600.0
    #: Connecting (TCP and TLS).
    connect_s: float | None = 30.0
    #: Longest silence between two reads before the stream counts as stalled.
    read_s: float | None = 120.0


class _BrokenFraming(aiohttp.ClientPayloadError):
    """The response's HTTP framing broke mid-body (a bad chunk-size line and the like)."""


def _is_framing_error(exc: aiohttp.ClientPayloadError) -> bool:
    return isinstance(exc, _BrokenFraming) or isinstance(exc.__cause__, HttpProcessingError)


class StreamResponse:
    """A response being streamed. ``chunks()`` yields ``(arrival_ns, bytes)``."""

    __slots__ = ("_resp", "content_type", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.content_type = resp.content_type

    async def chunks(self) -> AsyncIterator[tuple[int, bytes]]:
        clock = time.perf_counter_ns
        content = self._resp.content
        # aiohttp's C parser, on a broken chunk-size line, closes the socket and stops the
        # read timer but never ends the body: the read would wait forever. Ending the body
        # when the connection closes turns that into the protocol error it is.
        conn = self._resp.connection
        closed = conn.protocol.closed if conn is not None and conn.protocol is not None else None

        def body_cut(_: object) -> None:
            if content.is_eof() or content.exception() is not None:
                return
            assert conn is not None and conn.protocol is not None
            cause = conn.protocol.exception()
            if isinstance(cause, HttpProcessingError):
                content.set_exception(_BrokenFraming(cause.message or "bad HTTP framing"))
            else:
                content.set_exception(aiohttp.ClientPayloadError("closed before the body ended"))

        if closed is not None:
            closed.add_done_callback(body_cut)
        try:
            async for data in content.iter_any():
                yield clock(), data
        finally:
            if closed is not None:
                closed.remove_done_callback(body_cut)

    async def read_text(self, limit: int = 4096) -> str:
        try:
            body = await self._resp.content.read(limit)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return ""
        return body.decode("utf-8", "replace")


class HttpTransport:
    """One connection pool per run, sized for the requested concurrency (no cap)."""

    def __init__(
        self,
        headers: dict[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._headers = dict(headers or {})
        self._timeouts = timeouts or Timeouts()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpTransport:
        t = self._timeouts
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(
                total=t.total_s, sock_connect=t.connect_s, sock_read=t.read_s
            ),
            read_bufsize=READ_BUFSIZE,
            max_line_size=1 << 20,
            max_field_size=1 << 20,
            json_serialize=lambda _: "",  # we always send pre-serialised bytes
            auto_decompress=True,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            # Closing waits for connections to shut; a dead peer must not hold the run.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(session.close(), 10)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("transport is not open; use 'async with HttpTransport(...)'")
        return self._session

    async def post_stream(
        self, url: str, body: bytes, sink: ResponseSink, exchange: Exchange
    ) -> None:
        """The streaming interface of :class:`RawHttpClient`, over aiohttp (for comparison
        and for what the raw client does not speak). Connect time is inside ``t_send``."""
        exchange.t_send_ns = time.perf_counter_ns()
        started = False
        try:
            async with self.post(url, body) as resp:
                started = True
                sink.start(resp.status, resp.content_type)
                async for t, data in resp.chunks():
                    sink.feed(t, data)
                sink.finish(time.perf_counter_ns())
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise RequestTimeout("timed out") from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectFailed(f"cannot connect: {exc.os_error}") from None
        except aiohttp.ClientPayloadError as exc:
            if _is_framing_error(exc):
                raise MalformedResponse(f"malformed HTTP response: {exc}") from None
            raise ConnectionLost(f"{type(exc).__name__}: {exc}") from None
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            if not started:
                raise StaleConnection(str(exc)) from None
            raise ConnectionLost(f"{type(exc).__name__}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise ConnectionLost(f"{type(exc).__name__}: {exc}") from None

    @asynccontextmanager
    async def post(self, url: str, body: bytes) -> AsyncIterator[StreamResponse]:
        async with self.session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        ) as resp:
            yield StreamResponse(resp)

    async def get_json(self, url: str, timeout_s: float = 10.0) -> tuple[int, Any]:
        """GET a small JSON document (pre-flight and discovery). Returns (status, body)."""
        return await self._json_call("GET", url, None, timeout_s)

    async def post_json(self, url: str, body: bytes, timeout_s: float = 30.0) -> tuple[int, Any]:
        """POST a small JSON request (``/tokenize`` and the like). Returns (status, body)."""
        return await self._json_call("POST", url, body, timeout_s)

    async def _json_call(
        self, method: str, url: str, body: bytes | None, timeout_s: float
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else None
        for attempt in range(STALE_RETRIES + 1):
            try:
                async with self.session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout_s),
                ) as resp:
                    return await _json_body(resp)
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                # A pooled connection the server had closed (see StreamingClient.send);
                # these small look-ups are safe to repeat.
                if attempt == STALE_RETRIES:
                    raise
        raise AssertionError("unreachable")


async def _json_body(resp: aiohttp.ClientResponse) -> tuple[int, Any]:
    """(status, parsed JSON), or the raw text where the body is not JSON."""
    text = await resp.text(errors="replace")
    try:
        return resp.status, orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return resp.status, text


def open_clients(
    headers: dict[str, str], timeouts: Timeouts
) -> tuple[HttpTransport, RawHttpClient]:
    """The pair every load-generating process uses: aiohttp for discovery and small JSON
    calls, the lean client for the streams, with the same headers and timeouts."""
    raw = RawHttpClient(
        headers,
        total_timeout_s=timeouts.total_s,
        connect_timeout_s=timeouts.connect_s,
        read_timeout_s=timeouts.read_s,
    )
    return HttpTransport(headers, timeouts), raw
