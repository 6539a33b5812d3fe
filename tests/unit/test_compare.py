"""compare: ratios to a baseline, the workload check, sweeps point by point, renderers, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import run_cli
from infermeter.errors import UsageError
from infermeter.records.schema import RequestRecord
from infermeter.report.compare import (
    build_comparison,
    comparison_notes,
    format_ratio,
    ratio_verdict,
    render_comparison_markdown,
    render_comparison_table,
)

CONFIG: dict[str, Any] = {
    "url": "http://127.0.0.1:8000",
    "api": "chat",
    "concurrency": 4,
    "rate": None,
    "arrival": "poisson",
    "burstiness": 1.0,
    "max_concurrency": None,
    "num_requests": 100,
    "duration_s": None,
    "input_tokens": "128",
    "output_tokens": "64",
    "dataset": None,
    "shared_prefix_tokens": 0,
    "ignore_eos": False,
    "gpu": None,
}
WORKLOAD: dict[str, Any] = {
    "kind": "synthetic",
    "verified_lengths": True,
    "tokenizer": "server:http://127.0.0.1:8000/tokenize",
    "verified_by": "server prompt count",
    "input_tokens": "128",
    "output_tokens": "64",
    "overhead_tokens": 8,
    "shared_prefix_tokens": 0,
    "seed": 0,
}


def dist(p50: float, p95: float | None = None, p99: float | None = None) -> dict[str, Any]:
    return {"count": 10, "p50": p50, "p90": p50, "p95": p95 or p50, "p99": p99 or p50}


def results(
    out_tok_s: float,
    ttft_p50: float,
    *,
    config: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A results.json with the fields compare reads (a real one has many more)."""
    return {
        "run": {"out_dir": f"runs/{out_tok_s:g}"},
        "server": server or {"kind": "llama.cpp", "model": "tiny", "slots": 4},
        "config": {**CONFIG, **(config or {})},
        "workload": {**WORKLOAD, **(workload or {})},
        "summary": {
            "request_throughput_rps": out_tok_s / 64,
            "output_token_throughput_tok_s": out_tok_s,
            "total_token_throughput_tok_s": out_tok_s * 3,
            "error_rate": extra.pop("error_rate", 0.0),
            "goodput_rps": extra.pop("goodput_rps", None),
        },
        "distributions": {
            "ttft_ms": dist(ttft_p50, 2 * ttft_p50, 3 * ttft_p50),
            "tpot_ms": dist(10.0, None, 20.0),
            "itl_ms": dist(10.0, None, 25.0),
            "e2e_ms": dist(1000.0, None, 1500.0),
        },
        "analysis": extra.pop("analysis", {}),
        "telemetry": extra.pop("telemetry", {}),
        **extra,
    }


def row(cmp: dict[str, Any], metric: str, point: str | None = None) -> dict[str, Any]:
    found = [r for r in cmp["rows"] if r["metric"] == metric and r.get("point") == point]
    assert len(found) == 1, (metric, point, [r["label"] for r in cmp["rows"]])
    return found[0]


# -- runs --------------------------------------------------------------------------------


def test_ratios_to_the_baseline_as_in_the_engine_comparison() -> None:
    # The source documents' table: HuggingFace 250 tok/s (baseline), vLLM 2,800 (11.2x),
    # TensorRT-LLM 2,500 (10x); TTFT 450 ms vs 120 ms.
    cmp = build_comparison(
        [
            ("HuggingFace", results(250.0, 450.0)),
            ("vLLM", results(2800.0, 120.0)),
            ("TensorRT-LLM", results(2500.0, 130.0)),
        ]
    )
    assert cmp["baseline"] == 0 and cmp["differences"] == []
    assert [it["label"] for it in cmp["items"]] == ["HuggingFace", "vLLM", "TensorRT-LLM"]
    assert cmp["items"][1] == {"label": "vLLM", "path": "runs/2800", "kind": "run"}
    tput = row(cmp, "output_token_throughput_tok_s")
    assert tput["label"] == "Output throughput" and tput["unit"] == "tok/s"
    assert tput["better"] == "higher"
    assert tput["values"] == [250.0, 2800.0, 2500.0]
    assert tput["ratios"] == pytest.approx([1.0, 11.2, 10.0])
    ttft = row(cmp, "ttft_ms_p50")
    assert ttft["better"] == "lower" and ttft["unit"] == "ms"
    assert ttft["ratios"] == pytest.approx([1.0, 120 / 450, 130 / 450])
    assert row(cmp, "ttft_ms_p99")["values"] == [1350.0, 360.0, 390.0]
    md = render_comparison_markdown(cmp)
    assert "| metric | HuggingFace | vLLM | TensorRT-LLM | vLLM / HuggingFace |" in md
    assert "| Output throughput (tok/s) | 250.0 | 2,800.0 | 2,500.0 | 11.2× | 10.0× |" in md
    assert "| TTFT p50 (ms) | 450.00 | 120.00 | 130.00 | 0.27× | 0.29× |" in md


def test_every_core_row_is_there_in_order() -> None:
    cmp = build_comparison([("a", results(100.0, 50.0)), ("b", results(200.0, 40.0))])
    assert [r["metric"] for r in cmp["rows"]] == [
        "request_throughput_rps",
        "output_token_throughput_tok_s",
        "total_token_throughput_tok_s",
        "ttft_ms_p50",
        "ttft_ms_p95",
        "ttft_ms_p99",
        "tpot_ms_p50",
        "tpot_ms_p99",
        "itl_ms_p50",
        "itl_ms_p99",
        "e2e_ms_p50",
        "e2e_ms_p99",
        "error_rate",
    ]
    assert all(
        set(r) == {"metric", "label", "unit", "better", "values", "ratios"} for r in cmp["rows"]
    )


def test_optional_rows_appear_where_any_run_has_them() -> None:
    a = results(
        100.0,
        50.0,
        goodput_rps=1.5,
        analysis={"mbu": 0.4, "mfu": 0.02, "cost": {"per_million_output_tokens": 2.0}},
        telemetry={
            "gpu": [
                {"index": 0, "memory_used_bytes": {"max": 60e9}},
                {"index": 1, "memory_used_bytes": {"max": 20e9}},
            ]
        },
    )
    b = results(
        200.0, 40.0, analysis={"mbu": 0.8, "mfu": 0.05, "cost": {"per_million_output_tokens": 1.0}}
    )
    cmp = build_comparison([("a", a), ("b", b)])
    assert row(cmp, "goodput_rps")["values"] == [1.5, None]
    assert row(cmp, "goodput_rps")["ratios"] == [1.0, None]
    assert row(cmp, "mbu")["ratios"] == pytest.approx([1.0, 2.0])
    assert row(cmp, "mfu")["unit"] == "fraction"
    mem = row(cmp, "gpu_memory_peak_gb")
    assert mem["values"] == [80.0, None] and mem["better"] is None
    cost = row(cmp, "cost_per_million_output_tokens")
    assert cost["better"] == "lower" and cost["ratios"] == pytest.approx([1.0, 0.5])


def test_zero_baseline_gives_no_ratio() -> None:
    cmp = build_comparison(
        [("a", results(100.0, 50.0)), ("b", results(100.0, 50.0, error_rate=0.1))]
    )
    assert row(cmp, "error_rate")["ratios"] == [None, None]
    assert "| Error rate | 0.00 % | 10.00 % | - |" in render_comparison_markdown(cmp)


def test_baseline_can_be_any_item() -> None:
    cmp = build_comparison([("a", results(100.0, 50.0)), ("b", results(400.0, 40.0))], baseline=1)
    assert cmp["baseline"] == 1
    assert row(cmp, "output_token_throughput_tok_s")["ratios"] == [0.25, 1.0]
    assert "| a / b |" in render_comparison_markdown(cmp)
    with pytest.raises(UsageError):
        build_comparison([("a", results(1.0, 1.0))], baseline=3)


def test_engine_settings_and_model_may_differ() -> None:
    a = results(100.0, 50.0, server={"kind": "vllm", "model": "llama", "slots": None})
    b = results(
        300.0,
        20.0,
        config={"url": "http://other:9000", "gpu": "h100", "workers": 4, "slo": "ttft_ms=200"},
        # Another engine's chat template adds other tokens, and counts through its own /tokenize.
        workload={"overhead_tokens": 31, "tokenizer": "server:http://other:9000/tokenize"},
    )
    assert build_comparison([("a", a), ("b", b)])["differences"] == []


def test_different_workloads_are_refused_in_one_line() -> None:
    a = results(100.0, 50.0, config={"concurrency": 1})
    b = results(100.0, 50.0, config={"input_tokens": "256"}, workload={"input_tokens": "256"})
    with pytest.raises(UsageError) as err:
        build_comparison([("a", a), ("b", b)])
    assert err.value.message == (
        "runs differ in workload: input_tokens 128 vs 256; concurrency 1 vs 4 "
        "(pass --allow-different to compare anyway)"
    )
    cmp = build_comparison([("a", a), ("b", b)], allow_different=True)
    assert cmp["differences"] == ["input_tokens: 128 vs 256", "concurrency: 1 vs 4"]
    assert comparison_notes(cmp) == [
        "workloads differ (compared anyway): input_tokens: 128 vs 256; concurrency: 1 vs 4"
    ]


@pytest.mark.parametrize(
    ("config", "workload", "expected"),
    [
        ({"api": "completions"}, {}, "api: chat vs completions"),
        ({"output_tokens": "32"}, {"output_tokens": "32"}, "output_tokens: 64 vs 32"),
        ({"ignore_eos": True}, {}, "ignore_eos: false vs true"),
        (
            {"shared_prefix_tokens": 64},
            {"shared_prefix_tokens": 64},
            "shared_prefix_tokens: 0 vs 64",
        ),
        ({"num_requests": None, "duration_s": 60.0}, {}, "num_requests: 100 vs unset"),
        ({"dataset": "chat.jsonl"}, {}, "dataset: unset vs chat.jsonl"),
        ({}, {"kind": "dataset"}, "workload: synthetic vs dataset"),
    ],
)
def test_each_workload_field_is_checked(
    config: dict[str, Any], workload: dict[str, Any], expected: str
) -> None:
    a = results(100.0, 50.0)
    b = results(100.0, 50.0, config=config, workload=workload)
    assert (
        build_comparison([("a", a), ("b", b)], allow_different=True)["differences"][0] == expected
    )


def test_runs_on_different_seeds_are_alike_unless_the_cache_served_them_apart() -> None:
    # Every run draws its own seed: the random words differ, the workload does not.
    a = results(100.0, 50.0, workload={"seed": 1})
    b = results(100.0, 50.0, workload={"seed": 2})
    cmp = build_comparison([("a", a), ("b", b)])
    assert cmp["differences"] == [] and cmp["cautions"] == []
    # ...but a rerun whose prompts the server had cached is not the same measurement.
    a["prompt_cache"] = {"cached_share": 0.01}
    b["prompt_cache"] = {"cached_share": 0.99}
    cmp = build_comparison([("a", a), ("b", b)])
    share = next(r for r in cmp["rows"] if r["metric"] == "cached_prompt_share")
    assert share["values"] == [0.01, 0.99] and share["better"] is None
    assert cmp["cautions"] and "a 1 %, b 99 %" in cmp["cautions"][0]
    assert any(n.startswith("not alike: ") for n in comparison_notes(cmp))
    b["prompt_cache"] = {"cached_share": 0.08}  # within 10 points: alike
    assert build_comparison([("a", a), ("b", b)])["cautions"] == []


def test_open_loop_runs_compare_rate_and_arrivals() -> None:
    open_loop = {"concurrency": None, "rate": 4.0, "arrival": "poisson"}
    a = results(100.0, 50.0, config=open_loop)
    b = results(100.0, 50.0, config={**open_loop, "arrival": "gamma", "burstiness": 0.5})
    assert build_comparison([("a", a), ("b", b)], allow_different=True)["differences"] == [
        "arrival: poisson vs gamma",
        "burstiness: unset vs 0.5",
    ]
    # A closed-loop run's arrival setting means nothing: not compared.
    c = results(100.0, 50.0, config={"arrival": "constant"})
    assert build_comparison([("a", results(1.0, 1.0)), ("c", c)])["differences"] == []


def test_runs_and_sweeps_do_not_mix() -> None:
    with pytest.raises(UsageError, match="not both: a \\(run\\), s \\(sweep\\)"):
        build_comparison([("a", results(1.0, 1.0)), ("s", sweep_doc([1, 2], 100.0))])


def test_renderers() -> None:
    cmp = build_comparison([("1 slot", results(100.0, 50.0)), ("4 slots", results(340.0, 80.0))])
    console = Console(width=160, record=True, color_system=None)
    console.print(render_comparison_table(cmp))
    text = console.export_text()
    assert "4 slots / 1 slot" in text and "3.40×" in text and "1.60×" in text
    assert format_ratio(11.2) == "11.2×" and format_ratio(0.2667) == "0.27×"
    assert format_ratio(1234.0) == "1,234×" and format_ratio(None) == "-"
    assert ratio_verdict(3.4, "higher") == "better" and ratio_verdict(1.6, "lower") == "worse"
    assert ratio_verdict(0.5, "lower") == "better" and ratio_verdict(1.01, "higher") is None
    assert ratio_verdict(2.0, None) is None


def test_values_inside_the_baselines_interval_are_marked() -> None:
    """A percentile whose value lies inside the baseline's 95 % interval is not told apart
    from it: the row says so per item, and every renderer marks the ratio."""
    base = results(100.0, 50.0)
    base["distributions"]["ttft_ms"]["interval95"] = {"p50": [45.0, 56.0], "p99": [140.0, None]}
    base["distributions"]["e2e_ms"]["interval95"] = {"p50": [990.0, 1010.0]}
    near = results(100.0, 55.0)  # TTFT p50 55 inside [45, 56]; p99 165 above an open side
    far = results(100.0, 60.0)  # TTFT p50 60 past the upper side
    far["distributions"]["e2e_ms"]["p50"] = 1200.0
    cmp = build_comparison([("base", base), ("near", near), ("far", far)])
    assert row(cmp, "ttft_ms_p50")["within"] == [None, True, False]
    assert row(cmp, "ttft_ms_p99")["within"] == [None, True, True]
    assert row(cmp, "e2e_ms_p50")["within"] == [None, True, False]
    assert "within" not in row(cmp, "tpot_ms_p50")  # the baseline gives no interval there
    assert "within" not in row(cmp, "output_token_throughput_tok_s")
    console = Console(width=200, record=True, color_system=None)
    console.print(render_comparison_table(cmp))
    text = console.export_text()
    ttft = next(line for line in text.splitlines() if "TTFT p50" in line)
    assert "1.10× ≈" in ttft and "1.20× ≈" not in ttft and "1.20×" in ttft
    md = render_comparison_markdown(cmp)
    assert "| 1.10× ≈ | 1.20× |" in md and "≈: the value lies inside" in md


def test_a_sweep_points_interval_comes_from_its_run() -> None:
    """sweep.json's point digest leaves the intervals out; the point's run has them."""
    a, b = sweep_doc([4], 100.0), sweep_doc([4], 100.0)
    run = results(400.0, 40.0)
    run["distributions"]["ttft_ms"]["interval95"] = {"p50": [35.0, 45.0]}
    a["points"][0]["results"] = run
    b["points"][0]["results"] = results(400.0, 40.0)  # (the same workload as a's point)
    cmp = build_comparison([("a", a), ("b", b)])
    assert row(cmp, "ttft_ms_p50", "c=4")["within"] == [None, True]  # 40 inside [35, 45]
    assert "within" not in row(cmp, "tpot_ms_p50", "c=4")


# -- sweeps ------------------------------------------------------------------------------


def point(
    index: int,
    c: int,
    out_tok_s: float,
    *,
    role: str = "point",
    inp: str = "128",
    outp: str = "64",
) -> dict[str, Any]:
    return {
        "index": index,
        "dir": f"points/{index:02d}-c{c}",
        "role": role,
        "concurrency": c,
        "rate": None,
        "input_tokens": inp,
        "output_tokens": outp,
        "status": "ok",
        "summary": {
            "request_throughput_rps": out_tok_s / 64,
            "output_token_throughput_tok_s": out_tok_s,
            "total_token_throughput_tok_s": 3 * out_tok_s,
            "error_rate": 0.0,
            "goodput_rps": None,
        },
        "latency": {
            k: {"p50": 10.0 * c, "p90": 11.0 * c, "p95": 12.0 * c, "p99": 13.0 * c}
            for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
        },
        "meets_sla": None,
    }


def sweep_doc(
    concurrencies: list[int], per_stream_tok_s: float, capacity: float | None = None, **over: Any
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "sweep",
        "variable": "concurrency",
        "config": {**CONFIG, **over.pop("config", {})},
        "sla": None,
        "points": [point(i, c, per_stream_tok_s * c) for i, c in enumerate(concurrencies)],
        "stopped": {"reason": "done", "detail": None},
        "capacity": None
        if capacity is None
        else {"variable": "concurrency", "value": capacity, "note": f"up to {capacity:g}"},
        **over,
    }


def test_sweeps_compare_point_by_point_where_values_match() -> None:
    a = sweep_doc([1, 2, 4], 100.0, capacity=2)
    b = sweep_doc([2, 4, 8], 250.0, capacity=8)
    cmp = build_comparison([("A", a), ("B", b)])
    assert [it["kind"] for it in cmp["items"]] == ["sweep", "sweep"]
    cap = row(cmp, "capacity")
    assert cmp["rows"][0] is cap
    assert cap["values"] == [2.0, 8.0] and cap["ratios"] == [1.0, 4.0]
    assert cap["unit"] == "concurrency" and cap["notes"] == ["up to 2", "up to 8"]
    assert {r.get("point") for r in cmp["rows"][1:]} == {"c=2", "c=4"}  # 1 and 8 are not shared
    c4 = row(cmp, "output_token_throughput_tok_s", "c=4")
    assert c4["label"] == "c=4 Output throughput"
    assert c4["values"] == [400.0, 1000.0] and c4["ratios"] == [1.0, 2.5]
    assert row(cmp, "ttft_ms_p99", "c=2")["values"] == [26.0, 26.0]
    assert "capacity of A: up to 2" in comparison_notes(cmp)


def test_sweep_points_prefer_measured_points_to_probes() -> None:
    a = sweep_doc([4], 100.0)
    a["points"].insert(0, point(9, 4, 5.0, role="probe"))
    a["points"].append(point(10, 4, 7.0, role="probe"))
    b = sweep_doc([4], 100.0)
    cmp = build_comparison([("A", a), ("B", b)])
    assert row(cmp, "output_token_throughput_tok_s", "c=4")["values"] == [400.0, 400.0]


def test_sweep_point_results_add_analysis_and_join_the_workload_check() -> None:
    a, b = sweep_doc([2], 100.0), sweep_doc([2], 200.0)
    a["points"][0]["results"] = results(1.0, 1.0, analysis={"mbu": 0.1})
    b["points"][0]["results"] = results(
        1.0, 1.0, analysis={"mbu": 0.3}, workload={"kind": "dataset"}
    )
    with pytest.raises(UsageError, match="sweeps differ in workload: workload synthetic vs data"):
        build_comparison([("A", a), ("B", b)])
    cmp = build_comparison([("A", a), ("B", b)], allow_different=True)
    assert row(cmp, "mbu", "c=2")["ratios"] == pytest.approx([1.0, 3.0])
    # the figures themselves come from sweep.json
    assert row(cmp, "output_token_throughput_tok_s", "c=2")["values"] == [200.0, 400.0]


def test_sweeps_must_sweep_the_same_workload_and_variable() -> None:
    a = sweep_doc([1, 2], 100.0)
    b = sweep_doc([1, 2], 100.0, config={"num_requests": 50})
    with pytest.raises(UsageError, match="num_requests 100 vs 50"):
        build_comparison([("A", a), ("B", b)])
    for p in b["points"]:
        p["output_tokens"] = "256"
    with pytest.raises(UsageError, match="output_tokens 64 vs 256; num_requests 100 vs 50"):
        build_comparison([("A", a), ("B", b)])
    c = sweep_doc([1, 2], 100.0, variable="rate")
    with pytest.raises(UsageError, match="variable concurrency vs rate"):
        build_comparison([("A", a), ("C", c)])
    with pytest.raises(UsageError, match="vary different things"):
        build_comparison([("A", a), ("C", c)], allow_different=True)


def test_sweeps_without_a_common_point_or_capacity_are_refused() -> None:
    with pytest.raises(UsageError, match="no concurrency in common"):
        build_comparison([("A", sweep_doc([1, 2], 1.0)), ("B", sweep_doc([4, 8], 1.0))])
    cmp = build_comparison(
        [("A", sweep_doc([1, 2], 1.0, capacity=2)), ("B", sweep_doc([4, 8], 1.0, capacity=8))]
    )
    assert [r["metric"] for r in cmp["rows"]] == ["capacity"]


def test_grid_sweeps_label_points_with_their_lengths() -> None:
    a = sweep_doc([], 1.0)
    a["points"] = [point(0, 2, 1.0, inp="128"), point(1, 2, 1.0, inp="512")]
    b = json.loads(json.dumps(a))
    cmp = build_comparison([("A", a), ("B", b)])
    assert {r["point"] for r in cmp["rows"]} == {"c=2 128→64 tok", "c=2 512→64 tok"}


# -- the command, on hand-made run and sweep directories ---------------------------------


def write_run(root: Path, n_out: int, gap_ms: float, concurrency: int = 1, **config: Any) -> Path:
    """A run directory with ``concurrency`` streams of 4 back-to-back requests each, every
    request ``n_out`` tokens one ``gap_ms`` apart (so throughput is known exactly)."""
    root.mkdir(parents=True)
    meta = {
        "schema_version": 1,
        "run_id": root.name,
        "config": {**CONFIG, "concurrency": concurrency, "num_requests": 4 * concurrency, **config},
        "server": {"kind": "llama.cpp", "model": "tiny"},
        "workload": WORKLOAD,
    }
    (root / "run.json").write_text(json.dumps(meta))
    gap = int(gap_ms * 1e6)
    lines = []
    for stream in range(concurrency):
        t = 0
        for i in range(4):
            chunks = [t + gap * (k + 1) for k in range(n_out)]
            rec = RequestRecord(
                id=stream * 4 + i,
                t_sched_ns=t,
                t_send_ns=t,
                t_first_ns=chunks[0],
                t_last_ns=chunks[-1],
                t_end_ns=chunks[-1],
                chunk_ns=chunks,
                chunk_tokens=[1] * n_out,
                n_in=128,
                n_in_source="server",
                n_out=n_out,
                n_out_source="server",
                ok=True,
            )
            lines.append(json.dumps(rec.to_dict()))
            t = chunks[-1]
    (root / "records.jsonl").write_text("\n".join(lines) + "\n")
    # A finished run (load_run recomputes the rest from the records).
    status = {"complete": True, "interrupted": False, "aborted": None}
    (root / "results.json").write_text(json.dumps({"run": status}))
    return root


def write_sweep(root: Path, concurrencies: list[int], gap_ms: float) -> Path:
    doc = sweep_doc(concurrencies, 0.0, capacity=max(concurrencies))
    for p, c in zip(doc["points"], concurrencies, strict=True):
        run = write_run(root / p["dir"], 10, gap_ms, concurrency=c)
        p["summary"]["output_token_throughput_tok_s"] = c * 1e3 / gap_ms
        assert run.exists()
    (root / "sweep.json").write_text(json.dumps(doc))
    return root


def test_cli_compares_run_directories(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a" / "c1", n_out=10, gap_ms=10.0)
    b = write_run(tmp_path / "b" / "c1", n_out=10, gap_ms=4.0)
    res = run_cli("compare", str(a), str(b), "--format", "json")
    assert res.returncode == 0, res.stderr
    cmp = json.loads(res.stdout)
    # Same directory names: the parents tell them apart.
    assert [it["label"] for it in cmp["items"]] == ["a/c1", "b/c1"]
    # 40 tokens over 400 ms vs over 160 ms
    assert row(cmp, "output_token_throughput_tok_s")["values"] == pytest.approx([100.0, 250.0])
    assert row(cmp, "output_token_throughput_tok_s")["ratios"] == pytest.approx([1.0, 2.5])
    assert row(cmp, "tpot_ms_p50")["ratios"] == pytest.approx([1.0, 0.4])

    md = run_cli("compare", str(a), str(b), "-f", "md", "-l", "slow", "-l", "fast", "-b", "fast")
    assert md.returncode == 0, md.stderr
    assert "| metric | slow | fast | slow / fast |" in md.stdout
    assert "| Output throughput (tok/s) | 100.0 | 250.0 | 0.40× |" in md.stdout

    table = run_cli("compare", str(a), str(b), "-l", "slow", "-l", "fast")
    assert table.returncode == 0 and "fast / slow" in table.stdout and "2.50×" in table.stdout


def test_cli_refuses_what_it_cannot_compare(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", n_out=10, gap_ms=10.0)
    b = write_run(tmp_path / "b", n_out=10, gap_ms=4.0, input_tokens="256")
    res = run_cli("compare", str(a), str(b))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip() == (
        "error: runs differ in workload: input_tokens 128 vs 256 "
        "(pass --allow-different to compare anyway)"
    )
    allowed = run_cli("compare", str(a), str(b), "--allow-different")
    assert allowed.returncode == 0, allowed.stderr
    assert "workloads differ (compared anyway): input_tokens: 128 vs 256" in allowed.stdout
    for args, message in [
        ((str(a),), "compare needs two or more"),
        ((str(a), str(b), "-l", "x"), "--label given 1 times for 2 runs"),
        ((str(a), str(b), "--allow-different", "-b", "zzz"), "--baseline 'zzz' is neither"),
        ((str(a), str(tmp_path / "nope")), "no such directory"),
        ((str(a), str(tmp_path)), "holds neither a run (run.json) nor a sweep"),
        ((str(a), str(b), "-f", "csv"), "--format must be one of table, md, json, html"),
    ]:
        res = run_cli("compare", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr and res.stderr.count("\n") == 1, res.stderr


def test_cli_compares_sweep_directories(tmp_path: Path) -> None:
    a = write_sweep(tmp_path / "a", [1, 2], gap_ms=10.0)
    b = write_sweep(tmp_path / "b", [2, 4], gap_ms=5.0)
    res = run_cli("compare", str(a), str(b), "--format", "json")
    assert res.returncode == 0, res.stderr
    cmp = json.loads(res.stdout)
    assert [it["kind"] for it in cmp["items"]] == ["sweep", "sweep"]
    assert cmp["items"][0]["path"] == str(a)
    assert row(cmp, "capacity")["ratios"] == [1.0, 2.0]
    c2 = row(cmp, "output_token_throughput_tok_s", "c=2")
    assert c2["values"] == pytest.approx([200.0, 400.0])
    assert c2["ratios"] == pytest.approx([1.0, 2.0])
    mixed = run_cli("compare", str(a), str(write_run(tmp_path / "r", 10, 10.0)))
    assert mixed.returncode == 2 and "not both" in mixed.stderr
