"""Plain renderers of a results document: JSON, CSV and Markdown."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any, cast

import orjson

from infermeter.report.labels import (
    DIST_LABELS,
    SUMMARY_LABELS,
    TURN_COLUMNS,
    p99_bounds_note,
    sessions_line,
    sessions_load,
    trace_load,
    turn_rows,
)
from infermeter.schema.results import Results, ServerInfo, statistic
from infermeter.schema.sweep import SweepIndex
from infermeter.text import counted

STAT_COLUMNS = ("count", "mean", "std", "min", "p50", "p90", "p95", "p99", "max")


def to_json(document: Mapping[str, object]) -> str:
    """A document (results.json, sweep.json, a comparison) as indented JSON."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def to_csv(results: Results) -> str:
    """One rectangular table: summary figures fill ``value``, distributions the stat columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("metric", "value", *STAT_COLUMNS))
    for key, value in results["summary"].items():
        writer.writerow((key, "" if value is None else value, *[""] * len(STAT_COLUMNS)))
    for name, dist in results["distributions"].items():
        writer.writerow(
            (name, "", *("" if dist.get(c) is None else dist.get(c) for c in STAT_COLUMNS))
        )
    return buf.getvalue()


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _load_line(results: Results) -> str:
    """``concurrency 4, 200 requests, warm-up 8 requests`` (or a rate, a duration)."""
    s, cfg = results.get("summary") or {}, results.get("config") or {}
    rate = s.get("target_rate_rps", cfg.get("rate"))
    replay = trace_load(results.get("workload"), cfg.get("max_concurrency")) or sessions_load(
        results.get("workload"), cfg
    )
    if replay is not None:
        load = replay
    elif rate is not None:
        load = f"rate {rate:g} req/s ({cfg.get('arrival') or 'poisson'} arrivals)"
        if cfg.get("max_concurrency") is not None:
            load += f", at most {cfg['max_concurrency']} in flight"
    else:
        load = f"concurrency {s.get('target_concurrency', cfg.get('concurrency'))}"
    parts = [load]
    if cfg.get("num_requests") is not None and replay is None:
        parts.append(counted(int(cfg["num_requests"]), "request"))
    if cfg.get("duration_s") is not None:
        parts.append(f"{float(cfg['duration_s']):g} s")
    if cfg.get("ramp_up_s"):
        parts.append(f"ramp-up {float(cfg['ramp_up_s']):g} s")
    warmup = int(cfg.get("warmup") or 0)
    parts.append(f"warm-up {counted(warmup, 'request')}" if warmup else "no warm-up")
    return ", ".join(parts)


def _lengths_line(results: Results, key: str, dist_name: str) -> str:
    """What was asked for (a length or a distribution) and the measured mean."""
    workload, cfg = results.get("workload") or {}, results.get("config") or {}
    asked = workload.get(key, cfg.get(key))
    measured = results["distributions"].get(dist_name)
    text = str(asked) if asked is not None else "-"
    if workload.get("kind") == "trace":
        text = "from the trace"
    elif workload.get("kind") not in (None, "synthetic"):
        text = f"from {workload['kind']} dataset"
    if measured and measured["count"]:
        seen = "simulated" if results.get("predicted") else "measured"
        text += f" ({seen} mean {_fmt(measured['mean'], 1)})"
    return text


def _version_beside(server: ServerInfo | None) -> object:
    """A version given beside the server's details rather than in them (older documents)."""
    return cast("Mapping[str, object]", server).get("version") if server else None


def _context(results: Results) -> list[str]:
    """The lines a reader of a pasted report needs to judge the numbers."""
    server, cfg = results.get("server"), results.get("config") or {}
    details = (server.get("details") if server else None) or {}
    version = _version_beside(server) or details.get("version") or details.get("build_info")
    where = (server.get("url") if server else None) or cfg.get("url") or "?"
    srv = f"{(server['kind'] if server else None) or 'unknown'} at {where}"
    if version:
        srv += f" (version {version})"
    model = (server.get("model") if server else None) or cfg.get("model") or "?"
    lines = [
        f"- **server**: {srv}",
        f"- **model**: {model}",
        f"- **load**: {_load_line(results)}",
        f"- **input tokens**: {_lengths_line(results, 'input_tokens', 'input_tokens')}",
        f"- **output tokens**: {_lengths_line(results, 'output_tokens', 'output_tokens')}",
    ]
    cache = results.get("prompt_cache")
    if cache and cache["cached_share"] is not None:
        share, expected = cache["cached_share"], cache.get("expected_share") or 0.0
        line = f"- prompt tokens served from the server's cache: {100 * share:.0f} %"
        if cache.get("flattered"):
            line += f" (expected {100 * expected:.0f} % for this workload)"
        lines.append(line)
    run = results.get("run")
    if run and run.get("interrupted"):
        lines.append("- run interrupted: the figures cover the requests that finished")
    if run and run.get("aborted"):
        lines.append(f"- run aborted: {run.get('aborted')}")
    return lines


def _evidence_text(evidence: dict[str, Any]) -> str:
    """``k = v`` for what was measured (a None is left out, not shown as "-")."""
    parts = []
    for k, v in evidence.items():
        if v is None:
            continue
        if isinstance(v, list):
            v = "; ".join(str(x) for x in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a} {b}" for a, b in v.items())
        parts.append(f"{k} = {_fmt(v, 3) if isinstance(v, float) else v}")
    return ", ".join(parts)


def to_markdown(results: Results) -> str:
    """A run for a pull request or an issue: its context, the figures, what went wrong."""
    from infermeter.report.terminal import sla_verdict

    server = results.get("server")
    lines = [
        f"### infermeter: {(server['model'] if server else None) or '?'}"
        + (" (predicted by simulation, not measured)" if results.get("predicted") else ""),
        "",
        *_context(results),
        "",
    ]
    lines += ["| metric | value |", "| --- | --- |"]
    summary: Mapping[str, object] = results["summary"]
    for key, label in SUMMARY_LABELS.items():
        if summary.get(key) is not None:
            if results.get("predicted"):
                label = label.replace("measured window", "simulated window")
            lines.append(f"| {label} | {_fmt(summary[key])} |")
    lines += [
        "",
        "| distribution | " + " | ".join(STAT_COLUMNS[1:]) + " |",
        "| --- |" + " --- |" * (len(STAT_COLUMNS) - 1),
    ]
    for name, dist in results["distributions"].items():
        if not dist["count"]:
            continue
        cells = " | ".join(_fmt(statistic(dist, c)) for c in STAT_COLUMNS[1:])
        lines.append(f"| {DIST_LABELS.get(name, name)} | {cells} |")
    sessions = results.get("sessions")
    if sessions:
        lines += ["", f"**by turn**: {sessions_line(sessions)}", ""]
        lines += ["| " + " | ".join(TURN_COLUMNS) + " |", "|" + " --- |" * len(TURN_COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in turn_rows(sessions)]
    analysis = results.get("analysis")
    sla = analysis["sla"] if analysis else None
    if sla and sla["limits"]:
        lines += ["", f"**SLA {sla['profile']}**:", ""]
        lines += [f"- {v['limit']}: {sla_verdict(v)}" for v in sla["limits"]]
    findings = analysis["findings"] if analysis else []
    if findings:
        lines += ["", "**findings**:", ""]
        for f in findings:
            line = f"- **{f['rule']}** ({f.get('severity', 'low')}): {f['message']}"
            evidence = _evidence_text(f.get("evidence") or {})
            lines.append(line + (f" — {evidence}" if evidence else ""))
    notes = (analysis.get("notes") if analysis else None) or []
    bounds = p99_bounds_note(results.get("distributions") or {})
    warnings = [*(results.get("warnings") or []), *notes, *([bounds] if bounds else [])]
    if warnings:
        lines += ["", "**warnings**:", ""]
        lines += [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def sweep_markdown(index: SweepIndex) -> str:
    """A sweep or capacity search as a Markdown table with its notes."""
    from infermeter.report.terminal import _sweep_rows, sweep_notes

    cols, rows = _sweep_rows(index)
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = sweep_notes(index)
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") + "\n"
