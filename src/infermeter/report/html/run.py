"""The report of one run: header, summary, verdicts, distributions, timeline, bounds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from infermeter.metrics.aggregate import RunMetrics
from infermeter.metrics.columns import RequestColumns
from infermeter.records.rundir import TELEMETRY_FILE, read_telemetry
from infermeter.records.schema import RequestRecord
from infermeter.report.charts import (
    AMBER,
    BLUE,
    GREEN,
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
    DotRow,
    HLine,
    Layer,
    Line,
    Scatter,
    VLine,
    esc,
    format_tick,
    format_value,
    render_chart,
    render_dot_rows,
)
from infermeter.report.html.page import (
    DIST_CAPTIONS,
    DIST_TITLES,
    HALF,
    METRIC_SHORT,
    TL_LEFT,
    WIDE,
    _card,
    _date,
    _meta,
    _ms,
    _note,
    _num,
    _page,
    _panel,
    _pct,
    _pill,
    _section,
    _table,
)
from infermeter.report.html.series import (
    TelemetrySeries,
    Values,
    cdf_points,
    histogram,
    inflight_series,
    request_points,
    telemetry_series,
    throughput_series,
)
from infermeter.report.labels import DEFINITIONS
from infermeter.schema.results import (
    Cost,
    Efficiency,
    Finding,
    Results,
    ServerTelemetry,
    SLAVerdict,
    SLOResult,
    TtftBands,
)
from infermeter.text import counted

# --------------------------------------------------------------------------------------
# the run report


class RunView(Protocol):
    """What a run report reads of a run (:class:`infermeter.run.rundir.Run` has it; the
    report layer sits below the run layer and names no class of it)."""

    @property
    def path(self) -> Path: ...
    @property
    def results(self) -> Results: ...
    @property
    def records(self) -> list[RequestRecord]: ...
    @property
    def metrics(self) -> RunMetrics: ...


def render_run_html(run: RunView) -> str:
    """The report of one run as a self-contained HTML page (never raises on missing data)."""
    samples = read_telemetry(Path(run.path) / TELEMETRY_FILE)
    return run_page(run.results, run.records, samples, run.metrics.requests)


def run_page(
    results: Results,
    records: Sequence[RequestRecord],
    samples: Sequence[dict[str, Any]],
    requests: RequestColumns,
) -> str:
    """The run report from its parts (pure): results.json, records, telemetry samples and
    the per-request metrics of the completed requests."""
    server = results.get("server")
    run_info = results.get("run")
    model = str((server.get("model") if server else None) or "unknown model")
    kind = str((server.get("kind") if server else None) or "server")
    heading = f'{esc(model)} <span style="color:#64748b;font-weight:500">on {esc(kind)}</span>'
    sections = [
        ("summary", "Summary", _summary(results)),
        ("verdicts", "Verdicts", _verdicts(results)),
        ("distributions", "Distributions", _distributions(results, requests)),
        ("timeline", "Timeline", _timeline(results, records, samples)),
    ]
    server_view = _server_view(results)
    if server_view is not None:
        sections.append(("server", "The server's own view", server_view))
    analysis = results.get("analysis")
    eff = analysis["efficiency"] if analysis else None
    if eff:
        sections.append(("speed-of-light", "Speed of light", _speed_of_light(eff, results)))
    body = _run_header(results) + "".join(
        _section(sid, title, html, doc) for sid, title, (html, doc) in sections
    )
    title = f"infermeter run {(run_info['id'] if run_info else None) or ''} · {model}".strip()
    return _page(title, heading, "run report", [(s, t) for s, t, _ in sections], body)


def _load_text(cfg: dict[str, Any], summary: Mapping[str, object]) -> str:
    if cfg.get("rate") is not None:
        arrival = str(cfg.get("arrival") or "poisson")
        text = f"open loop, {float(cfg['rate']):g} req/s ({arrival}"
        if arrival == "gamma" and cfg.get("burstiness") is not None:
            text += f", burstiness {float(cfg['burstiness']):g}"
        text += ")"
        if cfg.get("max_concurrency"):
            text += f", at most {cfg['max_concurrency']} in flight"
        return text
    conc = cfg.get("concurrency") or summary.get("target_concurrency")
    if conc is None:
        return "–"
    ramp = cfg.get("ramp_up_s")
    starts = f", starts spread over {float(ramp):g} s" if ramp else ", all streams start at once"
    return f"closed loop, concurrency {conc}{starts}"


def _run_header(results: Results) -> str:
    cfg = results.get("config") or {}
    server: Mapping[str, Any] = results.get("server") or {}
    workload = results.get("workload") or {}
    summary: Mapping[str, Any] = results.get("summary") or {}
    run: Mapping[str, Any] = results.get("run") or {}
    stop = []
    if cfg.get("num_requests") is not None:
        stop.append(counted(cfg["num_requests"], "request"))
    if cfg.get("duration_s") is not None:
        stop.append(f"{float(cfg['duration_s']):g} s")
    if cfg.get("warmup"):
        stop.append(f"{cfg['warmup']} warm-up")
    if workload.get("kind") == "dataset" or cfg.get("dataset"):
        wl = f"dataset {esc(Path(str(cfg.get('dataset') or workload.get('path') or '')).name)}"
    else:
        wl = (
            f"{esc(workload.get('input_tokens') or cfg.get('input_tokens') or '?')} in / "
            f"{esc(workload.get('output_tokens') or cfg.get('output_tokens') or '?')} out tokens"
        )
    if run.get("interrupted"):
        status = '<span class="pill warn">interrupted</span>'
    elif run.get("aborted"):
        status = f'<span class="pill fail">aborted</span> {esc(run["aborted"])}'
    elif run.get("complete"):
        status = '<span class="pill pass">complete</span>'
    else:
        status = '<span class="pill na">unknown</span>'
    items = [
        ("run", esc(run.get("id") or "–")),
        ("started", _date(run.get("started_at"))),
        ("server", f"{esc(server.get('kind') or '?')} · {esc(server.get('url') or '?')}"),
        ("model", esc(server.get("model") or "?")),
        ("load", esc(_load_text(cfg, summary)) + (f" · {esc(', '.join(stop))}" if stop else "")),
        ("workload", f"{wl} · {esc(cfg.get('api') or 'chat')} API"),
        ("measured window", f"{format_value(summary.get('duration_s'))} s"),
        ("status", status),
    ]
    return _meta(items)


def _dist(results: Results, name: str) -> dict[str, Any]:
    return dict(results["distributions"].get(name) or {})


def _summary(results: Results) -> tuple[str, str | None]:
    s: Mapping[str, Any] = results.get("summary") or {}
    ttft, tpot, e2e = _dist(results, "ttft_ms"), _dist(results, "tpot_ms"), _dist(results, "e2e_ms")

    def lat(d: dict[str, Any]) -> tuple[str, str]:
        return format_value(d.get("p50")), f"p99 {_ms(d.get('p99'))}" if d.get(
            "count"
        ) else "no completed requests"

    sent = int(s.get("requests_sent") or 0)
    failed = int(s.get("requests_failed") or 0)
    err = float(s.get("error_rate") or 0.0)
    cards = [
        _card("TTFT p50", *lat(ttft)[:1], "ms", lat(ttft)[1], "ttft_ms"),
        _card("TPOT p50", *lat(tpot)[:1], "ms", lat(tpot)[1], "tpot_ms"),
        _card("E2E p50", *lat(e2e)[:1], "ms", lat(e2e)[1], "e2e_ms"),
        _card(
            "Output throughput",
            format_value(s.get("output_token_throughput_tok_s")),
            "tok/s",
            f"total {format_value(s.get('total_token_throughput_tok_s'))} tok/s",
            "output_token_throughput_tok_s",
        ),
        _card(
            "Request throughput",
            format_value(s.get("request_throughput_rps")),
            "req/s",
            f"{format_value(s.get('request_throughput_rpm'))} req/min",
            "request_throughput_rps",
        ),
        _card(
            "Error rate",
            f"{100 * err:.1f}" if sent else "–",
            "%",
            f"{failed:,} of {sent:,} failed",
            "error_rate",
            "bad" if failed else "",
        ),
    ]
    if s.get("goodput_rps") is not None:
        att = s.get("slo_attainment")
        cards.append(
            _card(
                "Goodput",
                format_value(s.get("goodput_rps")),
                "req/s",
                f"SLO attainment {_pct(att)}",
                "goodput_rps",
                "good" if att == 1.0 else ("bad" if att is not None and att < 0.9 else ""),
            )
        )
    else:
        cards.append(_card("Goodput", "–", "", "no SLO given (--slo)", "goodput_rps"))
    target = s.get("target_concurrency")
    cards.append(
        _card(
            "Achieved concurrency",
            format_value(s.get("achieved_concurrency")),
            "",
            f"target {target}" if target is not None else "Little's law: Σ E2E / D",
            "achieved_concurrency",
        )
    )
    body = f'<div class="cards">{"".join(cards)}</div>'
    if not sent:
        body += _note("No measured requests in this run: nothing to summarise.")
    return body, "aggregates"


def _server_times(srv: ServerTelemetry) -> list[tuple[float | None, str, str | None]]:
    """Per-request times the server keeps of its own, and the client's metric beside each."""
    return [
        (srv.get("queue_mean_ms"), "queue (arrival to scheduled)", None),
        (srv.get("prefill_mean_ms"), "prefill (scheduled to first token)", None),
        (srv.get("decode_mean_ms"), "decode (first to last token)", None),
        (srv.get("ttft_mean_ms"), "TTFT", "ttft_ms"),
        (srv.get("tpot_mean_ms"), "TPOT", "tpot_ms"),
        (srv.get("e2e_mean_ms"), "E2E", "e2e_ms"),
    ]


def _server_view(results: Results) -> tuple[str, str | None] | None:
    """The server's own per-request times and scheduling events over the measured window
    (vLLM's /metrics), beside the client's: where they part is the front end or the network."""
    telemetry = results.get("telemetry")
    srv = telemetry.get("server") if telemetry else None
    if not srv:
        return None
    rows = [
        [
            esc(label),
            _ms(value),
            _ms(_dist(results, client).get("mean")) if client else "–",
        ]
        for value, label, client in _server_times(srv)
        if value is not None
    ]
    if not rows:
        return None
    facts: list[tuple[str, str]] = []
    preempted = srv.get("preemptions")
    if preempted is not None:
        facts.append(("preemptions", f"{preempted:,.0f}"))
    capacity = srv.get("requests_waiting_capacity")
    if capacity is not None:
        facts.append(("waiting for KV-cache room", f"at most {capacity['max']:,.0f}"))
    per_step = srv.get("tokens_per_step_mean")
    if per_step is not None:
        facts.append(("tokens per engine step", f"{per_step:,.1f} mean"))
    cache = (srv.get("info") or {}).get("cache_config") or {}
    if cache.get("kv_cache_size_tokens"):
        facts.append(
            (
                "KV cache",
                f"{_count_text(cache['kv_cache_size_tokens'])} tokens in blocks of "
                f"{esc(cache.get('block_size', '?'))}; prefix caching "
                f"{'on' if cache.get('enable_prefix_caching') == 'True' else 'off'}",
            )
        )
    analysis = results.get("analysis")
    eff = analysis["efficiency"] if analysis else None
    for value, label in (
        (eff.get("server_mbu") if eff else None, "MBU by its own count"),
        (eff.get("server_mfu") if eff else None, "MFU by its own count"),
    ):
        if value is not None:
            facts.append((label, _pct(value)))
    table = _table(["mean per request", "by the server", "by infermeter"], rows)
    cap = (
        "Means over the requests the server finished inside the measured window, from its "
        f"/metrics ({esc(str(srv.get('kind') or 'server'))}). Its clock starts when a request "
        "reaches it and stops at the last token made: the difference to infermeter's is the "
        "front end, the stream's writes and the network."
    )
    return _meta(facts) + table + f'<p class="cap">{cap}</p>', "server_metrics"


def _count_text(value: object) -> str:
    """A count from a label (text), with thousands separators where it is a number."""
    try:
        return f"{int(str(value)):,}"
    except ValueError:
        return esc(str(value))


def _slo_table(slo: SLOResult) -> str:
    rows = []
    for t in slo.get("terms") or []:
        metric = METRIC_SHORT.get(str(t.get("metric")), str(t.get("metric")))
        pct = t.get("percentile")
        limit = f"{esc(metric)} ≤ {format_value(t.get('threshold'))} ms"
        if pct is not None:
            limit = f"p{float(pct):g} {limit}"
        measured = _ms(t.get("measured")) if pct is not None else "per request"
        rows.append(
            [
                limit,
                _pct(t.get("attainment")),
                measured,
                _pill(t.get("passed"), na="no run verdict" if pct is None else "not measured"),
            ]
        )
    head = ["SLO term", "requests within", "measured", "verdict"]
    summary = (
        f'<p class="cap">{slo.get("requests_meeting", 0):,} of {slo.get("requests_total", 0):,} '
        f"requests met every term (attainment {_pct(slo.get('attainment'))}, goodput "
        f"{format_value(slo.get('goodput_rps'))} req/s); failed requests count as misses. "
        f"{_pill(slo.get('passed'), 'run passes', 'run fails', 'no percentile terms')}</p>"
    )
    return _panel("SLO (--slo)", _table(head, rows) + summary, doc="slo")


def _sla_table(sla: SLAVerdict) -> str:
    rows = []
    for v in sla.get("limits") or []:
        margin = v.get("margin")
        rows.append(
            [
                esc(v.get("limit")),
                _num(v.get("measured")),
                "–" if margin is None else f"{100 * margin:+.0f} %",
                _pill(v.get("passed")),
            ]
        )
    desc = esc(sla.get("description") or "")
    verdict = _pill(sla.get("passed"), "profile passes", "profile fails")
    cap = (
        f'<p class="cap">{desc} {verdict} Margin: headroom to the limit (negative: missed by).</p>'
    )
    return _panel(
        f"SLA profile: {sla.get('profile')}",
        _table(["limit", "measured", "margin", "verdict"], rows) + cap,
        doc="sla",
    )


BAND_COLORS = {"instant": "#16a34a", "fast": "#84cc16", "slow": "#f59e0b", "sluggish": "#dc2626"}
BAND_TEXT = {
    "instant": "< 100 ms",
    "fast": "100–300 ms",
    "slow": "300–1,000 ms",
    "sluggish": "≥ 1 s",
}


def _bands(typed: TtftBands) -> str:
    bands: dict[str, float] = {
        k: v
        for k, v in (
            ("instant", typed.get("instant")),
            ("fast", typed.get("fast")),
            ("slow", typed.get("slow")),
            ("sluggish", typed.get("sluggish")),
        )
        if v is not None
    }
    spans = "".join(
        f'<span style="width:{100 * float(v):.2f}%;background:{BAND_COLORS.get(k, GREY)}" '
        f'title="{esc(k)} ({esc(BAND_TEXT.get(k, ""))}): {100 * float(v):.1f} %"></span>'
        for k, v in bands.items()
        if v
    )
    legend = "".join(
        f'<span><i class="sw" style="background:{BAND_COLORS.get(k, GREY)}"></i>{esc(k)} '
        f"{esc(BAND_TEXT.get(k, ''))}: <b>{100 * float(v):.0f} %</b></span>"
        for k, v in bands.items()
    )
    return _panel(
        "TTFT as users feel it",
        f'<div class="bands">{spans}</div><div class="legendrow">{legend}</div>',
        "Share of completed requests in each TTFT band.",
        "ttft_bands",
    )


def _evidence(ev: dict[str, Any]) -> str:
    parts = []
    for k, v in ev.items():
        if v is None:  # not measured: nothing to cite
            continue
        if isinstance(v, list):
            v = "; ".join(str(x) for x in v)
        parts.append(f"{esc(k)} = {_num(v) if not isinstance(v, str) else esc(v)}")
    return ", ".join(parts)


SEVERITY_PILLS = {"high": "fail", "medium": "warn"}


def _findings(findings: Sequence[Finding]) -> str:
    items = []
    for f in findings:
        sev = str(f.get("severity") or "low")
        ev = f.get("evidence") or {}
        evidence = f'<div class="ev">{_evidence(ev)}</div>' if _evidence(ev) else ""
        items.append(
            f'<div class="callout {esc(sev)}"><span class="t">{esc(f.get("rule"))}</span>'
            f'<span class="pill {SEVERITY_PILLS.get(sev, "na")}">'
            f"{esc(sev)}</span> {esc(f.get('message'))}{evidence}</div>"
        )
    return _panel("Findings", "".join(items), doc="findings")


def _money(x: Any) -> str:
    if x is None:
        return "–"
    x = float(x)
    return f"{x:,.4f}" if x >= 0.01 else f"{x:.2e}"


def _cost(c: Cost) -> str:
    rows = [
        ["per 1M output tokens", _money(c.get("per_million_output_tokens"))],
        ["per 1M total tokens", _money(c.get("per_million_total_tokens"))],
        ["per request", _money(c.get("per_request"))],
    ]
    cap = (
        f'<p class="cap">{c.get("gpus", 1)} GPU × {format_value(c.get("gpu_hourly_price"))} per '
        "GPU-hour, at this run's measured throughput.</p>"
    )
    return _panel("Cost", _table(["", "cost"], rows) + cap, doc="cost")


def _errors(results: Results) -> str:
    errors = results.get("errors") or {}
    by_kind = errors.get("by_kind") or {}
    if not by_kind:
        return ""
    examples = errors.get("examples") or {}
    rows = [
        [
            esc(k),
            f"{int(v):,}",
            esc(str(examples.get(k, ""))[:160]),
        ]
        for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])
    ]
    table = _table(["kind", "count", "example"], rows, left=(0, 2))
    return _panel("Failed requests", table, doc="error_rate")


def _verdicts(results: Results) -> tuple[str, str | None]:
    analysis = results.get("analysis")
    panels: list[str] = []
    slo = results.get("slo")
    if slo:
        panels.append(_slo_table(slo))
    if analysis and analysis["sla"]:
        panels.append(_sla_table(analysis["sla"]))
    if analysis and analysis["ttft_bands"]:
        panels.append(_bands(analysis["ttft_bands"]))
    if analysis and analysis["cost"]:
        panels.append(_cost(analysis["cost"]))
    err = _errors(results)
    if err:
        panels.append(err)
    out = f'<div class="grid2">{"".join(panels)}</div>' if panels else ""
    if analysis and analysis["findings"]:
        out += f'<div style="margin-top:16px">{_findings(analysis["findings"])}</div>'
    notes: list[str] = []
    run = results.get("run")
    if run and run.get("interrupted"):
        notes.append("run interrupted: the figures cover the requests that finished")
    if run and run.get("aborted"):
        notes.append(f"run aborted: {run.get('aborted')}")
    notes.extend(str(w) for w in results.get("warnings") or [])
    notes.extend(f"analysis: {n}" for n in (analysis.get("notes") if analysis else None) or [])
    cache = results.get("prompt_cache")
    if cache and cache["cached_share"] is not None and not cache.get("flattered"):
        notes.append(
            f"prompt tokens served from the server's prefix cache: "
            f"{100 * cache['cached_share']:.1f} % (the server's own counts)"
        )
    mm = results.get("input_tokens_mismatch") or {}
    if mm.get("mismatched"):
        differ = "differs" if mm["mismatched"] == 1 else "differ"
        notes.append(
            f"input length: {mm['mismatched']:,} of "
            f"{counted(int(mm.get('compared') or 0), 'prompt')} "
            f"{differ} from the target by up to "
            f"{counted(int(mm.get('max_abs_difference_tokens') or 0), 'token')} "
            "(server count vs requested)"
        )
    if notes:
        items = "".join(f'<div class="callout warn">{esc(n)}</div>' for n in notes)
        panel = _panel("Warnings and notes", items, doc="client")
        out += f'<div style="margin-top:16px">{panel}</div>'
    if not out:
        out = _note(
            "No SLO (--slo), SLA profile (--profile) or price (--gpu-hourly-price) was given, "
            "and nothing was flagged."
        )
    return out, "analysis"


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
    edges, counts, beyond, cut = histogram(values, d.get("p50"), d.get("p99"))
    lo, hi = edges[0], edges[-1]
    marks = [m for m in _percentile_lines(d) if isinstance(m, VLine) and m.x <= hi]
    slo_marks: list[Layer] = [
        VLine(v, f"SLO {format_value(v)}", SLATE, "2 3") for v in limits if lo <= v <= hi * 1.25
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
    pts, steps = cdf_points(values)
    cdf_lo = pts[0][0]
    cdf_hi = max([pts[-1][0], *(v for v in limits if v <= pts[-1][0] * 1.25)])
    # A long tail squeezes a linear CDF into one corner: show it on a log axis instead
    # (zeros, e.g. chunks read together, then count in the curve's first step).
    positive = [v for v in values if v > 0]
    p50 = d.get("p50")
    ref = float(p50) if p50 is not None and p50 > 0 else min(positive, default=0.0)
    log_cdf = cdf_lo >= 0 and ref > 0 and cdf_hi / ref > 5
    zeros = len(values) - len(positive) if log_cdf else 0
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
                *[VLine(v, f"SLO {format_value(v)}", SLATE, "2 3") for v in limits if v <= cdf_hi],
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
    panels = [
        distribution_panels(name, values[name], _dist(results, name), _slo_limits(results, name))
        for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
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
    results: Results, records: Sequence[RequestRecord], samples: Sequence[dict[str, Any]]
) -> tuple[str, str | None]:
    measured = [r for r in records if r.phase == "measure"]
    if not measured:
        return _note("No measured requests: no timeline to draw."), "timestamps"
    t0 = min(r.t_send_ns for r in measured)
    end = max(max(r.t_end_ns, r.t_send_ns) for r in measured)
    duration = max((end - t0) / 1e9, 1e-3)
    x = _time_axis(duration)
    s = results.get("summary") or {}
    panels: list[str] = []

    # 1. latency per request
    pts = request_points(records, t0)
    ys = [p[1] for p in pts.ttft + pts.e2e + pts.failed if p[1] > 0]
    log_y = bool(ys) and min(ys) > 0 and max(ys) / min(ys) >= 50
    layers: list[Layer] = [
        Scatter(pts.e2e, ORANGE, "E2E latency", "diamond", 3.2, pts.e2e_tips, 0.7),
        Scatter(pts.ttft, BLUE, "TTFT", "circle", 3.0, pts.ttft_tips, 0.7),
    ]
    if pts.failed:
        layers.append(
            Scatter(pts.failed, RED, "failed (time to failure)", "cross", 4, pts.failed_tips, 1.0)
        )
    cap = "Each completed request's TTFT and E2E latency at the moment it was sent."
    if pts.stride > 1:
        cap += f" {len(measured):,} requests: every {pts.stride}th is drawn."
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
                    WIDE,
                    270,
                    title="latency per request over time",
                    left=TL_LEFT,
                )
            ),
            cap,
            "per_request",
        )
    )
    # 2. output throughput
    tput, width = throughput_series(records, t0, duration)
    mean_tput = float(s.get("output_token_throughput_tok_s") or 0.0)
    tl: list[Layer] = [
        Line(
            tput,
            BLUE,
            f"output tokens/s in {format_tick(width, width)} s bins",
            1.6,
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
                    WIDE,
                    230,
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
            inflight_series(records, t0, duration, width),
            PURPLE,
            f"in flight (client), mean per {format_tick(width, width)} s",
            1.6,
            step=True,
            fill=True,
        )
    ]
    if tel.running:
        cl.append(
            Line(tel.running, TEAL, "running (server /metrics)", 1.8, dots=len(tel.running) <= 120)
        )
    if tel.waiting and any(v for _, v in tel.waiting):
        cl.append(
            Line(tel.waiting, AMBER, "waiting (server /metrics)", 1.8, dots=len(tel.waiting) <= 120)
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
                    WIDE,
                    230,
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
                1.8,
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
                        WIDE,
                        210,
                        left=TL_LEFT,
                    )
                ),
                "NVML: share of time a kernel was running on the GPU.",
                "gpu_util",
            )
        )
    if tel.gpu_mem_gb:
        layers = [
            Line(p, PALETTE[i % len(PALETTE)], f"GPU {i} used", 1.8)
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
                        WIDE,
                        210,
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
                                1.8,
                                dots=len(tel.kv_cache_pct) <= 120,
                            )
                        ],
                        WIDE,
                        210,
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
            layers.append(Line(tel.host_cpu, SLATE, "host CPU (% of all cores)", 1.8))
        if tel.client_cpu:
            layers.append(
                Line(tel.client_cpu, ORANGE, "infermeter client CPU (% of one core)", 1.8)
            )
        if tel.local_server_cpu:
            layers.append(
                Line(tel.local_server_cpu, PURPLE, "local server CPU (% of one core)", 1.8)
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
                        WIDE,
                        210,
                        left=TL_LEFT,
                    )
                ),
                "The host's CPU use, the load generator's own processes (a client near 100 % of "
                "a core may be the bottleneck) and, apart, a server running on this host.",
                "host_cpu",
            )
        )
    return panels


def _speed_of_light(eff: Efficiency, results: Results) -> tuple[str, str | None]:
    rows: list[DotRow] = []
    tb, tx = eff.get("tpot_lower_bound_ms"), eff.get("tpot_x_bound")
    if tb is not None and tx is not None:
        rows.append(
            DotRow(
                "TPOT (mean)",
                float(tx),
                BLUE,
                f"measured mean TPOT {format_value(tx * tb)} ms; lower bound {format_value(tb)} ms",
                f"{format_value(tx)}×",
                f"{format_value(tx * tb)} ms vs {format_value(tb)} ms",
            )
        )
    fb, fx = eff.get("ttft_lower_bound_ms"), eff.get("ttft_x_bound")
    if fb is not None and fx is not None:
        rows.append(
            DotRow(
                "TTFT (p50)",
                float(fx),
                ORANGE,
                f"measured TTFT p50 {format_value(fx * fb)} ms; lower bound {format_value(fb)} ms",
                f"{format_value(fx)}×",
                f"{format_value(fx * fb)} ms vs {format_value(fb)} ms",
            )
        )
    ub, share = eff.get("output_throughput_upper_bound_tok_s"), eff.get("throughput_share_of_bound")
    if ub is not None and share:
        measured = float(share) * float(ub)
        rows.append(
            DotRow(
                "Output throughput",
                1 / float(share),
                TEAL,
                f"measured {format_value(measured)} tok/s; upper bound {format_value(ub)} tok/s",
                f"{format_value(1 / float(share))}×",
                f"{format_value(measured)} vs {format_value(ub)} tok/s",
            )
        )
    util_rows = [
        DotRow(
            label,
            100 * value,
            color,
            f"{label}: {100 * value:.4g} % of peak",
            f"{100 * value:.3g} %",
        )
        for value, label, color in (
            (eff.get("mbu"), "MBU (decode)", PURPLE),
            (eff.get("mfu_decode"), "MFU (decode)", BLUE),
            (eff.get("mfu_prefill"), "MFU (prefill)", ORANGE),
        )
        if value is not None and value > 0
    ]
    if share:
        util_rows.append(
            DotRow(
                "Output throughput",
                100 * float(share),
                TEAL,
                f"output throughput: {100 * float(share):.4g} % of its bound",
                f"{100 * float(share):.3g} %",
                "share of its bound",
            )
        )

    def xfmt(v: float) -> str:
        return f"{format_tick(v, v)}×"

    def pfmt(v: float) -> str:
        return f"{format_tick(v, v)} %"

    dist = render_dot_rows(
        "sol-x",
        rows,
        Axis("× the speed-of-light bound (1 = the bound; log scale)", log=True, fmt=xfmt),
        base=1.0,
        refs=[VLine(1.0, "speed of light", GREEN, "4 3")],
        width=HALF,
        title="measured vs bound",
    )
    util = render_dot_rows(
        "sol-util",
        util_rows,
        Axis("share of the hardware's peak (%, log scale)", log=True, hi=100, fmt=pfmt),
        refs=[VLine(100.0, "peak", GREEN, "4 3")],
        width=HALF,
        title="utilisation",
    )
    hw = (
        f"{eff.get('gpus', 1)} × {esc(eff.get('gpu'))} (tp {eff.get('tp', 1)}), model "
        f"{esc(eff.get('model'))}, at {esc(eff.get('batch_per_replica'))} sequences per replica "
        f"and {esc(eff.get('context_tokens'))} tokens of context"
    )
    body = (
        '<div class="grid2">'
        + _panel(
            "Measured vs the speed-of-light bound",
            dist,
            "How many times slower than the bound no engine can beat (hover a dot for values).",
            "x_bound",
        )
        + _panel(
            "Hardware utilisation",
            util,
            f"MBU: {esc(DEFINITIONS['mbu'].formula)}; MFU: {esc(DEFINITIONS['mfu'].formula)}.",
            "mbu",
        )
        + f'</div><p class="cap" style="color:#64748b;font-size:12.5px">{hw}. '
        "Bounds: see docs/theory.md.</p>"
    )
    return body, "analysis"
