"""The self-contained HTML report: one file, inline CSS and inline SVG, nothing fetched.

>>> from infermeter import load_run
>>> from infermeter.report.html import render_run_html
>>> page = render_run_html(load_run("runs/c4"))
>>> Path("runs/c4/report.html").write_text(page)

Charts are drawn here, server-side, by :mod:`infermeter.report.charts`; the page carries no
script and a Content-Security-Policy that forbids loading anything, so it works offline and
stays small enough (~100-300 KB) to commit beside a run. Every chart links to the metric's
definition in ``docs/metrics.md``. Reading a run's ``telemetry.jsonl`` and a sweep's files is
the only I/O; everything else is a pure function of the data.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from infermeter import __version__
from infermeter.errors import UsageError
from infermeter.metrics.per_request import request_metrics
from infermeter.records.rundir import TELEMETRY_FILE, read_telemetry
from infermeter.records.schema import RequestRecord
from infermeter.report.charts import (
    AMBER,
    BLUE,
    CHART_CSS,
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
    Region,
    Scatter,
    VLine,
    esc,
    format_tick,
    format_value,
    nice_step,
    render_chart,
    render_dot_rows,
)
from infermeter.report.compare import format_ratio, ratio_verdict

if TYPE_CHECKING:  # the report layer never imports the API at run time (one-way imports)
    from infermeter.api import Run

#: Where the metric definitions live, relative to the repository root (GitHub renders it).
METRICS_DOC = "docs/metrics.md"
#: GitHub's anchors of the headings of docs/metrics.md (a unit test checks they exist).
DOC_ANCHORS: dict[str, str] = {
    "timestamps": "1-what-is-recorded-per-request",
    "per_request": "3-per-request-metrics",
    "aggregates": "4-run-aggregates",
    "slo": "slos",
    "client": "5-the-clients-own-health",
    "telemetry": "6-telemetry",
    "analysis": "7-analysis-resultsjson--analysis",
}

#: Most markers one scatter series draws (beyond it, every k-th request is drawn).
MAX_SCATTER_POINTS = 1500
#: Most markers that carry a hover tooltip (each costs ~60 bytes).
MAX_TOOLTIPS = 800
#: Most points of a CDF curve.
CDF_POINTS = 300
#: Width of full-width (timeline) and half-width charts, in SVG pixels.
WIDE = 1120
HALF = 560
#: Left margin of every timeline panel, so their time axes line up.
TL_LEFT = 72.0
SWEEP_FILE = "sweep.json"
POINT_REPORT = "report.html"

PAGE_CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f6f8fb;--card:#fff;--accent:#2563eb;
--good:#15803d;--good-bg:#dcfce7;--bad:#b91c1c;--bad-bg:#fee2e2;--warn:#b45309;
--warn-bg:#fef3c7}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans",
"Liberation Sans",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 24px 56px}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
header.top{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;
gap:8px 24px;
padding-bottom:16px;border-bottom:1px solid var(--line)}
.brand{font-size:12px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;
color:var(--accent)}
h1{font-size:24px;line-height:1.25;margin:2px 0 0;font-weight:700;word-break:break-word}
h2{font-size:18px;margin:36px 0 14px;font-weight:650;display:flex;align-items:baseline;gap:12px}
h3{font-size:14px;margin:0;font-weight:600}
nav.toc{display:flex;flex-wrap:wrap;gap:6px}
nav.toc a{font-size:12.5px;padding:3px 10px;border:1px solid var(--line);border-radius:999px;
background:#fff;color:#334155}
nav.toc a:hover{border-color:var(--accent);color:var(--accent);text-decoration:none}
dl.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:10px 28px;
margin:18px 0 0}
dl.meta div{min-width:0}
dl.meta dt{font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
dl.meta dd{margin:1px 0 0;font-weight:500;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:12px 16px 12px;
box-shadow:0 1px 2px rgba(15,23,42,.04)}
.card .k{font-size:12px;color:var(--muted);display:flex;justify-content:space-between;gap:6px}
.card .v{font-size:26px;font-weight:650;letter-spacing:-.01em;font-variant-numeric:tabular-nums;
line-height:1.3}
.card .v small{font-size:13px;font-weight:500;color:var(--muted);margin-left:3px}
.card .s{font-size:12.5px;color:var(--muted);font-variant-numeric:tabular-nums}
.card.bad{border-color:#fecaca;background:#fffafa}.card.bad .v{color:var(--bad)}
.card.good .v{color:var(--good)}
a.def{font-size:11.5px;font-weight:500;color:var(--muted);border-bottom:1px dotted #cbd5e1}
a.def:hover{color:var(--accent);text-decoration:none}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
.stack{display:grid;gap:16px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:14px 16px 12px;
margin:0;min-width:0;box-shadow:0 1px 2px rgba(15,23,42,.04)}
.panel>.ph{display:flex;justify-content:space-between;align-items:baseline;gap:12px;
margin-bottom:6px}
.panel p.cap{margin:6px 0 0;font-size:12.5px;color:var(--muted)}
.stats{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:12.5px;color:var(--muted);
margin:2px 0 8px;
font-variant-numeric:tabular-nums}
.stats b{color:var(--fg);font-weight:600}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
th{font-size:11.5px;font-weight:600;color:var(--muted);text-transform:uppercase;
letter-spacing:.04em;
background:#f8fafc}
th:first-child,td:first-child{text-align:left}
td.l,th.l{text-align:left}
tr:last-child td{border-bottom:none}
.tablewrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);
border-radius:12px}
tr.hl td{background:#eff6ff}
tr.group td{background:#f8fafc;font-weight:600;color:#334155;padding-top:10px}
th .raw{text-transform:none;letter-spacing:0;font-size:12.5px;color:#0f172a}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;
white-space:nowrap}
.pill.pass{background:var(--good-bg);color:var(--good)}
.pill.fail{background:var(--bad-bg);color:var(--bad)}
.pill.na{background:#f1f5f9;color:#475569}
.pill.warn{background:var(--warn-bg);color:var(--warn)}
.better{color:var(--good);font-weight:600}.worse{color:var(--bad);
font-weight:600}.same{color:var(--muted)}
.callout{border:1px solid var(--line);border-left:4px solid var(--muted);background:var(--card);
border-radius:8px;padding:10px 14px;margin:0 0 10px}
.callout.high{border-left-color:#dc2626}.callout.medium{border-left-color:#d97706}
.callout.low{border-left-color:#94a3b8}.callout.warn{border-left-color:#d97706;
background:#fffbeb}
.callout .t{font-weight:600;margin-right:6px}
.callout .ev{font-size:12px;color:var(--muted);margin-top:3px;font-variant-numeric:tabular-nums;
overflow-wrap:anywhere}
.note{color:var(--muted);font-size:13px;background:#f8fafc;border:1px dashed #cbd5e1;
border-radius:10px;
padding:12px 16px;margin:0 0 12px}
.bands{display:flex;height:22px;border-radius:6px;overflow:hidden;margin:8px 0 6px;
background:#f1f5f9}
.bands span{display:block;height:100%}
.legendrow{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;color:var(--muted)}
.sw{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
ul.plain{margin:6px 0 0;padding-left:18px}
footer{margin-top:44px;padding-top:14px;border-top:1px solid var(--line);font-size:12px;
color:var(--muted)}
@media (max-width:560px){main{padding:18px 12px 40px}.grid2{grid-template-columns:1fr}
h1{font-size:20px}}
@media print{body{background:#fff}.panel,.card,.tablewrap{box-shadow:none;break-inside:avoid}}
"""

#: No script, nothing fetched: the page may only use its own inline styles and data: images.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

DIST_TITLES: dict[str, tuple[str, str, str]] = {
    # name: (title, axis label, what one histogram count is)
    "ttft_ms": ("TTFT: time to first token", "TTFT (ms)", "requests"),
    "tpot_ms": ("TPOT: time per output token", "TPOT (ms)", "requests"),
    "itl_ms": ("ITL: inter-token latency, per token", "ITL (ms)", "tokens"),
    "e2e_ms": ("E2E: end-to-end latency", "E2E latency (ms)", "requests"),
}
DIST_CAPTIONS: dict[str, str] = {
    "ttft_ms": "t_first − t_send of each completed request: queueing, prefill and network.",
    "tpot_ms": "(t_last − t_first) / (n_out − 1) of each completed request: the decode phase.",
    "itl_ms": "Each chunk's gap to the previous one divided by the tokens it carries, "
    "counted once per token.",
    "e2e_ms": "t_last − t_send of each completed request.",
}
METRIC_SHORT: dict[str, str] = {
    "ttft_ms": "TTFT",
    "tpot_ms": "TPOT",
    "itl_ms": "ITL",
    "e2e_ms": "E2E",
    "ttft_incl_queue_ms": "TTFT incl. queue",
}


# --------------------------------------------------------------------------------------
# small HTML helpers


def doc_link(key: str, text: str = "definition") -> str:
    """A link to one section of the metric contract."""
    return f'<a class="def" href="{METRICS_DOC}#{DOC_ANCHORS[key]}">{esc(text)}</a>'


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return format_value(value, digits)
    return esc(value)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{format_value(value)} ms"


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.{digits}f} %"


def _pill(
    passed: bool | None, yes: str = "pass", no: str = "fail", na: str = "not measured"
) -> str:
    if passed is None:
        return f'<span class="pill na">{esc(na)}</span>'
    return f'<span class="pill {"pass" if passed else "fail"}">{esc(yes if passed else no)}</span>'


def _section(sid: str, title: str, body: str, doc: str | None = None) -> str:
    link = doc_link(doc, "definitions") if doc else ""
    return f'<section id="{sid}"><h2>{esc(title)} {link}</h2>{body}</section>'


def _panel(title: str, content: str, caption: str = "", doc: str | None = None) -> str:
    link = doc_link(doc) if doc else ""
    cap = f'<p class="cap">{caption}</p>' if caption else ""
    return (
        f'<figure class="panel"><div class="ph"><h3>{esc(title)}</h3>{link}</div>'
        f"{content}{cap}</figure>"
    )


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    classes: Sequence[str] = (),
    left: Sequence[int] = (0,),
) -> str:
    """A table from already-escaped cells; ``classes`` per row (e.g. 'hl'); the columns
    in ``left`` are left-aligned (numbers are right-aligned). A row of one cell spans the
    table (a group heading)."""
    cls = list(classes)

    def align(i: int) -> str:
        return ' class="l"' if i in left else ""

    ths = "".join(f"<th{align(i)}>{h}</th>" for i, h in enumerate(head))
    trs = []
    for i, row in enumerate(rows):
        c = f' class="{cls[i]}"' if i < len(cls) and cls[i] else ""
        if len(row) == 1 and len(head) > 1:
            trs.append(f'<tr{c}><td class="l" colspan="{len(head)}">{row[0]}</td></tr>')
            continue
        trs.append(
            f"<tr{c}>"
            + "".join(f"<td{align(j)}>{cell}</td>" for j, cell in enumerate(row))
            + "</tr>"
        )
    body = "".join(trs)
    return (
        f'<div class="tablewrap"><table><thead><tr>{ths}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _card(
    label: str, value: str, unit: str = "", sub: str = "", doc: str | None = None, tone: str = ""
) -> str:
    link = doc_link(doc, "def") if doc else ""
    u = f"<small>{esc(unit)}</small>" if unit and value != "–" else ""
    cls = f"card {tone}".strip()
    return (
        f'<div class="{cls}"><div class="k"><span>{esc(label)}</span>{link}</div>'
        f'<div class="v">{esc(value)}{u}</div><div class="s">{sub}</div></div>'
    )


def _meta(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in items if v)
    return f'<dl class="meta">{cells}</dl>'


def _date(iso: Any) -> str:
    if not iso:
        return ""
    try:
        when = _dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return esc(iso)
    tz = when.tzname() or ""
    return esc(when.strftime("%Y-%m-%d %H:%M:%S") + (f" {tz}" if tz else ""))


def _page(title: str, heading: str, kind: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name in nav)
    toc = f'<nav class="toc">{links}</nav>' if links else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="infermeter {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{PAGE_CSS}{CHART_CSS}</style></head>"
        f'<body><main><header class="top"><div><div class="brand">infermeter · {esc(kind)}</div>'
        f"<h1>{heading}</h1></div>{toc}</header>{body}"
        f"<footer>Generated by infermeter {esc(__version__)}. Every number follows the metric "
        f'contract in <a href="{METRICS_DOC}">{METRICS_DOC}</a>; percentiles interpolate '
        "linearly between order statistics. Charts are inline SVG: hover a point for its "
        "values.</footer></main></body></html>\n"
    )


# --------------------------------------------------------------------------------------
# data for the charts (pure)


def histogram(
    values: Sequence[float], p50: float | None, p99: float | None, target_bins: int | None = None
) -> tuple[list[float], list[int], int, float]:
    """Nice-width bins over the values; a long tail beyond 1.5 × p99 is cut off the axis.
    About 2·n^(1/3) bins (the Rice rule), between 10 and 40, unless ``target_bins``.

    Returns (edges, counts, how many values were beyond the cut, the cut).
    """
    arr = np.asarray(values, dtype=float)
    if target_bins is None:
        target_bins = min(max(round(2 * arr.size ** (1 / 3)), 10), 40)
    lo, hi = float(arr.min()), float(arr.max())
    cut = hi
    if p99 is not None and p50 is not None and arr.size >= 20 and hi > 1.5 * p99 and p99 > lo:
        cut = 1.5 * p99
    if cut <= lo:
        cut = lo + (abs(lo) * 0.1 or 1.0)
    width = nice_step(cut - lo, target_bins)
    start = math.floor(lo / width) * width
    n = max(math.ceil((cut - start) / width - 1e-9), 1)
    if start + n * width <= cut:  # the maximum sits exactly on an edge: give it a bin
        n += 1
    edges = [float(f"{start + i * width:.12g}") for i in range(n + 1)]
    shown = arr[arr <= cut]
    counts, _ = np.histogram(shown, bins=edges)
    return edges, [int(c) for c in counts], int(arr.size - shown.size), cut


def cdf_points(
    values: Sequence[float], max_points: int = CDF_POINTS
) -> tuple[list[tuple[float, float]], bool]:
    """The empirical CDF as (value, % of values ≤ it); exact steps for few values, else
    ``max_points`` quantiles. Returns (points, whether they are steps)."""
    arr = np.sort(np.asarray(values, dtype=float))
    n = arr.size
    if n <= max_points:
        pts = [(float(arr[0]), 0.0)] + [(float(v), 100.0 * (i + 1) / n) for i, v in enumerate(arr)]
        return pts, True
    qs = np.linspace(0, 100, max_points)
    xs = np.percentile(arr, qs)
    return [(float(x), float(q)) for x, q in zip(xs, qs, strict=True)], False


def _stride(n: int, cap: int) -> int:
    return max(1, math.ceil(n / cap))


@dataclass(frozen=True)
class RequestPoints:
    """Per-request points of the timeline, x in seconds since the first measured send."""

    ttft: list[tuple[float, float]]
    e2e: list[tuple[float, float]]
    failed: list[tuple[float, float]]
    ttft_tips: list[str] | None
    e2e_tips: list[str] | None
    failed_tips: list[str] | None
    stride: int


def request_points(records: Sequence[RequestRecord], t0_ns: int) -> RequestPoints:
    """TTFT and E2E of each completed request by its send time; failures at their time to
    failure. Above MAX_SCATTER_POINTS requests, every k-th one is drawn."""
    measured = sorted((r for r in records if r.phase == "measure"), key=lambda r: r.t_send_ns)
    k = _stride(len(measured), MAX_SCATTER_POINTS)
    shown = measured[::k]
    tips = len(shown) <= MAX_TOOLTIPS
    ttft: list[tuple[float, float]] = []
    e2e: list[tuple[float, float]] = []
    failed: list[tuple[float, float]] = []
    t_tips: list[str] = []
    e_tips: list[str] = []
    f_tips: list[str] = []
    for r in shown:
        x = (r.t_send_ns - t0_ns) / 1e9
        if r.ok:
            m = request_metrics(r)
            if m.ttft_ms is None or m.e2e_ms is None:
                continue
            ttft.append((x, m.ttft_ms))
            e2e.append((x, m.e2e_ms))
            if tips:
                t_tips.append(
                    f"request {r.id} sent at {x:.2f} s: TTFT {format_value(m.ttft_ms)} ms"
                )
                e_tips.append(
                    f"request {r.id} sent at {x:.2f} s: E2E {format_value(m.e2e_ms)} ms, "
                    f"{r.n_out} output tokens"
                )
        else:
            y = max(r.t_end_ns - r.t_send_ns, 0) / 1e6
            failed.append((x, y))
            if tips:
                kind = r.error_kind or "error"
                if r.error_kind == "http" and r.http_status is not None:
                    kind = f"http_{r.http_status}"
                f_tips.append(
                    f"request {r.id} sent at {x:.2f} s: failed ({kind}) after {format_value(y)} ms"
                )
    return RequestPoints(
        ttft,
        e2e,
        failed,
        t_tips if tips else None,
        e_tips if tips else None,
        f_tips if tips else None,
        k,
    )


def throughput_series(
    records: Sequence[RequestRecord], t0_ns: int, duration_s: float, target_bins: int = 60
) -> tuple[list[tuple[float, float]], float]:
    """Output tokens per second in bins of a round width, from the chunks' arrival times
    and their token counts (completed requests, as the run's output throughput counts).

    Returns step points (bin start, tok/s), closed at the window's end, and the bin width.
    """
    if duration_s <= 0:
        return [], 0.0
    width = max(nice_step(duration_s, target_bins), 1e-3)
    n = max(math.ceil(duration_s / width - 1e-9), 1)
    tokens = np.zeros(n, dtype=float)
    for r in records:
        if r.phase != "measure" or not r.ok:
            continue
        ks = r.chunk_tokens
        for i, t in enumerate(r.chunk_ns):
            b = min(max(int((t - t0_ns) / 1e9 / width), 0), n - 1)
            tokens[b] += ks[i] if i < len(ks) else 1
    pts: list[tuple[float, float]] = []
    for b in range(n):
        start = b * width
        span = min(width, duration_s - start)
        pts.append((start, tokens[b] / span if span > 0 else 0.0))
    pts.append((duration_s, pts[-1][1]))
    return pts, width


def inflight_series(
    records: Sequence[RequestRecord], t0_ns: int, duration_s: float, width_s: float
) -> list[tuple[float, float]]:
    """Requests in flight (sent, not yet ended), as the time-weighted mean over bins of
    ``width_s``: its mean over the window is the achieved concurrency (Little's law), and
    the instants between one request's end and the next one's send do not draw spikes."""
    events: list[tuple[float, int]] = []
    for r in records:
        if r.phase != "measure":
            continue
        events.append(((r.t_send_ns - t0_ns) / 1e9, 1))
        events.append(((max(r.t_end_ns, r.t_send_ns) - t0_ns) / 1e9, -1))
    if not events or duration_s <= 0 or width_s <= 0:
        return []
    events.sort()
    n = max(math.ceil(duration_s / width_s - 1e-9), 1)
    acc = np.zeros(n, dtype=float)
    level = 0
    for (x0, d), (x1, _) in itertools.pairwise(events):
        level += d
        if level <= 0 or x1 <= x0:
            continue
        b0, b1 = max(int(x0 / width_s), 0), min(int(x1 / width_s), n - 1)
        for b in range(b0, b1 + 1):
            lo, hi = max(x0, b * width_s), min(x1, (b + 1) * width_s)
            if hi > lo:
                acc[b] += level * (hi - lo)
    out = []
    for b in range(n):
        span = min(width_s, duration_s - b * width_s)
        out.append((b * width_s, float(acc[b] / span) if span > 0 else 0.0))
    out.append((duration_s, out[-1][1]))
    return out


def _window(points: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """Points inside [lo, hi] plus the nearest one outside on each side (lines reach the
    edges; the chart clips them)."""
    pts = sorted(points)
    inside = [i for i, p in enumerate(pts) if lo <= p[0] <= hi]
    if not inside:
        before = [p for p in pts if p[0] < lo][-1:]
        after = [p for p in pts if p[0] > hi][:1]
        return before + after if before and after else []
    a, b = max(inside[0] - 1, 0), min(inside[-1] + 1, len(pts) - 1)
    return pts[a : b + 1]


@dataclass(frozen=True)
class TelemetrySeries:
    """Telemetry as time series (x: seconds since the first measured send)."""

    gpu_util: dict[int, list[tuple[float, float]]]
    gpu_mem_gb: dict[int, list[tuple[float, float]]]
    gpu_total_gb: dict[int, float]
    gpu_names: dict[int, str]
    kv_cache_pct: list[tuple[float, float]]
    running: list[tuple[float, float]]
    waiting: list[tuple[float, float]]
    host_cpu: list[tuple[float, float]]
    client_cpu: list[tuple[float, float]]
    server_kind: str | None

    @property
    def empty(self) -> bool:
        return not (
            self.gpu_util or self.kv_cache_pct or self.running or self.host_cpu or self.client_cpu
        )


def telemetry_series(
    samples: Sequence[dict[str, Any]], t0_ns: int, duration_s: float
) -> TelemetrySeries:
    gpu_util: dict[int, list[tuple[float, float]]] = {}
    gpu_mem: dict[int, list[tuple[float, float]]] = {}
    gpu_total: dict[int, float] = {}
    names: dict[int, str] = {}
    kv: list[tuple[float, float]] = []
    running: list[tuple[float, float]] = []
    waiting: list[tuple[float, float]] = []
    host: list[tuple[float, float]] = []
    client: list[tuple[float, float]] = []
    kind: str | None = None

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    for s in samples:
        x = (float(s["t_ns"]) - t0_ns) / 1e9
        src = s.get("source")
        if src == "gpu":
            for g in s.get("gpus") or []:
                if not isinstance(g, dict):
                    continue
                i = int(g.get("index", 0))
                if (u := num(g.get("util_percent"))) is not None:
                    gpu_util.setdefault(i, []).append((x, u))
                if (m := num(g.get("memory_used_bytes"))) is not None:
                    gpu_mem.setdefault(i, []).append((x, m / 1e9))
                if (t := num(g.get("memory_total_bytes"))) is not None:
                    gpu_total[i] = t / 1e9
                if g.get("name"):
                    names[i] = str(g["name"])
        elif src == "server":
            kind = str(s.get("kind") or kind or "") or None
            mapped = s.get("mapped") or {}
            if (v := num(mapped.get("kv_cache_usage"))) is not None:
                kv.append((x, 100 * v))
            if (v := num(mapped.get("requests_running"))) is not None:
                running.append((x, v))
            if (v := num(mapped.get("requests_waiting"))) is not None:
                waiting.append((x, v))
        elif src == "host":
            if (v := num(s.get("cpu_percent"))) is not None:
                host.append((x, v))
            if (v := num(s.get("client_cpu_percent"))) is not None:
                client.append((x, v))

    def w(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return _window(pts, 0.0, duration_s)

    return TelemetrySeries(
        gpu_util={i: p for i, v in sorted(gpu_util.items()) if (p := w(v))},
        gpu_mem_gb={i: p for i, v in sorted(gpu_mem.items()) if (p := w(v))},
        gpu_total_gb=gpu_total,
        gpu_names=names,
        kv_cache_pct=w(kv),
        running=w(running),
        waiting=w(waiting),
        host_cpu=w(host),
        client_cpu=w(client),
        server_kind=kind,
    )


# --------------------------------------------------------------------------------------
# the run report


def render_run_html(run: Run) -> str:
    """The report of one run as a self-contained HTML page (never raises on missing data)."""
    samples = read_telemetry(Path(run.path) / TELEMETRY_FILE)
    return run_page(run.results, run.records, samples, run.metrics.per_request)


def run_page(
    results: dict[str, Any],
    records: Sequence[RequestRecord],
    samples: Sequence[dict[str, Any]],
    per_request: Sequence[Any],
) -> str:
    """The run report from its parts (pure): results.json, records, telemetry samples and
    the per-request metrics of the completed requests."""
    server = results.get("server") or {}
    run_info = results.get("run") or {}
    model = str(server.get("model") or "unknown model")
    kind = str(server.get("kind") or "server")
    heading = f'{esc(model)} <span style="color:#64748b;font-weight:500">on {esc(kind)}</span>'
    sections = [
        ("summary", "Summary", _summary(results)),
        ("verdicts", "Verdicts", _verdicts(results)),
        ("distributions", "Distributions", _distributions(results, per_request)),
        ("timeline", "Timeline", _timeline(results, records, samples)),
    ]
    eff = (results.get("analysis") or {}).get("efficiency")
    if eff:
        sections.append(("speed-of-light", "Speed of light", _speed_of_light(eff, results)))
    body = _run_header(results) + "".join(
        _section(sid, title, html, doc) for sid, title, (html, doc) in sections
    )
    title = f"infermeter run {run_info.get('id') or ''} · {model}".strip()
    return _page(title, heading, "run report", [(s, t) for s, t, _ in sections], body)


def _load_text(cfg: dict[str, Any], summary: dict[str, Any]) -> str:
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
    return f"closed loop, concurrency {conc}" if conc is not None else "–"


def _run_header(results: dict[str, Any]) -> str:
    cfg = results.get("config") or {}
    server = results.get("server") or {}
    workload = results.get("workload") or {}
    summary = results.get("summary") or {}
    run = results.get("run") or {}
    stop = []
    if cfg.get("num_requests") is not None:
        stop.append(f"{cfg['num_requests']:,} requests")
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


def _dist(results: dict[str, Any], name: str) -> dict[str, Any]:
    return dict((results.get("distributions") or {}).get(name) or {})


def _summary(results: dict[str, Any]) -> tuple[str, str | None]:
    s = results.get("summary") or {}
    ttft, tpot, e2e = _dist(results, "ttft_ms"), _dist(results, "tpot_ms"), _dist(results, "e2e_ms")

    def lat(d: dict[str, Any]) -> tuple[str, str]:
        return format_value(d.get("p50")), f"p99 {_ms(d.get('p99'))}" if d.get(
            "count"
        ) else "no completed requests"

    sent = int(s.get("requests_sent") or 0)
    failed = int(s.get("requests_failed") or 0)
    err = float(s.get("error_rate") or 0.0)
    cards = [
        _card("TTFT p50", *lat(ttft)[:1], "ms", lat(ttft)[1], "per_request"),
        _card("TPOT p50", *lat(tpot)[:1], "ms", lat(tpot)[1], "per_request"),
        _card("E2E p50", *lat(e2e)[:1], "ms", lat(e2e)[1], "per_request"),
        _card(
            "Output throughput",
            format_value(s.get("output_token_throughput_tok_s")),
            "tok/s",
            f"total {format_value(s.get('total_token_throughput_tok_s'))} tok/s",
            "aggregates",
        ),
        _card(
            "Request throughput",
            format_value(s.get("request_throughput_rps")),
            "req/s",
            f"{format_value(s.get('request_throughput_rpm'))} req/min",
            "aggregates",
        ),
        _card(
            "Error rate",
            f"{100 * err:.1f}" if sent else "–",
            "%",
            f"{failed:,} of {sent:,} failed",
            "aggregates",
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
                "slo",
                "good" if att == 1.0 else ("bad" if att is not None and att < 0.9 else ""),
            )
        )
    else:
        cards.append(_card("Goodput", "–", "", "no SLO given (--slo)", "slo"))
    target = s.get("target_concurrency")
    cards.append(
        _card(
            "Achieved concurrency",
            format_value(s.get("achieved_concurrency")),
            "",
            f"target {target}" if target is not None else "Little's law: Σ E2E / D",
            "aggregates",
        )
    )
    body = f'<div class="cards">{"".join(cards)}</div>'
    if not sent:
        body += _note("No measured requests in this run: nothing to summarise.")
    return body, "aggregates"


def _slo_table(slo: dict[str, Any]) -> str:
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


def _sla_table(sla: dict[str, Any]) -> str:
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
        doc="analysis",
    )


BAND_COLORS = {"instant": "#16a34a", "fast": "#84cc16", "slow": "#f59e0b", "sluggish": "#dc2626"}
BAND_TEXT = {
    "instant": "< 100 ms",
    "fast": "100–300 ms",
    "slow": "300–1,000 ms",
    "sluggish": "≥ 1 s",
}


def _bands(bands: dict[str, float]) -> str:
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
        "analysis",
    )


def _evidence(ev: dict[str, Any]) -> str:
    parts = []
    for k, v in ev.items():
        if isinstance(v, list):
            v = "; ".join(str(x) for x in v)
        parts.append(f"{esc(k)} = {_num(v) if not isinstance(v, str) else esc(v)}")
    return ", ".join(parts)


SEVERITY_PILLS = {"high": "fail", "medium": "warn"}


def _findings(findings: Sequence[dict[str, Any]]) -> str:
    items = []
    for f in findings:
        sev = str(f.get("severity") or "low")
        ev = f.get("evidence") or {}
        evidence = f'<div class="ev">{_evidence(ev)}</div>' if ev else ""
        items.append(
            f'<div class="callout {esc(sev)}"><span class="t">{esc(f.get("rule"))}</span>'
            f'<span class="pill {SEVERITY_PILLS.get(sev, "na")}">'
            f"{esc(sev)}</span> {esc(f.get('message'))}{evidence}</div>"
        )
    return _panel("Findings", "".join(items), doc="analysis")


def _money(x: Any) -> str:
    if x is None:
        return "–"
    x = float(x)
    return f"{x:,.4f}" if x >= 0.01 else f"{x:.2e}"


def _cost(c: dict[str, Any]) -> str:
    rows = [
        ["per 1M output tokens", _money(c.get("per_million_output_tokens"))],
        ["per 1M total tokens", _money(c.get("per_million_total_tokens"))],
        ["per request", _money(c.get("per_request"))],
    ]
    cap = (
        f'<p class="cap">{c.get("gpus", 1)} GPU × {format_value(c.get("gpu_hourly_price"))} per '
        "GPU-hour, at this run's measured throughput.</p>"
    )
    return _panel("Cost", _table(["", "cost"], rows) + cap, doc="analysis")


def _errors(results: dict[str, Any]) -> str:
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
    return _panel("Failed requests", table, doc="aggregates")


def _verdicts(results: dict[str, Any]) -> tuple[str, str | None]:
    analysis = results.get("analysis") or {}
    panels: list[str] = []
    if results.get("slo"):
        panels.append(_slo_table(results["slo"]))
    if analysis.get("sla"):
        panels.append(_sla_table(analysis["sla"]))
    if analysis.get("ttft_bands"):
        panels.append(_bands(analysis["ttft_bands"]))
    if analysis.get("cost"):
        panels.append(_cost(analysis["cost"]))
    err = _errors(results)
    if err:
        panels.append(err)
    out = f'<div class="grid2">{"".join(panels)}</div>' if panels else ""
    if analysis.get("findings"):
        out += f'<div style="margin-top:16px">{_findings(analysis["findings"])}</div>'
    notes: list[str] = []
    run = results.get("run") or {}
    if run.get("interrupted"):
        notes.append("run interrupted: the figures cover the requests that finished")
    if run.get("aborted"):
        notes.append(f"run aborted: {run['aborted']}")
    notes.extend(str(w) for w in results.get("warnings") or [])
    notes.extend(f"analysis: {n}" for n in analysis.get("notes") or [])
    mm = results.get("input_tokens_mismatch") or {}
    if mm.get("mismatched"):
        notes.append(
            f"input length: {mm['mismatched']} of {mm.get('compared')} prompts differ from the "
            f"target by up to {mm.get('max_abs_difference_tokens')} tokens "
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


def _slo_limits(results: dict[str, Any], metric: str) -> list[float]:
    slo = results.get("slo") or {}
    return [float(t["threshold"]) for t in slo.get("terms") or [] if t.get("metric") == metric]


def distribution_panels(
    name: str, values: Sequence[float], d: dict[str, Any], limits: Sequence[float] = ()
) -> str:
    """Histogram and CDF of one latency metric with its p50/p90/p95/p99 marked."""
    title, label, unit_of_count = DIST_TITLES[name]
    if not values:
        return _panel(title, _note("No completed requests: no values to show."), doc="per_request")
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
    return _panel(title, inner, cap, "per_request")


def _distributions(results: dict[str, Any], per_request: Sequence[Any]) -> tuple[str, str | None]:
    values: dict[str, list[float]] = {"ttft_ms": [], "tpot_ms": [], "itl_ms": [], "e2e_ms": []}
    for m in per_request:
        for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
            v = getattr(m, key, None)
            if v is not None:
                values[key].append(float(v))
        values["itl_ms"].extend(float(x) for x in getattr(m, "itl_ms", ()) or ())
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
    results: dict[str, Any], records: Sequence[RequestRecord], samples: Sequence[dict[str, Any]]
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
            "aggregates",
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
    if s.get("target_concurrency"):
        cl.append(
            HLine(
                float(s["target_concurrency"]),
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
            "aggregates",
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
                "telemetry",
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
                "telemetry",
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
                "telemetry",
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
                "The host's CPU use and the load generator's own (a client near 100 % of a core "
                "may be the bottleneck).",
                "telemetry",
            )
        )
    return panels


def _speed_of_light(eff: dict[str, Any], results: dict[str, Any]) -> tuple[str, str | None]:
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
            100 * float(eff[key]),
            color,
            f"{label}: {100 * float(eff[key]):.4g} % of peak",
            f"{100 * float(eff[key]):.3g} %",
        )
        for key, label, color in (
            ("mbu", "MBU (decode)", PURPLE),
            ("mfu_decode", "MFU (decode)", BLUE),
            ("mfu_prefill", "MFU (prefill)", ORANGE),
        )
        if eff.get(key) is not None and float(eff[key]) > 0
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
            "analysis",
        )
        + _panel(
            "Hardware utilisation",
            util,
            "MBU: bytes moved per decode step / TPOT / peak bandwidth; "
            "MFU: FLOP/s achieved / peak.",
            "analysis",
        )
        + f'</div><p class="cap" style="color:#64748b;font-size:12.5px">{hw}. '
        "Bounds: see docs/theory.md.</p>"
    )
    return body, "analysis"


# --------------------------------------------------------------------------------------
# sweeps


def load_sweep(sweep_dir: Path) -> dict[str, Any]:
    """A sweep directory's sweep.json (UsageError when it is missing or unreadable)."""
    path = Path(sweep_dir) / SWEEP_FILE
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE})") from None
    except orjson.JSONDecodeError:
        raise UsageError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a sweep description")
    return data


def point_links(sweep_dir: Path, sweep: dict[str, Any]) -> dict[int, str]:
    """index -> relative link to the point's own report.html, where one exists."""
    links: dict[int, str] = {}
    for p in sweep.get("points") or []:
        d = p.get("dir")
        if d and (Path(sweep_dir) / str(d) / POINT_REPORT).exists():
            links[int(p.get("index", -1))] = f"{d}/{POINT_REPORT}"
    return links


def render_sweep_html(sweep_dir: Path) -> str:
    """The report of a sweep (or capacity search) directory as one HTML page."""
    sweep = load_sweep(Path(sweep_dir))
    return sweep_page(sweep, point_links(Path(sweep_dir), sweep), name=Path(sweep_dir).name)


def _pv(p: dict[str, Any], variable: str) -> float | None:
    v = p.get(variable)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _lat(p: dict[str, Any], metric: str, pct: str) -> float | None:
    v = ((p.get("latency") or {}).get(metric) or {}).get(pct)
    return float(v) if isinstance(v, (int, float)) else None


def _sum(p: dict[str, Any], key: str) -> float | None:
    v = (p.get("summary") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _point_label(p: dict[str, Any], variable: str) -> str:
    v = _pv(p, variable)
    if v is None:
        return Path(str(p.get("dir") or f"point {p.get('index')}")).name
    return f"concurrency {v:g}" if variable == "concurrency" else f"{v:g} req/s"


def _unit_of(variable: str) -> str:
    return (
        "concurrency (requests in flight)" if variable == "concurrency" else "offered rate (req/s)"
    )


def _sla_limits(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    sla = sweep.get("sla") or {}
    return [
        lim
        for lim in sla.get("limits") or []
        if isinstance(lim, dict) and lim.get("max") is not None
    ]


def _sweep_metrics(sweep: dict[str, Any]) -> list[str]:
    metrics = ["ttft_ms", "tpot_ms"]
    for lim in _sla_limits(sweep):
        m = str(lim.get("metric"))
        if m not in metrics and m in METRIC_SHORT:
            metrics.append(m)
    return metrics


def _pcts_for(metric: str, sweep: dict[str, Any]) -> list[str]:
    pcts = ["p50", "p99"]
    for lim in _sla_limits(sweep):
        if lim.get("metric") == metric and lim.get("percentile") is not None:
            key = f"p{float(lim['percentile']):g}"
            if key not in pcts and key in PERCENTILE_COLORS:
                pcts.insert(1, key)
    return pcts


def _sla_layers(
    sweep: dict[str, Any], metric: str, data_max: float | None = None
) -> tuple[list[Layer], str]:
    """The SLA limit on ``metric`` as a line over a shaded "within" region; a limit far
    above every point (more than 3 × the highest) is named in a caption instead, so that it
    does not flatten the curves. Returns (layers, caption)."""
    out: list[Layer] = []
    notes: list[str] = []
    for lim in _sla_limits(sweep):
        if lim.get("metric") != metric:
            continue
        pct = lim.get("percentile")
        name = METRIC_SHORT.get(metric, metric)
        limit = float(lim["max"])
        prefix = f"p{float(pct):g} " if pct is not None else ""
        what = f"{prefix}{name} ≤ {format_value(limit)} ms"
        if data_max is not None and data_max > 0 and limit > 3 * data_max:
            notes.append(f"The SLA limit ({what}) is far above every point, off this axis.")
            continue
        out.append(Region(y0=0.0, y1=limit, color=GREEN, label="within the SLA", opacity=0.07))
        out.append(HLine(limit, f"SLA: {what}", GREEN, "6 4"))
    return out, " ".join(notes)


def _latency_values(
    points: Sequence[dict[str, Any]], metric: str, pcts: Sequence[str]
) -> list[float]:
    return [v for p in points for pct in pcts if (v := _lat(p, metric, pct)) is not None]


def _latency_max(
    points: Sequence[dict[str, Any]], metric: str, pcts: Sequence[str]
) -> float | None:
    vals = _latency_values(points, metric, pcts)
    return max(vals) if vals else None


def _latency_axis(name: str, values: Sequence[float]) -> Axis:
    """Linear from zero, or log when the values span more than 50× (a saturated point's
    seconds would flatten the others' milliseconds)."""
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > 50:
        return Axis(f"{name} (ms, log scale)", log=True)
    return Axis(f"{name} (ms)", include_zero=True, headroom=0.1)


def _var(v: float | None) -> str:
    return "–" if v is None else f"{v:g}"


def _capacity_point(sweep: dict[str, Any]) -> tuple[int | None, int | None]:
    cap = sweep.get("capacity") or {}
    pi, fi = cap.get("pass_index"), cap.get("fail_index")
    return (int(pi) if isinstance(pi, int) else None, int(fi) if isinstance(fi, int) else None)


def _curve_layers(
    points: Sequence[dict[str, Any]],
    xkey: str,
    metric: str,
    pcts: Sequence[str],
    variable: str,
    color_by_pct: bool = True,
    color: str = BLUE,
    name_prefix: str = "",
) -> list[Layer]:
    """One line per percentile through the points (ordered by the swept variable)."""
    ordered = sorted(points, key=lambda p: (_pv(p, variable) is None, _pv(p, variable) or 0.0))
    layers: list[Layer] = []
    for pct in pcts:
        xy: list[tuple[float, float]] = []
        tips: list[str] = []
        for p in ordered:
            xv = _pv(p, variable) if xkey == variable else _sum(p, xkey)
            yv = _lat(p, metric, pct)
            if xv is None or yv is None:
                continue
            xy.append((xv, yv))
            meets = p.get("meets_sla")
            verdict = "" if meets is None else ("meets the SLA" if meets else "misses the SLA")
            tips.append(
                f"{_point_label(p, variable)}: {pct} {METRIC_SHORT.get(metric, metric)} "
                f"{format_value(yv)} ms at "
                f"{format_value(_sum(p, 'output_token_throughput_tok_s'))} tok/s, "
                f"{format_value(_sum(p, 'request_throughput_rps'))} req/s"
                + (f"; {verdict}" if verdict else "")
            )
        if not xy:
            continue
        c = PERCENTILE_COLORS.get(pct, color) if color_by_pct else color
        dash = "5 3" if pct == "p50" else ""
        layers.append(
            Line(xy, c, f"{name_prefix}{pct}", 2.0, dash, dots=True, marker="circle", tips=tips)
        )
    return layers


def _highlight(
    sweep: dict[str, Any],
    points: Sequence[dict[str, Any]],
    xkey: str,
    metric: str,
    pcts: Sequence[str],
    variable: str,
) -> list[Layer]:
    pi, fi = _capacity_point(sweep)
    by_index = {int(p.get("index", -1)): p for p in points}
    out: list[Layer] = []
    for idx, color, name in ((pi, GREEN, "capacity point"), (fi, RED, "first point past it")):
        p = by_index.get(idx) if idx is not None else None
        if p is None:
            continue
        xv = _pv(p, variable) if xkey == variable else _sum(p, xkey)
        pts = [
            (xv, y) for pct in pcts if xv is not None and (y := _lat(p, metric, pct)) is not None
        ]
        if pts:
            out.append(Scatter(pts, color, name, "ring", 7.5, None, 1.0))
    return out


def sweep_charts(sweep: dict[str, Any]) -> str:
    points = [p for p in sweep.get("points") or [] if isinstance(p, dict)]
    variable = str(sweep.get("variable") or "concurrency")
    values = [v for p in points if (v := _pv(p, variable)) is not None and v > 0]
    log_x = variable == "concurrency" and bool(values) and max(values) / min(values) >= 8
    var_ticks = sorted(set(values)) if log_x and len(set(values)) <= 12 else None
    cap = sweep.get("capacity") or {}
    panels: list[str] = []
    for xkey in ("output_token_throughput_tok_s", variable):
        for metric in _sweep_metrics(sweep):
            pcts = _pcts_for(metric, sweep)
            name = METRIC_SHORT.get(metric, metric)
            sla_layers, sla_note = _sla_layers(sweep, metric, _latency_max(points, metric, pcts))
            layers = sla_layers + _curve_layers(points, xkey, metric, pcts, variable)
            layers += _highlight(sweep, points, xkey, metric, pcts, variable)
            if xkey == variable:
                xa = Axis(
                    _unit_of(variable) + (", log scale" if log_x else ""),
                    log=log_x,
                    ticks=var_ticks,
                    include_zero=not log_x,
                )
                if cap.get("value") is not None and cap.get("variable", variable) == variable:
                    layers.append(
                        VLine(
                            float(cap["value"]),
                            f"capacity {_var(float(cap['value']))}",
                            GREEN,
                            "3 3",
                        )
                    )
                title = f"{name} vs {variable}"
                caption = ""
            else:
                xa = Axis("output throughput (tok/s)", include_zero=True)
                title = f"{name} vs output throughput"
                caption = f"One dot per point; the lines join them in order of {esc(variable)}. "
            chart = render_chart(
                Chart(
                    f"sw-{metric}-{'load' if xkey == variable else 'tput'}",
                    xa,
                    _latency_axis(name, _latency_values(points, metric, pcts)),
                    layers,
                    HALF,
                    320,
                    empty_note="no points with latency figures",
                )
            )
            panels.append(_panel(title, chart, caption + esc(sla_note), "per_request"))
    # throughput against load
    ordered = sorted(points, key=lambda p: _pv(p, variable) or 0.0)
    tput = [
        (v, y)
        for p in ordered
        if (v := _pv(p, variable)) is not None
        and (y := _sum(p, "output_token_throughput_tok_s")) is not None
    ]
    rps = [
        (v, y)
        for p in ordered
        if (v := _pv(p, variable)) is not None
        and (y := _sum(p, "request_throughput_rps")) is not None
    ]
    xa = Axis(
        _unit_of(variable) + (", log scale" if log_x else ""),
        log=log_x,
        ticks=var_ticks,
        include_zero=not log_x,
    )
    t_layers: list[Layer] = [
        Line(
            tput,
            BLUE,
            "output tok/s",
            2.0,
            dots=True,
            tips=[f"{format_value(y)} tok/s at {variable} {v:g}" for v, y in tput],
        )
    ]
    r_layers: list[Layer] = [
        Line(
            rps,
            TEAL,
            "completed req/s",
            2.0,
            dots=True,
            tips=[f"{format_value(y)} req/s at {variable} {v:g}" for v, y in rps],
        )
    ]
    if variable == "rate" and rps:
        top = max(max(v for v, _ in rps), max(y for _, y in rps))
        r_layers.insert(0, Line([(0.0, 0.0), (top, top)], GREY, "achieved = offered", 1.2, "4 4"))
    if cap.get("value") is not None and cap.get("variable", variable) == variable:
        for ls in (t_layers, r_layers):
            ls.append(
                VLine(float(cap["value"]), f"capacity {_var(float(cap['value']))}", GREEN, "3 3")
            )
    panels.append(
        _panel(
            "Output throughput vs " + variable,
            render_chart(
                Chart(
                    "sw-tput",
                    xa,
                    Axis("output throughput (tok/s)", include_zero=True),
                    t_layers,
                    HALF,
                    300,
                )
            ),
            "",
            "aggregates",
        )
    )
    panels.append(
        _panel(
            "Request throughput vs " + variable,
            render_chart(
                Chart(
                    "sw-rps",
                    xa,
                    Axis("request throughput (req/s)", include_zero=True),
                    r_layers,
                    HALF,
                    300,
                )
            ),
            "",
            "aggregates",
        )
    )
    return f'<div class="grid2">{"".join(panels)}</div>'


def sweep_table(sweep: dict[str, Any], links: dict[int, str]) -> str:
    points = [p for p in sweep.get("points") or [] if isinstance(p, dict)]
    variable = str(sweep.get("variable") or "concurrency")
    pi, _ = _capacity_point(sweep)
    head = [
        "point",
        esc(variable),
        "status",
        "req/s",
        "output tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "TPOT p99",
        "errors",
        "SLA",
    ]
    rows, classes = [], []
    for p in points:
        idx = int(p.get("index", -1))
        name = esc(Path(str(p.get("dir") or idx)).name)
        if idx in links:
            name = f'<a href="{esc(links[idx])}">{name}</a>'
        role = str(p.get("role") or "point")
        if role != "point":
            name += f' <span class="pill na">{esc(role)}</span>'
        if idx == pi:
            name += ' <span class="pill pass">capacity</span>'
        status = str(p.get("status") or "ok")
        err = _sum(p, "error_rate")
        rows.append(
            [
                name,
                _var(_pv(p, variable)),
                '<span class="pill pass">ok</span>'
                if status == "ok"
                else f'<span class="pill warn">{esc(status)}</span>',
                _num(_sum(p, "request_throughput_rps")),
                _num(_sum(p, "output_token_throughput_tok_s")),
                _ms(_lat(p, "ttft_ms", "p50")),
                _ms(_lat(p, "ttft_ms", "p99")),
                _ms(_lat(p, "tpot_ms", "p50")),
                _ms(_lat(p, "tpot_ms", "p99")),
                "–" if err is None else f"{100 * err:.1f} %",
                _pill(p.get("meets_sla"), "meets", "misses", "–"),
            ]
        )
        classes.append("hl" if idx == pi else "")
    if not rows:
        return _note("This sweep has no points yet.")
    return _table(head, rows, classes)


def sweep_page(sweep: dict[str, Any], links: dict[int, str], name: str = "") -> str:
    """The sweep report from its sweep.json (pure): table, curves, SLA region, capacity."""
    variable = str(sweep.get("variable") or "concurrency")
    kind = str(sweep.get("kind") or "sweep")
    points = [p for p in sweep.get("points") or [] if isinstance(p, dict)]
    sla = sweep.get("sla") or {}
    stopped = sweep.get("stopped") or {}
    cap = sweep.get("capacity") or {}
    first = points[0] if points else {}
    meta = [
        (
            "kind",
            esc("capacity search" if kind == "search" else "sweep") + f" over {esc(variable)}",
        ),
        ("started", _date(sweep.get("started_at"))),
        ("points", f"{len(points)}"),
        (
            "workload",
            f"{esc(first.get('input_tokens', '?'))} in / "
            f"{esc(first.get('output_tokens', '?'))} out tokens"
            if first
            else "",
        ),
        (
            "SLA",
            (
                esc(sla.get("criterion") or sla.get("text") or "")
                + (
                    f" · at least {_pct(sla.get('min_attainment'), 0)} of requests"
                    if sla.get("min_attainment") is not None
                    else ""
                )
                + f" ({esc(sla.get('source') or '')})"
            )
            if sla
            else "none",
        ),
        (
            "stopped",
            esc(stopped.get("reason") or "ran to the end")
            + (f": {esc(stopped.get('detail'))}" if stopped.get("detail") else ""),
        ),
        ("infermeter", esc(sweep.get("infermeter_version") or "")),
    ]
    cards: list[str] = []
    if cap.get("value") is not None:
        unit = "req/s" if cap.get("variable", variable) == "rate" else "in flight"
        cards.append(
            _card(
                "Capacity",
                _var(float(cap["value"])),
                unit,
                esc(cap.get("note") or cap.get("criterion") or ""),
                tone="good",
            )
        )
    elif sweep.get("capacity") is None and sla:
        cards.append(
            _card(
                "Capacity", "–", "", "no point met the SLA" if points else "no points", tone="bad"
            )
        )
    tputs = [(y, p) for p in points if (y := _sum(p, "output_token_throughput_tok_s")) is not None]
    if tputs:
        best, bp = max(tputs, key=lambda t: t[0])
        cards.append(
            _card(
                "Peak output throughput",
                format_value(best),
                "tok/s",
                f"at {esc(_point_label(bp, variable))}",
                "aggregates",
            )
        )
    rpss = [(y, p) for p in points if (y := _sum(p, "request_throughput_rps")) is not None]
    if rpss:
        best, bp = max(rpss, key=lambda t: t[0])
        cards.append(
            _card(
                "Peak request throughput",
                format_value(best),
                "req/s",
                f"at {esc(_point_label(bp, variable))}",
                "aggregates",
            )
        )
    lows = [(y, p) for p in points if (y := _lat(p, "ttft_ms", "p50")) is not None]
    if lows:
        best, bp = min(lows, key=lambda t: t[0])
        cards.append(
            _card(
                "Lowest TTFT p50",
                format_value(best),
                "ms",
                f"at {esc(_point_label(bp, variable))}",
                "per_request",
            )
        )
    sections = [
        ("points", "Points", sweep_table(sweep, links)),
        (
            "curves",
            "Latency and throughput",
            sweep_charts(sweep) if points else _note("No points yet."),
        ),
    ]
    body = _meta(meta) + (
        f'<div class="cards" style="margin-top:18px">{"".join(cards)}</div>' if cards else ""
    )
    body += "".join(_section(sid, title, html) for sid, title, html in sections)
    title = f"infermeter {kind} {name}".strip()
    heading = f"{'Capacity search' if kind == 'search' else 'Sweep'} over {esc(variable)}" + (
        f' <span style="color:#64748b;font-weight:500">{esc(name)}</span>' if name else ""
    )
    return _page(title, heading, f"{kind} report", [(s, t) for s, t, _ in sections], body)


# --------------------------------------------------------------------------------------
# comparisons


def _ratio_cell(ratio: float | None, better: str | None, baseline: bool) -> str:
    if baseline:
        return '<span class="same">baseline</span>'
    if ratio is None or not math.isfinite(ratio):
        return '<span class="same">–</span>'
    verdict = ratio_verdict(ratio, better if better in ("higher", "lower") else None)  # type: ignore[arg-type]
    return f'<span class="{verdict or "same"}">{esc(format_ratio(ratio))}</span>'


def _compare_value(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "fraction":
        return _pct(float(value), 2)
    if unit == "per 1M tok":
        return _money(value)
    return _num(float(value))


def compare_table(comparison: dict[str, Any]) -> str:
    """Rows of the comparison with each value's ratio to the baseline, coloured better or
    worse; a sweep comparison's rows are grouped under their load point."""
    items = comparison.get("items") or []
    base = int(comparison.get("baseline") or 0)
    head = ["metric"] + [
        f'<span class="raw">{esc(it.get("label") or f"#{i}")}</span>'
        + (' <span class="pill na">baseline</span>' if i == base else "")
        for i, it in enumerate(items)
    ]
    rows: list[list[str]] = []
    classes: list[str] = []
    group: str | None = None
    for r in comparison.get("rows") or []:
        unit = str(r.get("unit") or "")
        label = str(r.get("label") or r.get("metric"))
        point = r.get("point")
        if point is not None:
            if point != group:
                rows.append([esc(point)])
                classes.append("group")
                group = str(point)
            label = label.removeprefix(f"{point} ")
        shown_unit = (
            f' <span class="same">({esc(unit)})</span>'
            if unit and unit not in ("fraction", "per 1M tok")
            else ""
        )
        arrow = {"higher": " ↑", "lower": " ↓"}.get(str(r.get("better")), "")
        cells = [f'{esc(label)}{shown_unit}<span class="same">{arrow}</span>']
        values = list(r.get("values") or [])
        ratios = list(r.get("ratios") or [])
        notes = list(r.get("notes") or [])
        for i in range(len(items)):
            v = values[i] if i < len(values) else None
            q = ratios[i] if i < len(ratios) else None
            note = notes[i] if i < len(notes) and notes[i] else ""
            extra = (
                f'<br><span class="same" style="font-size:11.5px">{esc(note)}</span>'
                if note
                else ""
            )
            cells.append(
                f"{_compare_value(v, unit)}<br>{_ratio_cell(q, r.get('better'), i == base)}{extra}"
            )
        rows.append(cells)
        classes.append("")
    if not rows:
        return _note("Nothing to compare.")
    return _table(head, rows, classes)


def compare_page(
    comparison: dict[str, Any], sweeps: Sequence[tuple[str, dict[str, Any] | None]]
) -> str:
    """The comparison (pure): a table of ratios to the baseline and overlaid sweep curves."""
    items = comparison.get("items") or []
    base = int(comparison.get("baseline") or 0)
    rows = [
        [
            esc(i),
            esc(it.get("label") or ""),
            esc(it.get("kind") or "run"),
            f'<span style="overflow-wrap:anywhere">{esc(it.get("path") or "")}</span>',
        ]
        for i, it in enumerate(items)
    ]
    body = _section(
        "items",
        "Compared",
        _table(
            ["#", "label", "kind", "path"],
            rows,
            ["hl" if i == base else "" for i in range(len(rows))],
            left=(0, 1, 2, 3),
        ),
    )
    body += _section(
        "table",
        "Metrics",
        compare_table(comparison)
        + '<p class="cap" style="color:#64748b;font-size:12.5px">Ratio to the baseline; '
        '<span class="better">green</span> is better, <span class="worse">red</span> worse '
        "(by more than 2 %); ↑ higher is better, ↓ lower is better.</p>",
        "aggregates",
    )
    diffs = comparison.get("differences") or []
    body += _section(
        "differences",
        "Configuration differences",
        '<div class="panel"><ul class="plain">'
        + "".join(f"<li>{esc(d)}</li>" for d in diffs)
        + "</ul></div>"
        if diffs
        else _note("The compared runs were configured alike (same workload and load settings)."),
    )
    nav = [("items", "Compared"), ("table", "Metrics"), ("differences", "Differences")]
    if sweeps:
        body += _section("curves", "Sweep curves", overlay_charts(sweeps), "per_request")
        nav.append(("curves", "Curves"))
    labels = " vs ".join(str(it.get("label") or "?") for it in items[:4])
    return _page(
        f"infermeter comparison: {labels}", esc(labels or "comparison"), "comparison", nav, body
    )


def overlay_charts(sweeps: Sequence[tuple[str, dict[str, Any] | None]]) -> str:
    """The sweeps' latency-throughput curves on shared axes, one colour per sweep."""
    notes = [f"{esc(label)}: no readable sweep.json" for label, s in sweeps if s is None]
    loaded = [(label, s) for label, s in sweeps if s is not None]
    panels = []
    for metric in ("ttft_ms", "tpot_ms"):
        layers: list[Layer] = []
        for i, (label, s) in enumerate(loaded):
            color = PALETTE[i % len(PALETTE)]
            points = [p for p in s.get("points") or [] if isinstance(p, dict)]
            variable = str(s.get("variable") or "concurrency")
            for pct, dash in (("p99", ""), ("p50", "5 3")):
                ls = _curve_layers(
                    points,
                    "output_token_throughput_tok_s",
                    metric,
                    [pct],
                    variable,
                    color_by_pct=False,
                    color=color,
                    name_prefix=f"{label} ",
                )
                layers.extend(
                    Line(la.points, color, la.name, 2.0, dash, dots=True, tips=la.tips)
                    for la in ls
                    if isinstance(la, Line)
                )
            pi, _ = _capacity_point(s)
            for p in points:
                if pi is not None and int(p.get("index", -1)) == pi:
                    x = _sum(p, "output_token_throughput_tok_s")
                    y = _lat(p, metric, "p99")
                    if x is not None and y is not None:
                        layers.append(
                            Scatter([(x, y)], color, f"{label} capacity", "ring", 7.5, None, 1.0)
                        )
        limits = {
            float(lim["max"])
            for _, s in loaded
            for lim in _sla_limits(s)
            if lim.get("metric") == metric
        }
        if len(limits) == 1 and len(loaded) == len([s for _, s in loaded if _sla_limits(s)]):
            layers = [*_sla_layers(loaded[0][1], metric)[0], *layers]
        name = METRIC_SHORT[metric]
        panels.append(
            _panel(
                f"{name} vs throughput",
                render_chart(
                    Chart(
                        f"cmp-{metric}",
                        Axis("output throughput (tok/s)", include_zero=True),
                        _latency_axis(
                            name,
                            [
                                y
                                for la in layers
                                if isinstance(la, (Line, Scatter))
                                for _, y in la.points
                            ],
                        ),
                        layers,
                        HALF,
                        340,
                        empty_note="no sweep points",
                    )
                ),
                "Solid: p99; dashed: p50; rings: each sweep's capacity point.",
                "per_request",
            )
        )
    out = f'<div class="grid2">{"".join(panels)}</div>'
    if notes:
        out += _note("<br>".join(notes))
    return out


def render_compare_html(comparison: dict[str, Any], sweeps: list[tuple[str, Path]]) -> str:
    """The comparison built by report/compare.py as one HTML page; ``sweeps`` (label, dir)
    adds their curves overlaid."""
    loaded: list[tuple[str, dict[str, Any] | None]] = []
    for label, path in sweeps:
        try:
            loaded.append((label, load_sweep(Path(path))))
        except UsageError:
            loaded.append((label, None))
    return compare_page(comparison, loaded)
