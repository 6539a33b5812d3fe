from hypothesis import given
from hypothesis import strategies as st

from infermeter.clients.sse import SSEParser


def test_events_split_across_reads_and_crlf() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"a"') == []
    assert p.feed(b": 1}\r\n\r\ndata: [DONE]\r") == [(None, b'{"a": 1}')]
    assert p.feed(b"\n\r\n") == [(None, b"[DONE]")]


def test_comments_event_names_and_multiline_data() -> None:
    p = SSEParser()
    events = p.feed(b": keep-alive\n\nevent: error\ndata: line1\ndata: line2\n\n")
    assert events == [(b"error", b"line1\nline2")]


def test_flush_returns_unterminated_last_event() -> None:
    p = SSEParser()
    assert p.feed(b"data: tail") == []
    assert p.flush() == [(None, b"tail")]
    assert p.flush() == []


@given(
    st.lists(
        st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
        min_size=1,
        max_size=20,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_any_split_gives_the_same_events(payloads: list[bytes], step: int) -> None:
    stream = b"".join(b"data: " + p + b"\n\n" for p in payloads)
    p = SSEParser()
    got = []
    for i in range(0, len(stream), step):
        got += [d for _, d in p.feed(stream[i : i + step])]
    got += [d for _, d in p.flush()]
    assert got == payloads
