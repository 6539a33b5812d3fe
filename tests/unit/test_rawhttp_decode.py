"""The lean client's chunked decoding: whatever way a response is cut into reads (one chunk
per read, several, a chunk split anywhere), the sink gets the same body and one finish."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from infermeter.clients.rawhttp import _Connection

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
PIECES = [
    b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"b"}}]}\n\ndata: {"choices":[]}\n\n',
    b"data: [DO",  # one message over two chunks
    b"NE]\n\n",
]


def chunk(payload: bytes, ext: bytes = b"") -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(payload), ext, payload)


RESPONSE = (
    HEAD
    + chunk(PIECES[0])
    + chunk(PIECES[1], b";name=value")
    + chunk(PIECES[2])
    + chunk(PIECES[3])
    + b"0\r\nX-Trailer: 1\r\n\r\n"
)


class Recorder:
    def __init__(self) -> None:
        self.status = 0
        self.body = b""
        self.stamps: list[int] = []
        self.finished = 0

    def start(self, status: int, content_type: str) -> None:
        self.status = status

    def feed(self, t_ns: int, data: bytes) -> None:
        self.body += data
        self.stamps.append(t_ns)

    def finish(self, t_ns: int) -> None:
        self.finished += 1


def decode(cuts: list[int]) -> tuple[Recorder, asyncio.Future[None]]:
    loop = asyncio.new_event_loop()
    try:
        conn = _Connection(("h", 1, False), memoryview(bytearray(16)))
        sink = Recorder()
        fut: asyncio.Future[None] = loop.create_future()
        conn.begin(sink, fut)
        bounds = [0, *sorted(set(cuts)), len(RESPONSE)]
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            if b > a:
                conn.data_at(1000 + i, RESPONSE[a:b])
        return sink, fut
    finally:
        loop.close()


def test_one_read() -> None:
    sink, fut = decode([])
    assert fut.done() and fut.exception() is None
    assert sink.status == 200 and sink.body == b"".join(PIECES) and sink.finished == 1


def test_one_chunk_per_read_keeps_each_reads_stamp() -> None:
    cuts, pos = [len(HEAD)], len(HEAD)
    for i, piece in enumerate(PIECES):
        pos += len(chunk(piece, b";name=value" if i == 1 else b""))
        cuts.append(pos)
    sink, fut = decode(cuts)
    assert fut.done() and fut.exception() is None
    assert sink.body == b"".join(PIECES) and sink.finished == 1
    assert sink.stamps == [1001, 1002, 1003, 1004]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(RESPONSE) - 1), max_size=12))
def test_any_split_gives_the_same_body(cuts: list[int]) -> None:
    sink, fut = decode(cuts)
    assert fut.done() and fut.exception() is None
    assert sink.body == b"".join(PIECES) and sink.finished == 1
