"""Joining a run's metrics with its telemetry and the speed-of-light model: pure functions."""

from __future__ import annotations

from infermeter.analysis.diagnosis import diagnose
from infermeter.analysis.efficiency import efficiency
from infermeter.analysis.telemetry import summarize_telemetry
from infermeter.analysis.verdicts import (
    BUILTIN_PROFILES,
    Profile,
    cost,
    evaluate_profile,
    load_profile,
    ttft_bands,
)
from infermeter.schema.results import Analysis, Results
from infermeter.theory.bounds import Deployment

__all__ = [
    "BUILTIN_PROFILES",
    "Profile",
    "analyze",
    "cost",
    "diagnose",
    "efficiency",
    "evaluate_profile",
    "load_profile",
    "summarize_telemetry",
    "ttft_bands",
]


def analyze(
    results: Results,
    ttfts_ms: list[float],
    *,
    deployment: Deployment | None = None,
    profile: Profile | None = None,
    gpu_hourly_price: float | None = None,
    gpus: int = 1,
) -> Analysis:
    """The ``analysis`` section of results.json."""
    eff = efficiency(results, deployment) if deployment is not None else None
    return {
        "efficiency": eff,
        "mbu": eff.get("mbu") if eff else None,
        "mfu": eff.get("mfu_decode") if eff else None,
        "sla": evaluate_profile(results, profile) if profile is not None else None,
        "ttft_bands": ttft_bands(ttfts_ms),
        "findings": diagnose(results, eff),
        "cost": cost(results, gpu_hourly_price, gpus) if gpu_hourly_price else None,
    }
