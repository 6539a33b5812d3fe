"""Service-level objectives over per-request metrics: goodput and SLO attainment.

``ttft_ms=200,tpot_ms=50`` asks every request to meet each limit; goodput counts the requests
that meet all of them. A percentile-qualified term such as ``p95_ttft_ms=300`` also asks the
run for a verdict: at least 95 % of the requests (failed ones count as misses) must have a TTFT
of at most 300 ms; the run's measured p95 is reported beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from infermeter.errors import UsageError
from infermeter.metrics.columns import RequestColumns
from infermeter.metrics.per_request import RequestMetrics

#: Per-request metrics an SLO may name, and the column (RequestMetrics attribute) each reads.
SLO_METRICS: dict[str, str] = {
    "ttft_ms": "ttft_ms",
    "tpot_ms": "tpot_ms",
    "e2e_ms": "e2e_ms",
    "ttft_incl_queue_ms": "ttft_incl_queue_ms",
    # A reasoning request that never answered misses it (no first answer token).
    "ttfa_ms": "ttfa_ms",
}

_TERM = re.compile(r"^(?:p(?P<pct>\d{1,2}(?:\.\d+)?)_)?(?P<metric>[a-z][a-z0-9_]*)$")


@dataclass(frozen=True, slots=True)
class SLOTerm:
    metric: str
    threshold: float
    percentile: float | None = None

    @property
    def name(self) -> str:
        prefix = f"p{self.percentile:g}_" if self.percentile is not None else ""
        return f"{prefix}{self.metric}"

    def met(self, m: RequestMetrics) -> bool:
        value = getattr(m, SLO_METRICS[self.metric])
        if value is None:
            # TPOT is undefined for a single output token: no decode phase to miss.
            return self.metric == "tpot_ms" and m.ttft_ms is not None
        return bool(value <= self.threshold)

    def met_by(self, cols: RequestColumns) -> npt.NDArray[np.bool_]:
        """:meth:`met` for every request of ``cols`` at once."""
        values: npt.NDArray[np.float64] = getattr(cols, SLO_METRICS[self.metric])
        met = values <= self.threshold  # NaN (undefined) compares False
        if self.metric == "tpot_ms":
            met |= np.isnan(values) & ~np.isnan(cols.ttft_ms)
        return met


@dataclass(frozen=True, slots=True)
class SLO:
    terms: tuple[SLOTerm, ...]

    def met(self, m: RequestMetrics) -> bool:
        return all(t.met(m) for t in self.terms)

    def met_by(self, cols: RequestColumns) -> npt.NDArray[np.bool_]:
        met = np.ones(len(cols), dtype=bool)
        for term in self.terms:
            met &= term.met_by(cols)
        return met


def parse_slo(text: str) -> SLO:
    """Parse ``ttft_ms=200,tpot_ms=50,p95_e2e_ms=4000``. Raises UsageError naming the term."""
    terms: list[SLOTerm] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        match = _TERM.match(key.strip())
        if not sep or match is None or match.group("metric") not in SLO_METRICS:
            known = ", ".join(SLO_METRICS)
            raise UsageError(
                f"--slo: cannot read {part!r}; expected NAME=LIMIT with NAME one of {known}, "
                "optionally prefixed by a percentile such as p95_"
            )
        try:
            limit = float(value)
        except ValueError:
            raise UsageError(f"--slo: {key}={value!r} is not a number") from None
        if not limit > 0:
            raise UsageError(f"--slo: {key} must be positive, got {value}")
        pct = match.group("pct")
        percentile = float(pct) if pct is not None else None
        if percentile is not None and not 0 < percentile < 100:
            raise UsageError(f"--slo: percentile p{pct} must be between 0 and 100")
        terms.append(SLOTerm(match.group("metric"), limit, percentile))
    if not terms:
        raise UsageError("--slo: no terms given")
    return SLO(tuple(terms))


@dataclass(frozen=True, slots=True)
class TermVerdict:
    name: str
    metric: str
    threshold: float
    percentile: float | None
    #: Share of all measured requests (failures included) meeting this term.
    attainment: float
    #: The measured value at the term's percentile over completed requests, if it has one.
    measured: float | None
    #: Percentile terms: attainment >= percentile/100. Plain terms: None (per-request only).
    passed: bool | None


@dataclass(frozen=True, slots=True)
class SLOReport:
    terms: tuple[TermVerdict, ...]
    requests_meeting: int
    requests_total: int
    attainment: float
    goodput_rps: float
    passed: bool | None


def evaluate_slo(
    slo: SLO, completed: RequestColumns, n_failed: int, duration_s: float
) -> SLOReport:
    """Goodput = requests meeting every term / D; attainment shares count failures as misses."""
    total = len(completed) + n_failed
    meeting = int(slo.met_by(completed).sum())
    verdicts: list[TermVerdict] = []
    for term in slo.terms:
        ok = int(term.met_by(completed).sum())
        attainment = ok / total if total else 0.0
        measured: float | None = None
        passed: bool | None = None
        if term.percentile is not None:
            column: npt.NDArray[np.float64] = getattr(completed, SLO_METRICS[term.metric])
            values = column[~np.isnan(column)]
            if values.size:
                measured = float(np.percentile(values, term.percentile))
            passed = total > 0 and attainment >= term.percentile / 100.0
        verdicts.append(
            TermVerdict(
                term.name,
                term.metric,
                term.threshold,
                term.percentile,
                attainment,
                measured,
                passed,
            )
        )
    pct_verdicts = [v.passed for v in verdicts if v.passed is not None]
    return SLOReport(
        terms=tuple(verdicts),
        requests_meeting=meeting,
        requests_total=total,
        attainment=meeting / total if total else 0.0,
        goodput_rps=meeting / duration_s if duration_s > 0 else 0.0,
        passed=all(pct_verdicts) if pct_verdicts else None,
    )
