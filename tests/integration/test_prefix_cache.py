"""A rerun must never be flattered by the server's prefix cache (real llama-server).

llama.cpp keeps each slot's last prompt and reuses its longest common prefix: the same prompts
sent again skip their prefill. Runs draw fresh prompts unless --seed is given; a forced repeat
(the same --seed against a warm server) is detected from the server's own cached-token counts
and named in a warning and a finding."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

ARGS = ("-c", "1", "-n", "6", "--input-tokens", "256", "--output-tokens", "8", "--format", "json")


def _bench(url: str, out: Path, *extra: str) -> dict:
    proc = run_cli("bench", "--url", url, *ARGS, "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    return orjson.loads((out / "results.json").read_bytes())


def test_rerun_draws_fresh_prompts_and_is_not_flattered(llama_server, tmp_path: Path) -> None:
    first = _bench(llama_server.url, tmp_path / "a")
    again = _bench(llama_server.url, tmp_path / "b")
    seeds = {first["config"]["seed"], again["config"]["seed"]}
    assert len(seeds) == 2 and None not in seeds  # drawn per run, recorded
    assert orjson.loads((tmp_path / "b" / "run.json").read_bytes())["seed_drawn"] is True
    for res in (first, again):
        cache = res["prompt_cache"]
        assert cache["source"] == "usage" and cache["requests_counted"] == 6
        assert cache["cached_share"] < 0.10, cache  # a chat template's few shared tokens at most
        assert not cache["flattered"]
        assert "prefix_cache_flattered" not in {f["rule"] for f in res["analysis"]["findings"]}
    first_prompts = (tmp_path / "a" / "records.jsonl").read_bytes()
    assert first_prompts != (tmp_path / "b" / "records.jsonl").read_bytes()


def test_forced_repeat_is_named(llama_server, tmp_path: Path) -> None:
    _bench(llama_server.url, tmp_path / "a", "--seed", "11")
    again = _bench(llama_server.url, tmp_path / "b", "--seed", "11")
    assert again["config"]["seed"] == 11
    cache = again["prompt_cache"]
    assert cache["cached_share"] > 0.9 and cache["flattered"], cache
    assert any("prefix cache" in w and "flattered" in w for w in again["warnings"])
    finding = next(
        f for f in again["analysis"]["findings"] if f["rule"] == "prefix_cache_flattered"
    )
    assert finding["evidence"]["cached_share"] == cache["cached_share"]
    assert "TTFT p50" in finding["message"]
    # The same repeat read back by `report` says so in Markdown too.
    md = run_cli("report", str(tmp_path / "b"), "--format", "md")
    assert md.returncode == 0 and "prefix" in md.stdout.lower()


Row = tuple[str | None, int, int]  # prefix group, its tokens, the prompt's tokens


def _plain_trace(path: Path, rows: list[Row], *, gap_s: float, output_tokens: int) -> Path:
    """A plain JSONL trace of ``rows``, one every ``gap_s`` seconds."""
    lines = []
    for i, (group, prefix, n_in) in enumerate(rows):
        row: dict[str, object] = {
            "offset_s": gap_s * i,
            "input_tokens": n_in,
            "output_tokens": output_tokens,
        }
        if group:
            row |= {"prefix_group": group, "prefix_tokens": prefix}
        lines.append(orjson.dumps(row).decode())
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_trace_shares_exactly_the_prefixes_it_says(llama_server, tmp_path: Path) -> None:
    """Requests of one prefix group share its first prefix_tokens tokens and nothing more:
    the server's own cached-token count of each says so (llama.cpp reuses a slot's longest
    common prefix; one request at a time, so each finds the previous ones' slots idle)."""
    rows = [
        ("A", 120, 200),
        ("A", 120, 180),
        (None, 0, 150),
        ("B", 100, 160),
        ("B", 100, 170),
        ("A", 120, 190),
    ]
    trace = _plain_trace(tmp_path / "trace.jsonl", rows, gap_s=0.4, output_tokens=4)
    out = tmp_path / "t"
    proc = run_cli(
        "bench",
        "--url",
        llama_server.url,
        "--trace",
        str(trace),
        "--max-concurrency",
        "1",
        "--out",
        str(out),
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    res = orjson.loads(proc.stdout)
    head = res["workload"]["overhead_tokens"]  # the chat template's tokens, around the prompt
    recs = sorted(
        (orjson.loads(x) for x in (out / "records.jsonl").read_bytes().splitlines()),
        key=lambda r: r["t_sched_ns"],
    )
    assert [r["n_in"] for r in recs] == [n for _, _, n in rows]
    # Beyond the shared blocks the server reuses only the template's opening tokens (a
    # subword tokenizer may cut a block's edge a token apart from one prompt to the next):
    # never a block more, never a block less. The emulator's test checks it word for word.
    seen: set[str] = set()
    for (group, prefix, _), rec in zip(rows, recs, strict=True):
        shared = prefix if group in seen else 0
        seen.add(group or "")
        assert shared <= rec["n_cached"] <= shared + head, (group, rec["n_cached"], head)
    expected = sum(p for k, (g, p, _) in enumerate(rows) if g and g in [r[0] for r in rows[:k]])
    cache = res["prompt_cache"]
    assert cache["expected_share"] == pytest.approx(expected / sum(n for _, _, n in rows))
    assert not cache["flattered"], cache


def test_production_captured_by_the_proxy_replays_its_arrivals_lengths_and_reuse(
    llama_server, tmp_path: Path
) -> None:
    """Traffic through `infermeter proxy --records` replays against the server: the same
    send times, the same lengths as the server counted them, and the same prompt-prefix
    reuse (as the server's cache served it), from block hashes that hold no text."""
    from infermeter.proxy.server import ProxyConfig, ThreadedProxy

    rows = [("A", 300, 420), ("A", 300, 380), (None, 0, 350), ("B", 250, 400), ("B", 250, 330),
            ("A", 300, 450), (None, 0, 300), ("B", 250, 360)]  # fmt: skip
    trace = _plain_trace(tmp_path / "trace.jsonl", rows, gap_s=0.35, output_tokens=6)
    recording = tmp_path / "recording"
    cfg = ProxyConfig(upstream=llama_server.url, records_dir=recording, gpu=False)
    with ThreadedProxy(cfg) as proxy:
        captured = run_cli(
            "bench",
            "--url",
            proxy.url,
            "--trace",
            str(trace),
            "--max-concurrency",
            "1",
            "--out",
            str(tmp_path / "capture"),
            "--quiet",
        )
        assert captured.returncode == 0, captured.stderr
    stored = (recording / "records.jsonl").read_bytes()
    assert b"support" not in stored and b'"prompt_blocks":["' in stored
    replay = run_cli(
        "bench",
        "--url",
        llama_server.url,
        "--trace",
        str(recording),
        "--max-concurrency",
        "1",
        "--out",
        str(tmp_path / "replay"),
        "--format",
        "json",
    )
    assert replay.returncode == 0, replay.stderr
    res = orjson.loads(replay.stdout)

    def records(path: Path) -> list[dict]:
        recs = [orjson.loads(x) for x in path.read_bytes().splitlines()]
        return sorted((r for r in recs if r["phase"] == "measure"), key=lambda r: r["t_sched_ns"])

    before = records(recording / "records.jsonl")  # the probe and the trace, as served
    after = records(tmp_path / "replay" / "records.jsonl")
    assert len(before) == len(after) == len(rows) + 1
    assert [(r["n_in"], r["n_out"]) for r in after] == [(r["n_in"], r["n_out"]) for r in before]
    t0, u0 = before[0]["t_sched_ns"], after[0]["t_sched_ns"]
    gaps = [
        abs((a["t_sched_ns"] - u0) - (b["t_sched_ns"] - t0))
        for a, b in zip(after, before, strict=True)
    ]
    assert max(gaps) < 1000, gaps  # ns: the same schedule

    def share(recs: list[dict]) -> float:
        return sum(r["n_cached"] for r in recs) / sum(r["n_in"] for r in recs)

    # A hashed block is 128 characters: a replayed shared prefix may fall short of the
    # original by less than one block's tokens; the template's opening tokens are shared by
    # any two prompts in a slot, in either run.
    total = sum(r["n_in"] for r in before)
    per_char = total / sum(r["prompt_chars"] for r in before)
    sharing = sum(1 for k, (g, _, _) in enumerate(rows) if g and g in [x[0] for x in rows[:k]])
    head = res["workload"]["overhead_tokens"]
    bound = (sharing * 128 * per_char + len(after) * head) / total
    assert share(before) > 0.3  # the trace's reuse, served by the server's cache
    assert abs(share(after) - share(before)) <= bound, (share(after), share(before), bound)
    assert res["prompt_cache"]["expected_share"] == pytest.approx(
        res["workload"]["trace"]["prefix_reuse_share"]
    )


def test_a_conversation_reuses_its_history_turn_by_turn(llama_server, tmp_path: Path) -> None:
    """Sessions on the real llama-server: each turn's prompt begins with the last turn's,
    which the slot still caches: the cached share climbs from the first turn on, and the
    run reports it by turn."""
    out = tmp_path / "s"
    proc = run_cli(
        "bench", "--url", llama_server.url, "-c", "2", "--sessions", "4", "--turns", "3",
        "--input-tokens", "60", "--output-tokens", "8", "--think-time", "0.05",
        "--out", str(out), "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = orjson.loads(proc.stdout)
    turns = res["sessions"]["by_turn"]
    assert [t["completed"] for t in turns] == [4, 4, 4]
    first, second, third = (t["cached_share"] for t in turns)
    # A turn reuses at least the last turn's prompt (the answer, re-read from its text, may
    # not match the tokens the model generated): 68 of 146 tokens at turn 2 here.
    assert first < 0.2 and second > 0.4 and third > second, turns
    recs = [orjson.loads(x) for x in (out / "records.jsonl").read_bytes().splitlines()]
    by = {(r["session"], r["turn"]): r for r in recs}
    for (sid, k), r in by.items():
        if k:  # the history and the new message, as the server counted them
            before = by[(sid, k - 1)]
            assert r["n_in"] >= before["n_in"] + before["n_out"] + 60, (before, r)
            assert r["n_cached"] >= before["n_in"] - 8, (before, r)
