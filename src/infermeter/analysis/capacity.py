"""The SLA a sweep or capacity search judges each load point by (pure).

Only limits that get worse as load rises take part (latency ceilings, goodput attainment,
errors): a throughput *floor* or a memory-use floor is met more easily under more load, so it
cannot bound a capacity and is left out of the criterion (and said so in its text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infermeter.analysis.verdicts import load_profile
from infermeter.errors import UsageError
from infermeter.metrics.slo import parse_slo
from infermeter.schema.results import Results, statistic
from infermeter.schema.sweep import SweepSLADoc


@dataclass(frozen=True)
class LatencyLimit:
    metric: str
    percentile: float | None
    max: float


@dataclass(frozen=True)
class SweepSLA:
    source: Literal["slo", "profile"]
    text: str
    limits: tuple[LatencyLimit, ...]
    #: --slo: the share of requests that must meet every term (goodput / throughput).
    min_attainment: float | None
    max_error_rate: float
    left_out: tuple[str, ...] = ()

    @property
    def criterion(self) -> str:
        parts = [
            f"{'p' + format(lim.percentile, 'g') + ' ' if lim.percentile else ''}"
            f"{lim.metric} {'<=' if self.source == 'slo' else '<'} {lim.max:g}"
            for lim in self.limits
        ]
        if self.source == "slo" and self.min_attainment is not None:
            parts.append(f"SLO attainment >= {self.min_attainment:.0%}")
        parts.append(f"error rate <= {self.max_error_rate:.0%}")
        text = " and ".join(parts)
        if self.left_out:
            text += f" (not used for capacity: {', '.join(self.left_out)})"
        return text

    def to_dict(self) -> SweepSLADoc:
        return {
            "source": self.source,
            "text": self.text,
            "limits": [
                {"metric": lim.metric, "percentile": lim.percentile, "max": lim.max}
                for lim in self.limits
            ],
            "min_attainment": self.min_attainment,
            "max_error_rate": self.max_error_rate,
            "left_out": list(self.left_out),
            "criterion": self.criterion,
        }


def sweep_sla(
    slo: str | None, profile: str | None, min_attainment: float, max_error_rate: float
) -> SweepSLA | None:
    """The criterion from ``--slo`` or ``--profile`` (not both), or None when neither is given."""
    if slo and profile:
        raise UsageError("give --slo or --profile for the capacity criterion, not both")
    if not 0 < min_attainment <= 1:
        raise UsageError(f"--min-attainment must be in (0, 1], got {min_attainment:g}")
    if slo:
        spec = parse_slo(slo)
        limits = tuple(LatencyLimit(t.metric, t.percentile, t.threshold) for t in spec.terms)
        plain = any(t.percentile is None for t in spec.terms)
        return SweepSLA("slo", slo, limits, min_attainment if plain else None, max_error_rate)
    if profile:
        prof = load_profile(profile)
        ceilings: list[LatencyLimit] = []
        left: list[str] = []
        for lim in prof.limits:
            if lim.max is not None and lim.metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
                ceilings.append(LatencyLimit(lim.metric, lim.percentile, lim.max))
            else:
                left.append(lim.name)
        if not ceilings:
            raise UsageError(
                f"--profile {profile}: no latency ceiling to search a capacity by "
                "(only floors, which more load meets more easily)"
            )
        return SweepSLA("profile", prof.name, tuple(ceilings), None, max_error_rate, tuple(left))
    return None


def meets(results: Results, sla: SweepSLA) -> tuple[bool, list[str]]:
    """Whether a run meets the SLA, and the reasons it does not."""
    misses: list[str] = []
    summary = results["summary"]
    if not summary.get("requests_completed"):
        return False, ["no request completed"]
    if summary["error_rate"] > sla.max_error_rate:
        misses.append(f"error rate {summary['error_rate']:.1%} > {sla.max_error_rate:.0%}")
    if sla.source == "slo":
        rep = results.get("slo")
        for term in rep["terms"] if rep else []:
            if term.get("passed") is False:
                misses.append(
                    f"{term['name']}: {term['attainment']:.1%} of requests within "
                    f"{term['threshold']:g}"
                )
        attainment = rep["attainment"] if rep else 0
        if sla.min_attainment is not None and attainment < sla.min_attainment:
            misses.append(f"SLO attainment {attainment:.1%} < {sla.min_attainment:.0%}")
        return not misses, misses
    for lim in sla.limits:
        key = f"p{lim.percentile:g}".replace(".", "_") if lim.percentile is not None else "mean"
        value = statistic(results["distributions"].get(lim.metric), key)
        if value is None:
            misses.append(f"{key} {lim.metric} not measured")
        elif not value < lim.max:
            misses.append(f"{key} {lim.metric} {value:,.1f} >= {lim.max:g}")
    return not misses, misses


__all__ = ["LatencyLimit", "SweepSLA", "meets", "sweep_sla"]
