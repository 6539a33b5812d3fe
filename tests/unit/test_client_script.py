"""The client's error ladder and token accounting, in memory (a scripted transport): each
failure is one record of the right kind, and counts come from the best source there is. The
real-server tests (integration/) remain the test of its I/O."""

from __future__ import annotations

import pytest

from infermeter.clients.formats import RequestOptions
from infermeter.clients.openai_chat import ChatCompletions
from infermeter.clients.rawhttp import (
    ConnectFailed,
    ConnectionLost,
    MalformedResponse,
    RequestTimeout,
    StaleConnection,
)
from infermeter.clients.stream import StreamingClient
from infermeter.records.schema import RequestRecord
from infermeter.testing.scripted import MS, Reply, ScriptedTransport
from infermeter.workload.types import Prompt


async def send(*replies: Reply, max_tokens: int = 3, n_in: int | None = None) -> RequestRecord:
    transport = ScriptedTransport(list(replies))
    client = StreamingClient(
        transport,
        "http://scripted/v1",
        ChatCompletions(),
        RequestOptions(model="m"),
        t0_ns=0,
        secrets=("sk-secret",),
    )
    return await client.send(0, Prompt("hi", max_tokens, n_in), 0)


async def test_a_clean_stream_times_every_token_and_takes_the_servers_counts() -> None:
    r = await send(Reply.sse([(None, 4), ("a", 10), ("b", 13), ("c", 19)], usage=(7, 3)))
    assert r.ok and r.error_kind is None
    assert r.n_out == 3 and r.n_out_source == "server"
    assert r.n_in == 7 and r.n_in_source == "server"
    assert [t - r.t_send_ns for t in r.chunk_ns] == [10 * MS, 13 * MS, 19 * MS]
    assert r.t_first_ns - r.t_send_ns == 10 * MS and r.n_other_chunks >= 1
    assert r.chunk_tokens == [1, 1, 1] and r.chunk_tokens_source == "one-per-chunk"


async def test_per_chunk_usage_gives_exact_chunk_counts() -> None:
    r = await send(Reply.sse([("a", 10), ("b", 20)], per_chunk_usage=True, prompt_tokens=5))
    assert r.ok and r.chunk_tokens_source == "server-stream" and r.chunk_tokens == [1, 1]
    # the last chunk's usage is the server's own total
    assert r.n_out_source == "server" and r.n_out == 2


async def test_without_usage_chunks_are_counted() -> None:
    r = await send(Reply.sse([("a", 10), ("b", 20)]), max_tokens=2)
    assert r.ok and r.n_out == 2 and r.n_out_source == "chunks"


async def test_a_stale_pooled_connection_is_sent_again_once() -> None:
    stale = Reply(fail_before=StaleConnection("closed before any response"))
    r = await send(stale, Reply.sse([("a", 5), ("b", 6), ("c", 7)], usage=(1, 3)))
    assert r.ok and r.send_retries == 1


async def test_a_connection_never_made_is_a_connection_failure() -> None:
    r = await send(Reply(fail_before=ConnectFailed("connection refused")))
    assert not r.ok and r.error_kind == "connection" and "refused" in (r.error_message or "")


@pytest.mark.parametrize(
    ("after", "kind"),
    [
        ([], "connection"),  # lost before any token: the request never got an answer
        ([("a", 5)], "incomplete_stream"),  # lost mid-stream
    ],
)
async def test_a_lost_connection_is_named_by_how_far_it_got(after: list, kind: str) -> None:
    reply = Reply.sse(after, done=False, finish=None)
    r = await send(
        Reply(pieces=reply.pieces, fail_after=ConnectionLost("connection reset by peer"))
    )
    assert not r.ok and r.error_kind == kind


async def test_a_stream_without_its_end_is_incomplete() -> None:
    r = await send(Reply.sse([("a", 5), ("b", 6)], done=False, finish=None))
    assert not r.ok and r.error_kind == "incomplete_stream"


async def test_a_timeout_and_a_malformed_response_are_their_own_kinds() -> None:
    r = await send(Reply(pieces=Reply.sse([("a", 5)], done=False).pieces,
                         fail_after=RequestTimeout("no byte for 120 s")))  # fmt: skip
    assert r.error_kind == "timeout" and "1 token chunks received" in (r.error_message or "")
    r = await send(Reply(fail_after=MalformedResponse("bad chunk size line")))
    assert r.error_kind == "protocol"
    r = await send(Reply(pieces=[(MS, b"data: {not json}\n\n")]))
    assert r.error_kind == "protocol" and "not JSON" in (r.error_message or "")


async def test_an_http_error_keeps_its_status_and_hides_secrets() -> None:
    r = await send(Reply.error(401, "bad key sk-secret for Bearer sk-secret"))
    assert not r.ok and r.error_kind == "http" and r.http_status == 401
    assert "sk-secret" not in (r.error_message or "") and "bad key" in (r.error_message or "")


async def test_an_answer_sent_whole_is_marked() -> None:
    body = (
        b'{"choices":[{"index":0,"message":{"role":"assistant","content":"abc"},'
        b'"finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":3,'
        b'"total_tokens":7}}'
    )
    r = await send(Reply(content_type="application/json", pieces=[(30 * MS, body)]))
    assert r.ok and not r.streamed and r.n_out == 3 and r.n_out_source == "server"
