"""Rows of dots against one axis ("measured vs bound")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from infermeter.report.charts.layers import VLine
from infermeter.report.charts.render import _element, _f
from infermeter.report.charts.scale import Axis, Scale, _domain, _tick_labels
from infermeter.report.charts.style import BLUE, esc, text_width

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
