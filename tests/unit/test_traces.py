"""Trace files: each format read as documented, bad rows named by file:line and field, the
window and time scale, and the prefix reuse a trace asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from infermeter.config import BenchConfig
from infermeter.errors import UsageError
from infermeter.workload.traces import (
    PrefixBlock,
    TraceError,
    TraceRequest,
    cut,
    prefix_reuse,
    read_trace_file,
    sniff_format,
)

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "traces"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("mooncake.jsonl", "mooncake"),
        ("burstgpt.csv", "burstgpt"),
        ("azure.csv", "azure"),
        ("plain.jsonl", "jsonl"),
    ],
)
def test_each_sample_is_sniffed_and_read(name: str, fmt: str) -> None:
    path = SAMPLES / name
    assert sniff_format(path) == fmt
    trace = read_trace_file(path, fmt)  # type: ignore[arg-type]
    offsets = [r.offset_s for r in trace.requests]
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    assert all(r.input_tokens > 0 and r.output_tokens > 0 for r in trace.requests)
    assert trace.span_s == offsets[-1] > 0


def test_mooncake_times_are_milliseconds_and_blocks_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"timestamp": 1000, "input_length": 1100, "output_length": 5, "hash_ids": [7, 8, 9]}\n'
        '{"timestamp": 3500, "input_length": 1024, "output_length": 6, "hash_ids": [7, 8]}\n'
    )
    t = read_trace_file(path, "mooncake")
    assert [r.offset_s for r in t.requests] == [0.0, 2.5]
    # 1100 tokens hold two whole 512-token blocks: the third id's block is partial, not shared
    assert [b.key for b in t.requests[0].prefix] == ["m7", "m8"]
    assert [b.tokens for b in t.requests[1].prefix] == [512, 512]
    reuse = prefix_reuse(t.requests)
    assert reuse.reusable_tokens == 1024 and reuse.requests_reusing == 1
    assert reuse.share == pytest.approx(1024 / 2124)


def test_burstgpt_failed_rows_are_left_out_and_counted() -> None:
    t = read_trace_file(SAMPLES / "burstgpt.csv", "burstgpt")
    assert len(t.requests) == 29 and t.skipped == {"no output": 1}
    assert t.first_skipped is not None and "burstgpt.csv:19:" in t.first_skipped


def test_azure_seven_digit_fractions(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,10,2\n"
        "2023-11-16 18:15:47.0000001,11,3\n"
    )
    t = read_trace_file(path, "azure")
    assert t.requests[1].offset_s == pytest.approx(0.3194101, abs=1e-6)


def test_plain_prefix_groups(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"offset_s": 0, "input_tokens": 100, "output_tokens": 4, "prefix_group": "a", "prefix_tokens": 40}\n'
        '{"offset_s": 1, "input_tokens": 90, "output_tokens": 4, "prefix_group": "a", "prefix_tokens": 40}\n'
        '{"offset_s": 2, "input_tokens": 90, "output_tokens": 4, "prefix_group": "b", "prefix_tokens": 40}\n'
        '{"offset_s": 3, "input_tokens": 50, "output_tokens": 4}\n'
    )
    t = read_trace_file(path, "jsonl")
    assert t.requests[0].prefix == t.requests[1].prefix == (PrefixBlock("ga:40", 40),)
    assert t.requests[2].prefix != t.requests[0].prefix and t.requests[3].prefix == ()
    assert prefix_reuse(t.requests).reusable_tokens == 40


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"offset_s": 1, "input_tokens": "x", "output_tokens": 4}',
            "field 'input_tokens' is not a number",
        ),
        (
            '{"offset_s": 1, "input_tokens": -5, "output_tokens": 4}',
            "field 'input_tokens' is negative",
        ),
        ('{"offset_s": 1, "input_tokens": 5}', "field 'output_tokens' is missing"),
        (
            '{"offset_s": -1, "input_tokens": 5, "output_tokens": 4}',
            "field 'offset_s' must be a time",
        ),
        ('{"offset_s": 0.5, "input_tokens": 5, "output_tokens": 4}', "before the previous row's"),
        ("[1, 2]", "not a JSON object"),
        (
            '{"offset_s": 2, "input_tokens": 5, "output_tokens": 4, "prefix_group": "a"}',
            "'prefix_tokens' is missing",
        ),
        (
            '{"offset_s": 2, "input_tokens": 5, "output_tokens": 4, "prefix_group": "a", "prefix_tokens": 5}',
            "less than 'input_tokens'",
        ),
    ],
)
def test_a_bad_row_is_named_by_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"offset_s": 1, "input_tokens": 5, "output_tokens": 4}\n' + line + "\n")
    with pytest.raises(TraceError) as err:
        read_trace_file(path, "jsonl")
    text = str(err.value)
    assert text.startswith(f"{path}:2: ") and message in text and "--skip-bad-rows" in text
    assert "\n" not in text and isinstance(err.value, UsageError)
    kept = read_trace_file(path, "jsonl", skip_bad_rows=True)
    assert len(kept.requests) == 1 and sum(kept.skipped.values()) == 1


def test_a_csv_without_its_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("Timestamp,Request tokens\n1,2\n")
    with pytest.raises(TraceError, match="no column 'Response tokens'"):
        read_trace_file(path, "burstgpt")
    with pytest.raises(TraceError, match="not a trace format"):
        sniff_format(path)


def test_window_scale_and_limit() -> None:
    reqs = [TraceRequest(float(t), 10, 2) for t in range(10)]
    from infermeter.workload.traces import Trace

    trace = Trace(Path("x"), "jsonl", reqs)
    part = cut(trace, start_s=2.0, duration_s=5.0, time_scale=0.5)
    assert [r.offset_s for r in part.requests] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert len(cut(trace, limit=3).requests) == 3
    with pytest.raises(TraceError, match="no request between"):
        cut(trace, start_s=20.0)


def test_reuse_follows_whole_prefixes() -> None:
    a, b, c = (PrefixBlock(k, 10) for k in "abc")
    reqs = [
        TraceRequest(0, 30, 1, (a, b)),
        TraceRequest(1, 30, 1, (a, c)),  # a reused; c is new
        TraceRequest(2, 30, 1, (c,)),  # a key names its whole prefix: c seen is c reusable
        TraceRequest(3, 30, 1, (b, a)),  # both seen before
        TraceRequest(4, 30, 1, (c, b)),  # both seen before
    ]
    r = prefix_reuse(reqs)
    assert r.reusable_tokens == 10 + 10 + 20 + 20 and r.requests_reusing == 4


def test_trace_flags_refuse_what_the_trace_decides(tmp_path: Path) -> None:
    path = SAMPLES / "plain.jsonl"
    ok = BenchConfig.build(url="http://x", trace=path, max_concurrency=2, time_scale=0.5)
    assert ok.trace == path and ok.num_requests is None
    for extra, flag in (
        ({"rate": 2.0}, "--rate"),
        ({"concurrency": 2}, "--concurrency"),
        ({"input_tokens": "64"}, "--input-tokens"),
        ({"dataset": path}, "--dataset"),
    ):
        with pytest.raises(UsageError, match=f"drop {flag}"):
            BenchConfig.build(url="http://x", trace=path, **extra)
    with pytest.raises(UsageError, match="--time-scale"):
        BenchConfig.build(url="http://x", trace=path, time_scale=0)


def test_prompt_blocks_hash_whole_prefixes_and_keep_no_text() -> None:
    from infermeter.workload.prefix_hash import block_hashes, prompt_text, shared_keys

    salt = b"k" * 16
    system = "You are a support bot. " * 12  # 276 characters: two whole 128-char blocks
    a = prompt_text({"messages": [{"role": "system", "content": system},
                                  {"role": "user", "content": "my order is late " * 10}]})  # fmt: skip
    b = prompt_text({"messages": [{"role": "system", "content": system},
                                  {"role": "user", "content": "where is my refund " * 10}]})  # fmt: skip
    assert a is not None and b is not None
    ha, hb = block_hashes(a, salt), block_hashes(b, salt)
    assert len(ha) == len(a) // 128 and ha[:2] == hb[:2] and ha[2] != hb[2]
    # a block's hash covers every block before it: equal text later on is not a match
    assert (
        block_hashes("x" * 128 + "y" * 128, salt)[1] != block_hashes("z" * 128 + "y" * 128, salt)[1]
    )
    assert block_hashes(a, b"other salt......")[0] != ha[0]  # the salt keys every hash
    assert all(len(h) == 12 and "support" not in h for h in ha)
    assert shared_keys([ha, hb]) == set(ha[:2])
    assert prompt_text({"prompt": "plain"}) == "plain" and prompt_text({"x": 1}) is None


def test_think_time_forms() -> None:
    import numpy as np

    from infermeter.workload.sessions import ThinkTime

    rng = np.random.default_rng(1)
    assert ThinkTime.parse("2").sample(rng, 3) == [2.0, 2.0, 2.0]
    u = ThinkTime.parse("uniform:1:3").sample(rng, 200)
    assert min(u) >= 1.0 and max(u) <= 3.0
    e = ThinkTime.parse("exponential:2").sample(rng, 4000)
    assert abs(sum(e) / len(e) - 2.0) < 0.15
    for bad in ("soon", "-1", "uniform:3:1", "exponential:1:2", "nan"):
        with pytest.raises(UsageError, match="--think-time"):
            ThinkTime.parse(bad)
