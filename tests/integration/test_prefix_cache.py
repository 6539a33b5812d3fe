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
