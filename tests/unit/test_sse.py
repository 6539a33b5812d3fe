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


def test_any_split_of_the_bytes_gives_the_same_events() -> None:
    """Split at every byte, CRLF, lone CR and LF line ends alike: the events are those of the
    whole text (a held-back CR, a blank line straddling two reads, a growing event)."""
    text = (
        b"data: one\r\n\r\nevent: e\rdata: two\r\rdata: "
        + b"x" * 300
        + b"\n\n: comment\ndata: a\ndata: b\n\ndata: last"
    )
    whole = SSEParser()
    expected = whole.feed(text) + whole.flush()
    assert [d for _, d in expected] == [b"one", b"two", b"x" * 300, b"a\nb", b"last"]
    for cut in range(1, len(text)):
        p = SSEParser()
        got = p.feed(text[:cut]) + p.feed(text[cut:]) + p.flush()
        assert got == expected, cut
    p = SSEParser()
    got = [e for i in range(len(text)) for e in p.feed(text[i : i + 1])] + p.flush()
    assert got == expected


def test_a_large_event_in_small_reads_is_kept_whole() -> None:
    payload = b"data: " + b"y" * 1_000_000 + b"\n\n"
    p = SSEParser()
    events = [e for i in range(0, len(payload), 4096) for e in p.feed(payload[i : i + 4096])]
    assert events == [(None, b"y" * 1_000_000)] and p.pending == 0
