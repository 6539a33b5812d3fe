"""Load that cannot be what it asks, and servers that answer other than asked: each ends as
one clear line or a named, excluded share, with the records counted against the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import free_port, run_cli, start_cli, wait_for_records, wait_listening
from infermeter.errors import UsageError
from infermeter.load.runner import GATEWAY_ERRORS
from infermeter.load.streams import MAX_STREAMS, bounded_streams, stream_warnings
from infermeter.records import read_records

pytestmark = pytest.mark.integration

SMALL = ["--input-tokens", "8", "--output-tokens", "4", "--quiet"]


def test_streams_are_bounded_by_the_requests() -> None:
    assert bounded_streams(1_000_000_000, 4) == 4
    assert bounded_streams(8, 100) == 8
    assert bounded_streams(None, 4) is None
    assert bounded_streams(MAX_STREAMS, None) == MAX_STREAMS
    with pytest.raises(UsageError, match="--concurrency 100,001"):
        bounded_streams(MAX_STREAMS + 1, None)
    assert stream_warnings(8, 8) == []
    assert "4 streams ran" in stream_warnings(1_000_000_000, 4)[0]


def test_absurd_concurrency_is_clamped_before_allocation(emulator, tmp_path: Path) -> None:
    out = tmp_path / "r"
    with emulator(ttft_ms=2, itl_ms=1) as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "1000000000", "-n", "4", "--workers", "2",
            *SMALL, "--out", str(out), "--format", "json", timeout=120,
        )  # fmt: skip
        completed = srv.server.completed
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert results["config"]["concurrency"] == 4
    assert results["run"]["concurrency_asked"] == 1_000_000_000
    assert any("4 streams ran" in w for w in results["warnings"])
    recs = read_records(out / "records.jsonl").records
    assert len(recs) == 4 and sum(r.ok for r in recs) == completed - 1


def test_unbounded_absurd_concurrency_is_a_usage_error(emulator, tmp_path: Path) -> None:
    out = tmp_path / "r"
    with emulator() as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "1000000000", "--duration", "2", *SMALL,
            "--out", str(out), timeout=60,
        )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "more streams than one run holds open" in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()


def test_dead_server_behind_a_proxy_stops_the_run(tmp_path: Path) -> None:
    """Behind ``infermeter proxy`` a dead server answers 502s, not refused connections: they
    count toward the stop after 20 consecutive failures, as refused connections do."""
    from infermeter.proxy import ProxyConfig, ThreadedProxy

    out = tmp_path / "r"
    port = free_port()
    server = start_cli(
        ["serve-ground-truth", "--port", str(port), "--ttft-ms", "2", "--itl-ms", "2"]
    )
    try:
        wait_listening(port, server)
        upstream = f"http://127.0.0.1:{port}"
        with ThreadedProxy(ProxyConfig(upstream=upstream, gpu=False)) as proxy:
            proc = start_cli(
                ["bench", "--url", proxy.url, "-c", "2", "-n", "5000", *SMALL,
                 "--out", str(out), "--format", "json"]
            )  # fmt: skip
            wait_for_records(out / "records.jsonl", 10)
            server.kill()
            stdout, stderr = proc.communicate(timeout=120)
    finally:
        server.kill()
        server.communicate()
    assert proc.returncode == 1, stderr
    results = json.loads(stdout)
    assert "gateway errors" in (results["run"]["aborted"] or "")
    recs = read_records(out / "records.jsonl").records
    # The stream in flight when the server died may end as a connection failure, which the
    # stop counts with the gateway errors.
    lost = [r for r in recs if r.http_status in GATEWAY_ERRORS or r.error_kind == "connection"]
    assert sum(r.http_status == 502 for r in lost) >= 19, [r.error_kind for r in lost]
    assert 20 <= len(lost) <= 22 and len(recs) < 1000, (len(lost), len(recs))


@pytest.mark.parametrize("fault", ["http_500", "http_429"])
def test_one_unlucky_preflight_answer_is_retried(emulator, tmp_path: Path, fault: str) -> None:
    out = tmp_path / "r"
    with emulator(ttft_ms=2, itl_ms=1, fault=fault, fault_limit=2) as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "2", "-n", "6", *SMALL, "--out", str(out),
            "--format", "json",
        )  # fmt: skip
        completed = srv.server.completed
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert results["summary"]["requests_completed"] == 6
    assert any("pre-flight request failed 2 times" in w for w in results["warnings"])
    recs = read_records(out / "records.jsonl").records
    assert sum(r.ok for r in recs) == completed - 1 == 6


def test_a_persistent_preflight_failure_stops_after_retries(emulator, tmp_path: Path) -> None:
    with emulator(fault="http_500") as srv:
        res = run_cli("bench", "--url", srv.url, "-c", "1", "-n", "2", *SMALL,
                      "--out", str(tmp_path / "r"))  # fmt: skip
        faults = srv.server.faults
    assert res.returncode == 3
    assert "failed (4 attempts): HTTP 500" in res.stderr and faults == 4


def test_an_answer_sent_whole_is_marked_and_counted_in_e2e_only(emulator, tmp_path: Path) -> None:
    """A server that ignores stream=true for some requests: those records say so, the summary
    counts them, and TTFT/TPOT/ITL come from the streamed ones only."""
    out = tmp_path / "r"
    with emulator(ttft_ms=5, itl_ms=4, fault="no_stream", fault_every=2) as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "2", "-n", "8", "--input-tokens", "8",
            "--output-tokens", "10", "--out", str(out),
        )  # fmt: skip
        completed = srv.server.completed
    assert res.returncode == 0, res.stderr
    assert "answered whole, not streamed: 4 of 8 requests" in res.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["not_streamed"] == 4
    assert any("answered whole, not streamed" in w for w in results["warnings"])
    recs = read_records(out / "records.jsonl").records
    whole = [r for r in recs if not r.streamed]
    assert len(whole) == 4 and all(r.ok and r.n_out == 10 for r in whole)
    assert sum(r.ok for r in recs) == completed - 1 == 8
    dist = results["distributions"]
    assert dist["tpot_ms"]["count"] == 4 and dist["itl_ms"]["count"] == 4 * 9
    # a whole answer's one arrival is no first token: E2E only (metrics spec section 7)
    assert dist["ttft_ms"]["count"] == 4 and dist["e2e_ms"]["count"] == 8
    # no 0 ms TPOT from a whole answer pulls it down: the least TPOT is a streamed answer's
    # own (the emulator's pace, 4 ms a token, shifts on a loaded host; what it counts does not)
    own = [(r.t_last_ns - r.t_first_ns) / 1e6 / (r.n_out - 1) for r in recs if r.streamed]
    assert len(own) == 4 and min(own) > 0
    assert dist["tpot_ms"]["min"] == pytest.approx(min(own))


def test_extra_body_may_not_override_what_infermeter_sets(emulator) -> None:
    with emulator() as srv:
        res = run_cli("bench", "--url", srv.url, "-c", "1", "-n", "1", *SMALL,
                      "--extra-body", '{"max_tokens": 50, "top_k": 3}')  # fmt: skip
    assert res.returncode == 2
    assert "max_tokens is set by --output-tokens" in res.stderr


def test_an_echoed_key_past_the_cut_leaves_no_fragment(tmp_path: Path) -> None:
    """A server that echoes the key in a long error body: the message is masked before it is
    cut, so no piece of the key survives where the cut fell inside it."""
    import threading

    from aiohttp import web

    key = "sk-echo-0123456789abcdefghijklmnopqrstuvwxyz"

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})

    async def deny(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        text = "x" * 185 + " " + auth + " " + "y" * 400  # the old 200-character cut: mid-key
        return web.json_response({"error": {"message": text}}, status=401)

    ready = threading.Event()
    box: dict[str, object] = {}

    def serve() -> None:
        import asyncio

        async def main() -> None:
            app = web.Application()
            app.router.add_get("/v1/models", models)
            app.router.add_post("/v1/chat/completions", deny)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            box["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()  # type: ignore[attr-defined]
            await runner.cleanup()

        box["loop"] = asyncio.new_event_loop()
        box["loop"].run_until_complete(main())  # type: ignore[attr-defined]

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        res = run_cli(
            "bench", "--url", f"http://127.0.0.1:{box['port']}", "--api-key", key,
            "-c", "1", "-n", "1", *SMALL, "--out", str(tmp_path / "r"), timeout=60,
        )  # fmt: skip
    finally:
        loop = box["loop"]
        loop.call_soon_threadsafe(box["stop"].set)  # type: ignore[attr-defined]
        thread.join(10)
    assert res.returncode == 3 and "HTTP 401" in res.stderr, res.stderr
    assert "***" in res.stderr
    text = res.stderr + res.stdout
    pieces = {key[i : i + 8] for i in range(len(key) - 7)}
    assert not [p for p in pieces if p in text], text
