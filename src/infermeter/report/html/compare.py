"""The comparison page: runs or sweeps side by side, ratios to a baseline, overlays."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from infermeter.errors import UsageError
from infermeter.records.rundir import read_sweep_index
from infermeter.report.charts import (
    PALETTE,
    Axis,
    Chart,
    Layer,
    Line,
    Scatter,
    esc,
    render_chart,
)
from infermeter.report.compare import WITHIN_MARK, Comparison, format_ratio, ratio_verdict
from infermeter.report.html.page import (
    HALF,
    METRIC_SHORT,
    _note,
    _num,
    _page,
    _panel,
    _pct,
    _section,
    _table,
)
from infermeter.report.html.sweep import (
    _capacity_point,
    _curve_layers,
    _lat,
    _latency_axis,
    _sla_layers,
    _sla_limits,
    _sum,
)
from infermeter.report.html.verdicts import _money
from infermeter.schema.sweep import SweepIndex

# --------------------------------------------------------------------------------------
# comparisons


def _ratio_cell(
    ratio: float | None, better: str | None, baseline: bool, within: bool | None = None
) -> str:
    if baseline:
        return '<span class="same">baseline</span>'
    if ratio is None or not math.isfinite(ratio):
        return '<span class="same">–</span>'
    if within:
        tip = "inside the 95 % interval of the baseline's percentile: not told apart"
        return f'<span class="same" title="{tip}">{esc(format_ratio(ratio))} {WITHIN_MARK}</span>'
    verdict = ratio_verdict(ratio, better if better in ("higher", "lower") else None)  # type: ignore[arg-type]
    return f'<span class="{verdict or "same"}">{esc(format_ratio(ratio))}</span>'


def _compare_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "fraction":
        return _pct(float(value), 2)
    if unit == "per 1M tok":
        return _money(value)
    return _num(float(value))


def compare_table(comparison: Comparison) -> str:
    """Rows of the comparison with each value's ratio to the baseline, coloured better or
    worse; a sweep comparison's rows are grouped under their load point."""
    items = comparison["items"]
    base = comparison["baseline"]
    head = ["metric"] + [
        f'<span class="raw">{esc(it["label"] or f"#{i}")}</span>'
        + (' <span class="pill na">baseline</span>' if i == base else "")
        for i, it in enumerate(items)
    ]
    rows: list[list[str]] = []
    classes: list[str] = []
    group: str | None = None
    for r in comparison["rows"]:
        unit = r["unit"]
        label = r["label"] or r["metric"]
        point = r.get("point")
        if point is not None:
            if point != group:
                rows.append([esc(point)])
                classes.append("group")
                group = point
            label = label.removeprefix(f"{point} ")
        shown_unit = (
            f' <span class="same">({esc(unit)})</span>'
            if unit and unit not in ("fraction", "per 1M tok")
            else ""
        )
        arrow = {"higher": " ↑", "lower": " ↓"}.get(str(r["better"]), "")
        cells = [f'{esc(label)}{shown_unit}<span class="same">{arrow}</span>']
        values = r["values"]
        ratios = r["ratios"]
        notes = r.get("notes") or []
        within = r.get("within") or []
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
                f"{_compare_value(v, unit)}<br>"
                f"{_ratio_cell(q, r['better'], i == base, within[i] if i < len(within) else None)}"
                f"{extra}"
            )
        rows.append(cells)
        classes.append("")
    if not rows:
        return _note("Nothing to compare.")
    return _table(head, rows, classes)


def compare_page(comparison: Comparison, sweeps: Sequence[tuple[str, SweepIndex | None]]) -> str:
    """The comparison (pure): a table of ratios to the baseline and overlaid sweep curves."""
    items = comparison["items"]
    base = comparison["baseline"]
    rows = [
        [
            esc(i),
            esc(it["label"]),
            esc(it["kind"]),
            f'<span style="overflow-wrap:anywhere">{esc(it["path"] or "")}</span>',
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
        "(by more than 2 %); ↑ higher is better, ↓ lower is better; "
        f"{WITHIN_MARK} the value lies inside the 95 % interval of the baseline's percentile "
        "(its requests taken as random draws), so these runs do not tell the two apart.</p>",
        "aggregates",
    )
    diffs = [*comparison["differences"], *comparison["cautions"]]
    body += _section(
        "differences",
        # cautions are not settings: a prefix cache's share, an engine's speed on the day
        "Differences and cautions" if comparison["cautions"] else "Configuration differences",
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
    labels = " vs ".join(it["label"] or "?" for it in items[:4])
    return _page(
        f"infermeter comparison: {labels}", esc(labels or "comparison"), "comparison", nav, body
    )


def overlay_charts(sweeps: Sequence[tuple[str, SweepIndex | None]]) -> str:
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
                    Line(la.points, color, la.name, width=2.0, dash=dash, dots=True, tips=la.tips)
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
                            Scatter(
                                [(x, y)],
                                color,
                                f"{label} capacity",
                                marker="ring",
                                size=7.5,
                                tips=None,
                                opacity=1.0,
                            )
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
                        width=HALF,
                        height=340,
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


def render_compare_html(comparison: Comparison, sweeps: list[tuple[str, Path]]) -> str:
    """The comparison built by report/compare.py as one HTML page; ``sweeps`` (label, dir)
    adds their curves overlaid."""
    loaded: list[tuple[str, SweepIndex | None]] = []
    for label, path in sweeps:
        try:
            loaded.append((label, read_sweep_index(Path(path))))
        except UsageError:
            loaded.append((label, None))
    return compare_page(comparison, loaded)
