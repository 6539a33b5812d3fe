"""Plain renderers of a results document: JSON, CSV and Markdown."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from infermeter.report.labels import DIST_LABELS, SUMMARY_LABELS

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


def to_markdown(results: dict[str, Any]) -> str:
    lines = ["| metric | value |", "| --- | --- |"]
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
    return "\n".join(lines) + "\n"


def sweep_markdown(index: dict[str, Any]) -> str:
    """A sweep or capacity search as a Markdown table with its notes."""
    from infermeter.report.terminal import _sweep_rows, sweep_notes

    cols, rows = _sweep_rows(index)
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = sweep_notes(index)
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") + "\n"
