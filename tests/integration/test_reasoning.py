"""Reasoning models against the ground-truth emulator: its first N tokens are thinking, sent
each way servers send it, so TTFA, reasoning time and tokens are known exactly."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

TTFT_MS, ITL_MS, THINK, OUT = 20.0, 5.0, 6, 12


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "think_tags"])
def test_ttfa_reasoning_time_and_tokens_are_exact(emulator, tmp_path: Path, style: str) -> None:
    flags = ["--think-tags"] if style == "think_tags" else []
    with emulator(
        ttft_ms=TTFT_MS, itl_ms=ITL_MS, reasoning_tokens=THINK, reasoning_style=style
    ) as srv:
        proc = run_cli(
            "bench",
            "--url",
            srv.url,
            "-c",
            "2",
            "-n",
            "10",
            "--input-tokens",
            "20",
            "--output-tokens",
            str(OUT),
            "--slo",
            f"ttfa_ms={TTFT_MS + THINK * ITL_MS + 60}",
            "--out",
            str(tmp_path / "r"),
            "--format",
            "json",
            *flags,
        )
    assert proc.returncode == 0, proc.stderr
    res = orjson.loads(proc.stdout)
    recs = [orjson.loads(x) for x in (tmp_path / "r" / "records.jsonl").read_bytes().splitlines()]
    assert all(r["answer_chunk"] == THINK and r["n_reason"] == THINK for r in recs)
    assert all(r["n_out"] == OUT for r in recs)
    for r in recs:  # the emulator's schedule: the answer THINK tokens after the first (a
        # loaded host may write or read one chunk late; the median below is held to 2 ms)
        thought_ms = (r["chunk_ns"][THINK] - r["chunk_ns"][0]) / 1e6
        assert thought_ms == pytest.approx(THINK * ITL_MS, abs=10.0), thought_ms
    d = res["distributions"]
    assert d["reasoning_tokens"]["mean"] == THINK and d["reasoning_ms"]["count"] == 10
    assert d["reasoning_ms"]["p50"] == pytest.approx(THINK * ITL_MS, abs=2.0)
    assert d["ttfa_ms"]["p50"] - d["ttft_ms"]["p50"] == pytest.approx(THINK * ITL_MS, abs=2.0)
    (term,) = res["slo"]["terms"]
    assert term["metric"] == "ttfa_ms" and res["slo"]["attainment"] == 1.0
    table = run_cli("report", str(tmp_path / "r"))
    assert "TTFA (ms)" in table.stdout and "reasoning time (ms)" in table.stdout


def test_think_tags_unread_are_answer_text(emulator, tmp_path: Path) -> None:
    """Without --think-tags a <think> block in the content is answer: TTFA is not reported
    (it would be TTFT), and nothing claims the model reasoned."""
    with emulator(ttft_ms=5, itl_ms=1, reasoning_tokens=4, reasoning_style="think_tags") as srv:
        proc = run_cli(
            "bench",
            "--url",
            srv.url,
            "-c",
            "1",
            "-n",
            "3",
            "--input-tokens",
            "10",
            "--output-tokens",
            "8",
            "--out",
            str(tmp_path / "t"),
            "--format",
            "json",
        )
    assert proc.returncode == 0, proc.stderr
    d = orjson.loads(proc.stdout)["distributions"]
    assert d["ttfa_ms"]["count"] == 0 and d["reasoning_tokens"]["count"] == 0
