"""The HTML report: chart primitives (ticks, scales, escaping) and the run, sweep and
comparison pages on hand-built and real data, empty runs included."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

from infermeter.errors import UsageError
from infermeter.metrics.aggregate import compute_run_metrics
from infermeter.metrics.slo import parse_slo
from infermeter.metrics.table import request_table
from infermeter.records.schema import RequestRecord
from infermeter.report import charts
from infermeter.report.charts import (
    Axis,
    Bars,
    Chart,
    DotRow,
    HLine,
    Line,
    Region,
    Scale,
    Scatter,
    VLine,
    format_tick,
    format_value,
    log_ticks,
    nice_step,
    nice_ticks,
    render,
    render_chart,
    render_dot_rows,
)
from infermeter.report.charts.style import text_width
from infermeter.report.html import (
    cdf_points,
    compare_page,
    histogram,
    inflight_series,
    read_telemetry,
    render_compare_html,
    render_sweep_html,
    request_points,
    run_page,
    sweep_page,
    telemetry_series,
    throughput_series,
)
from infermeter.results.build import build_results

ROOT = Path(__file__).resolve().parents[2]
EVIL = "<script>alert('x')</script>\"&'<img src=x onerror=alert(1)>"
MS = 1_000_000


# ------------------------------------------------------------------ ticks and numbers


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert nice_ticks(0.3, 9.2) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-5, 5) == [-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0]
    assert nice_ticks(0.0012, 0.0047) == [0.001, 0.002, 0.003, 0.004, 0.005]
    assert nice_ticks(9.2, 0.3) == nice_ticks(0.3, 9.2)
    flat = nice_ticks(5, 5)
    assert flat[0] < 5 < flat[-1]
    for lo, hi in [(0, 3.7), (12, 987), (0.02, 0.5), (1e5, 3.2e6), (-3, 17)]:
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and 3 <= len(ticks) <= 11
        steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1  # evenly spaced, no float noise
        mantissa = float(f"{steps.pop():.3e}".split("e")[0])
        assert mantissa in (1.0, 2.0, 5.0)


def test_nice_step_is_1_2_5() -> None:
    assert nice_step(10, 5) == 2
    assert nice_step(3.6, 60) == 0.1
    assert nice_step(1000, 4) == 500
    assert nice_step(0) == 1.0


def test_log_ticks_are_decades_with_2_and_5_over_short_ranges() -> None:
    assert log_ticks(3, 400) == [1.0, 10.0, 100.0, 1000.0]
    assert log_ticks(1, 50) == [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    long = log_ticks(1e-5, 1e12)
    assert len(long) <= 10 and long[0] <= 1e-5
    with pytest.raises(ValueError):
        log_ticks(0, 10)


def test_tick_labels_use_the_step_s_decimals_and_si_suffixes() -> None:
    assert format_tick(0.05, 0.05) == "0.05"
    assert format_tick(0.3, 0.1) == "0.3"
    assert format_tick(1500, 500) == "1,500"
    assert format_tick(20000, 5000) == "20k"
    assert format_tick(2_500_000, 500_000) == "2.5M"
    assert format_tick(0, 5) == "0"
    assert format_tick(0.001, 0.001) == "0.001"
    assert format_value(3.14159) == "3.14"
    assert format_value(52.13) == "52.1"
    assert format_value(1055.8) == "1,056"
    assert format_value(0.0047749) == "0.00477"
    assert format_value(4.0) == "4"
    assert format_value(None) == "–"
    assert format_value(float("nan")) == "–"


def test_scales_map_linear_and_log() -> None:
    lin = Scale(0, 10, 100, 200)
    assert lin(0) == 100 and lin(5) == 150 and lin(10) == 200
    log = Scale(1, 1000, 0, 300, log=True)
    assert log(1) == pytest.approx(0) and log(10) == pytest.approx(100)
    assert log(1000) == pytest.approx(300)
    inverted = Scale(0, 100, 250, 50)  # a y axis: larger values higher up
    assert inverted(100) == 50


# ------------------------------------------------------------------ charts


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _tags(markup: str) -> list[tuple[str, dict[str, str]]]:
    """Every element and its attributes, as a browser's tokenizer sees them."""
    parser = _TagCollector()
    parser.feed(markup)
    return parser.tags


def _svg(chart: Chart) -> ET.Element:
    svg = render_chart(chart)
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_chart_text_is_escaped_never_markup() -> None:
    chart = Chart(
        id=EVIL,
        x=Axis(f"x {EVIL}"),
        y=Axis(f"y {EVIL}"),
        title=EVIL,
        layers=[
            Line([(0, 1), (1, 2)], name=f"line {EVIL}", dots=True, tips=[EVIL, EVIL]),
            Scatter([(0.5, 1.5)], name=EVIL, tips=[EVIL]),
            Bars([0, 1], [3], name=EVIL, tips=[EVIL]),
            HLine(1.5, EVIL),
            VLine(0.5, EVIL),
            Region(y0=0, y1=1, label=EVIL),
        ],
    )
    svg = render_chart(chart)
    tags = _tags(svg)
    assert not {"script", "img"} & {t for t, _ in tags}
    assert not [a for _, attrs in tags for a in attrs if a.startswith("on")]
    assert "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert EVIL in texts  # shown literally, as text
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert titles.count(EVIL) >= 3


def test_empty_chart_renders_a_note() -> None:
    svg = render_chart(Chart("e", Axis("x (s)"), Axis("y (ms)"), [], empty_note="nothing here"))
    assert "nothing here" in svg
    ET.fromstring(svg)


def test_chart_has_axis_labels_ticks_and_legend() -> None:
    root = _svg(
        Chart(
            "c",
            Axis("time (s)"),
            Axis("latency (ms)", include_zero=True),
            [Line([(0, 10), (5, 30)], name="TTFT"), Scatter([(1, 12)], name="E2E")],
        )
    )
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "time (s)" in texts and "latency (ms)" in texts
    assert "TTFT" in texts and "E2E" in texts
    assert "0" in texts and "30" in texts  # y ticks from zero to the nice top


def test_log_axis_skips_values_it_cannot_show() -> None:
    svg = render_chart(
        Chart(
            "l",
            Axis("x"),
            Axis("y", log=True),
            [Scatter([(0, 0.0), (1, -3.0), (2, 10.0), (3, 1000.0)], tips=["a", "b", "c", "d"])],
        )
    )
    assert svg.count("<circle") == 2
    assert ">1,000<" in svg or ">1k<" in svg


def test_markers_outside_a_fixed_range_are_not_drawn() -> None:
    svg = render_chart(
        Chart(
            "w",
            Axis("time (s)", lo=0, hi=10, nice=False),
            Axis("y"),
            [Line([(-1, 1), (5, 2), (11, 3)], dots=True), Scatter([(-2, 2), (3, 2)])],
        )
    )
    assert svg.count("<circle") == 2  # (5, 2) and (3, 2); the line itself is clipped
    assert "clip-path=" in svg


def test_vline_labels_never_overlap_each_other_or_cross_lines() -> None:
    lines = [VLine(v, f"p{n} {v}") for n, v in ((50, 48.1), (90, 60.8), (95, 62.1), (99, 63.7))]
    sx = Scale(14, 65, 60, 540)
    placed, rows = render._place_vline_labels(lines, sx, 60, 540)
    assert rows >= 2  # the close ones climb
    spans = []
    for la, x, start, row in placed:
        end = start + text_width(la.label, 10.5)
        spans.append((x, start, end, row))
    for (x1, s1, e1, r1), (x2, s2, e2, r2) in itertools.combinations(spans, 2):
        if r1 == r2:
            assert e1 < s2 or e2 < s1
        # a line reaches up to its own label's row: it must not cross a lower label
        if r2 > r1:
            assert not (s1 - 1 <= x2 <= e1 + 1)
        if r1 > r2:
            assert not (s2 - 1 <= x1 <= e2 + 1)


def test_dot_rows_measured_vs_bound() -> None:
    svg = render_dot_rows(
        "sol",
        [DotRow("TPOT", 648.0, tip="3.1 ms vs 0.0048 ms", note="648×", sublabel=EVIL)],
        Axis("× the bound", log=True),
        base=1.0,
        refs=[VLine(1.0, "speed of light")],
    )
    root = ET.fromstring(svg)
    assert "speed of light" in svg and "648×" in svg and "<script" not in svg
    assert len(list(root.iter("{http://www.w3.org/2000/svg}circle"))) == 1
    empty = render_dot_rows("none", [], Axis("x", log=True))
    assert "no data" in empty


# ------------------------------------------------------------------ chart data


def test_histogram_bins_and_cuts_a_long_tail() -> None:
    values = [float(v) for v in range(1, 101)]
    edges, counts, beyond, cut = histogram(values, 50.5, 99.01)
    assert sum(counts) == 100 and beyond == 0 and edges[0] <= 1 and edges[-1] >= 100
    assert 10 <= len(counts) <= 40
    tail = [*values, 5000.0]
    edges, counts, beyond, cut = histogram(tail, 51.0, 100.0)
    assert beyond == 1 and cut == pytest.approx(150.0) and sum(counts) == 100
    one = histogram([7.0], 7.0, 7.0)
    assert sum(one[1]) == 1


def test_cdf_points_rise_to_100_percent() -> None:
    pts, steps = cdf_points([3.0, 1.0, 2.0])
    assert steps and pts[0] == (1.0, 0.0) and pts[-1] == (3.0, 100.0)
    big, steps = cdf_points([float(i) for i in range(10_000)], max_points=300)
    assert not steps and len(big) == 300 and big[-1][1] == 100.0
    assert all(b[0] >= a[0] and b[1] >= a[1] for a, b in itertools.pairwise(big))


def _rec(
    rid: int,
    send_ms: float,
    ttft_ms: float,
    itl_ms: float,
    n_out: int,
    ok: bool = True,
    **kw: Any,
) -> RequestRecord:
    t_send = int(send_ms * MS)
    chunks = [int(t_send + (ttft_ms + i * itl_ms) * MS) for i in range(n_out)] if ok else []
    return RequestRecord(
        id=rid,
        t_sched_ns=t_send,
        t_send_ns=t_send,
        t_first_ns=chunks[0] if chunks else None,
        t_last_ns=chunks[-1] if chunks else None,
        t_end_ns=(chunks[-1] if chunks else t_send + int(ttft_ms * MS)) + MS,
        chunk_ns=chunks,
        chunk_tokens=[1] * len(chunks),
        n_in=16,
        n_in_source="server",
        n_out=n_out if ok else 0,
        n_out_source="server",
        ok=ok,
        **kw,
    )


def test_throughput_series_counts_tokens_per_second() -> None:
    # 2 requests of 10 tokens, each spread over 0.5 s: 40 tok/s while both stream.
    recs = [_rec(0, 0, 0, 50, 10), _rec(1, 0, 0, 50, 10)]
    pts, width = throughput_series(request_table(recs), 0, 1.0)
    assert width == pytest.approx(0.02)
    total = sum(tps * width for _, tps in pts[:-1])
    assert total == pytest.approx(20)  # every token counted once
    assert pts[-1][0] == pytest.approx(1.0)
    assert throughput_series(request_table(recs), 0, 0.0) == ([], 0.0)


def test_inflight_series_is_the_time_weighted_mean() -> None:
    # two overlapping requests: 0-1 s and 0.5-1.5 s, in 0.5 s bins -> 1, 2, 1
    a = RequestRecord(id=0, t_send_ns=0, t_end_ns=1000 * MS)
    b = RequestRecord(id=1, t_send_ns=500 * MS, t_end_ns=1500 * MS)
    pts = inflight_series(request_table([a, b]), 0, 1.5, 0.5)
    assert [round(v, 6) for _, v in pts] == [1.0, 2.0, 1.0, 1.0]
    mean = sum(v for _, v in pts[:-1]) / 3
    assert mean == pytest.approx(2.0 / 1.5)  # Σ E2E / D: Little's law
    assert inflight_series(request_table([]), 0, 1.0, 0.1) == []


def test_request_points_place_failures_at_their_time_to_failure() -> None:
    recs = [
        _rec(0, 0, 20, 5, 4),
        _rec(1, 100, 30, 5, 4, ok=False, error_kind="http", http_status=503),
    ]
    pts = request_points(request_table(recs), 0)
    assert pts.ttft == [(0.0, pytest.approx(20.0))]
    assert pts.e2e[0][1] == pytest.approx(35.0)
    assert pts.failed == [(0.1, pytest.approx(31.0))]
    assert pts.failed_tips and "http_503" in pts.failed_tips[0]


def test_read_telemetry_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    path.write_bytes(
        b'{"t_ns": 1000, "source": "host", "cpu_percent": 50, "client_cpu_percent": 7}\n'
        b'{"t_ns": 2000, "source": "gpu", "gpus": [{"index": 0, "util_percent": 80, '
        b'"memory_used_bytes": 4000000000, "memory_total_bytes": 80000000000}]}\n'
        b'{"t_ns": 3000, "source": "server", "kind": "vllm", "mapped": {"kv_cache_usage": 0.5,'
        b' "requests_running": 3, "requests_waiting": 1}}\n'
        b'["not", "a", "sample"]\n'
        b'{"t_ns": 4000, "source": "ho'
    )
    samples = read_telemetry(path)
    assert [s["source"] for s in samples] == ["host", "gpu", "server"]
    assert read_telemetry(tmp_path / "missing.jsonl") == []
    # an archived run keeps it compressed beside where it was: read the same
    import gzip

    packed = tmp_path / "packed" / "telemetry.jsonl"
    packed.parent.mkdir()
    packed.with_name("telemetry.jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
    assert read_telemetry(packed) == samples
    packed.with_name("telemetry.jsonl.gz").write_bytes(b"not gzip")
    assert read_telemetry(packed) == []
    series = telemetry_series(samples, 0, 1.0)
    assert series.gpu_util == {0: [(2e-6, 80.0)]}
    assert series.gpu_total_gb == {0: 80.0}
    assert series.kv_cache_pct == [(3e-6, 50.0)]
    assert series.running and series.waiting and series.host_cpu and series.client_cpu
    assert not series.empty


# ------------------------------------------------------------------ pages


def _results(
    records: list[RequestRecord],
    slo: str | None = None,
    model: str = "tiny",
    analysis: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    meta = {
        "run_id": "abc123",
        "started_at": "2026-01-02T03:04:05+00:00",
        "infermeter_version": "0.1.0",
        "config": {"concurrency": 2, "num_requests": len(records), "slo": slo},
        "server": {"kind": "llama.cpp", "model": model, "url": "http://127.0.0.1:8080/v1"},
        "workload": {"kind": "synthetic", "input_tokens": "16", "output_tokens": "8"},
    }
    metrics = compute_run_metrics(
        records, slo=parse_slo(slo) if slo else None, target_concurrency=2
    )
    results = build_results(meta, metrics, {"complete": True, "interrupted": False})
    results["analysis"] = analysis or {}
    return results, metrics


ANALYSIS = {
    "efficiency": {
        "model": "tiny",
        "gpu": "h100-sxm",
        "gpus": 1,
        "tp": 1,
        "batch_per_replica": 2,
        "context_tokens": 20,
        "mbu": 0.0015,
        "mfu_decode": 1.5e-05,
        "mfu_prefill": 1.8e-05,
        "tpot_lower_bound_ms": 0.0048,
        "tpot_x_bound": 648.0,
        "ttft_lower_bound_ms": 0.0044,
        "ttft_x_bound": 10975.0,
        "output_throughput_upper_bound_tok_s": 837741.0,
        "throughput_share_of_bound": 0.00126,
    },
    "sla": {
        "profile": "chat",
        "description": "interactive chat",
        "passed": False,
        "limits": [
            {"limit": "p95 ttft_ms < 200", "measured": 62.0, "passed": True, "margin": 0.69},
            {"limit": "gpu_memory_util > 0.7", "measured": None, "passed": None, "margin": None},
        ],
    },
    "ttft_bands": {"instant": 0.5, "fast": 0.25, "slow": 0.25, "sluggish": 0.0},
    "findings": [{"rule": "queueing", "severity": "high", "message": EVIL, "evidence": {"x": 1.5}}],
    "cost": {
        "gpu_hourly_price": 2.5,
        "gpus": 1,
        "per_request": 4.2e-05,
        "per_million_output_tokens": 0.66,
        "per_million_total_tokens": 0.22,
    },
    "notes": [],
}


def _no_active_content(page: str) -> None:
    """No script, no event handler, nothing to fetch; links stay within the page (its
    definitions included) or go to sweep points' own reports."""
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    tags = _tags(page)
    names = {t for t, _ in tags}
    assert not names & {"script", "img", "iframe", "object", "embed", "link", "image"}
    for _, attrs in tags:
        assert not [a for a in attrs if a.startswith("on") or a in ("src", "srcset")]
        href = attrs.get("href")
        if href is not None:
            assert href.startswith(("#", "points/")), href


def _sample_records() -> list[RequestRecord]:
    recs = [_rec(i, i * 40.0, 20 + (i % 5) * 3, 4 + (i % 3), 8) for i in range(24)]
    recs.append(_rec(99, 500, 30, 5, 8, ok=False, error_kind="timeout", error_message=EVIL))
    return recs


def test_run_page_has_every_section_and_escapes_the_model_name() -> None:
    recs = _sample_records()
    results, metrics = _results(
        recs, slo="ttft_ms=40,p90_e2e_ms=200", model=EVIL, analysis=ANALYSIS
    )
    results["warnings"] = ["client queue delay p99 6 ms: the client, not the server, delayed them"]
    samples = [
        {"t_ns": int(t * 1e8), "source": "host", "cpu_percent": 40.0, "client_cpu_percent": 5.0}
        for t in range(12)
    ] + [
        {
            "t_ns": int(t * 1e8),
            "source": "gpu",
            "gpus": [
                {
                    "index": 0,
                    "util_percent": 70,
                    "memory_used_bytes": 5e9,
                    "memory_total_bytes": 8e10,
                }
            ],
        }
        for t in range(12)
    ]
    page = run_page(results, metrics.table, samples, metrics.requests)
    _no_active_content(page)
    assert "&lt;script&gt;" in page
    for section in ("summary", "verdicts", "distributions", "timeline", "speed-of-light"):
        assert f'id="{section}"' in page
    for title in ("TTFT: time to first token", "TPOT: time per output token", "ITL:", "E2E:"):
        assert title in page
    for panel in ("Latency per request", "Output throughput", "Requests in flight"):
        assert panel in page
    assert "GPU utilisation" in page and "GPU memory" in page and "CPU" in page
    assert "SLA profile: chat" in page and "Findings" in page and "Cost" in page
    assert "failed (time to failure)" in page and "timeout" in page
    # 8 charts for the distributions, 6 on the timeline, 2 for the speed of light
    assert page.count('<svg class="chart"') == 8 + 6 + 2
    linked = set(re.findall(r'href="#def-([^"]+)"', page))
    # every section links its definitions (section keys are the glossary's groups)
    assert {"aggregates", "per_request", "timestamps", "analysis"} <= linked, linked


def test_run_page_of_zero_records_renders_notes() -> None:
    results, metrics = _results([])
    page = run_page(results, metrics.table, [], metrics.requests)
    _no_active_content(page)
    assert "No measured requests" in page and "No completed requests" in page
    assert 'id="speed-of-light"' not in page


def test_run_page_of_failed_requests_only() -> None:
    recs = [
        _rec(i, i * 10.0, 5, 1, 4, ok=False, error_kind="connection", error_message="refused")
        for i in range(5)
    ]
    results, metrics = _results(recs, slo="ttft_ms=100")
    page = run_page(results, metrics.table, [], metrics.requests)
    _no_active_content(page)
    assert "5 of 5 failed" in page and "connection" in page
    assert "failed (time to failure)" in page
    assert "No telemetry samples" in page


def test_run_report_of_a_real_run(emulator, tmp_path: Path) -> None:
    """A real run against the ground-truth emulator, whose model name tries to inject."""
    from infermeter import BenchConfig, load_run, run_benchmark
    from infermeter.report.html import render_run_html

    name = "<b>evil</b>\"'&"
    with emulator(ttft_ms=5, itl_ms=2, model=name) as srv:
        run = run_benchmark(
            BenchConfig(
                url=srv.url,
                concurrency=3,
                num_requests=18,
                input_tokens="8",
                output_tokens="12",
                warmup=2,
                ramp_up_s=0.05,
                slo="ttft_ms=100",
                out=tmp_path / "run",
            )
        )
    page = render_run_html(load_run(run.path))
    _no_active_content(page)
    assert "closed loop, concurrency 3, starts spread over 0.05 s" in page
    assert "<b>evil" not in page and "&lt;b&gt;evil&lt;/b&gt;&quot;&#x27;&amp;" in page
    assert 20_000 < len(page.encode()) < 400_000
    assert page.count('<svg class="chart"') >= 11
    # a torn last telemetry line does not matter
    with (run.path / "telemetry.jsonl").open("ab") as f:
        f.write(b'{"t_ns": 12, "sou')
    assert render_run_html(load_run(run.path)).count("<svg") == page.count("<svg")


# ------------------------------------------------------------------ sweeps


def _point(i: int, conc: int, tput: float, ttft50: float, meets: bool | None) -> dict[str, Any]:
    lat = {
        "ttft_ms": {"p50": ttft50, "p90": ttft50 * 1.5, "p95": ttft50 * 1.8, "p99": ttft50 * 2},
        "tpot_ms": {"p50": 5.0 + i, "p90": 6.0 + i, "p95": 6.5 + i, "p99": 7.0 + i},
        "itl_ms": {"p50": 5.0, "p90": 6.0, "p95": 7.0, "p99": 9.0},
        "e2e_ms": {"p50": 400.0, "p90": 500.0, "p95": 550.0, "p99": 600.0},
    }
    return {
        "index": i,
        "dir": f"points/{i:02d}-c{conc}",
        "role": "point",
        "concurrency": conc,
        "rate": None,
        "input_tokens": "128",
        "output_tokens": "64",
        "status": "ok",
        "summary": {
            "output_token_throughput_tok_s": tput,
            "request_throughput_rps": tput / 64,
            "error_rate": 0.0,
        },
        "latency": lat,
        "meets_sla": meets,
    }


SWEEP: dict[str, Any] = {
    "schema_version": 1,
    "kind": "sweep",
    "infermeter_version": "0.1.0",
    "started_at": "2026-01-02T03:04:05+00:00",
    "variable": "concurrency",
    "sla": {
        "source": "slo",
        "text": "p95_ttft_ms=200",
        "limits": [{"metric": "ttft_ms", "percentile": 95, "max": 200.0}],
        "min_attainment": 0.9,
    },
    "points": [
        _point(0, 1, 100, 20, True),
        _point(1, 2, 190, 30, True),
        _point(2, 4, 350, 60, True),
        _point(3, 8, 500, 150, False),
    ],
    "stopped": {"reason": "saturated", "detail": EVIL},
    "capacity": {
        "variable": "concurrency",
        "value": 4,
        "pass_index": 2,
        "fail_index": 3,
        "criterion": "p95 ttft_ms <= 200",
    },
}


def test_sweep_page_curves_sla_region_and_capacity(tmp_path: Path) -> None:
    page = sweep_page(SWEEP, {0: "points/00-c1/report.html"}, name="s")
    _no_active_content(page)
    assert "SLA: p95 TTFT ≤ 200 ms" in page and "within the SLA" in page
    assert "capacity point" in page and "first point past it" in page
    assert "capacity 4" in page and 'href="points/00-c1/report.html"' in page
    assert "TTFT vs output throughput" in page and "TPOT vs concurrency" in page
    assert page.count('<svg class="chart"') == 6
    assert "&lt;script&gt;" in page
    # render_sweep_html links only the points that have a report
    (tmp_path / "sweep.json").write_bytes(orjson.dumps(SWEEP))
    (tmp_path / "points" / "01-c2").mkdir(parents=True)
    (tmp_path / "points" / "01-c2" / "report.html").write_text("x")
    page = render_sweep_html(tmp_path)
    assert 'href="points/01-c2/report.html"' in page
    assert 'href="points/00-c1/report.html"' not in page


def test_sweep_page_without_points_sla_or_capacity() -> None:
    empty = {**SWEEP, "points": [], "sla": None, "capacity": None, "stopped": None}
    page = sweep_page(empty, {})
    _no_active_content(page)
    assert "no points" in page.lower()
    rate = {
        **SWEEP,
        "variable": "rate",
        "sla": None,
        "capacity": None,
        "points": [
            {**_point(0, 1, 100, 20, None), "concurrency": None, "rate": 2.0},
            {**_point(1, 1, 150, 25, None), "concurrency": None, "rate": 4.0, "latency": {}},
        ],
    }
    page = sweep_page(rate, {})
    assert "achieved = offered" in page and "offered rate (req/s)" in page


def test_render_sweep_html_needs_a_sweep_json(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a sweep directory"):
        render_sweep_html(tmp_path)
    (tmp_path / "sweep.json").write_text("{torn")
    with pytest.raises(UsageError, match="not valid JSON"):
        render_sweep_html(tmp_path)


# ------------------------------------------------------------------ comparisons

COMPARISON = {
    "baseline": 0,
    "items": [
        {"label": "1 slot", "path": "runs/a", "kind": "run"},
        {"label": EVIL, "path": "runs/b", "kind": "run"},
    ],
    "rows": [
        {
            "metric": "output_token_throughput_tok_s",
            "label": "Output throughput",
            "unit": "tok/s",
            "better": "higher",
            "values": [100.0, 180.0],
            "ratios": [1.0, 1.8],
        },
        {
            "metric": "ttft_p99_ms",
            "label": "TTFT p99",
            "unit": "ms",
            "better": "lower",
            "values": [50.0, 80.0],
            "ratios": [1.0, 1.6],
        },
        {
            "metric": "error_rate",
            "label": "Error rate",
            "unit": "fraction",
            "better": "lower",
            "values": [0.0, None],
            "ratios": [None, None],
        },
        {
            "metric": "x",
            "label": "Neutral",
            "unit": "",
            "better": None,
            "values": [1.0, 1.005],
            "ratios": [1.0, 1.005],
        },
    ],
    "differences": ["input_tokens: 128 vs 256"],
    "cautions": [],
}


def test_compare_page_colours_better_and_worse() -> None:
    page = compare_page(COMPARISON, [])
    _no_active_content(page)
    assert re.search(r'class="better">1\.80×', page)
    assert re.search(r'class="worse">1\.60×', page)
    assert re.search(r'class="same">1\.00×', page)  # no preference: never coloured
    assert "0.00 %" in page and "input_tokens: 128 vs 256" in page
    assert "&lt;script&gt;" in page and "<svg" not in page


def test_compare_page_overlays_sweeps(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "sweep.json").write_bytes(orjson.dumps(SWEEP))
    page = render_compare_html(COMPARISON, [("a", tmp_path / "a"), ("gone", tmp_path / "nope")])
    _no_active_content(page)
    assert page.count('<svg class="chart"') == 2
    assert "a p99" in page and "a capacity" in page and "gone: no readable sweep.json" in page


def test_telemetry_outside_the_window_stays_off_the_axis() -> None:
    """Only the samples inside the measured window, and one neighbour on each side (so
    lines reach the edges, where the chart clips them), are drawn."""
    samples = [
        {"t_ns": t, "source": "host", "cpu_percent": float(t), "client_cpu_percent": 1.0}
        for t in (0, 10, 20, 30, 40)
    ]
    series = telemetry_series(samples, 15, 10e-9)  # window: 15..25 ns
    xs = [x for x, _ in series.host_cpu]
    assert xs == [pytest.approx(-5e-9), pytest.approx(5e-9), pytest.approx(15e-9)]


# ------------------------------------------------------------------ definitions in the page


def _links_stay_in_the_page(page: str, files: tuple[str, ...] = ()) -> set[str]:
    """No link leads to a file outside the page (``files``: a sweep's own point reports,
    written beside it), and every in-page link has its target. Returns the definitions
    linked (``#def-KEY``)."""
    tags = _tags(page)
    ids = {a["id"] for _, a in tags if "id" in a}
    hrefs = [a["href"] for _, a in tags if a.get("href") is not None]
    for href in hrefs:
        assert "metrics.md" not in href and not href.startswith("docs/"), href
        if href.startswith("#"):
            assert href[1:] in ids, f"link {href} has no target in the page"
        else:
            assert files and href.startswith(files), href
    return {h[len("#def-") :] for h in hrefs if h.startswith("#def-")}


def test_definitions_travel_inside_the_page(tmp_path: Path) -> None:
    recs = _sample_records()
    results, metrics = _results(recs, slo="ttft_ms=40,p90_e2e_ms=200", analysis=ANALYSIS)
    run = run_page(results, metrics.table, [], metrics.requests)
    linked = _links_stay_in_the_page(run)
    # The cards and charts link their own metric's definition, not just a section.
    assert {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "goodput_rps", "mbu"} <= linked, linked
    sweep = sweep_page(SWEEP, {0: "points/00-c1/report.html"}, name="s")
    assert _links_stay_in_the_page(sweep, files=("points/",))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "sweep.json").write_bytes(orjson.dumps(SWEEP))
    compare = render_compare_html(COMPARISON, [("a", tmp_path / "a")])
    assert _links_stay_in_the_page(compare)

    from infermeter.report.labels import DEFINITIONS

    # Each definition is in the page once, with its formula and meaning, from one owner.
    ttft = DEFINITIONS["ttft_ms"]
    assert ttft.formula == "t_first − t_send"
    for page in (run, sweep, compare):
        for key in DEFINITIONS:
            assert page.count(f'id="def-{key}"') == 1, key
    glossary = run[run.index('id="definitions"') :]
    assert esc_text(ttft.formula) in glossary and esc_text(ttft.meaning) in glossary
    # The link itself says it too, on hover.
    assert re.search(r'href="#def-tpot_ms" title="\(t_last − t_first\) / \(n_out − 1\)', run)


def test_definitions_agree_with_docs_metrics_md() -> None:
    """The page's formulas for per-request metrics and run aggregates are docs/metrics.md's."""
    from infermeter.report.labels import DEFINITION_GROUPS, DEFINITIONS

    doc = (ROOT / "docs" / "metrics.md").read_text().replace("`", "")
    for group in ("per_request", "aggregates"):
        for key in DEFINITION_GROUPS[group][1]:
            assert DEFINITIONS[key].formula in doc, (key, DEFINITIONS[key].formula)


def esc_text(text: str) -> str:
    return charts.esc(text)


def test_a_local_servers_cpu_is_drawn_apart_and_the_cache_share_shown() -> None:
    recs = [
        RequestRecord(id=i, ok=True, t_send_ns=0, t_first_ns=10**7, t_last_ns=2 * 10**7,
                      t_end_ns=2 * 10**7, chunk_ns=[10**7, 2 * 10**7], chunk_tokens=[1, 1],
                      n_out=2, n_in=16, n_cached=1)
        for i in range(4)
    ]  # fmt: skip
    results, metrics = _results(recs)
    samples = [
        {"t_ns": int(t * 1e6), "source": "host", "cpu_percent": 90.0,
         "client_cpu_percent": 4.0, "local_server_cpu_percent": 95.0}
        for t in range(12)
    ]  # fmt: skip
    page = run_page(results, metrics.table, samples, metrics.requests)
    assert "local server CPU (% of one core)" in page
    assert "infermeter client CPU (% of one core)" in page
    assert "prefix cache: 6.2 %" in page  # 4 of 64 prompt tokens
