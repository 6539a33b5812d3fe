"""The proxy's data path: the upstream response relayed to the client from inside the upstream
connection's ``data_received``, with no task switch, queue or re-read per chunk.

A ``Relay`` is the ``ResponseSink`` of one upstream exchange (``clients/rawhttp.py``). It keeps
the upstream head (hop-by-hop headers dropped), buffers what arrives before the client side is
ready, then writes every decoded piece straight to the client's transport in chunked framing,
and only then meters it (the arrival stamp is the upstream read's). The HTTP server (aiohttp)
is involved once per request, not per chunk.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infermeter.proxy.measure import RequestMeter

#: RFC 9110 section 7.6.1 connection-specific headers.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: A client that reads slower than the upstream writes: give up past this much unsent data.
MAX_UNSENT_BYTES = 64 << 20


class ClientGone(ConnectionResetError):
    """The client's connection closed while its response was being relayed."""


def split_head(lines: list[str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The head's header lines as (name, value) pairs, and the lowercase names' last values."""
    pairs: list[tuple[str, str]] = []
    index: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name:
            pairs.append((name, value))
            index[name.lower()] = value
    return pairs, index


def end_to_end(pairs: list[tuple[str, str]], drop: frozenset[str]) -> list[tuple[str, str]]:
    """Headers without the hop-by-hop ones, including those the Connection header lists."""
    listed = {
        h.strip().lower() for n, v in pairs if n.lower() == "connection" for h in v.split(",")
    }
    return [(n, v) for n, v in pairs if n.lower() not in drop and n.lower() not in listed]


class Relay:
    """Sink of one upstream response; see the module's docstring."""

    __slots__ = (
        "content_length",
        "content_type",
        "encoded",
        "head_ready",
        "headers",
        "meter",
        "pending",
        "reason",
        "status",
        "t_end_ns",
        "transport",
    )

    def __init__(self, meter: RequestMeter | None, head_ready: asyncio.Future[None]) -> None:
        self.meter = meter
        self.head_ready = head_ready
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.content_type = ""
        self.content_length: int | None = None
        self.encoded = False
        self.pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.t_end_ns = 0

    @property
    def streamed(self) -> bool:
        """Relayed as it comes (an event stream, or a body of unknown length)."""
        return self.content_type == "text/event-stream" or self.content_length is None

    # -- ResponseSink --
    def head(self, status_line: str, lines: list[str]) -> None:
        parts = status_line.split(" ", 2)
        self.reason = parts[2] if len(parts) > 2 else ""
        pairs, index = split_head(lines)
        self.headers = end_to_end(pairs, HOP_BY_HOP | {"content-length"})
        self.encoded = "content-encoding" in index
        length = index.get("content-length")
        self.content_length = int(length) if length is not None else None
        if self.encoded:
            self.meter = None  # a compressed body is passed through, not measured

    def start(self, status: int, content_type: str) -> None:
        self.status, self.content_type = status, content_type
        if self.meter is not None:
            self.meter.start(status, content_type)
        if not self.head_ready.done():
            self.head_ready.set_result(None)

    def feed(self, t_ns: int, data: bytes) -> None:
        transport = self.transport
        if transport is None:
            self.pending.append(data)
        else:
            if transport.is_closing():
                raise ClientGone("the client went away")
            transport.write(b"%x\r\n%s\r\n" % (len(data), data))
            if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
                raise ClientGone("the client is not reading its response")
        if self.meter is not None:
            self.meter.feed(t_ns, data)

    def finish(self, t_ns: int) -> None:
        self.t_end_ns = t_ns

    # -- the client side --
    def go_live(self, transport: asyncio.Transport) -> None:
        """The client's response head is out: relay what came so far, then each piece as it
        arrives."""
        if self.pending:
            body = b"".join(self.pending)
            self.pending.clear()
            transport.write(b"%x\r\n%s\r\n" % (len(body), body))
        self.transport = transport

    def body(self) -> bytes:
        return b"".join(self.pending)
