"""What a chart draws: lines, markers, bars, reference lines, regions; and the chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

from infermeter.report.charts.scale import Axis
from infermeter.report.charts.style import BLUE, GREEN, GREY, Marker

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
