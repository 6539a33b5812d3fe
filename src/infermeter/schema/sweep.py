"""``sweep.json``, typed: the index of a sweep or capacity search, rewritten after every point.

Each point is an ordinary run directory; its entry here repeats the figures the sweep's
table, charts and capacity criterion need, so the index reads without opening the points.
"""

from __future__ import annotations

from typing import Any, Literal

from typing_extensions import NotRequired, TypedDict

from infermeter.schema.results import CoreSpeed, SLOResult, Summary

#: Bumped when a field of sweep.json changes meaning or is removed.
SWEEP_SCHEMA_VERSION = 1


class LatencyLimitDoc(TypedDict):
    metric: str
    percentile: float | None
    max: float


class SweepSLADoc(TypedDict):
    """The capacity criterion: from ``--slo`` or a ``--profile``."""

    source: Literal["slo", "profile"]
    text: str
    limits: list[LatencyLimitDoc]
    min_attainment: float | None
    max_error_rate: float
    left_out: list[str]
    criterion: str


class SweepPoint(TypedDict):
    index: int
    #: The point's run directory, relative to the sweep's.
    dir: str
    #: "point" (measured), "probe" (the saturation probe of ``--rate auto``), "search".
    role: str
    concurrency: int | None
    rate: float | None
    input_tokens: str
    output_tokens: str
    status: Literal["ok", "aborted", "interrupted"]
    summary: Summary
    #: ``latency[metric][pNN]`` for TTFT, TPOT, ITL and E2E at p50, p90, p95, p99.
    latency: dict[str, dict[str, float | None]]
    waiting_mean: float | None
    slo: SLOResult | None
    meets_sla: bool | None
    sla_misses: NotRequired[list[str]]
    #: The core probe over the point's window: the server's own core's where sampled, else
    #: a core's (telemetry's ``server_core_speed`` / ``core_speed``).
    core_speed: NotRequired[CoreSpeed]


class Stopped(TypedDict):
    reason: str | None
    detail: str | None


class Capacity(TypedDict):
    """The highest load meeting the SLA, and how it was found."""

    variable: str
    value: float | None
    pass_index: int | None
    fail_index: int | None
    criterion: str
    bounded_above: bool
    monotone: bool
    runs: int
    note: str


class Saturation(TypedDict):
    """The closed-loop probe that ``--rate auto`` chooses its rates from."""

    concurrency: int
    request_throughput_rps: float
    output_token_throughput_tok_s: float


class Saturated(TypedDict):
    """Where a walk over one pair of lengths stopped because the server saturated."""

    input_tokens: str
    output_tokens: str
    at: float
    detail: str


class SweepIndex(TypedDict):
    schema_version: int
    kind: Literal["sweep", "search"]
    infermeter_version: str | None
    started_at: str
    variable: str
    config: dict[str, Any]
    seed_drawn: NotRequired[bool]
    #: "fresh": each point on a server started (or reset) for it; "shared": one server for
    #: all, whose state (prefix cache, slot history) carries from point to point.
    server_per_point: NotRequired[Literal["fresh", "shared"]]
    sla: SweepSLADoc | None
    points: list[SweepPoint]
    stopped: Stopped
    capacity: Capacity | None
    saturation: NotRequired[Saturation]
    saturated: NotRequired[list[Saturated]]
