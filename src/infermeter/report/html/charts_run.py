"""The run report's charts: each latency distribution (histogram and CDF), and the timeline of
requests, throughput, concurrency and telemetry over the run (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from infermeter.metrics.columns import RequestColumns
from infermeter.metrics.table import RequestTable
from infermeter.report.charts import (
    AMBER,
    BLUE,
    GREY,
    ORANGE,
    PALETTE,
    PERCENTILE_COLORS,
    PINK,
    PURPLE,
    RED,
    SLATE,
    TEAL,
    Axis,
    Bars,
    Chart,
    HLine,
    Layer,
    Line,
    Scatter,
    VLine,
    esc,
    format_tick,
    format_value,
    render_chart,
)
from infermeter.report.html.page import (
    DIST_CAPTIONS,
    DIST_TITLES,
    HALF,
    TL_LEFT,
    WIDE,
    _dist,
    _note,
    _panel,
)
from infermeter.report.html.series import (
    TelemetrySeries,
    Values,
    cdf_points,
    extent,
    histogram,
    inflight_series,
    request_points,
    telemetry_series,
    throughput_series,
)
from infermeter.schema.results import (
    Results,
)


def _stats_strip(d: dict[str, Any], unit: str) -> str:
    if not d.get("count"):
        return ""
    keys = ("mean", "min", "p50", "p90", "p95", "p99", "max")
    cells = [f"<span>n <b>{int(d['count']):,}</b></span>"]
    cells += [f"<span>{k} <b>{format_value(d.get(k))}</b> {unit}</span>" for k in keys]
    return f'<div class="stats">{"".join(cells)}</div>'


def _percentile_lines(d: dict[str, Any]) -> list[Layer]:
    """p50/p90/p95/p99 as marker lines; percentiles of the same value share one line and
    one label ("p50, p90 0.0") rather than stacking up."""
    groups: list[tuple[str, list[str]]] = []
    for p in ("p50", "p90", "p95", "p99"):
        if d.get(p) is None:
            continue
        shown = format_value(float(d[p]))
        if groups and groups[-1][0] == shown:
            groups[-1][1].append(p)
        else:
            groups.append((shown, [p]))
    return [
        VLine(float(d[ps[-1]]), f"{', '.join(ps)} {shown}", PERCENTILE_COLORS[ps[-1]])
        for shown, ps in groups
    ]


def _slo_limits(results: Results, metric: str) -> list[float]:
    slo = results.get("slo")
    return [float(t["threshold"]) for t in (slo["terms"] if slo else []) if t["metric"] == metric]


def distribution_panels(
    name: str, values: Values, d: dict[str, Any], limits: Sequence[float] = ()
) -> str:
    """Histogram and CDF of one latency metric with its p50/p90/p95/p99 marked."""
    title, label, unit_of_count = DIST_TITLES[name]
    if len(values) == 0:
        return _panel(title, _note("No completed requests: no values to show."), doc=name)
    span = extent(values)  # one pass shared by the histogram, the CDF and its axis
    edges, counts, beyond, cut = histogram(values, d.get("p50"), d.get("p99"), span=span)
    lo, hi = edges[0], edges[-1]
    marks = [m for m in _percentile_lines(d) if isinstance(m, VLine) and m.x <= hi]
    slo_marks: list[Layer] = [
        VLine(v, f"SLO {format_value(v)}", SLATE, dash="2 3")
        for v in limits
        if lo <= v <= hi * 1.25
    ]
    tips = [
        f"{format_value(edges[i])}–{format_value(edges[i + 1])} ms: {c:,} {unit_of_count}"
        for i, c in enumerate(counts)
    ]
    hist = render_chart(
        Chart(
            id=f"{name}-hist",
            x=Axis(label, lo=lo, hi=hi, nice=False),
            y=Axis(unit_of_count, include_zero=True),
            layers=[Bars(edges, counts, BLUE, tips=tips), *marks, *slo_marks],
            width=HALF,
            height=280,
            legend=False,
            title=f"histogram of {label}",
        )
    )
    pts, steps = cdf_points(values, span=span)
    cdf_lo = pts[0][0]
    cdf_hi = max([pts[-1][0], *(v for v in limits if v <= pts[-1][0] * 1.25)])
    # A long tail squeezes a linear CDF into one corner: show it on a log axis instead
    # (zeros, e.g. chunks read together, then count in the curve's first step).
    p50 = d.get("p50")
    ref = float(p50) if p50 is not None and p50 > 0 else (span.least_positive or 0.0)
    log_cdf = cdf_lo >= 0 and ref > 0 and cdf_hi / ref > 5
    zeros = len(values) - span.positive if log_cdf else 0
    if log_cdf:
        cdf_x = Axis(label + ", log scale", log=True)
    elif cdf_hi > cdf_lo:
        cdf_x = Axis(label, lo=cdf_lo, hi=cdf_hi, nice=False)
    else:
        cdf_x = Axis(label)
    cdf = render_chart(
        Chart(
            id=f"{name}-cdf",
            x=cdf_x,
            y=Axis(f"share of {unit_of_count} ≤ x (%)", lo=0, hi=100, ticks=[0, 25, 50, 75, 100]),
            layers=[
                Line(pts, BLUE, step=steps, width=2),
                *_percentile_lines(d),
                *[
                    VLine(v, f"SLO {format_value(v)}", SLATE, dash="2 3")
                    for v in limits
                    if v <= cdf_hi
                ],
            ],
            width=HALF,
            height=280,
            legend=False,
            title=f"cumulative distribution of {label}",
        )
    )
    cap = esc(DIST_CAPTIONS[name])
    if zeros:
        cap += (
            f" {zeros:,} {unit_of_count} of 0 ms (no log-scale place) count in the CDF's first "
            "step."
        )
    if beyond:
        cap += (
            f" The histogram's axis stops at {format_value(cut)} ms (1.5 × p99): {beyond:,} "
            f"{unit_of_count} beyond it, up to {format_value(d.get('max'))} ms, are in the CDF."
        )
    inner = (
        f'{_stats_strip(d, "ms")}<div class="grid2" style="gap:8px">'
        f"<div>{hist}</div><div>{cdf}</div></div>"
    )
    return _panel(title, inner, cap, name)


def _distributions(results: Results, requests: RequestColumns) -> tuple[str, str | None]:
    def present(column: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return column[~np.isnan(column)]

    values = {
        "ttft_ms": present(requests.ttft_ms),
        "tpot_ms": present(requests.tpot_ms),
        "itl_ms": requests.itl_ms,
        "e2e_ms": present(requests.e2e_ms),
    }
    names = ["ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"]
    if (_dist(results, "ttfa_ms") or {}).get("count"):  # a reasoning model's run
        values["ttfa_ms"] = requests.samples("ttfa_ms")
        names.insert(1, "ttfa_ms")
    panels = [
        distribution_panels(name, values[name], _dist(results, name), _slo_limits(results, name))
        for name in names
    ]
    return f'<div class="stack">{"".join(panels)}</div>', "per_request"


def _time_axis(duration_s: float) -> Axis:
    return Axis(
        "time since the first measured send (s)",
        lo=0.0,
        hi=max(duration_s, 1e-3),
        nice=False,
        target_ticks=10,
    )


def _timeline(
    results: Results, table: RequestTable, samples: Sequence[dict[str, Any]]
) -> tuple[str, str | None]:
    if len(table) == 0:
        return _note("No measured requests: no timeline to draw."), "timestamps"
    t0 = int(table.t_send_ns.min())
    end = int(np.maximum(table.t_end_ns, table.t_send_ns).max())
    duration = max((end - t0) / 1e9, 1e-3)
    x = _time_axis(duration)
    s = results.get("summary") or {}
    panels: list[str] = []

    # 1. latency per request
    pts = request_points(table, t0)
    ys = [p[1] for p in pts.ttft + pts.e2e + pts.failed if p[1] > 0]
    log_y = bool(ys) and min(ys) > 0 and max(ys) / min(ys) >= 50
    layers: list[Layer] = [
        Scatter(
            pts.e2e,
            ORANGE,
            "E2E latency",
            marker="diamond",
            size=3.2,
            tips=pts.e2e_tips,
            opacity=0.7,
        ),
        Scatter(pts.ttft, BLUE, "TTFT", marker="circle", size=3.0, tips=pts.ttft_tips, opacity=0.7),
    ]
    if pts.failed:
        layers.append(
            Scatter(
                pts.failed,
                RED,
                "failed (time to failure)",
                marker="cross",
                size=4,
                tips=pts.failed_tips,
                opacity=1.0,
            )
        )
    cap = "Each completed request's TTFT and E2E latency at the moment it was sent."
    if pts.stride > 1:
        cap += f" {len(table):,} requests: every {pts.stride}th is drawn."
    panels.append(
        _panel(
            "Latency per request",
            render_chart(
                Chart(
                    "tl-latency",
                    x,
                    Axis(
                        "latency (ms)" + (", log scale" if log_y else ""),
                        log=log_y,
                        include_zero=not log_y,
                    ),
                    layers,
                    width=WIDE,
                    height=270,
                    title="latency per request over time",
                    left=TL_LEFT,
                )
            ),
            cap,
            "per_request",
        )
    )
    # 2. output throughput
    tput, width = throughput_series(table, t0, duration)
    mean_tput = float(s.get("output_token_throughput_tok_s") or 0.0)
    tl: list[Layer] = [
        Line(
            tput,
            BLUE,
            f"output tokens/s in {format_tick(width, width)} s bins",
            width=1.6,
            step=True,
            fill=True,
        )
    ]
    if mean_tput > 0:
        tl.append(HLine(mean_tput, f"run mean {format_value(mean_tput)} tok/s", SLATE))
    panels.append(
        _panel(
            "Output throughput",
            render_chart(
                Chart(
                    "tl-throughput",
                    x,
                    Axis("output tokens/s", include_zero=True, headroom=0.08),
                    tl,
                    width=WIDE,
                    height=230,
                    title="output throughput over time",
                    left=TL_LEFT,
                )
            ),
            "Output tokens of completed requests by the arrival time of the chunks that "
            "carried them.",
            "output_token_throughput_tok_s",
        )
    )
    # 3. concurrency (client) and the server's own view
    tel = telemetry_series(samples, t0, duration)
    cl: list[Layer] = [
        Line(
            inflight_series(table, t0, duration, width),
            PURPLE,
            f"in flight (client), mean per {format_tick(width, width)} s",
            width=1.6,
            step=True,
            fill=True,
        )
    ]
    if tel.running:
        cl.append(
            Line(
                tel.running,
                TEAL,
                "running (server /metrics)",
                width=1.8,
                dots=len(tel.running) <= 120,
            )
        )
    if tel.waiting and any(v for _, v in tel.waiting):
        cl.append(
            Line(
                tel.waiting,
                AMBER,
                "waiting (server /metrics)",
                width=1.8,
                dots=len(tel.waiting) <= 120,
            )
        )
    target = s.get("target_concurrency")
    if target:
        cl.append(
            HLine(
                float(target),
                f"target {s['target_concurrency']}",
                GREY,
                align="left",
            )
        )
    if s.get("achieved_concurrency"):
        cl.append(
            HLine(
                float(s["achieved_concurrency"]),
                f"achieved {format_value(s['achieved_concurrency'])} (Little's law)",
                SLATE,
            )
        )
    panels.append(
        _panel(
            "Requests in flight",
            render_chart(
                Chart(
                    "tl-concurrency",
                    x,
                    Axis("requests", include_zero=True, headroom=0.12),
                    cl,
                    width=WIDE,
                    height=230,
                    title="requests in flight over time",
                    left=TL_LEFT,
                )
            ),
            "From each request's t_send to its t_end; the server's running and waiting "
            "requests where it reports them.",
            "achieved_concurrency",
        )
    )
    panels.extend(_telemetry_panels(tel, x))
    notes = [str(n) for n in (results.get("telemetry") or {}).get("notes") or []]
    if tel.empty:
        notes.insert(
            0,
            "No telemetry samples in this run (telemetry.jsonl missing or empty; "
            "--no-telemetry turns sampling off).",
        )
    body = "".join(panels)
    if notes:
        body += _note("<br>".join(esc(n) for n in notes))
    return f'<div class="stack">{body}</div>', "timestamps"


def _telemetry_panels(tel: TelemetrySeries, x: Axis) -> list[str]:
    panels: list[str] = []
    if tel.gpu_util:
        layers: list[Layer] = [
            Line(
                p,
                PALETTE[i % len(PALETTE)],
                f"GPU {i}" + (f" {tel.gpu_names[i]}" if i in tel.gpu_names else ""),
                width=1.8,
            )
            for i, p in tel.gpu_util.items()
        ]
        panels.append(
            _panel(
                "GPU utilisation",
                render_chart(
                    Chart(
                        "tl-gpu-util",
                        x,
                        Axis("GPU busy (%)", lo=0, hi=100),
                        layers,
                        width=WIDE,
                        height=210,
                        left=TL_LEFT,
                    )
                ),
                "NVML: share of time a kernel was running on the GPU.",
                "gpu_util",
            )
        )
    if tel.gpu_mem_gb:
        layers = [
            Line(p, PALETTE[i % len(PALETTE)], f"GPU {i} used", width=1.8)
            for i, p in tel.gpu_mem_gb.items()
        ]
        totals = sorted(set(tel.gpu_total_gb.values()))
        layers += [HLine(t, f"total {format_value(t)} GB", GREY) for t in totals[:2]]
        panels.append(
            _panel(
                "GPU memory",
                render_chart(
                    Chart(
                        "tl-gpu-mem",
                        x,
                        Axis("memory used (GB)", include_zero=True, headroom=0.1),
                        layers,
                        width=WIDE,
                        height=210,
                        left=TL_LEFT,
                    )
                ),
                "NVML: device memory in use (weights, KV cache and the rest).",
                "gpu_memory",
            )
        )
    if tel.kv_cache_pct:
        panels.append(
            _panel(
                "KV-cache usage",
                render_chart(
                    Chart(
                        "tl-kv",
                        x,
                        Axis("KV cache used (%)", lo=0, hi=100),
                        [
                            Line(
                                tel.kv_cache_pct,
                                PINK,
                                f"KV cache ({tel.server_kind or 'server'})",
                                width=1.8,
                                dots=len(tel.kv_cache_pct) <= 120,
                            )
                        ],
                        width=WIDE,
                        height=210,
                        left=TL_LEFT,
                    )
                ),
                "The server's own /metrics: share of its KV-cache blocks in use.",
                "server_metrics",
            )
        )
    if tel.host_cpu or tel.client_cpu:
        layers = []
        if tel.host_cpu:
            layers.append(Line(tel.host_cpu, SLATE, "host CPU (% of all cores)", width=1.8))
        if tel.client_cpu:
            layers.append(
                Line(tel.client_cpu, ORANGE, "infermeter client CPU (% of one core)", width=1.8)
            )
        if tel.local_server_cpu:
            layers.append(
                Line(tel.local_server_cpu, PURPLE, "local server CPU (% of one core)", width=1.8)
            )
        panels.append(
            _panel(
                "CPU",
                render_chart(
                    Chart(
                        "tl-cpu",
                        x,
                        Axis("CPU (%)", include_zero=True, headroom=0.05),
                        layers,
                        width=WIDE,
                        height=210,
                        left=TL_LEFT,
                    )
                ),
                "The host's CPU use, the load generator's own processes (a client near 100 % of "
                "a core may be the bottleneck) and, apart, a server running on this host.",
                "host_cpu",
            )
        )
    if tel.core_speed_pct:
        layers = [Line(tel.core_speed_pct, TEAL, "a core (% of this run's fast level)")]
        if tel.server_core_speed_pct:
            layers.append(
                Line(
                    tel.server_core_speed_pct,
                    PURPLE,
                    "the server's busiest thread's core (% of its fast level)",
                    width=1.8,
                )
            )
        if tel.steal:
            layers.append(Line(tel.steal, RED, "CPU steal (% of all cores)", width=1.8))
        panels.append(
            _panel(
                "Host core speed",
                render_chart(
                    Chart(
                        "tl-core",
                        x,
                        Axis("%", include_zero=True, headroom=0.05),
                        layers,
                        width=WIDE,
                        height=180,
                        left=TL_LEFT,
                    )
                ),
                "The same small piece of work timed each sample in thread CPU time, as a speed: "
                "a dip means the host's cores ran slower (their clocks, a neighbour on the same "
                "physical core), which no CPU percentage shows; a server whose steps are "
                "host-bound slows with it. The second line probes the CPU the local server's "
                "busiest thread last ran on: the core its steps felt.",
                "core_speed",
            )
        )
    return panels
