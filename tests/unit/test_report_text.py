"""What the terminal, Markdown and HTML renderers say: whole numbers, plain words, no cut cells."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_compare import write_run

from conftest import run_cli
from infermeter.api import load_run
from infermeter.report.formats import to_markdown
from infermeter.report.html.verdicts import _evidence
from infermeter.report.terminal import print_summary, sla_verdict
from infermeter.text import counted


@pytest.fixture(scope="module")
def run_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("runs") / "r"
    write_run(root, 64, 10.0, concurrency=2)
    return load_run(root).results


def _text(results: dict[str, Any]) -> str:
    buf = io.StringIO()
    print_summary(results, Console(file=buf, width=200, emoji=False))
    return buf.getvalue()


# -- 1. tables never cut a number -------------------------------------------------------------


def test_piped_tables_are_never_cut_at_80_columns(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, 64, 10.0, concurrency=2)
    write_run(b, 64, 12.0, concurrency=2)
    env = {"COLUMNS": "80"}
    for args in (
        ("report", str(a), "--format", "table"),
        ("compare", str(a), str(b)),
        ("estimate", "--model", "llama-3.1-8b", "--gpu", "h200", "--sweep-batch", "1,64"),
    ):
        res = run_cli(*args, env=env)
        assert res.returncode == 0, res.stderr
        assert "…" not in res.stdout, (args, res.stdout)
    res = run_cli("report", str(a), "--format", "table", env=env)
    assert "12,800.00" in res.stdout  # the prefill TPS that 80 columns cut to "12,800…"


# -- 3. display glitches ----------------------------------------------------------------------


def test_sla_verdict_reads_as_words_and_plain_numbers() -> None:
    far = {"limit": "p95 ttft_ms < 200", "measured": 9712.3, "passed": False, "margin": -47.56}
    assert sla_verdict(far) == "FAIL: measured 9,712, 48.6× the limit"
    near = {"limit": "p95 ttft_ms < 200", "measured": 260.0, "passed": False, "margin": -0.3}
    assert sla_verdict(near) == "FAIL: measured 260, 30 % over the limit"
    short = {"limit": "output_tok_s > 1000", "measured": 500.0, "passed": False, "margin": -0.5}
    assert sla_verdict(short) == "FAIL: measured 500, 50 % under the limit"
    ok = {"limit": "p95 ttft_ms < 200", "measured": 5.5647, "passed": True, "margin": 0.972}
    assert sla_verdict(ok) == "pass: measured 5.56, 97 % headroom"
    none = {"limit": "gpu_memory_util > 0.7", "measured": None, "passed": None, "margin": None}
    assert sla_verdict(none) == "not measured"


def test_sla_rows_in_the_terminal(run_results: dict[str, Any]) -> None:
    r = copy.deepcopy(run_results)
    r["analysis"]["sla"] = {
        "profile": "chat",
        "passed": False,
        "limits": [
            {"limit": "p95 ttft_ms < 200", "measured": 9712.3, "passed": False, "margin": -47.56},
            {"limit": "gpu_memory_util > 0.7", "measured": None, "passed": None, "margin": None},
        ],
    }
    text = _text(r)
    sla = "\n".join(x for x in text.splitlines() if "SLA" in x)
    assert "48.6× the limit" in sla and "e+03" not in sla and "-4" not in sla, sla
    line = next(x for x in text.splitlines() if "gpu_memory_util" in x)
    assert "not measured" in line and "measured -" not in line, line


def test_counts_agree_with_their_nouns(run_results: dict[str, Any]) -> None:
    assert counted(1, "prompt") == "1 prompt"
    assert counted(2, "prompt") == "2 prompts"
    assert counted(1_000, "request") == "1,000 requests"
    r = copy.deepcopy(run_results)
    r["input_tokens_mismatch"] = {"mismatched": 1, "compared": 1, "max_abs_difference_tokens": 2}
    assert "1 of 1 prompt differs" in _text(r)
    r["input_tokens_mismatch"] = {"mismatched": 2, "compared": 8, "max_abs_difference_tokens": 2}
    assert "2 of 8 prompts differ " in _text(r)


def test_estimate_says_one_prompt_not_one_prompts() -> None:
    res = run_cli("estimate", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "1")
    assert res.returncode == 0, res.stderr
    assert "1 prompts" not in res.stdout and "(1 prompt at once)" in res.stdout, res.stdout


FINDING = {
    "rule": "queueing",
    "severity": "medium",
    "message": "TTFT is mostly queueing",
    "evidence": {"ttft_p50_ms": 12.5, "ttft_x_bound": None, "by_kind": ["a", "b"]},
}


def test_evidence_leaves_out_what_was_not_measured(run_results: dict[str, Any]) -> None:
    html = _evidence(FINDING["evidence"])
    assert "ttft_x_bound" not in html and "ttft_p50_ms" in html, html
    r = copy.deepcopy(run_results)
    r["analysis"]["findings"] = [FINDING]
    md = to_markdown(r)
    assert "ttft_p50_ms" in md and "ttft_x_bound" not in md, md
    text = _text(r)
    assert "ttft_x_bound" not in text


# -- 4. the Markdown report carries its context -----------------------------------------------


def test_markdown_carries_the_context_a_reader_needs(run_results: dict[str, Any]) -> None:
    r = copy.deepcopy(run_results)
    r["server"] = {
        "kind": "vllm",
        "url": "http://10.0.0.5:8000/v1",
        "model": "llama-3.1-8b",
        "version": "0.6.3",
    }
    r["config"].update(warmup=3, duration_s=None)
    r["warnings"] = ["the client was the bottleneck"]
    r["analysis"]["findings"] = [FINDING]
    r["prompt_cache"] = {
        "cached_share": 0.42,
        "source": "usage",
        "requests_counted": 8,
        "expected_share": 0.0,
        "flattered": True,
    }
    md = to_markdown(r)
    for needle in (
        "vllm",
        "http://10.0.0.5:8000/v1",
        "0.6.3",
        "llama-3.1-8b",
        "concurrency 2",
        "8 requests",
        "warm-up",
        "3 requests",
        "128",  # input tokens
        "64",  # output tokens
        "the client was the bottleneck",
        "queueing",
        "TTFT is mostly queueing",
        "prompt tokens served from the server's cache: 42 %",
        "(expected 0 % for this workload)",
    ):
        assert needle in md, (needle, md)
    assert "| TTFT (ms) |" in md  # the tables are still there
    r["prompt_cache"]["flattered"] = False
    assert "expected 0 %" not in to_markdown(r)
    r["prompt_cache"]["cached_share"] = None
    assert "served from the server's cache" not in to_markdown(r)
    del r["prompt_cache"]
    assert "served from the server's cache" not in to_markdown(r)


def test_markdown_of_an_open_loop_run(run_results: dict[str, Any]) -> None:
    r = copy.deepcopy(run_results)
    r["summary"].update(target_rate_rps=5.0, target_concurrency=None)
    r["config"].update(rate=5.0, concurrency=None, num_requests=None, duration_s=30.0)
    md = to_markdown(r)
    assert "rate 5 req/s" in md and "30 s" in md, md


def test_a_simulated_runs_heading_names_its_replicas_and_their_sharing() -> None:
    from infermeter.report.labels import simulated_replicas

    base = {
        "engine_model": "m.json",
        "engine": "llama.cpp",
        "model": None,
        "hardware": None,
        "extrapolated": None,
        "router": "round-robin",
        "unstable": None,
        "extrapolations": [],
        "fitted_on": [],
        "mean_batch": [],
        "busy_share": [],
        "simulated_s": 1.0,
        "wall_s": 0.1,
    }
    assert simulated_replicas(None) == ""
    assert simulated_replicas({**base, "replicas": 1}) == ""
    assert simulated_replicas({**base, "replicas": 3}) == "3 replicas (round-robin)"
    packed = {**base, "replicas": 4, "replicas_per_gpu": 2}
    assert simulated_replicas(packed) == "4 replicas (round-robin, 2 per GPU)"


def test_a_p99_of_few_requests_is_called_a_floor(run_results: dict[str, Any]) -> None:
    """Eight requests cannot bound a p99 from above: the terminal and Markdown say what the
    figure is worth, with the floor the interval gives; a bounded p99 says nothing."""
    ttft = run_results["distributions"]["ttft_ms"]
    assert ttft["count"] == 8 and ttft["interval95"]["p99"][1] is None
    floor = ttft["interval95"]["p99"][0]
    assert floor is not None and ttft["min"] <= floor <= ttft["max"]
    text = " ".join(_text(run_results).split())
    assert "p99 rests on 8 requests, too few to bound it from above at 95 % (368 would)" in text
    assert f"TTFT ≥ {floor:,.1f}" in text
    assert "p99 rests on 8 requests" in to_markdown(run_results)
    bounded = copy.deepcopy(run_results)
    for d in bounded["distributions"].values():
        for pair in (d.get("interval95") or {}).values():
            pair[1] = pair[0] or 1.0
    assert "p99 rests on" not in _text(bounded) and "p99 rests on" not in to_markdown(bounded)


def test_a_sweeps_p99_of_few_requests_is_called_a_floor() -> None:
    """The sweep table's p99 columns: points with fewer requests than bound a p99 say so
    under the table, with how many they had; points with enough say nothing."""
    from infermeter.report.terminal import sweep_notes

    def index(*completed: int) -> dict[str, Any]:
        points = [
            {"index": i, "summary": {"requests_completed": n}} for i, n in enumerate(completed)
        ]
        return {"points": [*points, {"index": 9, "summary": None}]}  # a point that never ran

    (note,) = sweep_notes(index(67, 120))  # type: ignore[arg-type]
    assert note == (
        "p99 of every point rests on fewer than 368 requests (67-120): a floor of the "
        "server's p99, not a bound on it"
    )
    (some,) = sweep_notes(index(40, 400, 1000))  # type: ignore[arg-type]
    assert some.startswith("p99 of 1 of 3 points rests on fewer than 368 requests (40-40)")
    assert sweep_notes(index(368, 5000)) == []  # type: ignore[arg-type]


def test_a_sweep_on_a_host_whose_cores_changed_speed_says_so() -> None:
    """Points whose core probe read slow in part, or whose medians sit 1.3× apart, are
    named under the sweep table: a host-bound server's curve then holds the host's speed."""
    from infermeter.report.terminal import sweep_notes

    def index(*probes: tuple[float, float]) -> dict[str, Any]:
        points: list[dict[str, Any]] = [
            {
                "index": i,
                "summary": {"requests_completed": 400},
                "core_speed": {"fast_us": 480.0, "p50_us": p50, "slow_share": slow},
            }
            for i, (p50, slow) in enumerate(probes)
        ]
        points.append({"index": 9, "summary": {"requests_completed": 400}})  # not sampled
        return {"points": points}

    assert sweep_notes(index((490.0, 0.0), (500.0, 0.05))) == []  # type: ignore[arg-type]
    (both,) = sweep_notes(index((490.0, 0.0), (905.0, 0.77), (520.0, 0.3)))  # type: ignore[arg-type]
    assert both.startswith("the host's cores changed speed during the sweep: the core probe ")
    assert "read slow in part of 2 of 3 points; its median ran 490-905 µs by point" in both
    (apart,) = sweep_notes(index((490.0, 0.0), (700.0, 0.0)))  # type: ignore[arg-type]
    assert "read slow" not in apart and "490-700 µs by point" in apart
    (part,) = sweep_notes(index((490.0, 0.0), (500.0, 0.2)))  # type: ignore[arg-type]
    assert "in part of 1 of 2 points (each point's report" in part and "by point" not in part
    assert sweep_notes({"points": [{"index": 0, "summary": None}]}) == []  # type: ignore[arg-type]
