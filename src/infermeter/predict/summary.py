"""A simulation's figures straight from its arrays (no run directory): what ``plan`` judges
many simulations by. Percentiles are exact, by linear interpolation, as the metric contract
has them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infermeter.predict.model import FloatArray
from infermeter.predict.simulate import SimResult

PERCENTILES = (50.0, 90.0, 95.0, 99.0)
LATENCIES = ("ttft_ms", "tpot_ms", "e2e_ms")


@dataclass(frozen=True)
class Term:
    """One latency limit: ``metric`` at ``percentile`` must stay at or under ``threshold``."""

    metric: str
    percentile: float
    threshold: float

    @property
    def name(self) -> str:
        return f"p{self.percentile:g} {self.metric} ≤ {self.threshold:g}"


@dataclass(frozen=True)
class SimSummary:
    requests: int
    finished: int
    duration_s: float
    request_rps: float
    output_tok_s: float
    #: metric → percentile → value (ms); NaN where no request had the metric.
    latency: dict[str, dict[float, float]]
    mean_batch: float
    busy_share: float

    def value(self, metric: str, percentile: float) -> float:
        return self.latency[metric][percentile]


def _pct(values: FloatArray, pcts: tuple[float, ...]) -> dict[float, float]:
    values = values[~np.isnan(values)]
    if not values.size:
        return {p: float("nan") for p in pcts}
    return {p: float(v) for p, v in zip(pcts, np.percentile(values, pcts), strict=True)}


def summarize(res: SimResult, extra: tuple[float, ...] = ()) -> SimSummary:
    pcts = tuple(sorted(set(PERCENTILES) | set(extra)))
    sent = res.sent
    done = sent & res.finished
    first = res.t_first()
    ttft = (first - res.t_send)[done]
    # The metric contract: E2E ends at the last token, not the end of the answer.
    e2e = (res.t_last - res.t_send)[done]
    n_out = res.n_out[done].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(n_out > 1, (res.t_last - first)[done] / (n_out - 1), np.nan)
    if done.any():
        start = float(np.min(res.t_send[sent]))
        end = float(np.max(res.t_end[done]))
        span_s = max((end - start) / 1000.0, 1e-9)
    else:
        span_s = 0.0
    busy = sum(res.busy_ms)
    return SimSummary(
        requests=int(sent.sum()),
        finished=int(done.sum()),
        duration_s=span_s,
        request_rps=float(done.sum()) / span_s if span_s else 0.0,
        output_tok_s=float(n_out.sum()) / span_s if span_s else 0.0,
        latency={
            "ttft_ms": _pct(ttft, pcts),
            "tpot_ms": _pct(tpot, pcts),
            "e2e_ms": _pct(e2e, pcts),
        },
        mean_batch=res.mean_batch,
        busy_share=busy / (len(res.busy_ms) * res.sim_end_ms) if res.sim_end_ms else 0.0,
    )


def meets(summary: SimSummary, terms: list[Term]) -> list[tuple[Term, float, bool]]:
    """Each term with the predicted value and whether it holds (a missing value fails)."""
    out = []
    for t in terms:
        pcts = summary.latency[t.metric]
        v = pcts[t.percentile] if t.percentile in pcts else float("nan")
        out.append((t, v, bool(v <= t.threshold)))
    return out
