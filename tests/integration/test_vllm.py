"""Against the real vLLM (its CPU build, serving the tiny model): the engine most users measure.

One server for the module (it takes about a minute to start); the test that kills it runs
last, and one more starts and stops its own through the CLI. Numbers vLLM keeps of its own are read from its /metrics before and after a run.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (
    alive,
    descendants,
    free_port,
    run_cli,
    start_cli,
    wait_for_records,
    wait_listening,
)
from infermeter.api import load_run, run_benchmark
from infermeter.config import BenchConfig
from infermeter.records.reader import read_records
from infermeter.sweeps import load_sweep
from infermeter.telemetry.prometheus import map_families, parse_exposition

pytestmark = [pytest.mark.integration, pytest.mark.vllm]


def scrape(server) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
        return map_families(parse_exposition(resp.read().decode()), "vllm")


def grew(before: dict[str, float], after: dict[str, float], key: str) -> float:
    return after[key] - before[key]


def test_counts_come_from_usage_and_prompts_are_sized_by_its_tokenizer(
    vllm_server, tmp_path: Path
) -> None:
    cfg = BenchConfig.build(
        url=vllm_server.url, concurrency=2, num_requests=8, input_tokens="200",
        output_tokens="32", out=tmp_path / "r",
    )  # fmt: skip
    run = run_benchmark(cfg)
    server = run.results["server"]
    assert server["kind"] == "vllm" and server["context_limit"] == 2048
    assert run.meta["workload"]["verified_by"] == "server prompt count"
    recs = run.records
    assert len(recs) == 8 and all(r.ok for r in recs)
    for r in recs:
        # exact counts: the usage vLLM sends with every chunk, and its /tokenize (with the
        # chat template) sized the prompt to exactly what it counted
        assert r.n_out == 32 and r.n_out_source == "server"
        assert r.chunk_tokens_source == "server-stream" and sum(r.chunk_tokens) == 32
        assert r.n_in == r.n_in_target == 200 and r.n_in_source == "server"
        assert r.t_send_ns < r.t_first_ns < r.t_last_ns <= r.t_end_ns  # TTFT < E2E
    d = run.results["distributions"]
    assert d["ttft_ms"]["p50"] < d["e2e_ms"]["p50"] and d["tpot_ms"]["count"] == 8


def test_client_times_agree_with_vllms_own(vllm_server, tmp_path: Path) -> None:
    """Client TPOT, TTFT and E2E against vLLM's per-request histograms over the same requests.

    The pre-flight request is in vLLM's counts too: one output token, so its TPOT is 0 there
    and its prefill short. TTFT and E2E are later at the client by the HTTP front end and the
    stream's writes, which vLLM's clocks do not see; its E2E also stops at the last token
    made, before it is sent."""
    before = scrape(vllm_server)
    cfg = BenchConfig.build(
        url=vllm_server.url, concurrency=1, num_requests=12, input_tokens="256",
        output_tokens="64", out=tmp_path / "r",
    )  # fmt: skip
    run = run_benchmark(cfg)
    after = scrape(vllm_server)
    n = grew(before, after, "tpot_seconds_count")
    assert n == 13  # 12 measured + the pre-flight
    server_tpot = 1e3 * grew(before, after, "tpot_seconds_sum") / (n - 1)
    server_ttft = 1e3 * grew(before, after, "ttft_seconds_sum") / n
    server_e2e = 1e3 * grew(before, after, "e2e_seconds_sum") / n
    d = run.results["distributions"]
    tpot, ttft, e2e = d["tpot_ms"]["mean"], d["ttft_ms"]["mean"], d["e2e_ms"]["mean"]
    assert abs(tpot / server_tpot - 1) <= 0.05, (tpot, server_tpot)
    assert 0.95 * server_ttft <= ttft <= server_ttft + 25, (ttft, server_ttft)
    assert 0.95 * server_e2e <= e2e <= 1.15 * server_e2e, (e2e, server_e2e)
    # the run's analysis carries vLLM's own per-request times from its /metrics
    telemetry = run.results["telemetry"]["server"]
    assert telemetry["kind"] == "vllm" and telemetry["preemptions"] == 0
    for key in ("prefill_mean_ms", "decode_mean_ms", "queue_mean_ms", "tpot_mean_ms"):
        assert telemetry[key] > 0, key
    assert telemetry["info"]["cache_config"]["enable_prefix_caching"] == "True"


def test_a_prompt_beyond_max_model_len_is_refused_before_any_request(
    vllm_server, tmp_path: Path
) -> None:
    before = scrape(vllm_server)
    res = run_cli(
        "bench", "--url", vllm_server.url, "-c", "1", "-n", "4", "--input-tokens", "2000",
        "--output-tokens", "100", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "context is 2048 tokens (max_model_len)" in res.stderr
    assert "Traceback" not in res.stderr
    after = scrape(vllm_server)
    assert grew(before, after, "e2e_seconds_count") == 0  # not even the pre-flight was sent
    assert not (tmp_path / "r").exists()


def test_a_rerun_flattered_by_the_prefix_cache_is_named(vllm_server, tmp_path: Path) -> None:
    common = [
        "bench", "--url", vllm_server.url, "-c", "2", "-n", "8", "--input-tokens", "512",
        "--output-tokens", "8", "--seed", "4242", "--format", "json", "-q",
    ]  # fmt: skip
    first = run_cli(*common, "--out", str(tmp_path / "a"))
    again = run_cli(*common, "--out", str(tmp_path / "b"))
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    fresh, rerun = json.loads(first.stdout), json.loads(again.stdout)
    assert fresh["prompt_cache"]["cached_share"] < 0.1 and not fresh["prompt_cache"]["flattered"]
    cache = rerun["prompt_cache"]
    # vLLM caches whole blocks of 128 tokens: all but the last partial one of each prompt
    assert cache["source"] == "usage" and cache["cached_share"] >= 0.7 and cache["flattered"]
    rules = {f["rule"] for f in rerun["analysis"]["findings"]}
    assert "prefix_cache_flattered" in rules


def test_a_trace_shares_exactly_the_blocks_it_says(vllm_server, tmp_path: Path) -> None:
    """A replayed trace's prefix groups, as vLLM's prefix cache serves them: whole blocks of
    128 tokens of each shared prefix, nothing for prompts that share none."""
    rows = [("A", 400, 600), ("A", 400, 520), (None, 0, 500), ("B", 300, 450), ("B", 300, 480),
            ("A", 400, 560)]  # fmt: skip
    trace = tmp_path / "trace.jsonl"
    lines = []
    for i, (group, prefix, n_in) in enumerate(rows):
        row = {"offset_s": 0.5 * i, "input_tokens": n_in, "output_tokens": 4}
        if group:
            row |= {"prefix_group": group, "prefix_tokens": prefix}
        lines.append(json.dumps(row))
    trace.write_text("\n".join(lines) + "\n")
    out = tmp_path / "t"
    res = run_cli(
        "bench", "--url", vllm_server.url, "--trace", str(trace), "--max-concurrency", "1",
        "--out", str(out), "--format", "json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    head = json.loads(res.stdout)["workload"]["overhead_tokens"]
    recs = sorted(read_records(out / "records.jsonl").records, key=lambda r: r.t_sched_ns)
    assert [r.n_in for r in recs] == [n for _, _, n in rows]
    seen: set[str] = set()
    for (group, prefix, _), rec in zip(rows, recs, strict=True):
        shared = prefix if group in seen else 0
        seen.add(group or "")
        assert rec.n_cached is not None and rec.n_cached % 128 == 0, rec.n_cached
        assert shared - 128 < rec.n_cached <= shared + head, (group, rec.n_cached)


def test_sweep_and_capacity_search(vllm_server, tmp_path: Path) -> None:
    common = ["--url", vllm_server.url, "-n", "8", "--input-tokens", "128", "--output-tokens",
              "16", "-q"]  # fmt: skip
    # --keep-going: on a loaded 2-core host c=2 may add no throughput over c=1, and the
    # saturation stop would end the grid there (the stop has tests of its own)
    res = run_cli("sweep", *common, "-c", "1,2,4", "--keep-going", "--out",
                  str(tmp_path / "grid"), "--format", "html")  # fmt: skip
    assert res.returncode == 0, res.stderr
    grid = load_sweep(tmp_path / "grid")
    assert [p["concurrency"] for p in grid["points"]] == [1, 2, 4]
    assert all(p["status"] == "ok" and p["summary"]["error_rate"] == 0 for p in grid["points"])
    page = (tmp_path / "grid" / "report.html").read_text()
    assert "tiny on vllm 0.32.0" in page and "<svg" in page
    # an SLA every point meets: the search climbs to the top of the range and says so
    res = run_cli("sweep", *common, "-c", "1:8", "--slo", "p90_ttft_ms=2000", "--find-max",
                  "--out", str(tmp_path / "search"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    search = load_sweep(tmp_path / "search")
    cap = search["capacity"]
    assert search["kind"] == "search" and cap["value"] == 8 and not cap["bounded_above"]
    assert [p["concurrency"] for p in search["points"]] == [1, 2, 4, 8]


def test_engine_serve_stops_vllm_and_all_its_processes(vllm_server) -> None:
    """``engine serve --engine vllm`` (installed by now: the module's server uses the same
    cache). SIGTERM: exit 143 and no process of vLLM's left; SIGKILL of the parent: its
    server goes too (it gets SIGTERM and stops its engine core)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        port = free_port()
        proc = start_cli(
            ["engine", "serve", "--engine", "vllm", "--shape", "tiny", "--port", str(port),
             "--ctx", "512"]
        )  # fmt: skip
        wait_listening(port, proc, timeout_s=600)
        kids = descendants(proc.pid)
        assert len(kids) >= 3, kids  # API server, engine core, worker
        proc.send_signal(sig)
        proc.wait(timeout=60)
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and "Traceback" not in (proc.stderr.read() or "")
        deadline = time.monotonic() + 60
        while alive(kids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(kids), alive(kids)


def test_a_killed_server_mid_run_keeps_every_finished_record(vllm_server, tmp_path: Path) -> None:
    """Runs last: it kills the module's server. Every request vLLM finished before it died
    is on disk; the run stops with the server gone, summarised, with no traceback."""
    out = tmp_path / "r"
    before = scrape(vllm_server)["finished_length"]
    proc = start_cli(
        ["bench", "--url", vllm_server.url, "-c", "2", "-n", "400", "--input-tokens", "64",
         "--output-tokens", "64", "--out", str(out), "--format", "json"]
    )  # fmt: skip
    wait_for_records(out / "records.jsonl", 6, timeout_s=120)
    # what vLLM had finished of this run just before it died, the pre-flight left out
    finished = scrape(vllm_server)["finished_length"] - before - 1
    vllm_server.kill()
    time.sleep(0.5)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    results = json.loads(stdout)
    assert results["run"]["aborted"] and (out / "results.json").exists()
    recs = read_records(out / "records.jsonl").records
    ok = [r for r in recs if r.ok]
    # at most the two in flight finished between the last count and the kill
    assert finished <= len(ok) <= finished + 2, (len(ok), finished)
    assert all(r.error_kind in ("connection", "incomplete_stream") for r in recs if not r.ok)
    assert load_run(out).results["summary"]["requests_completed"] == len(ok)
