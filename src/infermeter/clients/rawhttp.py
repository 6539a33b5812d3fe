"""A lean HTTP/1.1 client on asyncio protocols, for the streaming hot path.

Why not a general HTTP library here: measured in ``bench/RESULTS.md``, one process of this
client sustains several times more stream chunks per second than aiohttp's streaming API, and
its arrival stamps are taken inside ``data_received``, the first moment Python sees the bytes.
Each read is decoded (chunked transfer encoding) and handed to the request's sink
synchronously: no task switch, queue or future per chunk. The request goes out in one write;
connections are kept alive and pooled per origin with no cap; connecting is timed apart from
the request.

It speaks what OpenAI-compatible servers speak: ``Content-Length``, chunked, or
read-until-close bodies, ``Connection: close``, TLS through ``ssl``. No proxies, no HTTP/2, no
redirects: the small control-plane calls (discovery, /tokenize) go through aiohttp.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl as _ssl
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from infermeter.clients import sockio
from infermeter.clients.clock import arrival_ns


class ResponseSink(Protocol):
    """Receives one response. Any exception it raises aborts the exchange and is re-raised.

    A sink may also define ``head(status_line: str, header_lines: list[str])``: called with the
    raw response head just before ``start`` (the proxy forwards it)."""

    def start(self, status: int, content_type: str) -> None: ...

    def feed(self, t_ns: int, data: bytes) -> None: ...

    def finish(self, t_ns: int) -> None: ...


class TransportError(Exception):
    """Base of the transport's failures; messages are one line."""


class ConnectFailed(TransportError):
    """The connection could not be opened (refused, unreachable, DNS, TLS)."""


class StaleConnection(TransportError):
    """A reused keep-alive connection was closed before any response byte: safe to resend."""


class ConnectionLost(TransportError):
    """The connection broke after the response began (or on a fresh connection)."""


class MalformedResponse(TransportError):
    """The server's bytes are not valid HTTP/1.1 (a status line, a length, a chunk size)."""


class RequestTimeout(TransportError):
    """The request ran past its total time, or the stream stalled."""


@dataclass(slots=True)
class Exchange:
    """Timing of one exchange: ``t_send_ns`` is when the request was handed to the socket;
    ``connect_ns`` the time spent opening a new connection for it (0 when one was reused)."""

    t_send_ns: int = 0
    connect_ns: int = 0
    reused: bool = False


#: A chunk-size line's size: hex digits only (``int(x, 16)`` would also take "+1", "0x1", "_").
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

_HEAD, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _LENGTH, _UNTIL_CLOSE, _TRAILER, _DONE = range(8)


#: Bytes one socket read may take. asyncio's own default (256 KiB, ``recv(max_size)``) makes
#: glibc map and unmap a fresh 256 KiB block for every read, which on a VM costs more than the
#: read itself (``bench/RESULTS.md``); reads go into one reused buffer instead.
READ_BUFFER = 64 * 1024
#: How long a resolved host name is reused for new connections.
DNS_TTL_S = 10.0


class _Connection(asyncio.BufferedProtocol):
    __slots__ = (
        "_buf",
        "_chunk_left",
        "_close_after",
        "_error",
        "_fut",
        "_head_only",
        "_length_left",
        "_sink",
        "_state",
        "_view",
        "closed",
        "key",
        "last_rx_ns",
        "transport",
    )

    def __init__(self, key: tuple[str, int, bool], view: memoryview) -> None:
        self.key = key
        self._view = view
        self.transport: asyncio.Transport | sockio.SocketIO | None = None
        self.closed = False
        self._sink: ResponseSink | None = None
        self._fut: asyncio.Future[None] | None = None
        self._state = _DONE
        self._buf = b""
        self._chunk_left = 0
        self._length_left = 0
        self._close_after = False
        self._head_only = False
        self._error: BaseException | None = None
        self.last_rx_ns = 0

    # -- asyncio.Protocol --
    def connection_made(self, transport: asyncio.BaseTransport | sockio.SocketIO) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        self.data_polled(arrival_ns(), data)

    def data_polled(self, t: int, data: bytes) -> None:
        """``data`` was read after a poll at ``t`` said the socket was readable."""
        if t < self.last_rx_ns:
            # The poll predates the request (sent later in the same loop iteration): these
            # bytes came after it, and only now is a bound that is never early.
            t = time.perf_counter_ns()
        self.data_at(t, data)

    def data_at(self, t: int, data: bytes) -> None:
        """``data`` arrived at ``t`` (the kernel's receive time, or the poll's)."""
        self.last_rx_ns = t
        if self._fut is None or self._fut.done():
            return  # bytes after a response we gave up on: ignore
        try:
            if self._state == _CHUNK_SIZE and not self._buf:
                data = self._whole_chunks(t, data)
                if not data:
                    return
            self._on_data(t, data)
        except BaseException as exc:  # a sink's verdict (malformed stream...) or a parse error
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        fut = self._fut
        if fut is None or fut.done():
            return
        t = time.perf_counter_ns()
        if self._state == _UNTIL_CLOSE:
            try:
                self._complete(t)
            except BaseException as err:
                self._fail(err)
            return
        if self._state == _HEAD and not self._buf:
            self._fail(StaleConnection("connection closed before any response"))
            return
        reason = f": {exc}" if exc else ""
        self._fail(ConnectionLost(f"connection closed mid-response{reason}"))

    # -- one exchange at a time --
    def begin(self, sink: ResponseSink, fut: asyncio.Future[None], head_only: bool = False) -> None:
        self._sink, self._fut, self._head_only = sink, fut, head_only
        self._state, self._buf, self._close_after, self._error = _HEAD, b"", False, None

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: BaseException) -> None:
        self._state = _DONE
        if self._fut is not None and not self._fut.done():
            self._fut.set_exception(exc)
        self.abort()

    def _complete(self, t: int) -> None:
        self._state = _DONE
        assert self._sink is not None
        self._sink.finish(t)
        if self._close_after:
            self.abort()
        if self._fut is not None and not self._fut.done():
            self._fut.set_result(None)

    def _on_data(self, t: int, data: bytes) -> None:
        if self._state == _HEAD:
            buf = self._buf + data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 1 << 20:
                    raise ConnectionLost("response headers larger than 1 MiB")
                self._buf = buf
                return
            self._parse_head(buf[:end].decode("latin-1"))
            data, self._buf = buf[end + 4 :], b""
            if self._state == _DONE:
                self._complete(t)
                return
        if self._state == _LENGTH:
            take = data[: self._length_left]
            self._length_left -= len(take)
            if take:
                self._sink.feed(t, take)  # type: ignore[union-attr]
            if self._length_left == 0:
                self._complete(t)
            return
        if self._state == _UNTIL_CLOSE:
            if data:
                self._sink.feed(t, data)  # type: ignore[union-attr]
            return
        self._on_chunked(t, data)

    def _whole_chunks(self, t: int, data: bytes) -> bytes:
        """Fast path: hand over each whole non-final chunk at the start of ``data`` (a server
        writes one per stream message; a busy client reads several at once) and return the
        rest, for the general decoder."""
        feed = self._sink.feed  # type: ignore[union-attr]
        pos, n = 0, len(data)
        while pos < n:
            eol = data.find(b"\r\n", pos, pos + 18)
            if eol < 0:
                break
            line = data[pos:eol]
            if b";" in line or not _HEX.fullmatch(line):
                break  # chunk extensions, or not a size: the general decoder says which
            size = int(line, 16)
            end = eol + 2 + size
            if size <= 0 or end + 2 > n or data[end : end + 2] != b"\r\n":
                break
            feed(t, data[eol + 2 : end])
            pos = end + 2
        return data[pos:] if pos else data

    def _parse_head(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise MalformedResponse(f"not an HTTP/1.1 response: {lines[0][:60]!r}")
        status = int(parts[1])
        content_type = ""
        length: int | None = None
        chunked = False
        self._close_after = parts[0] == "HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            if name == "content-type":
                content_type = value.split(";")[0].strip().lower()
            elif name == "content-length":
                if not value.isdigit():
                    raise MalformedResponse(f"malformed Content-Length: {value[:40]!r}")
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                low = value.lower()
                self._close_after = "close" in low or (
                    self._close_after and "keep-alive" not in low
                )
        assert self._sink is not None
        on_head = getattr(self._sink, "head", None)
        if on_head is not None:
            on_head(lines[0], lines[1:])
        self._sink.start(status, content_type)
        if self._head_only or status in (204, 304) or 100 <= status < 200:
            self._state = _DONE  # no body (1xx other than the first head are not expected)
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._length_left = length
            self._state = _LENGTH if length > 0 else _DONE
        else:
            self._state, self._close_after = _UNTIL_CLOSE, True

    def _on_chunked(self, t: int, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        out: list[bytes] = []
        pos, n = 0, len(buf)
        while pos < n:
            state = self._state
            if state == _CHUNK_DATA:
                take = min(self._chunk_left, n - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._chunk_left -= take
                if self._chunk_left == 0:
                    self._state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if n - pos < 2:
                    break
                pos += 2
                self._state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                line = buf[pos:eol].split(b";", 1)[0].strip()
                if not _HEX.fullmatch(line):
                    raise MalformedResponse(f"malformed chunk-size line: {buf[pos:eol][:40]!r}")
                size = int(line, 16)
                pos = eol + 2
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._chunk_left, self._state = size, _CHUNK_DATA
            elif state == _TRAILER:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                line, pos = buf[pos:eol], eol + 2
                if not line:  # the blank line that ends the message
                    if out:
                        self._sink.feed(t, b"".join(out))  # type: ignore[union-attr]
                    self._complete(t)
                    return
            else:
                return
        self._buf = buf[pos:]
        if out:
            self._sink.feed(t, out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]


def _nodelay(sock: socket.socket | None) -> None:
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    tls: bool
    path: str
    host_header: str


class RawHttpClient:
    """POST a body and stream the response into a sink; keep-alive pooled connections.

    Example (needs a server or files at hand)::

        async with RawHttpClient(headers={"Authorization": "Bearer ..."}) as http:
            await http.post_stream(url, body, sink, Exchange())
    """

    def __init__(
        self,
        headers: dict[str, str] | None = None,
        *,
        total_timeout_s: float | None = 600.0,
        connect_timeout_s: float | None = 30.0,
        read_timeout_s: float | None = 120.0,
        ssl_context: _ssl.SSLContext | None = None,
        kernel_stamps: bool = True,
    ) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._extra = extra.encode("latin-1")
        self._total = total_timeout_s
        self._connect = connect_timeout_s
        self._read = read_timeout_s
        self._ssl = ssl_context
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._active: set[_Connection] = set()
        self._targets: dict[str, _Target] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        # One read buffer for all connections: the loop runs one read callback at a time
        # and each copies its bytes out before returning.
        self._view = memoryview(bytearray(READ_BUFFER))
        self._kernel_stamps = kernel_stamps and sockio.kernel_stamps_supported()
        self._poller: sockio.Poller | None = None
        self._resolved: dict[tuple[str, int], tuple[float, asyncio.Future[list[sockio.Address]]]]
        self._resolved = {}
        self.connections_opened = 0
        #: Connections whose reads carry the kernel's receive time (plain TCP on Linux).
        self.kernel_stamped = 0

    async def __aenter__(self) -> RawHttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conns in self._idle.values():
            for c in conns:
                c.abort()
        for c in list(self._active):
            c.abort()
        self._idle.clear()
        if self._poller is not None:
            self._poller.close()
            self._poller = None

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            tls = parts.scheme == "https"
            host = parts.hostname or "127.0.0.1"
            port = parts.port or (443 if tls else 80)
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            default = (tls and port == 443) or (not tls and port == 80)
            target = _Target(host, port, tls, path, host if default else f"{host}:{port}")
            if len(self._targets) >= 4096:  # a proxy forwards many distinct query strings
                self._targets.clear()
            self._targets[url] = target
        return target

    async def _acquire(self, target: _Target, exchange: Exchange) -> _Connection:
        key = (target.host, target.port, target.tls)
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                exchange.reused = True
                return conn
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter_ns()
        try:
            stamped = self._kernel_stamps and not target.tls
            opening = (self._open_stamped if stamped else self._open_transport)(loop, target, key)
            conn = await asyncio.wait_for(opening, self._connect)
        except asyncio.TimeoutError:
            raise ConnectFailed(
                f"cannot connect to {target.host}:{target.port}: timed out after {self._connect} s"
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConnectFailed(
                f"cannot connect to {target.host}:{target.port}: {reason}"
            ) from None
        exchange.connect_ns = time.perf_counter_ns() - t0
        self.connections_opened += 1
        return conn

    async def _open_transport(
        self, loop: asyncio.AbstractEventLoop, target: _Target, key: tuple[str, int, bool]
    ) -> _Connection:
        ssl_ctx: _ssl.SSLContext | bool | None = None
        if target.tls:
            ssl_ctx = self._ssl or _ssl.create_default_context()
        transport, conn = await loop.create_connection(
            lambda: _Connection(key, self._view),
            target.host,
            target.port,
            ssl=ssl_ctx,
            server_hostname=target.host if target.tls else None,
        )
        _nodelay(transport.get_extra_info("socket"))
        return conn

    async def _open_stamped(
        self, loop: asyncio.AbstractEventLoop, target: _Target, key: tuple[str, int, bool]
    ) -> _Connection:
        sock = await sockio.connect_plain(loop, await self._addresses(loop, target))
        _nodelay(sock)
        conn = _Connection(key, self._view)
        if sockio.enable_kernel_stamps(sock):
            self.kernel_stamped += 1
        if self._poller is None:
            self._poller = sockio.Poller(loop)
        sockio.SocketIO(loop, self._poller, sock, conn, self._view)
        return conn

    async def _addresses(
        self, loop: asyncio.AbstractEventLoop, target: _Target
    ) -> list[sockio.Address]:
        """The target's addresses: IP literals as they are; names resolved once for every
        connection opened within ``DNS_TTL_S`` (a thousand streams start with one lookup)."""
        numeric = sockio.numeric_address(target.host, target.port)
        if numeric is not None:
            return numeric
        key = (target.host, target.port)
        cached = self._resolved.get(key)
        if cached is None or cached[0] < time.monotonic():
            lookup = asyncio.ensure_future(sockio.resolve(loop, target.host, target.port))
            cached = (time.monotonic() + DNS_TTL_S, lookup)
            self._resolved[key] = cached
        try:
            return await asyncio.shield(cached[1])
        except OSError:
            self._resolved.pop(key, None)  # a failed lookup is not remembered
            raise

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None and self._read:
            period = min(max(self._read / 4, 0.05), 1.0)
            self._sweeper = asyncio.get_running_loop().call_later(period, self._sweep, period)

    def _sweep(self, period: float) -> None:
        """One timer for all streams: fail those silent for longer than the read timeout."""
        now = time.perf_counter_ns()
        limit = int((self._read or 0) * 1e9)
        for conn in list(self._active):
            if conn.last_rx_ns and now - conn.last_rx_ns > limit:
                conn._fail(RequestTimeout(f"stream stalled: no data for {self._read:g} s"))
        self._sweeper = asyncio.get_running_loop().call_later(period, self._sweep, period)

    async def post_stream(
        self,
        url: str,
        body: bytes,
        sink: ResponseSink,
        exchange: Exchange,
        *,
        accept: bytes = b"text/event-stream",
    ) -> None:
        """Send ``body`` and stream the response into ``sink``; ``exchange`` gets the timing
        (filled in as it happens, so it is there when a failure is raised)."""
        headers = b"Content-Type: application/json\r\nAccept: %s\r\n" % accept
        await self.request("POST", url, headers, body, sink, exchange)

    async def request(
        self,
        method: str,
        url: str,
        headers: bytes,
        body: bytes,
        sink: ResponseSink,
        exchange: Exchange,
    ) -> None:
        """One exchange of any method: ``headers`` are complete ``Name: value\\r\\n`` lines
        (Host and Content-Length are added here; the client's own headers follow them)."""
        target = self._target(url)
        conn = await self._acquire(target, exchange)
        length = b"Content-Length: %d\r\n" % len(body) if body or method == "POST" else b""
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n" % (
            method.encode("ascii"),
            target.path.encode(),
            target.host_header.encode(),
            headers,
            length,
            self._extra,
        )
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        conn.begin(sink, fut, head_only=method == "HEAD")
        conn.last_rx_ns = time.perf_counter_ns()
        self._active.add(conn)
        self._ensure_sweeper()
        deadline: asyncio.TimerHandle | None = None
        if self._total:
            deadline = loop.call_later(
                self._total,
                lambda: conn._fail(RequestTimeout(f"request took longer than {self._total:g} s")),
            )
        exchange.t_send_ns = time.perf_counter_ns()
        assert conn.transport is not None
        conn.transport.write(head + body)  # one write: headers and body together
        try:
            await fut
        except StaleConnection:
            if not exchange.reused:
                raise ConnectionLost("connection closed before any response") from None
            raise
        except asyncio.CancelledError:
            conn.abort()  # mid-response: the connection cannot be reused
            raise
        finally:
            if deadline is not None:
                deadline.cancel()
            self._active.discard(conn)
        if not conn.closed:
            self._idle.setdefault(conn.key, []).append(conn)
