"""``infermeter proxy`` in front of real servers: transparent, measured, secret-free."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from conftest import run_cli, start_cli
from infermeter.metrics.per_request import request_metrics
from infermeter.proxy import ProxyConfig, ThreadedProxy
from infermeter.records import read_records

pytestmark = pytest.mark.integration

VOLATILE = ("id", "created", "timings", "system_fingerprint", "x_read_ns", "x_sent_ns")
SECRET = "Bearer sk-proxy-test-0123456789"


def _http(
    url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    data = orjson.dumps(body) if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, resp.read()


def _payloads(raw: bytes) -> list[Any]:
    out: list[Any] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                data = line[6:]
                if data == b"[DONE]":
                    out.append("[DONE]")
                    continue
                obj = orjson.loads(data)
                for key in VOLATILE:
                    obj.pop(key, None)
                out.append(obj)
    return out


def _scrape(url: str) -> dict[str, float]:
    _, text = _http(url + "/metrics")
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            if "le" in s.labels or s.name.endswith("_created"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def _chat(model: str, n: int, stream: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "one two three four"}],
        "max_tokens": n,
        "temperature": 0,
        "seed": 42,
        "cache_prompt": False,  # llama.cpp: else usage's cached_tokens differs on the rerun
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def test_transparent_with_llama_server(llama_server: Any) -> None:
    with ThreadedProxy(ProxyConfig(upstream=llama_server.url, gpu=False)) as proxy:
        for path, body in (
            ("/v1/chat/completions", _chat("tiny", 12)),
            ("/v1/completions", {**_chat("tiny", 8), "prompt": "one two"}),
        ):
            _, direct = _http(llama_server.url + path, body)
            _, proxied = _http(proxy.url + path, body)
            assert _payloads(proxied) == _payloads(direct)
            assert len(_payloads(proxied)) >= 3
        _, direct = _http(llama_server.url + "/tokenize", {"content": "hello proxy world"})
        _, proxied = _http(proxy.url + "/tokenize", {"content": "hello proxy world"})
        assert proxied == direct
        _, direct = _http(llama_server.url + "/v1/models")
        _, proxied = _http(proxy.url + "/v1/models")
        strip = [
            {k: v for k, v in m.items() if k != "created"} for m in orjson.loads(direct)["data"]
        ]
        assert [
            {k: v for k, v in m.items() if k != "created"} for m in orjson.loads(proxied)["data"]
        ] == strip
        _, full = _http(proxy.url + "/v1/chat/completions", _chat("tiny", 6, stream=False))
        assert orjson.loads(full)["usage"]["completion_tokens"] >= 1
        s = _scrape(proxy.url)
    assert s["infermeter_requests_total{endpoint=chat,model=tiny,status=200}"] == 2
    assert s["infermeter_requests_total{endpoint=completions,model=tiny,status=200}"] == 1
    assert s["infermeter_requests_total{endpoint=other,model=none,status=200}"] == 2
    assert s["infermeter_ttft_seconds_count{model=tiny}"] == 2  # streamed ones only
    assert s["infermeter_e2e_seconds_count{model=tiny}"] == 3


def test_metrics_match_records(emulator: Any, tmp_path: Path) -> None:
    n_req, n_tok = 6, 5
    with emulator(ttft_ms=30, itl_ms=5) as srv:
        cfg = ProxyConfig(upstream=srv.url, records_dir=tmp_path, gpu=False)
        with ThreadedProxy(cfg) as proxy:
            threads = [
                threading.Thread(
                    target=_http,
                    args=(proxy.url + "/v1/chat/completions", _chat("ground-truth", n_tok)),
                )
                for _ in range(n_req)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            s = _scrape(proxy.url)
    recs = read_records(tmp_path / "records.jsonl").records
    assert len(recs) == n_req and all(r.ok for r in recs)
    m = [request_metrics(r) for r in recs]
    assert s["infermeter_requests_total{endpoint=chat,model=ground-truth,status=200}"] == n_req
    assert s["infermeter_output_tokens_total{model=ground-truth}"] == n_req * n_tok
    assert s["infermeter_input_tokens_total{model=ground-truth}"] == sum(r.n_in or 0 for r in recs)
    assert s["infermeter_ttft_seconds_count{model=ground-truth}"] == n_req
    ttft_sum = sum(x.ttft_ms or 0 for x in m) / 1e3
    assert s["infermeter_ttft_seconds_sum{model=ground-truth}"] == pytest.approx(ttft_sum, rel=1e-9)
    assert s["infermeter_itl_seconds_count{model=ground-truth}"] == n_req * (n_tok - 1)
    itl_sum = sum(sum(x.itl_ms) for x in m) / 1e3
    assert s["infermeter_itl_seconds_sum{model=ground-truth}"] == pytest.approx(itl_sum, rel=1e-9)
    e2e_sum = sum(x.e2e_ms or 0 for x in m) / 1e3
    assert s["infermeter_e2e_seconds_sum{model=ground-truth}"] == pytest.approx(e2e_sum, rel=1e-9)
    assert s["infermeter_requests_in_flight{model=ground-truth}"] == 0
    # the emulator's exact schedule, seen through the proxy: TTFT >= 30 ms, ITL ~ 5 ms
    assert all(29 <= (x.ttft_ms or 0) < 200 for x in m)
    assert 4 <= sorted(v for x in m for v in x.itl_ms)[len(m) * 2] < 20


@pytest.mark.parametrize("read_tags", [True, False])
def test_think_tags_give_time_to_first_answer(
    emulator: Any, tmp_path: Path, read_tags: bool
) -> None:
    """A model that thinks inside its content (<think>…</think>): with --think-tags the
    proxy's records and /metrics put the answer after the thinking, as bench does; without
    it the block is answer text and no TTFA is claimed."""
    think, n_tok = 4, 9
    with emulator(
        ttft_ms=10, itl_ms=20, reasoning_tokens=think, reasoning_style="think_tags"
    ) as srv:
        cfg = ProxyConfig(upstream=srv.url, records_dir=tmp_path, gpu=False, think_tags=read_tags)
        with ThreadedProxy(cfg) as proxy:
            for _ in range(3):
                _http(proxy.url + "/v1/chat/completions", _chat("ground-truth", n_tok))
            s = _scrape(proxy.url)
    recs = read_records(tmp_path / "records.jsonl").records
    assert len(recs) == 3 and all(r.ok for r in recs)
    m = [request_metrics(r) for r in recs]
    if not read_tags:
        assert all(r.answer_chunk == 0 and r.n_reason == 0 for r in recs)
        assert s.get("infermeter_ttfa_seconds_count{model=ground-truth}", 0) == 0
        return
    assert all(r.answer_chunk == think and r.n_reason == think for r in recs)
    # the emulator sends the answer think × 20 ms after the first token; reading the tags
    # wrong would make TTFA the TTFT (a busy proxy may stamp the first chunk late: half of it)
    assert all(x.ttfa_ms is not None and x.ttft_ms is not None for x in m)
    assert all(x.ttfa_ms - x.ttft_ms >= think * 20 / 2 for x in m)  # type: ignore[operator]
    assert s["infermeter_ttfa_seconds_count{model=ground-truth}"] == 3
    ttfa_sum = sum(x.ttfa_ms or 0 for x in m) / 1e3
    assert s["infermeter_ttfa_seconds_sum{model=ground-truth}"] == pytest.approx(ttfa_sum, rel=1e-9)


class _Upstream:
    """A tiny slow streaming upstream that notes the Authorization header and notices when
    its client (the proxy) goes away."""

    def __init__(self) -> None:
        self.auth: list[str | None] = []
        self.closed = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.auth.append(request.headers.get("Authorization"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for i in range(200):
                chunk = {"choices": [{"index": 0, "delta": {"content": f" t{i}"}}]}
                await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                await asyncio.sleep(0.02)
        except (ConnectionError, asyncio.CancelledError):
            self.closed.set()
            raise
        return resp

    async def _plain(self, request: web.Request) -> web.Response:
        if request.path == "/empty":
            return web.Response(status=204)
        headers = {"X-Up": "kept", "X-Hop": "dropped", "Connection": "X-Hop"}
        return web.Response(text=f"q={request.query_string}", headers=headers)

    async def _deny(self, request: web.Request) -> web.Response:
        """Refuse, echoing the credentials it got in the error body (as some servers do)."""
        auth = request.headers.get("Authorization")
        if auth is not None:
            body = {"error": {"message": f"invalid token: {auth}", "type": "auth"}}
            return web.json_response(body, status=401)
        keys = ", ".join(f"{h}={request.headers.get(h)}" for h in ("x-api-key", "api-key"))
        return web.Response(status=400, text=f"bad key: {keys}")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/v1/chat/completions", self._handle)
        app.router.add_get("/plain", self._plain)  # (and HEAD, answered from GET)
        app.router.add_route("GET", "/empty", self._plain)
        app.router.add_route("POST", "/deny/{api:.*}", self._deny)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> _Upstream:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _read_then_hang_up(url: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    data = orjson.dumps(body)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n{head}"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
        got = b""
        while got.count(b"data: ") < 3:
            got += sock.recv(65536)
    return got


def _start_proxy_cli(upstream: str, records: Path) -> tuple[subprocess.Popen[str], str]:
    """``infermeter proxy`` in a subprocess (its stderr is the proxy's whole log), recording
    every request; returns once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["proxy", "--upstream", upstream, "--listen", f"127.0.0.1:{port}"]
    proc = start_cli([*args, "--records", str(records), "--sample", "1"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            _http(url + "/metrics")
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the proxy did not start: {proc.communicate()[1]}") from None
            time.sleep(0.1)


def test_disconnect_cancels_upstream_and_secret_stays_out(tmp_path: Path) -> None:
    """Through the CLI (a subprocess, so its stderr is the proxy's whole log)."""
    with _Upstream() as up:
        proc, url = _start_proxy_cli(up.url, tmp_path)
        try:
            t = time.monotonic()
            got = _read_then_hang_up(url, _chat("m", 200), {"Authorization": SECRET})
            assert b"t0" in got
            assert up.closed.wait(5), "the upstream stream was not closed"
            closed_after = time.monotonic() - t
            assert closed_after < 2.0  # the stream would have run 4 s
            time.sleep(0.2)
            s = _scrape(url)
            metrics_text = _http(url + "/metrics")[1].decode()
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=10)
    assert up.auth == [SECRET]  # forwarded as sent
    assert s["infermeter_client_disconnects_total{model=m}"] == 1
    assert s["infermeter_errors_total{kind=cancelled,model=m}"] == 1
    assert s["infermeter_requests_total{endpoint=chat,model=m,status=disconnected}"] == 1
    assert s["infermeter_requests_in_flight{model=m}"] == 0
    recs = read_records(tmp_path / "records.jsonl").records
    assert [r.error_kind for r in recs] == ["cancelled"]
    assert recs[0].n_out >= 3 and recs[0].t_first_ns is not None
    token = SECRET.split()[1]
    for text in (
        metrics_text,
        stderr,
        *(p.read_text() for p in tmp_path.rglob("*") if p.is_file()),
    ):
        assert token not in text
    assert f"{url}/metrics" in stderr


def test_bodyless_and_plain_responses_pass_through() -> None:
    """HEAD, 204 and a Content-Length body: no hang waiting for a body that never comes, the
    query string kept, end-to-end headers kept and hop-by-hop ones (listed in Connection) not."""
    with _Upstream() as up, ThreadedProxy(ProxyConfig(upstream=up.url, gpu=False)) as proxy:
        for _ in range(2):  # the second time over the pooled upstream connection
            with urllib.request.urlopen(proxy.url + "/plain?a=1&b=2", timeout=10) as resp:
                assert resp.read() == b"q=a=1&b=2"
                assert resp.headers["X-Up"] == "kept" and resp.headers.get("X-Hop") is None
            head = urllib.request.Request(proxy.url + "/plain", method="HEAD")
            with urllib.request.urlopen(head, timeout=10) as resp:
                assert resp.status == 200 and resp.read() == b""
            with urllib.request.urlopen(proxy.url + "/empty", timeout=10) as resp:
                assert resp.status == 204 and resp.read() == b""


class _SocketUpstream:
    """A bare-socket upstream, one thread per connection running ``_one`` (for misbehaviour
    that a real HTTP server will not produce)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        raise NotImplementedError


class _DropsSecondRequest(_SocketUpstream):
    """A keep-alive upstream that answers the first request on each connection and closes the
    connection, unanswered, when a second one arrives on it: the race a pooled connection
    loses when the server times it out just as it is reused."""

    def __init__(self) -> None:
        self.answered = 0
        super().__init__()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.answered += 1
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
            )
            conn.recv(65536)  # the next request on this connection: dropped


def test_stale_pooled_upstream_connection_is_retried() -> None:
    up = _DropsSecondRequest()
    with ThreadedProxy(ProxyConfig(upstream=up.url, gpu=False)) as proxy:
        for _ in range(3):
            assert _http(proxy.url + "/v1/models") == (200, b"ok")
    up.sock.close()
    assert up.answered == 3 and up.connections == 3  # each reuse failed and was sent again


def test_report_reads_sampled_records(emulator: Any, tmp_path: Path) -> None:
    with emulator(ttft_ms=5, itl_ms=1) as srv:
        cfg = ProxyConfig(upstream=srv.url, records_dir=tmp_path, sample=0.5, seed=3, gpu=False)
        with ThreadedProxy(cfg) as proxy:
            for _ in range(20):
                _http(proxy.url + "/v1/completions", {**_chat("ground-truth", 4), "prompt": "a b"})
    n = len(read_records(tmp_path / "records.jsonl").records)
    assert 3 <= n <= 17
    done = run_cli("report", str(tmp_path), "--format", "json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["summary"]["requests_completed"] == n
    assert results["distributions"]["ttft_ms"]["count"] == n


def test_bad_upstream_exits_2() -> None:
    done = run_cli("proxy", "--upstream", "localhost:8000")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--upstream" in done.stderr


def test_disconnect_stops_llama_server_generating(llama_server: Any) -> None:
    """Hang up after a few tokens of a 900-token request (0.5 s in full here): the server's
    own token counter shows it stopped early, and no slot is left busy."""

    def predicted() -> float:
        _, text = _http(llama_server.url + "/metrics")
        for fam in text_string_to_metric_families(text.decode()):
            for smp in fam.samples:
                if smp.name.startswith("llamacpp:tokens_predicted_total"):
                    return smp.value
        raise AssertionError("no llamacpp:tokens_predicted_total")

    with ThreadedProxy(ProxyConfig(upstream=llama_server.url, gpu=False)) as proxy:
        before = predicted()
        _read_then_hang_up(proxy.url, {**_chat("tiny", 900), "ignore_eos": True}, {})
        time.sleep(1.5)  # three times the full generation
        generated = predicted() - before
        _, slots = _http(llama_server.url + "/slots")
        s = _scrape(proxy.url)
    assert generated < 450, generated
    assert not any(slot.get("is_processing") for slot in orjson.loads(slots))
    assert s["infermeter_client_disconnects_total{model=tiny}"] == 1


def _raw_post(url: str, body: dict[str, Any], timeout: float = 10.0) -> bytes:
    """POST over a bare socket and read to EOF: what a client receives, framing and all."""
    host, port = url.split("//")[1].split(":")
    data = orjson.dumps(body)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data
        )
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got


def test_broken_upstream_framing_is_not_passed_off_as_complete(
    emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad chunk-size line from upstream: the client's response is cut (no terminating
    chunk, so it cannot look whole), the record says protocol, the log has no traceback."""
    with emulator(ttft_ms=2, itl_ms=1, fault="bad_chunk_size", fault_after=3) as srv:
        cfg = ProxyConfig(upstream=srv.url, records_dir=tmp_path, gpu=False)
        with ThreadedProxy(cfg) as proxy:
            got = _raw_post(proxy.url, _chat("ground-truth", 8))
            s = _scrape(proxy.url)
    assert got.startswith(b"HTTP/1.1 200")
    assert b"\r\n0\r\n\r\n" not in got and b"[DONE]" not in got
    recs = read_records(tmp_path / "records.jsonl").records
    assert [r.error_kind for r in recs] == ["protocol"]
    assert recs[0].n_out is not None and recs[0].n_out >= 1
    assert s["infermeter_errors_total{kind=protocol,model=ground-truth}"] == 1
    assert "Traceback" not in caplog.text


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _sse_chunk(text: str) -> bytes:
    data = b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})
    data += b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Stalls(_SocketUpstream):
    """An upstream that reads a request, sends ``prefix`` (perhaps nothing) and goes silent
    with the connection open: a hung server, or one stuck mid-stream."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.dropped = threading.Event()  # the proxy closed its connection
        super().__init__()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(self.prefix)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            self.dropped.set()


def _status(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
    try:
        return _http(url, body, headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_credentials_echoed_by_the_upstream_are_redacted(tmp_path: Path) -> None:
    """An upstream that echoes the credentials it got in its error bodies: the client gets
    the body as sent (transparent), the records say what failed, and no key reaches a file,
    the log or /metrics."""
    key, azure = "sk-proxy-key-9876543210", "az-proxy-key-5555"
    with _Upstream() as up:
        proc, url = _start_proxy_cli(up.url, tmp_path)
        try:
            chat = _status(
                url + "/deny/v1/chat/completions",
                _chat("ground-truth", 4),
                {"Authorization": SECRET},
            )
            keyed = {"X-Api-Key": key, "api-key": azure}
            body = {**_chat(key, 4, stream=False), "prompt": "a"}  # a key as the model name
            plain = _status(url + "/deny/v1/completions", body, keyed)
            metrics_text = _http(url + "/metrics")[1].decode()
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=10)
    assert chat[0] == 401 and SECRET.encode() in chat[1]
    assert plain[0] == 400 and key.encode() in plain[1]
    recs = read_records(tmp_path / "records.jsonl").records
    assert [(r.error_kind, r.http_status) for r in recs] == [("http", 401), ("http", 400)]
    assert (recs[0].error_message or "").startswith("HTTP 401: invalid token: ***")
    assert (recs[1].error_message or "").startswith("HTTP 400: bad key: x-api-key=***")
    files = [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    for text in (metrics_text, stderr, *files):
        for secret in (SECRET.split()[1], key, azure):
            assert secret not in text


@pytest.mark.parametrize(
    ("prefix", "status", "n_out"),
    [
        (b"", b"HTTP/1.1 504", 0),
        (SSE_HEAD + _sse_chunk(" a") + _sse_chunk(" b"), b"HTTP/1.1 200", 2),
    ],
    ids=["before-head", "mid-stream"],
)
def test_stalled_upstream_times_out(
    tmp_path: Path, prefix: bytes, status: bytes, n_out: int
) -> None:
    """Silent past --upstream-timeout: a 504 when the client has had nothing yet, else its
    stream is cut (no last chunk); the upstream connection is closed and the record says
    timeout."""
    up = _Stalls(prefix)
    cfg = ProxyConfig(upstream=up.url, records_dir=tmp_path, gpu=False, upstream_timeout_s=0.5)
    with ThreadedProxy(cfg) as proxy:
        t = time.monotonic()
        got = _raw_post(proxy.url, _chat("m", 8))
        took = time.monotonic() - t
        s = _scrape(proxy.url)
    up.sock.close()
    assert got.startswith(status) and 0.45 < took < 3.0, (got[:80], took)
    assert b"\r\n0\r\n\r\n" not in got
    assert up.dropped.wait(2)
    recs = read_records(tmp_path / "records.jsonl").records
    assert [r.error_kind for r in recs] == ["timeout"]
    assert recs[0].n_out == n_out and "0.5 s" in (recs[0].error_message or "")
    assert s["infermeter_errors_total{kind=timeout,model=m}"] == 1


def _hold(url: str, sent: bytes) -> tuple[bytes, float]:
    """Connect, send ``sent`` and read until the proxy closes: (what came, seconds taken)."""
    host, port = url.split("//")[1].split(":")
    t = time.monotonic()
    got = b""
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(sent)
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
    return got, time.monotonic() - t


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"", b""),
        (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", b""),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
            b"HTTP/1.1 408",
        ),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200"),
    ],
    ids=["idle", "half-head", "half-body", "keep-alive"],
)
def test_slow_or_idle_client_is_disconnected(sent: bytes, answer: bytes) -> None:
    """A client that sends nothing, part of a head or of a body, or nothing more after a
    response, is disconnected after --client-idle-timeout (a 408 when its body was late)."""
    cfg = ProxyConfig(upstream="http://127.0.0.1:9", gpu=False, client_idle_timeout_s=0.5)
    with ThreadedProxy(cfg) as proxy:
        got, took = _hold(proxy.url, sent)
    assert got.startswith(answer) and 0.45 < took < 3.0, (got[:80], took)


def test_bad_timeouts_exit_2() -> None:
    for flag in ("--upstream-timeout", "--client-idle-timeout"):
        done = run_cli("proxy", "--upstream", "http://127.0.0.1:9", flag, "0")
        assert done.returncode == 2
        assert done.stderr.strip().count("\n") == 0 and f"{flag} must be > 0" in done.stderr


def test_credentials_in_the_upstream_url_are_refused() -> None:
    """user:pass@ in --upstream would be written to run.json and the log in clear."""
    done = run_cli("proxy", "--upstream", "http://alice:sk-secret-42@127.0.0.1:9")
    assert done.returncode == 2 and "must not carry credentials" in done.stderr
    assert "sk-secret-42" not in done.stderr + done.stdout


def test_non_latin1_header_values_pass_through(emulator: Any) -> None:
    """A header value in UTF-8 (say "€") reaches the upstream as sent; it once made the
    proxy answer 500 with a traceback in its log."""
    with (
        emulator(ttft_ms=1, itl_ms=1) as srv,
        ThreadedProxy(ProxyConfig(upstream=srv.url, gpu=False)) as proxy,
    ):
        host, port = proxy.url.split("//")[1].split(":")
        body = orjson.dumps(_chat("ground-truth", 3))
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                + "X-Note: 5 € café\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body
            )
            got = b""
            while chunk := s.recv(65536):
                got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert b"[DONE]" in got


def test_each_closed_segment_is_folded_into_its_column_cache(emulator: Any, tmp_path: Path) -> None:
    """A recording's closed segments get their column cache from a child process as the
    proxy goes (here every segment, however small), so a report reads columns for all but
    the last; what it reads is what it would have read from the records."""
    rec_dir = tmp_path / "rec"
    with emulator(ttft_ms=1, itl_ms=1) as srv:
        cfg = ProxyConfig(
            upstream=srv.url, records_dir=rec_dir, rotate_mb=2 / 1024, gpu=False,
            cache_min_bytes=0,
        )  # fmt: skip
        with ThreadedProxy(cfg) as proxy:
            for _ in range(12):
                _http(proxy.url + "/v1/chat/completions", _chat("ground-truth", 4))
            closed = sorted(p.parent for p in rec_dir.rglob("records.jsonl"))[:-1]
            assert len(closed) >= 3, closed
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                (d / "records.columns").is_dir() for d in closed
            ):
                time.sleep(0.2)
    assert all((d / "records.columns").is_dir() for d in closed), closed
    assert not list(rec_dir.rglob("records.columns.tmp-*"))
    cached = run_cli("report", str(rec_dir), "--format", "json")
    for d in closed:
        shutil.rmtree(d / "records.columns")
    plain = run_cli("report", str(rec_dir), "--format", "json")
    assert cached.returncode == plain.returncode == 0, cached.stderr + plain.stderr
    a, b = orjson.loads(cached.stdout), orjson.loads(plain.stdout)
    assert a["summary"]["requests_sent"] == 12
    assert a["distributions"] == b["distributions"] and a["summary"] == b["summary"]


@pytest.mark.parametrize("router", ["round-robin", "least-outstanding"])
def test_replicas_share_the_requests_as_the_router_says(emulator: Any, router: str) -> None:
    """Two upstreams behind one proxy: round robin takes them in turn; least outstanding
    sends every request to the idle one while the other holds a slow request (the policies
    simulate and plan model)."""
    with (
        emulator(ttft_ms=600, itl_ms=1) as slow,
        emulator(ttft_ms=5, itl_ms=1) as fast,
    ):
        cfg = ProxyConfig(upstream=slow.url, replicas=(fast.url,), router=router, gpu=False)  # type: ignore[arg-type]
        with ThreadedProxy(cfg) as proxy:
            held = threading.Thread(
                target=_http, args=(proxy.url + "/v1/chat/completions", _chat("ground-truth", 4))
            )
            held.start()
            time.sleep(0.2)  # the slow upstream has it now
            for _ in range(5):
                status, _ = _http(proxy.url + "/v1/chat/completions", _chat("ground-truth", 4))
                assert status == 200
            held.join()
            sent = {k: v for k, v in _scrape(proxy.url).items() if "upstream_requests_total" in k}
    want = {"round-robin": (3, 3), "least-outstanding": (1, 5)}[router]
    assert sent == {
        f"infermeter_upstream_requests_total{{upstream={slow.url}}}": want[0],
        f"infermeter_upstream_requests_total{{upstream={fast.url}}}": want[1],
    }


def test_bad_replicas_exit_2() -> None:
    for args in (
        ("--upstream", "http://127.0.0.1:9", "--upstream", "http://127.0.0.1:9"),
        (
            "--upstream",
            "http://127.0.0.1:9",
            "--upstream",
            "http://127.0.0.1:10",
            "--router",
            "random",
        ),
    ):
        done = run_cli("proxy", *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().count("\n") == 0
