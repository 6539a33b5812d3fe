"""Per-request metrics and run aggregates: pure functions over records, no I/O.

Every formula follows ``docs/metrics.md`` (the project's metric contract)."""

from infermeter.metrics.aggregate import (
    PERCENTILE_METHOD,
    Distribution,
    RunMetrics,
    Summary,
    compute_run_metrics,
    distribution,
)
from infermeter.metrics.catalogue import DISTRIBUTION_NAMES
from infermeter.metrics.per_request import RequestMetrics, request_metrics
from infermeter.metrics.slo import SLO, SLOReport, SLOTerm, evaluate_slo, parse_slo
from infermeter.metrics.tokens import spread_tokens

__all__ = [
    "DISTRIBUTION_NAMES",
    "PERCENTILE_METHOD",
    "SLO",
    "Distribution",
    "RequestMetrics",
    "RunMetrics",
    "SLOReport",
    "SLOTerm",
    "Summary",
    "compute_run_metrics",
    "distribution",
    "evaluate_slo",
    "parse_slo",
    "request_metrics",
    "spread_tokens",
]
