"""Incremental Server-Sent Events parser (the WHATWG event-stream format, as OpenAI-style
servers use it). Bytes in, ``(event, data)`` pairs out; no JSON here."""

from __future__ import annotations

SSEEvent = tuple[bytes | None, bytes]


class SSEParser:
    """Feed raw bytes as they arrive; get back the events they complete.

    Linear in the bytes fed, however large an event: a pending event grows in place and each
    read is searched only where it can end one (a 10 MB event in 64 KB reads is not
    re-copied and re-scanned 160 times)."""

    __slots__ = ("_buf", "_cr")

    def __init__(self) -> None:
        self._buf = bytearray()
        #: A CR that ended the last read: its LF may open the next one.
        self._cr = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        data = self._normalise(data)
        pending = self._buf
        if pending:
            # The pending bytes hold no blank line: one may only straddle the join.
            search = len(pending) - 1
            pending += data
            buf: bytes | bytearray = pending
        else:
            search, buf = 0, data
        events: list[SSEEvent] = []
        start = 0
        while (end := buf.find(b"\n\n", search)) >= 0:
            event = _parse_block(bytes(buf[start:end]))
            if event is not None:
                events.append(event)
            start = search = end + 2
        if buf is not pending or start:
            self._buf = bytearray(buf[start:])
        return events

    def _normalise(self, data: bytes) -> bytes:
        """CRLF and lone CR line ends as LF; a trailing CR is held back in case its LF
        arrives in the next read."""
        if self._cr:
            data, self._cr = b"\r" + data, False
        if b"\r" not in data:
            return data
        if data.endswith(b"\r"):
            data, self._cr = data[:-1], True
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def flush(self) -> list[SSEEvent]:
        """At end of stream: whatever is left, as if a blank line had ended it."""
        rest = bytes(self._buf).rstrip(b"\n")
        self._buf, self._cr = bytearray(), False
        if not rest:
            return []
        event = _parse_block(rest)
        return [event] if event is not None else []

    @property
    def pending(self) -> int:
        return len(self._buf) + self._cr


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
