"""The self-contained HTML report: one file, inline CSS and inline SVG, nothing fetched.

Example (needs a server or files at hand)::

    from infermeter import load_run
    from infermeter.report.html import render_run_html
    page = render_run_html(load_run("runs/c4"))
    Path("runs/c4/report.html").write_text(page)

Charts are drawn here, server-side, by :mod:`infermeter.report.charts`; the page carries no
script and a Content-Security-Policy that forbids loading anything, so it works offline and
stays small enough (~100-300 KB) to commit beside a run. Every chart links to the metric's
definition in the glossary at the page's end (no link leaves the page: the definitions travel
with it). Reading a run's ``telemetry.jsonl`` and a sweep's files is the only I/O; everything
else is a pure function of the data. The package: ``page``
(furniture), ``series`` (chart data), ``run``, ``sweep`` and ``compare`` (the three pages).
"""

from __future__ import annotations

from infermeter.records.rundir import read_telemetry
from infermeter.report.html.charts_run import distribution_panels
from infermeter.report.html.compare import (
    compare_page,
    compare_table,
    overlay_charts,
    render_compare_html,
)
from infermeter.report.html.page import (
    CDF_POINTS,
    CSP,
    DIST_CAPTIONS,
    DIST_TITLES,
    GLOSSARY_ID,
    HALF,
    MAX_SCATTER_POINTS,
    MAX_TOOLTIPS,
    METRIC_SHORT,
    PAGE_CSS,
    TL_LEFT,
    WIDE,
    doc_link,
    glossary,
)
from infermeter.report.html.run import render_run_html, run_page
from infermeter.report.html.series import (
    RequestPoints,
    TelemetrySeries,
    cdf_points,
    histogram,
    inflight_series,
    request_points,
    telemetry_series,
    throughput_series,
)
from infermeter.report.html.sweep import (
    point_links,
    render_sweep_html,
    sweep_charts,
    sweep_page,
    sweep_table,
)
from infermeter.report.html.verdicts import BAND_COLORS, BAND_TEXT, SEVERITY_PILLS

__all__ = [
    "BAND_COLORS",
    "BAND_TEXT",
    "CDF_POINTS",
    "CSP",
    "DIST_CAPTIONS",
    "DIST_TITLES",
    "GLOSSARY_ID",
    "HALF",
    "MAX_SCATTER_POINTS",
    "MAX_TOOLTIPS",
    "METRIC_SHORT",
    "PAGE_CSS",
    "SEVERITY_PILLS",
    "TL_LEFT",
    "WIDE",
    "RequestPoints",
    "TelemetrySeries",
    "cdf_points",
    "compare_page",
    "compare_table",
    "distribution_panels",
    "doc_link",
    "glossary",
    "histogram",
    "inflight_series",
    "overlay_charts",
    "point_links",
    "read_telemetry",
    "render_compare_html",
    "render_run_html",
    "render_sweep_html",
    "request_points",
    "run_page",
    "sweep_charts",
    "sweep_page",
    "sweep_table",
    "telemetry_series",
    "throughput_series",
]
