"""The run report's verdicts: SLO and SLA tables, TTFT bands, findings, cost, failures, warnings,
and the server's own view beside infermeter's (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infermeter.report.charts import (
    GREY,
    esc,
    format_value,
)
from infermeter.report.html.page import (
    METRIC_SHORT,
    _dist,
    _meta,
    _ms,
    _note,
    _num,
    _panel,
    _pct,
    _pill,
    _table,
)
from infermeter.report.labels import p99_bounds_note
from infermeter.schema.results import (
    Cost,
    Finding,
    Results,
    ServerTelemetry,
    SLAVerdict,
    SLOResult,
    TtftBands,
)
from infermeter.text import counted


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
    if bounds := p99_bounds_note(results.get("distributions") or {}):
        notes.append(bounds)
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
