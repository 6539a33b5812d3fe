"""Small pure SVG chart primitives for the HTML report: no JavaScript, nothing fetched.

A chart is data (an x and a y :class:`Axis` and a list of layers) rendered to one inline
``<svg>`` string; every piece of text goes through :func:`esc`, so a model name or a label
can never inject markup.

>>> svg = render_chart(Chart(
...     id="ttft-hist",
...     x=Axis("TTFT (ms)"),
...     y=Axis("requests", include_zero=True),
...     layers=[Bars(edges=[0, 10, 20], heights=[3, 5], color=BLUE, name="requests")],
... ))
>>> svg.startswith("<svg")
True

Styling of text, grid and axes comes from :data:`CHART_CSS`, which the page includes once.
The package: ``style`` (colours, CSS, text), ``ticks``, ``scale`` (axes), ``layers`` (what a
chart draws, and the chart itself), ``render`` (the SVG) and ``dots`` (rows of dots against
one axis).
"""

from __future__ import annotations

from infermeter.report.charts.dots import (
    DotRow,
    render_dot_rows,
)
from infermeter.report.charts.layers import (
    Bars,
    Chart,
    HLine,
    Layer,
    Line,
    Region,
    Scatter,
    VLine,
)
from infermeter.report.charts.render import (
    render_chart,
)
from infermeter.report.charts.scale import (
    Axis,
    Scale,
)
from infermeter.report.charts.style import (
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
    esc,
)
from infermeter.report.charts.ticks import (
    format_tick,
    format_value,
    log_ticks,
    nice_step,
    nice_ticks,
)

__all__ = [
    "AMBER",
    "BLUE",
    "CHART_CSS",
    "GREEN",
    "GREY",
    "ORANGE",
    "PALETTE",
    "PERCENTILE_COLORS",
    "PINK",
    "PURPLE",
    "RED",
    "SLATE",
    "TEAL",
    "Axis",
    "Bars",
    "Chart",
    "DotRow",
    "HLine",
    "Layer",
    "Line",
    "Region",
    "Scale",
    "Scatter",
    "VLine",
    "esc",
    "format_tick",
    "format_value",
    "log_ticks",
    "nice_step",
    "nice_ticks",
    "render_chart",
    "render_dot_rows",
]
