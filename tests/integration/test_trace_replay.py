"""Replaying a trace (``bench --trace``) against the ground-truth emulator, which keeps what
it was sent: each request leaves at its trace offset, with the trace's lengths exactly, and
prompts share exactly the prefixes the trace says (its tokenizer counts words, so a shared
prefix is a run of equal words)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import orjson
import pytest

from conftest import run_cli
from infermeter.workload.traces import read_trace_file

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "traces"


def _records(out: Path) -> list[dict]:
    return [orjson.loads(x) for x in (out / "records.jsonl").read_bytes().splitlines()]


def _common_words(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split(), b.split(), strict=False):
        if x != y:
            break
        n += 1
    return n


@pytest.mark.parametrize("workers", ["1", "2"])
def test_plain_trace_replays_offsets_lengths_and_prefixes(
    emulator, tmp_path: Path, workers: str
) -> None:
    trace = read_trace_file(SAMPLES / "plain.jsonl", "jsonl")
    scale = 0.5
    with emulator(ttft_ms=5, itl_ms=1, keep_prompts=True) as srv:
        out = tmp_path / "run"
        proc = run_cli(
            "bench",
            "--url",
            srv.url,
            "--trace",
            str(SAMPLES / "plain.jsonl"),
            "--time-scale",
            str(scale),
            "--workers",
            workers,
            "--out",
            str(out),
            "--format",
            "json",
        )
        assert proc.returncode == 0, proc.stderr
        sent = list(srv.server.prompts)
    results = orjson.loads(proc.stdout)
    n = len(trace.requests)
    recs = sorted(_records(out), key=lambda r: (r["t_sched_ns"], r["id"]))
    assert len(recs) == n and all(r["ok"] for r in recs)
    # each request due at its scaled offset (to 2 us: workers' records are placed on the run's
    # clock through its wall-clock anchor), with its lengths as the server counted them
    t0 = recs[0]["t_sched_ns"]
    got = [((r["t_sched_ns"] - t0) / 1e3, r["n_in"], r["n_out"]) for r in recs]
    for t in trace.requests:
        due_us, lengths = t.offset_s * scale * 1e6, (t.input_tokens, t.output_tokens)
        match = next(g for g in got if g[1:] == lengths and abs(g[0] - due_us) <= 2.0)
        got.remove(match)
    assert not got
    lag_ms = np.array([(r["t_send_ns"] - r["t_sched_ns"]) / 1e6 for r in recs])
    assert np.median(lag_ms) < 5.0, lag_ms
    # what the server saw: each request arrived within a few ms of when it was due (records
    # count from the run's start, the server's stamps from boot: the two are aligned on the
    # request that arrived soonest after it was due; a worker's first request also connects).
    # Requests due together may arrive in either order, so each is told by its length.
    arrivals = sorted(sent[-n:])
    shift = arrivals[0][0] - recs[0]["t_sched_ns"]
    texts = [""] * n
    late = []
    for t, text in arrivals:
        k = min(
            (i for i, r in enumerate(recs) if r["n_in"] == len(text.split()) and not texts[i]),
            key=lambda i: abs(t - shift - recs[i]["t_sched_ns"]),
        )
        texts[k] = text
        late.append((t - recs[k]["t_sched_ns"]) / 1e6)
    late_ms = np.array(late) - min(late)
    assert late_ms.max() < 250, late_ms  # a loaded host's worst
    assert np.median(late_ms) < 5.0, late_ms

    def due_index(q: object) -> int:
        due_us = q.offset_s * scale * 1e6  # type: ignore[attr-defined]
        return next(
            i
            for i, r in enumerate(recs)
            if r["n_in"] == q.input_tokens  # type: ignore[attr-defined]
            and abs((r["t_sched_ns"] - t0) / 1e3 - due_us) <= 2.0
        )

    order = [due_index(q) for q in trace.requests]
    texts = [texts[i] for i in order]
    # prefixes: the same group shares exactly its prefix_tokens words, others share none
    groups = [(t.prefix[0].key, t.prefix[0].tokens) if t.prefix else None for t in trace.requests]
    overhead = results["workload"]["overhead_tokens"]
    for i in range(n):
        for j in range(i):
            common = _common_words(texts[i], texts[j])
            if groups[i] is not None and groups[i] == groups[j]:
                assert common == groups[i][1], (i, j, common)
            else:
                assert common == 0, (i, j, common)
    meta = results["workload"]["trace"]
    assert meta["requests"] == n and meta["time_scale"] == scale
    assert results["workload"]["kind"] == "trace" and overhead == 0
    assert meta["prefix_reuse_share"] == pytest.approx(
        sum(g[1] for k, g in enumerate(groups) if g and g in groups[:k])
        / sum(r["n_in"] for r in recs)
    )


def test_mooncake_blocks_are_shared_exactly(emulator, tmp_path: Path) -> None:
    trace = read_trace_file(SAMPLES / "mooncake.jsonl", "mooncake")
    with emulator(ttft_ms=2, itl_ms=1, keep_prompts=True) as srv:
        proc = run_cli(
            "bench",
            "--url",
            srv.url,
            "--trace",
            str(SAMPLES / "mooncake.jsonl"),
            "--time-scale",
            "0.1",
            "--out",
            str(tmp_path / "m"),
            "--format",
            "json",
        )
        assert proc.returncode == 0, proc.stderr
        texts = [text for _, text in srv.server.prompts[-len(trace.requests) :]]
    reqs = trace.requests
    for i in range(len(reqs)):
        for j in range(i):
            shared = 0
            for a, b in zip(reqs[i].prefix, reqs[j].prefix, strict=False):
                if a.key != b.key:
                    break
                shared += a.tokens
            assert _common_words(texts[i], texts[j]) == shared, (i, j)
    recs = _records(tmp_path / "m")
    assert sorted(r["n_in"] for r in recs) == sorted(r.input_tokens for r in reqs)


def test_a_run_directory_replays_as_a_trace(emulator, tmp_path: Path) -> None:
    """A bench run's records are a trace: arrivals and lengths replayed as they were."""
    with emulator(ttft_ms=2, itl_ms=1) as srv:
        first = run_cli(
            "bench",
            "--url",
            srv.url,
            "--rate",
            "20",
            "-n",
            "15",
            "--input-tokens",
            "uniform:20:60",
            "--output-tokens",
            "uniform:3:9",
            "--out",
            str(tmp_path / "a"),
            "--format",
            "json",
        )
        assert first.returncode == 0, first.stderr
        again = run_cli(
            "bench",
            "--url",
            srv.url,
            "--trace",
            str(tmp_path / "a"),
            "--out",
            str(tmp_path / "b"),
            "--format",
            "json",
        )
        assert again.returncode == 0, again.stderr
    a = sorted(_records(tmp_path / "a"), key=lambda r: (r["t_sched_ns"], r["id"]))
    b = sorted(_records(tmp_path / "b"), key=lambda r: (r["t_sched_ns"], r["id"]))
    assert [(r["n_in"], r["n_out"]) for r in a] == [(r["n_in"], r["n_out"]) for r in b]
    offs = [[(r["t_sched_ns"] - rs[0]["t_sched_ns"]) for r in rs] for rs in (a, b)]
    assert np.abs(np.array(offs[0]) - np.array(offs[1])).max() < 1000  # ns: same schedule
    assert orjson.loads(again.stdout)["workload"]["format"] == "run"


def test_bad_traces_end_before_any_load(emulator, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"offset_s": 0, "input_tokens": 10, "output_tokens": 4}\n'
        '{"offset_s": 1, "input_tokens": 10, "output_tokens": -4}\n'
    )
    long = tmp_path / "long.jsonl"
    long.write_text(
        '{"offset_s": 0, "input_tokens": 10, "output_tokens": 4}\n'
        '{"offset_s": 1, "input_tokens": 900, "output_tokens": 200}\n'
    )
    with emulator(ttft_ms=2, itl_ms=1, ctx_per_slot=1000, keep_prompts=True) as srv:
        proc = run_cli("bench", "--url", srv.url, "--trace", str(bad), "--out", str(tmp_path / "x"))
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0, proc.stderr
        assert f"{bad}:2: field 'output_tokens' is negative" in proc.stderr
        over = run_cli(
            "bench", "--url", srv.url, "--trace", str(long), "--out", str(tmp_path / "y")
        )
        assert over.returncode == 2, over.stderr
        assert f"{long}:2:" in over.stderr and "context of 1000 tokens" in over.stderr
        assert "Traceback" not in over.stderr + proc.stderr
        before = len(srv.server.prompts)
        skip = run_cli(
            "bench",
            "--url",
            srv.url,
            "--trace",
            str(long),
            "--skip-bad-rows",
            "--out",
            str(tmp_path / "z"),
            "--format",
            "json",
        )
        assert skip.returncode == 0, skip.stderr
        assert len(srv.server.prompts) - before == 2  # the probe and the one that fits
    res = orjson.loads(skip.stdout)
    assert res["workload"]["trace"]["skipped_rows"] == {"over the context": 1}
    assert res["summary"]["requests_sent"] == 1
    assert os.path.exists(tmp_path / "z" / "records.jsonl")
