"""Incremental Server-Sent Events parser (the WHATWG event-stream format, as OpenAI-style
servers use it). Bytes in, ``(event, data)`` pairs out; no JSON here."""

from __future__ import annotations

SSEEvent = tuple[bytes | None, bytes]


class SSEParser:
    """Feed raw bytes as they arrive; get back the events they complete."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[SSEEvent]:
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            # Normalise CRLF and lone CR line ends; keep a trailing CR back in case its LF
            # arrives in the next read.
            tail = b"\r" if buf.endswith(b"\r") else b""
            body = buf[:-1] if tail else buf
            buf = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            event = _parse_block(buf[start:end])
            if event is not None:
                events.append(event)
            start = end + 2
        self._buf = buf[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """At end of stream: whatever is left, as if a blank line had ended it."""
        rest, self._buf = self._buf.rstrip(b"\r\n"), b""
        if not rest:
            return []
        event = _parse_block(rest.replace(b"\r\n", b"\n"))
        return [event] if event is not None else []

    @property
    def pending(self) -> int:
        return len(self._buf)


def _parse_block(block: bytes) -> SSEEvent | None:
    # Fast path: the one-line "data: ..." block every OpenAI-style server sends.
    if block.startswith(b"data: ") and b"\n" not in block:
        return None, block[6:]
    event: bytes | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value
    if not data:
        return None
    return event, b"\n".join(data)
