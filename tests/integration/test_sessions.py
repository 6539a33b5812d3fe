"""Multi-turn sessions: each turn sends the conversation so far with the server's real
answers, after the user's think time; the summary breaks TTFT and cache share down by turn.
Exact against the emulator (its tokenizer counts words, its answers are N words); the prefix
cache's effect on the real llama-server."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

IN, OUT, TURNS, THINK = 30, 10, 3, 0.2


def _records(out: Path) -> list[dict]:
    recs = [orjson.loads(x) for x in (out / "records.jsonl").read_bytes().splitlines()]
    return sorted(recs, key=lambda r: (r["session"], r["turn"]))


@pytest.mark.parametrize("load", [["-c", "2"], ["--rate", "8"]])
def test_turns_carry_the_conversation_after_the_think_time(
    emulator, tmp_path: Path, load: list[str]
) -> None:
    out = tmp_path / "s"
    with emulator(ttft_ms=10, itl_ms=2) as srv:
        proc = run_cli(
            "bench",
            "--url",
            srv.url,
            *load,
            "--sessions",
            "5",
            "--turns",
            str(TURNS),
            "--think-time",
            str(THINK),
            "--input-tokens",
            str(IN),
            "--output-tokens",
            str(OUT),
            "--out",
            str(out),
            "--format",
            "json",
        )
    assert proc.returncode == 0, proc.stderr
    res = orjson.loads(proc.stdout)
    recs = _records(out)
    assert len(recs) == 5 * TURNS and all(r["ok"] for r in recs)
    for r in recs:
        # the conversation so far: k earlier messages and answers, and the new message
        assert r["n_in"] == IN * (r["turn"] + 1) + OUT * r["turn"], r
    by = {(r["session"], r["turn"]): r for r in recs}
    for (sid, k), r in by.items():
        if k:
            gap_s = (r["t_send_ns"] - by[(sid, k - 1)]["t_end_ns"]) / 1e9
            assert THINK - 0.002 <= gap_s < THINK + 0.1, gap_s
            assert r["t_sched_ns"] <= r["t_send_ns"]
    s = res["sessions"]
    assert s["sessions"] == 5 and s["completed"] == 5 and s["turns_mean"] == TURNS
    assert [t["turn"] for t in s["by_turn"]] == list(range(TURNS))
    assert [t["input_tokens_mean"] for t in s["by_turn"]] == [IN, 2 * IN + OUT, 3 * IN + 2 * OUT]
    span = (TURNS - 1) * THINK + TURNS * (0.010 + (OUT - 1) * 0.002)
    # a think time's timer may fire a clock tick early; a loaded host adds its own delays
    assert span - 0.005 <= s["duration_s"]["p50"] < span + 0.15, s["duration_s"]
    md = run_cli("report", str(out), "--format", "md").stdout
    assert "**by turn**: 5 sessions (5 whole)" in md and "| 3 | 5/5 |" in md


def test_sessions_refuse_what_they_cannot_do(emulator, tmp_path: Path) -> None:
    with emulator(ttft_ms=2, itl_ms=1, ctx_per_slot=500) as srv:
        cases = [
            (["--workers", "2"], "one client process"),
            (["-n", "10"], "drop -n/--num-requests"),
            (["--turns", "8", "--input-tokens", "60"], "reaches 544 tokens"),
            (["--think-time", "soon"], "--think-time: cannot read 'soon'"),
        ]
        for extra, message in cases:
            proc = run_cli(
                "bench", "--url", srv.url, "-c", "1", "--sessions", "2",
                "--output-tokens", "8", *extra, "--out", str(tmp_path / "x"),
            )  # fmt: skip
            assert proc.returncode == 2, (extra, proc.stderr)
            assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_dataset_conversations_are_sessions(emulator, tmp_path: Path) -> None:
    """A ShareGPT file's conversations: each human message a turn (after the system
    message), answers as long as the dataset's replies (the emulator's tokenizer counts
    words), and the server's own answers carried into the next turn."""
    data = tmp_path / "sg.json"
    data.write_text(
        orjson.dumps(
            [
                {"conversations": [
                    {"from": "human", "value": "one two three four"}, {"from": "gpt", "value": "a b c"},
                    {"from": "human", "value": "five six"}, {"from": "gpt", "value": "d e f g h"},
                    {"from": "human", "value": "seven eight nine"}, {"from": "gpt", "value": "i j"},
                ]},
                {"conversations": [
                    {"from": "system", "value": "be brief"}, {"from": "human", "value": "alpha beta"},
                    {"from": "gpt", "value": "x y z w"},
                ]},
            ]
        ).decode()
    )  # fmt: skip
    with emulator(ttft_ms=2, itl_ms=1) as srv:
        base = ["bench", "--url", srv.url, "-c", "1", "--sessions", "2", "--dataset", str(data)]
        whole = run_cli(*base, "--out", str(tmp_path / "a"), "--seed", "3", "-q")
        capped = run_cli(*base, "--turns", "2", "--output-tokens", "6", "--out", str(tmp_path / "b"), "-q")  # fmt: skip
    assert whole.returncode == 0 and capped.returncode == 0, whole.stderr + capped.stderr
    got = {(r["n_in"], r["n_out"]) for r in _records(tmp_path / "a")}
    assert got == {(4, 3), (4 + 3 + 2, 5), (9 + 5 + 3, 2), (2 + 2, 4)}
    got = {(r["n_in"], r["n_out"]) for r in _records(tmp_path / "b")}
    assert got == {(4, 6), (4 + 6 + 2, 6), (2 + 2, 6)}
