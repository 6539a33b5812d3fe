"""A chart rendered to one inline ``<svg>`` string."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from infermeter.report.charts.layers import Bars, Chart, HLine, Layer, Line, Region, Scatter, VLine
from infermeter.report.charts.scale import Scale, _domain, _tick_labels
from infermeter.report.charts.style import MAX_LABEL_ROWS, Marker, esc, text_width


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
