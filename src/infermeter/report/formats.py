"""Plain renderers of a results document: JSON, CSV and Markdown."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from infermeter.report.labels import DIST_LABELS, SUMMARY_LABELS
from infermeter.text import counted

STAT_COLUMNS = ("count", "mean", "std", "min", "p50", "p90", "p95", "p99", "max")


def to_json(results: dict[str, Any]) -> str:
    return orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()


def to_csv(results: dict[str, Any]) -> str:
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


def _load_line(results: dict[str, Any]) -> str:
    """``concurrency 4, 200 requests, warm-up 8 requests`` (or a rate, a duration)."""
    s, cfg = results.get("summary") or {}, results.get("config") or {}
    rate = s.get("target_rate_rps", cfg.get("rate"))
    if rate is not None:
        load = f"rate {rate:g} req/s ({cfg.get('arrival') or 'poisson'} arrivals)"
        if cfg.get("max_concurrency") is not None:
            load += f", at most {cfg['max_concurrency']} in flight"
    else:
        load = f"concurrency {s.get('target_concurrency', cfg.get('concurrency'))}"
    parts = [load]
    if cfg.get("num_requests") is not None:
        parts.append(counted(int(cfg["num_requests"]), "request"))
    if cfg.get("duration_s") is not None:
        parts.append(f"{float(cfg['duration_s']):g} s")
    if cfg.get("ramp_up_s"):
        parts.append(f"ramp-up {float(cfg['ramp_up_s']):g} s")
    warmup = int(cfg.get("warmup") or 0)
    parts.append(f"warm-up {counted(warmup, 'request')}" if warmup else "no warm-up")
    return ", ".join(parts)


def _lengths_line(results: dict[str, Any], key: str, dist_name: str) -> str:
    """What was asked for (a length or a distribution) and the measured mean."""
    workload, cfg = results.get("workload") or {}, results.get("config") or {}
    asked = workload.get(key, cfg.get(key))
    measured = (results.get("distributions") or {}).get(dist_name) or {}
    text = str(asked) if asked is not None else "-"
    if workload.get("kind") not in (None, "synthetic"):
        text = f"from {workload['kind']} dataset"
    if measured.get("count"):
        text += f" (measured mean {_fmt(measured.get('mean'), 1)})"
    return text


def _context(results: dict[str, Any]) -> list[str]:
    """The lines a reader of a pasted report needs to judge the numbers."""
    server, cfg = results.get("server") or {}, results.get("config") or {}
    details = server.get("details") or {}
    version = server.get("version") or details.get("version") or details.get("build_info")
    where = server.get("url") or cfg.get("url") or "?"
    srv = f"{server.get('kind') or 'unknown'} at {where}"
    if version:
        srv += f" (version {version})"
    lines = [
        f"- **server**: {srv}",
        f"- **model**: {server.get('model') or cfg.get('model') or '?'}",
        f"- **load**: {_load_line(results)}",
        f"- **input tokens**: {_lengths_line(results, 'input_tokens', 'input_tokens')}",
        f"- **output tokens**: {_lengths_line(results, 'output_tokens', 'output_tokens')}",
    ]
    cache = results.get("prompt_cache") or {}
    if cache.get("cached_share") is not None:
        share, expected = cache["cached_share"], cache.get("expected_share") or 0.0
        line = f"- prompt tokens served from the server's cache: {100 * share:.0f} %"
        if cache.get("flattered"):
            line += f" (expected {100 * expected:.0f} % for this workload)"
        lines.append(line)
    run = results.get("run") or {}
    if run.get("interrupted"):
        lines.append("- run interrupted: the figures cover the requests that finished")
    if run.get("aborted"):
        lines.append(f"- run aborted: {run['aborted']}")
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


def to_markdown(results: dict[str, Any]) -> str:
    """A run for a pull request or an issue: its context, the figures, what went wrong."""
    from infermeter.report.terminal import sla_verdict

    server = results.get("server") or {}
    lines = [f"### infermeter: {server.get('model') or '?'}", "", *_context(results), ""]
    lines += ["| metric | value |", "| --- | --- |"]
    for key, label in SUMMARY_LABELS.items():
        if key in results["summary"] and results["summary"][key] is not None:
            lines.append(f"| {label} | {_fmt(results['summary'][key])} |")
    lines += [
        "",
        "| distribution | " + " | ".join(STAT_COLUMNS[1:]) + " |",
        "| --- |" + " --- |" * (len(STAT_COLUMNS) - 1),
    ]
    for name, dist in results["distributions"].items():
        if not dist.get("count"):
            continue
        cells = " | ".join(_fmt(dist.get(c)) for c in STAT_COLUMNS[1:])
        lines.append(f"| {DIST_LABELS.get(name, name)} | {cells} |")
    analysis = results.get("analysis") or {}
    sla = analysis.get("sla") or {}
    if sla.get("limits"):
        lines += ["", f"**SLA {sla.get('profile')}**:", ""]
        lines += [f"- {v['limit']}: {sla_verdict(v)}" for v in sla["limits"]]
    findings = analysis.get("findings") or []
    if findings:
        lines += ["", "**findings**:", ""]
        for f in findings:
            line = f"- **{f['rule']}** ({f.get('severity', 'low')}): {f['message']}"
            evidence = _evidence_text(f.get("evidence") or {})
            lines.append(line + (f" — {evidence}" if evidence else ""))
    warnings = [*(results.get("warnings") or []), *(analysis.get("notes") or [])]
    if warnings:
        lines += ["", "**warnings**:", ""]
        lines += [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def sweep_markdown(index: dict[str, Any]) -> str:
    """A sweep or capacity search as a Markdown table with its notes."""
    from infermeter.report.terminal import _sweep_rows, sweep_notes

    cols, rows = _sweep_rows(index)
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = sweep_notes(index)
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") + "\n"
