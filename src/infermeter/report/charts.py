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
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

# A light, colour-blind-friendly palette (Tailwind 600s, ordered for contrast).
BLUE = "#2563eb"
ORANGE = "#ea580c"
GREEN = "#16a34a"
PURPLE = "#7c3aed"
RED = "#dc2626"
TEAL = "#0d9488"
AMBER = "#d97706"
PINK = "#db2777"
GREY = "#64748b"
SLATE = "#334155"
PALETTE: tuple[str, ...] = (BLUE, ORANGE, TEAL, PURPLE, PINK, AMBER, GREEN, RED, GREY)

#: Colours of the percentile marker lines, the same on every chart.
PERCENTILE_COLORS: dict[str, str] = {
    "p50": "#059669",
    "p90": "#ca8a04",
    "p95": "#ea580c",
    "p99": "#dc2626",
}

#: Rules for the classes the SVG uses; the page includes them once.
CHART_CSS = """
svg.chart{width:100%;height:auto;display:block;overflow:visible}
svg.chart text{font-family:inherit;fill:#334155}
svg.chart .tick{font-size:11px;fill:#64748b;font-variant-numeric:tabular-nums}
svg.chart .alabel{font-size:12px;fill:#334155;font-weight:500}
svg.chart .legend{font-size:11.5px;fill:#334155}
svg.chart .ref{font-size:10.5px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px;
stroke-linejoin:round}
svg.chart .note{font-size:13px;fill:#94a3b8}
svg.chart .grid{stroke:#e2e8f0;stroke-width:1}
svg.chart .axis{stroke:#94a3b8;stroke-width:1}
svg.chart .hit:hover{stroke:#0f172a;stroke-width:1.5}
"""

Marker = Literal["circle", "square", "triangle", "diamond", "cross", "ring"]

#: Rough width of one character, in em, of a sans-serif UI font (for layout only).
CHAR_EM = 0.6
#: Rows of reference-line labels above a plot, at most (the last one takes the rest).
MAX_LABEL_ROWS = 5


def esc(text: object) -> str:
    """Escape text for HTML and SVG, quotes included (safe in element text and attributes)."""
    return html.escape(str(text), quote=True)


def text_width(text: str, font_px: float) -> float:
    """Estimated rendered width of ``text`` in pixels."""
    return len(text) * font_px * CHAR_EM


# --------------------------------------------------------------------------------------
# ticks and number formatting


def _clean(x: float) -> float:
    """Drop binary noise such as 0.30000000000000004."""
    return float(f"{x:.12g}")


def nice_step(span: float, target: int = 5) -> float:
    """The 1-2-5 step giving about ``target`` intervals over ``span`` (Heckbert, 1990)."""
    if not math.isfinite(span) or span <= 0:
        return 1.0
    raw = span / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * mag * (1 + 1e-9):
            return _clean(m * mag)
    return _clean(10 * mag)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round ticks from at or below ``lo`` to at or above ``hi``, a 1-2-5 step apart.

    >>> nice_ticks(0.3, 9.2)
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    """
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, target)
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    n = round((end - start) / step)
    return [_clean(start + i * step) for i in range(n + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten covering [lo, hi] (lo > 0); with 2 and 5 between them over two decades
    or fewer, and every other power over more than eight.

    >>> log_ticks(3, 400)
    [1.0, 10.0, 100.0, 1000.0]
    """
    if lo <= 0 or hi <= 0:
        raise ValueError("log ticks need positive bounds")
    if hi < lo:
        lo, hi = hi, lo
    a = math.floor(math.log10(lo) + 1e-9)
    b = math.ceil(math.log10(hi) - 1e-9)
    if b == a:
        b += 1
    decades = b - a
    if decades <= 2:
        ticks = [_clean(m * 10.0**e) for e in range(a, b) for m in (1, 2, 5)]
        ticks.append(_clean(10.0**b))
        # Keep the 2s and 5s only around the data, so the axis is not cluttered.
        return [t for t in ticks if lo / 2.5 <= t <= hi * 2.5 or t in (10.0**a, 10.0**b)]
    every = 1 if decades <= 8 else math.ceil(decades / 8)
    return [_clean(10.0**e) for e in range(a, b + 1, every)]


_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_tick(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs; 10,000 and above as 10k, 1.5M.

    >>> format_tick(0.05, 0.05), format_tick(1500, 500), format_tick(20000, 5000)
    ('0.05', '1,500', '20k')
    """
    if value == 0:
        return "0"
    step = abs(step) or abs(value)
    a = abs(value)
    if a >= 1e4:
        for div, suffix in _SI:
            if a >= div:
                decimals = min(max(0, math.ceil(-round(math.log10(step / div), 9))), 3)
                return f"{value / div:.{decimals}f}{suffix}"
    decimals = 0 if step >= 1 else min(math.ceil(-round(math.log10(step), 9)), 8)
    return f"{value:,.{decimals}f}"


def format_value(value: float | None, digits: int = 3) -> str:
    """A readable number with about ``digits`` significant digits: 3.14, 52.1, 1,056, 0.00477."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 10 ** (digits - 1) or (a >= 1 and float(value).is_integer()):
        return f"{value:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(a))
    return f"{value:,.{max(decimals, 0)}f}"


# --------------------------------------------------------------------------------------
# scales


@dataclass(frozen=True)
class Scale:
    """Maps a data interval [lo, hi] onto a pixel interval [r0, r1], linearly or by log10."""

    lo: float
    hi: float
    r0: float
    r1: float
    log: bool = False

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo * 1e-6)
            a, b, x = math.log10(self.lo), math.log10(self.hi), math.log10(v)
        else:
            a, b, x = self.lo, self.hi, v
        if b == a:
            return (self.r0 + self.r1) / 2
        return self.r0 + (x - a) / (b - a) * (self.r1 - self.r0)


@dataclass(frozen=True)
class Axis:
    """What one axis shows: its label (with the unit), log or linear, and its range.

    ``lo``/``hi`` fix the range (else it follows the data, widened to round ticks when
    ``nice``); ``ticks`` replaces the automatic ticks; ``fmt`` formats tick labels.
    """

    label: str
    log: bool = False
    lo: float | None = None
    hi: float | None = None
    include_zero: bool = False
    nice: bool = True
    ticks: Sequence[float] | None = None
    fmt: Callable[[float], str] | None = None
    target_ticks: int = 5
    #: Room left above the data, as a share of its span (so labels clear the top).
    headroom: float = 0.0


def _domain(axis: Axis, values: Sequence[float]) -> tuple[float, float, list[float]]:
    """The axis's final [lo, hi] and its ticks, from the values it must show."""
    vals = [v for v in values if math.isfinite(v) and (not axis.log or v > 0)]
    if axis.log:
        lo = axis.lo if axis.lo is not None else (min(vals) if vals else 1.0)
        hi = axis.hi if axis.hi is not None else (max(vals) if vals else 10.0)
        lo, hi = max(lo, 1e-12), max(hi, 1e-12)
        if hi <= lo:
            hi = lo * 10
        ticks = log_ticks(lo, hi)
        if axis.nice and axis.lo is None:
            lo = ticks[0]
        if axis.nice and axis.hi is None:
            hi = ticks[-1]
    else:
        lo = axis.lo if axis.lo is not None else (min(vals) if vals else 0.0)
        hi = axis.hi if axis.hi is not None else (max(vals) if vals else 1.0)
        if axis.include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if axis.headroom and axis.hi is None:
            hi += (hi - lo) * axis.headroom
        if hi == lo:
            pad = abs(hi) * 0.1 or 1.0
            lo = lo if axis.lo is not None or (axis.include_zero and lo == 0) else lo - pad
            hi = hi + pad
        ticks = nice_ticks(lo, hi, axis.target_ticks)
        if axis.nice and axis.lo is None:
            lo = ticks[0]
        if axis.nice and axis.hi is None:
            hi = ticks[-1]
    if axis.ticks is not None:
        ticks = [float(t) for t in axis.ticks]
    eps = (hi - lo) * 1e-9
    ticks = [t for t in ticks if lo - eps <= t <= hi + eps]
    return lo, hi, ticks


def _tick_labels(axis: Axis, ticks: Sequence[float]) -> list[str]:
    if axis.fmt is not None:
        return [axis.fmt(t) for t in ticks]
    if axis.log or axis.ticks is not None:
        return [format_tick(t, t if axis.log else _min_gap(ticks)) for t in ticks]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else (abs(ticks[0]) if ticks else 1.0)
    return [format_tick(t, step) for t in ticks]


def _min_gap(ticks: Sequence[float]) -> float:
    gaps = [b - a for a, b in itertools.pairwise(ticks) if b > a]
    return min(gaps) if gaps else (abs(ticks[0]) if ticks else 1.0)


# --------------------------------------------------------------------------------------
# layers


@dataclass(frozen=True)
class Line:
    """A polyline through ``points``; ``step`` holds each y until the next x (a step
    function); ``fill`` shades the area down to y = 0; ``dots`` marks each point, with
    ``tips`` as hover text."""

    points: Sequence[tuple[float, float]]
    color: str = BLUE
    name: str = ""
    _: KW_ONLY  # how it is drawn: by name, never by position
    width: float = 2.0
    dash: str = ""
    step: bool = False
    fill: bool = False
    dots: bool = False
    marker: Marker = "circle"
    tips: Sequence[str] | None = None


@dataclass(frozen=True)
class Scatter:
    """Points drawn as markers, each with optional hover text (an SVG ``<title>``)."""

    points: Sequence[tuple[float, float]]
    color: str = BLUE
    name: str = ""
    _: KW_ONLY
    marker: Marker = "circle"
    size: float = 3.5
    tips: Sequence[str] | None = None
    opacity: float = 0.75
    hollow: bool = False


@dataclass(frozen=True)
class Bars:
    """A histogram: ``heights[i]`` spans ``edges[i]``..``edges[i + 1]`` on the x axis."""

    edges: Sequence[float]
    heights: Sequence[float]
    color: str = BLUE
    name: str = ""
    tips: Sequence[str] | None = None


@dataclass(frozen=True)
class HLine:
    """A horizontal reference line (a limit, a mean), labelled at the right (or left) end."""

    y: float
    label: str = ""
    color: str = GREY
    _: KW_ONLY
    dash: str = "5 4"
    align: Literal["right", "left"] = "right"


@dataclass(frozen=True)
class VLine:
    """A vertical reference line (a percentile, a capacity), labelled along the top."""

    x: float
    label: str = ""
    color: str = GREY
    _: KW_ONLY
    dash: str = "5 4"


@dataclass(frozen=True)
class Region:
    """A shaded rectangle; an open side (None) extends to the edge of the plot."""

    x0: float | None = None
    x1: float | None = None
    y0: float | None = None
    y1: float | None = None
    color: str = GREEN
    label: str = ""
    opacity: float = 0.08


Layer = Line | Scatter | Bars | HLine | VLine | Region


@dataclass(frozen=True)
class Chart:
    """One plot: axes, layers and an ``id`` unique on the page (for its clip path)."""

    id: str
    x: Axis
    y: Axis
    layers: Sequence[Layer] = field(default_factory=list)
    _: KW_ONLY
    width: int = 560
    height: int = 300
    title: str = ""
    legend: bool = True
    empty_note: str = "no data"
    #: Fixed left margin, so that panels stacked on one time axis line up.
    left: float | None = None


def _xs_ys(layers: Sequence[Layer], log_x: bool, log_y: bool) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for layer in layers:
        if isinstance(layer, (Line, Scatter)):
            xs.extend(p[0] for p in layer.points)
            ys.extend(p[1] for p in layer.points)
        elif isinstance(layer, Bars):
            if layer.heights:
                xs.extend(layer.edges)
                ys.extend(layer.heights)
                if not log_y:
                    ys.append(0.0)
        elif isinstance(layer, HLine):
            ys.append(layer.y)
        elif isinstance(layer, VLine):
            xs.append(layer.x)
        elif isinstance(layer, Region):
            xs.extend(v for v in (layer.x0, layer.x1) if v is not None)
            ys.extend(v for v in (layer.y0, layer.y1) if v is not None)
    return xs, ys


def _has_data(layers: Sequence[Layer]) -> bool:
    return any(
        (isinstance(la, (Line, Scatter)) and la.points) or (isinstance(la, Bars) and la.heights)
        for la in layers
    )


def _f(v: float) -> str:
    """A coordinate with one decimal (keeps the file small)."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def marker_svg(
    marker: Marker, x: float, y: float, size: float, color: str, hollow: bool = False
) -> str:
    """One marker shape centred on (x, y), as an SVG element without a closing tag's body."""
    fill = "#fff" if hollow or marker == "ring" else color
    stroke = (
        f' stroke="{color}" stroke-width="1.5"' if hollow or marker in ("ring", "cross") else ""
    )
    s = size
    if marker in ("circle", "ring"):
        return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(s)}" fill="{fill}"{stroke}'
    if marker == "square":
        return (
            f'<rect x="{_f(x - s)}" y="{_f(y - s)}" width="{_f(2 * s)}" height="{_f(2 * s)}" '
            f'fill="{fill}"{stroke}'
        )
    if marker == "triangle":
        d = f"M{_f(x)} {_f(y - 1.2 * s)}L{_f(x + 1.1 * s)} {_f(y + 0.8 * s)}H{_f(x - 1.1 * s)}Z"
    elif marker == "diamond":
        r = 1.3 * s
        d = f"M{_f(x)} {_f(y - r)}L{_f(x + r)} {_f(y)}L{_f(x)} {_f(y + r)}L{_f(x - r)} {_f(y)}Z"
    else:  # cross
        x0, x1, y0, y1 = _f(x - s), _f(x + s), _f(y - s), _f(y + s)
        d = f"M{x0} {y0}L{x1} {y1}M{x0} {y1}L{x1} {y0}"
        return f'<path d="{d}" fill="none"{stroke}'
    return f'<path d="{d}" fill="{fill}"{stroke}'


def _element(open_tag: str, tip: str | None, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    if tip:
        return f"{open_tag}{attr}><title>{esc(tip)}</title></{open_tag[1:].split()[0]}>"
    return f"{open_tag}{attr}/>"


def _legend_items(layers: Sequence[Layer]) -> list[tuple[str, str]]:
    """(swatch SVG at the origin, name) for every named data layer."""
    items: list[tuple[str, str]] = []
    for la in layers:
        if isinstance(la, (Line, Scatter, Bars)) and la.name:
            if isinstance(la, Line):
                dash = f' stroke-dasharray="{la.dash}"' if la.dash else ""
                sw = (
                    f'<line x1="0" y1="0" x2="18" y2="0" stroke="{la.color}" '
                    f'stroke-width="{la.width}"{dash}/>'
                )
                if la.dots:
                    sw += marker_svg(la.marker, 9, 0, 3.2, la.color) + "/>"
            elif isinstance(la, Scatter):
                sw = marker_svg(la.marker, 9, 0, 4, la.color, la.hollow) + "/>"
            else:
                sw = f'<rect x="2" y="-5" width="14" height="10" rx="2" fill="{la.color}"/>'
            items.append((sw, la.name))
    return items


def _legend(items: list[tuple[str, str]], x0: float, x1: float, y0: float) -> tuple[str, float]:
    """Legend items flowing left to right in rows; returns (svg, height used)."""
    if not items:
        return "", 0.0
    parts: list[str] = []
    x, y, row_h = x0, y0 + 8, 18.0
    for sw, name in items:
        w = 24 + text_width(name, 11.5) + 16
        if x > x0 and x + w > x1:
            x, y = x0, y + row_h
        parts.append(
            f'<g transform="translate({_f(x)},{_f(y)})">{sw}'
            f'<text class="legend" x="24" y="4">{esc(name)}</text></g>'
        )
        x += w
    return "".join(parts), y - y0 + 12


def render_chart(chart: Chart) -> str:
    """The chart as one ``<svg>`` element (scales to its container's width)."""
    w, h = chart.width, chart.height
    aria = esc(chart.title or f"{chart.y.label} against {chart.x.label}")
    head = (
        f'<svg class="chart" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{aria}">'
    )
    if not _has_data(chart.layers):
        return (
            f'{head}<rect x="0.5" y="0.5" width="{w - 1}" height="{h - 1}" rx="6" fill="#f8fafc" '
            f'stroke="#e2e8f0"/><text class="note" x="{w / 2}" y="{h / 2}" '
            f'text-anchor="middle">{esc(chart.empty_note)}</text></svg>'
        )
    xs, ys = _xs_ys(chart.layers, chart.x.log, chart.y.log)
    xlo, xhi, xticks = _domain(chart.x, xs)
    ylo, yhi, yticks = _domain(chart.y, ys)
    xlabels = _tick_labels(chart.x, xticks)
    ylabels = _tick_labels(chart.y, yticks)

    left = chart.left or 16 + 8 + max((text_width(t, 11) for t in ylabels), default=10) + 8
    right = 18.0
    items = _legend_items(chart.layers) if chart.legend else []
    legend_svg, legend_h = _legend(items, left, w - right, 4)
    sx = Scale(xlo, xhi, left, w - right, chart.x.log)
    vlines = [la for la in chart.layers if isinstance(la, VLine)]
    placed, label_rows = _place_vline_labels(vlines, sx, left, w - right)
    top = 10 + legend_h + 13 * label_rows
    bottom = 46.0
    sy = Scale(ylo, yhi, h - bottom, top, chart.y.log)
    px0, px1, py0, py1 = left, w - right, top, h - bottom

    out: list[str] = [head, legend_svg]
    clip = f"clip-{esc(chart.id)}"
    out.append(
        f'<defs><clipPath id="{clip}"><rect x="{_f(px0)}" y="{_f(py0 - 4)}" '
        f'width="{_f(px1 - px0)}" height="{_f(py1 - py0 + 8)}"/></clipPath></defs>'
    )
    # grid and tick labels
    for t, lab in zip(yticks, ylabels, strict=True):
        y = sy(t)
        out.append(f'<line class="grid" x1="{_f(px0)}" x2="{_f(px1)}" y1="{_f(y)}" y2="{_f(y)}"/>')
        out.append(
            f'<text class="tick" x="{_f(px0 - 6)}" y="{_f(y + 3.5)}" text-anchor="end">'
            f"{esc(lab)}</text>"
        )
    last_end = -1e9
    for t, lab in zip(xticks, xlabels, strict=True):
        x = sx(t)
        out.append(f'<line class="grid" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(py0)}" y2="{_f(py1)}"/>')
        half = text_width(lab, 11) / 2
        if x - half < last_end + 4:  # would overlap the previous label: skip it
            continue
        last_end = x + half
        out.append(
            f'<text class="tick" x="{_f(x)}" y="{_f(py1 + 17)}" text-anchor="middle">'
            f"{esc(lab)}</text>"
        )
    out.append(f'<line class="axis" x1="{_f(px0)}" x2="{_f(px1)}" y1="{_f(py1)}" y2="{_f(py1)}"/>')
    out.append(f'<line class="axis" x1="{_f(px0)}" x2="{_f(px0)}" y1="{_f(py0)}" y2="{_f(py1)}"/>')
    out.append(
        f'<text class="alabel" x="{_f((px0 + px1) / 2)}" y="{_f(h - 8)}" '
        f'text-anchor="middle">{esc(chart.x.label)}</text>'
    )
    cy = (py0 + py1) / 2
    out.append(
        f'<text class="alabel" transform="translate(13,{_f(cy)}) rotate(-90)" '
        f'text-anchor="middle">{esc(chart.y.label)}</text>'
    )
    # layers: regions first, then data, then reference lines on top
    body: list[str] = []
    refs: list[str] = []
    order = sorted(
        chart.layers,
        key=lambda la: 0 if isinstance(la, Region) else (2 if isinstance(la, HLine) else 1),
    )
    for la in order:
        if isinstance(la, Region):
            body.append(_region(la, sx, sy, px0, px1, py0, py1))
        elif isinstance(la, Bars):
            body.append(_bars(la, sx, sy, py1))
        elif isinstance(la, Line):
            body.append(_line(la, sx, sy, py1))
        elif isinstance(la, HLine):
            refs.append(_hline(la, sy, px0, px1, py0))
    refs.append(_vlines(placed, py0, py1))
    out.append(f'<g clip-path="url(#{clip})">{"".join(body)}</g>')
    # Markers are drawn unclipped: a point on the plot's edge stays a whole marker.
    out.extend(_scatter(la, sx, sy) for la in chart.layers if isinstance(la, Scatter))
    out.extend(
        _scatter(
            Scatter(la.points, la.color, marker=la.marker, size=3.6, tips=la.tips, opacity=1.0),
            sx,
            sy,
        )
        for la in chart.layers
        if isinstance(la, Line) and la.dots
    )
    out.extend(refs)
    out.append("</svg>")
    return "".join(out)


def _region(
    la: Region, sx: Scale, sy: Scale, px0: float, px1: float, py0: float, py1: float
) -> str:
    x0 = px0 if la.x0 is None else sx(la.x0)
    x1 = px1 if la.x1 is None else sx(la.x1)
    y_top = py0 if la.y1 is None else sy(la.y1)
    y_bot = py1 if la.y0 is None else sy(la.y0)
    x0, x1 = sorted((max(min(x0, px1), px0), max(min(x1, px1), px0)))
    y_top, y_bot = sorted((max(min(y_top, py1), py0), max(min(y_bot, py1), py0)))
    out = (
        f'<rect x="{_f(x0)}" y="{_f(y_top)}" width="{_f(x1 - x0)}" height="{_f(y_bot - y_top)}" '
        f'fill="{la.color}" fill-opacity="{la.opacity}"/>'
    )
    if la.label and x1 - x0 > 40 and y_bot - y_top > 14:
        out += (
            f'<text class="ref" x="{_f(x0 + 6)}" y="{_f(y_bot - 6)}" fill="{la.color}" '
            f'style="fill:{la.color}">{esc(la.label)}</text>'
        )
    return out


def _bars(la: Bars, sx: Scale, sy: Scale, base: float) -> str:
    parts: list[str] = [f'<g fill="{la.color}" fill-opacity="0.85">']
    for i, hgt in enumerate(la.heights):
        if hgt <= 0:
            continue
        x0, x1 = sx(la.edges[i]), sx(la.edges[i + 1])
        y = sy(hgt)
        gap = 1.0 if x1 - x0 > 4 else 0.0
        tag = (
            f'<rect x="{_f(x0 + gap / 2)}" y="{_f(y)}" width="{_f(max(x1 - x0 - gap, 0.5))}" '
            f'height="{_f(max(base - y, 0.5))}"'
        )
        parts.append(_element(tag, la.tips[i] if la.tips else None, "hit"))
    parts.append("</g>")
    return "".join(parts)


def _drawable(sx: Scale, sy: Scale, x: float, y: float) -> bool:
    """Finite, and positive on a log axis (a log axis has no place for zero)."""
    return math.isfinite(x) and math.isfinite(y) and (not sx.log or x > 0) and (not sy.log or y > 0)


def _line(la: Line, sx: Scale, sy: Scale, base: float) -> str:
    pts = [(sx(x), sy(y)) for x, y in la.points if _drawable(sx, sy, x, y)]
    if not pts:
        return ""
    cmds = [f"M{_f(pts[0][0])} {_f(pts[0][1])}"]
    for (_x0, _y0), (x1, y1) in itertools.pairwise(pts):
        if la.step:
            cmds.append(f"H{_f(x1)}V{_f(y1)}")
        else:
            cmds.append(f"L{_f(x1)} {_f(y1)}")
    d = "".join(cmds)
    out = ""
    if la.fill:
        out += (
            f'<path d="{d}V{_f(base)}H{_f(pts[0][0])}Z" fill="{la.color}" fill-opacity="0.12" '
            f'stroke="none"/>'
        )
    dash = f' stroke-dasharray="{la.dash}"' if la.dash else ""
    out += (
        f'<path d="{d}" fill="none" stroke="{la.color}" stroke-width="{la.width}" '
        f'stroke-linejoin="round" stroke-linecap="round"{dash}/>'
    )
    return out


def _inside(sx: Scale, sy: Scale, x: float, y: float) -> bool:
    """Whether (x, y) falls on the plot (a pixel of slack): markers are not clipped."""
    px, py = sx(x), sy(y)
    return (
        min(sx.r0, sx.r1) - 1 <= px <= max(sx.r0, sx.r1) + 1
        and min(sy.r0, sy.r1) - 1 <= py <= max(sy.r0, sy.r1) + 1
    )


def _scatter(la: Scatter, sx: Scale, sy: Scale) -> str:
    parts = [f'<g fill-opacity="{la.opacity}">'] if la.opacity < 1 else ["<g>"]
    for i, (x, y) in enumerate(la.points):
        if not _drawable(sx, sy, x, y) or not _inside(sx, sy, x, y):
            continue
        tag = marker_svg(la.marker, sx(x), sy(y), la.size, la.color, la.hollow)
        parts.append(_element(tag, la.tips[i] if la.tips else None, "hit" if la.tips else ""))
    parts.append("</g>")
    return "".join(parts)


def _hline(la: HLine, sy: Scale, px0: float, px1: float, py0: float) -> str:
    y = sy(la.y)
    out = (
        f'<line x1="{_f(px0)}" x2="{_f(px1)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{la.color}" '
        f'stroke-width="1.5" stroke-dasharray="{la.dash}"/>'
    )
    if la.label:
        x, anchor = (px1 - 4, "end") if la.align == "right" else (px0 + 6, "start")
        # Above the line, or under it when the line runs along the top of the plot.
        ty = y - 5 if y - 14 >= py0 else y + 13
        out += (
            f'<text class="ref" x="{_f(x)}" y="{_f(ty)}" text-anchor="{anchor}" '
            f'style="fill:{la.color}">{esc(la.label)}</text>'
        )
    return out


def _place_vline_labels(
    lines: Sequence[VLine], sx: Scale, px0: float, px1: float
) -> tuple[list[tuple[VLine, float, float, int]], int]:
    """(line, x, label start, label row) for the lines inside the plot, and the row count.

    Labels sit in rows above the plot, so they never cover the data. Each label ends at its
    line (or starts there, near the left edge), and takes the lowest row where it overlaps no
    other label and no other line reaching up to that row crosses it: close percentiles
    climb as a staircase instead of piling up.
    """
    placed: list[tuple[VLine, float, float, float, int]] = []
    for la in sorted(lines, key=lambda v: v.x):
        x = sx(la.x)
        if not (px0 - 0.5 <= x <= px1 + 0.5):
            continue
        if not la.label:
            placed.append((la, x, x, x, -1))
            continue
        wlab = text_width(la.label, 10.5)
        # Left of the line, unless that leaves the plot (the y ticks are there).
        start, end = (x - 3 - wlab, x - 3) if x - 3 - wlab >= px0 - 2 else (x + 3, x + 3 + wlab)
        row = _label_row(placed, x, start, end, strict=True)
        if row is None:  # a line must cross some label: at least keep labels apart
            row = _label_row(placed, x, start, end, strict=False)
        if row is None:
            row = MAX_LABEL_ROWS - 1
        placed.append((la, x, start, end, row))
    rows = max((p[4] for p in placed), default=-1) + 1
    return [(la, x, start, row) for la, x, start, _end, row in placed], rows


def _label_row(
    placed: Sequence[tuple[VLine, float, float, float, int]],
    x: float,
    start: float,
    end: float,
    strict: bool,
) -> int | None:
    """The lowest row where the label [start, end] of a line at x overlaps no placed label
    and (strict) crosses no placed line nor lets its own line cross a lower label."""
    for row in range(MAX_LABEL_ROWS):
        clash = False
        for _, xk, sk, ek, rk in placed:
            if rk < 0:
                continue
            overlaps = rk == row and not (end + 6 < sk or start > ek + 6)
            crossed_by_k = start - 3 <= xk <= end + 3 and rk >= row
            crosses_k = rk < row and sk - 3 <= x <= ek + 3
            if overlaps or (strict and (crossed_by_k or crosses_k)):
                clash = True
                break
        if not clash:
            return row
    return None


def _vlines(placed: Sequence[tuple[VLine, float, float, int]], py0: float, py1: float) -> str:
    out: list[str] = []
    for la, x, start, row in placed:
        top = py0 - 13 * (row + 1) + 4 if row >= 0 else py0
        out.append(
            f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(top)}" y2="{_f(py1)}" stroke="{la.color}" '
            f'stroke-width="1.5" stroke-dasharray="{la.dash}"/>'
        )
        if row >= 0:
            out.append(
                f'<text class="ref" x="{_f(start)}" y="{_f(py0 - 13 * row - 4)}" '
                f'style="fill:{la.color}">{esc(la.label)}</text>'
            )
    return "".join(out)


# --------------------------------------------------------------------------------------
# rows of dots against one axis ("measured vs bound")


@dataclass(frozen=True)
class DotRow:
    """One category: a value drawn as a dot with a stem from ``base`` (the axis's reference
    value, e.g. 1 for "× the bound"), and hover text."""

    label: str
    value: float
    color: str = BLUE
    tip: str = ""
    note: str = ""
    #: A second, smaller line under the label (e.g. "3.10 ms vs 0.0048 ms").
    sublabel: str = ""


def render_dot_rows(
    chart_id: str,
    rows: Sequence[DotRow],
    x: Axis,
    *,
    base: float | None = None,
    refs: Sequence[VLine] = (),
    width: int = 560,
    row_height: int = 34,
    title: str = "",
) -> str:
    """A lollipop chart: one labelled row per category, values on a shared x axis."""
    aria = esc(title or x.label)
    values = [r.value for r in rows if math.isfinite(r.value) and (not x.log or r.value > 0)]
    h = 24 + row_height * max(len(rows), 1) + 46
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {h}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{aria}">'
    )
    if not values:
        return (
            f'{head}<text class="note" x="{width / 2}" y="{h / 2}" text-anchor="middle">'
            "no data</text></svg>"
        )
    extra = [v.x for v in refs] + ([base] if base is not None else [])
    lo, hi, ticks = _domain(x, [*values, *extra])
    labels = _tick_labels(x, ticks)
    left = 12 + max(max(text_width(r.label, 12), text_width(r.sublabel, 10.5)) for r in rows) + 14
    right = 24.0
    top, bottom = 14.0, h - 46.0
    sx = Scale(lo, hi, left, width - right, x.log)
    out = [head]
    last_end = -1e9
    for t, lab in zip(ticks, labels, strict=True):
        px = sx(t)
        out.append(
            f'<line class="grid" x1="{_f(px)}" x2="{_f(px)}" y1="{_f(top)}" y2="{_f(bottom)}"/>'
        )
        half = text_width(lab, 11) / 2
        if px - half < last_end + 4:
            continue
        last_end = px + half
        out.append(
            f'<text class="tick" x="{_f(px)}" y="{_f(bottom + 17)}" text-anchor="middle">'
            f"{esc(lab)}</text>"
        )
    out.append(
        f'<line class="axis" x1="{_f(left)}" x2="{_f(width - right)}" y1="{_f(bottom)}" '
        f'y2="{_f(bottom)}"/>'
    )
    out.append(
        f'<text class="alabel" x="{_f((left + width - right) / 2)}" y="{_f(h - 8)}" '
        f'text-anchor="middle">{esc(x.label)}</text>'
    )
    for v in refs:
        px = sx(v.x)
        out.append(
            f'<line x1="{_f(px)}" x2="{_f(px)}" y1="{_f(top)}" y2="{_f(bottom)}" '
            f'stroke="{v.color}" stroke-width="1.5" stroke-dasharray="{v.dash}"/>'
        )
        if v.label:
            anchor = "end" if px > (left + width) / 2 else "start"
            dx = -4 if anchor == "end" else 4
            out.append(
                f'<text class="ref" x="{_f(px + dx)}" y="{_f(top + 2)}" text-anchor="{anchor}" '
                f'style="fill:{v.color}">{esc(v.label)}</text>'
            )
    for i, r in enumerate(rows):
        cy = top + 12 + row_height * i + row_height / 2
        dy = -2.5 if r.sublabel else 4
        out.append(
            f'<text class="alabel" x="{_f(left - 10)}" y="{_f(cy + dy)}" text-anchor="end">'
            f"{esc(r.label)}</text>"
        )
        if r.sublabel:
            out.append(
                f'<text class="tick" x="{_f(left - 10)}" y="{_f(cy + 10.5)}" text-anchor="end">'
                f"{esc(r.sublabel)}</text>"
            )
        if not (math.isfinite(r.value) and (not x.log or r.value > 0)):
            out.append(
                f'<text class="tick" x="{_f(left + 6)}" y="{_f(cy + 4)}">not measured</text>'
            )
            continue
        px = sx(min(max(r.value, lo), hi))
        b = sx(min(max(base, lo), hi)) if base is not None else left
        out.append(
            f'<line x1="{_f(b)}" x2="{_f(px)}" y1="{_f(cy)}" y2="{_f(cy)}" stroke="{r.color}" '
            f'stroke-width="3" stroke-opacity="0.35" stroke-linecap="round"/>'
        )
        tag = f'<circle cx="{_f(px)}" cy="{_f(cy)}" r="6.5" fill="{r.color}"'
        out.append(_element(tag, r.tip or None, "hit"))
        if r.note:
            wnote = text_width(r.note, 10.5)
            nx, anchor = (px + 11, "start") if px + 11 + wnote <= width - 4 else (px - 11, "end")
            out.append(
                f'<text class="ref" x="{_f(nx)}" y="{_f(cy + 4)}" text-anchor="{anchor}" '
                f'style="fill:{r.color}">{esc(r.note)}</text>'
            )
    out.append("</svg>")
    return "".join(out)
