"""Colours, the chart stylesheet, and text measured and escaped for SVG."""

from __future__ import annotations

import html
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
