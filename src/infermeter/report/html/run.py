"""The run report's page: its heading, run facts and summary cards, assembled from the
sections of :mod:`~infermeter.report.html.verdicts`, :mod:`~infermeter.report.html.charts_run`
and :mod:`~infermeter.report.html.speed`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from infermeter.metrics.aggregate import RunMetrics
from infermeter.metrics.columns import RequestColumns
from infermeter.metrics.table import RequestTable
from infermeter.records.rundir import TELEMETRY_FILE, read_telemetry
from infermeter.report.charts import (
    esc,
    format_value,
)
from infermeter.report.html.charts_run import _distributions, _timeline
from infermeter.report.html.page import (
    _card,
    _date,
    _dist,
    _meta,
    _ms,
    _note,
    _page,
    _pct,
    _section,
    _table,
)
from infermeter.report.html.speed import _speed_of_light
from infermeter.report.html.verdicts import _server_view, _verdicts
from infermeter.report.labels import (
    TURN_COLUMNS,
    sessions_line,
    sessions_load,
    simulated_replicas,
    trace_load,
    turn_rows,
)
from infermeter.schema.results import Results, Sessions
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
    def metrics(self) -> RunMetrics: ...


def render_run_html(run: RunView) -> str:
    """The report of one run as a self-contained HTML page (never raises on missing data)."""
    samples = read_telemetry(Path(run.path) / TELEMETRY_FILE)
    return run_page(run.results, run.metrics.table, samples, run.metrics.requests)


def run_page(
    results: Results,
    table: RequestTable,
    samples: Sequence[dict[str, Any]],
    requests: RequestColumns,
) -> str:
    """The run report from its parts (pure): results.json, the measured requests as columns,
    telemetry samples and the per-request metrics of the completed requests."""
    server = results.get("server")
    run_info = results.get("run")
    model = str((server.get("model") if server else None) or "unknown model")
    kind = str((server.get("kind") if server else None) or "server")
    heading = f'{esc(model)} <span style="color:#64748b;font-weight:500">on {esc(kind)}</span>'
    if results.get("predicted"):
        heading += ' <span style="color:#b45309;font-weight:600">· predicted, not measured</span>'
        replicas = simulated_replicas(results.get("prediction"))
        if replicas:
            heading += f' <span style="color:#64748b;font-weight:500">· {esc(replicas)}</span>'
    sections = [
        ("summary", "Summary", _summary(results)),
        ("verdicts", "Verdicts", _verdicts(results)),
        ("distributions", "Distributions", _distributions(results, requests)),
        ("timeline", "Timeline", _timeline(results, table, samples)),
    ]
    sessions = results.get("sessions")
    if sessions:
        sections.insert(3, ("sessions", "Sessions, by turn", _sessions(sessions)))
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


def _sessions(sessions: Sessions) -> tuple[str, str | None]:
    """A multi-turn run: how long its sessions took, and each turn's TTFT, TPOT and cache
    share (a prefix cache shows as TTFT that does not grow with the conversation)."""
    rows = [[esc(cell) for cell in row] for row in turn_rows(sessions)]
    return (
        _note(esc(sessions_line(sessions)) + ".") + _table(TURN_COLUMNS, rows),
        "per_request",
    )


def _load_text(
    cfg: dict[str, Any], summary: Mapping[str, object], workload: Mapping[str, Any]
) -> str:
    replay = trace_load(workload, cfg.get("max_concurrency")) or sessions_load(workload, cfg)
    if replay is not None:
        return replay
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
    if workload.get("kind") == "sessions":
        per_turn = esc(workload.get("input_tokens") or "?")
        wl = f"conversations: each turn a new message of {per_turn} tokens, " + (
            f"{esc(workload.get('output_tokens') or '?')} out"
        )
    elif workload.get("kind") == "trace":
        wl = f"trace {esc(Path(str(workload.get('path') or '')).name)}, lengths from the trace"
    elif workload.get("kind") == "dataset" or cfg.get("dataset"):
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
        (
            "load",
            esc(_load_text(cfg, summary, workload))
            + (f" · {esc(', '.join(stop))}" if stop else ""),
        ),
        ("workload", f"{wl} · {esc(cfg.get('api') or 'chat')} API"),
        (
            "simulated window" if results.get("predicted") else "measured window",
            f"{format_value(summary.get('duration_s'))} s",
        ),
        ("status", status),
    ]
    return _meta(items)


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
