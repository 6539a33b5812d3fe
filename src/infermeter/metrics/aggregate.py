"""Run aggregates (metrics spec section 4): throughput, concurrency, goodput, distributions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from infermeter.metrics.cache import PromptCacheCounts, prompt_cache_counts
from infermeter.metrics.per_request import RequestMetrics, request_metrics
from infermeter.metrics.slo import SLO, SLOReport, evaluate_slo
from infermeter.metrics.stamps import SharedFirstStamps, shared_first_stamps
from infermeter.records.schema import RequestRecord

#: Written into every result so readers know how percentiles were taken.
PERCENTILE_METHOD = "linear"
STANDARD_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)

#: Distributions every run reports, in this order.
DISTRIBUTION_NAMES: tuple[str, ...] = (
    "ttft_ms",
    "ttft_incl_queue_ms",
    "tpot_ms",
    "itl_ms",
    "e2e_ms",
    "inter_chunk_ms",
    "queue_delay_ms",
    "connect_ms",
    "input_tokens",
    "output_tokens",
    "prefill_tps",
    "decode_tps",
    "request_tps",
)


@dataclass(frozen=True, slots=True)
class Distribution:
    """count, mean, std (population, ddof=0), min, p50, p90, p95, p99, max and extras."""

    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
        }
        out.update(self.extra)
        return out


def _pct_key(p: float) -> str:
    return f"p{p:g}".replace(".", "_")


def _joined(parts: Iterable[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    arrays = list(parts)
    return np.concatenate(arrays) if arrays else np.empty(0)


def distribution(
    values: Iterable[float] | npt.NDArray[np.float64], extra_percentiles: Sequence[float] = ()
) -> Distribution:
    """Summarise values; percentiles by linear interpolation between order statistics."""
    arr = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=np.float64)
    if arr.size == 0:
        return Distribution(count=0)
    wanted = [*STANDARD_PERCENTILES, *extra_percentiles]
    pcts = np.percentile(arr, wanted, method="linear")
    extra = {_pct_key(p): float(v) for p, v in zip(extra_percentiles, pcts[4:], strict=True)}
    return Distribution(
        count=int(arr.size),
        mean=float(arr.mean()),
        std=float(arr.std()),
        min=float(arr.min()),
        p50=float(pcts[0]),
        p90=float(pcts[1]),
        p95=float(pcts[2]),
        p99=float(pcts[3]),
        max=float(arr.max()),
        extra=extra,
    )


@dataclass(frozen=True, slots=True)
class Summary:
    requests_sent: int
    requests_completed: int
    requests_failed: int
    duration_s: float
    request_throughput_rps: float
    request_throughput_rpm: float
    output_token_throughput_tok_s: float
    input_token_throughput_tok_s: float
    total_token_throughput_tok_s: float
    achieved_concurrency: float
    goodput_rps: float | None
    slo_attainment: float | None
    error_rate: float
    target_concurrency: int | None
    target_rate_rps: float | None
    achieved_send_rate_rps: float | None


#: A request's client TPOT "matches" the server's when within this relative difference.
TPOT_MATCH = 0.01


@dataclass(frozen=True, slots=True)
class TpotAgreement:
    """Per-request ratio client TPOT / server TPOT over requests that have both."""

    requests: int
    median_ratio: float | None
    share_within_1pct: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "median_ratio": self.median_ratio,
            "share_within_1pct": self.share_within_1pct,
        }


def tpot_agreement(pairs: Sequence[tuple[float, float]]) -> TpotAgreement:
    """``pairs`` of (client TPOT, server TPOT) per request: two means can look 6 % apart
    when all but a few requests match exactly, so the comparison is per request."""
    ratios = np.asarray([c / s for c, s in pairs if s > 0], dtype=np.float64)
    if ratios.size == 0:
        return TpotAgreement(0, None, None)
    within = float(np.mean(np.abs(ratios - 1.0) <= TPOT_MATCH))
    return TpotAgreement(int(ratios.size), float(np.median(ratios)), within)


def peak_in_flight(records: Sequence[RequestRecord]) -> int:
    """The most requests between their ``t_send`` and ``t_end`` at one instant."""
    events = sorted(
        [(r.t_send_ns, 1) for r in records] + [(r.t_end_ns, -1) for r in records],
        key=lambda e: (e[0], e[1]),  # an end before a send at the same instant
    )
    peak = cur = 0
    for _t, step in events:
        cur += step
        peak = max(peak, cur)
    return peak


@dataclass(frozen=True, slots=True)
class RunMetrics:
    summary: Summary
    distributions: dict[str, Distribution]
    errors_by_kind: dict[str, int]
    error_examples: dict[str, str]
    token_sources: dict[str, dict[str, int]]
    input_tokens_mismatch: dict[str, float | int]
    server_tpot_ms: Distribution
    #: Client TPOT against the server's own, request by request.
    server_tpot_agreement: TpotAgreement
    #: The server's own prompt-processing time (llama.cpp ``timings.prompt_ms``), and what of
    #: the TTFT passed outside it: TTFT less prompt_ms, i.e. before the prompt started (queue,
    #: scheduling, front end) or after its first token (transport).
    server_prompt_ms: Distribution
    ttft_outside_prompt_ms: Distribution
    #: p99 of the client queue delay less connection set-up: the client's own lateness.
    client_delay_p99_ms: float | None
    #: Prompt tokens the server said it served from its prefix cache.
    prompt_cache: PromptCacheCounts
    #: Requests whose first token was read under a later token's stamp.
    shared_first: SharedFirstStamps
    #: The most requests in flight at once (from the records' send and end instants).
    peak_in_flight: int
    #: Completed requests the server answered whole instead of streaming (no TPOT, no ITL).
    not_streamed: int
    slo: SLOReport | None
    per_request: tuple[RequestMetrics, ...]


def _error_label(r: RequestRecord) -> str:
    if r.error_kind == "http" and r.http_status is not None:
        return f"http_{r.http_status}"
    return r.error_kind or "unknown"


def compute_run_metrics(
    records: Sequence[RequestRecord],
    *,
    slo: SLO | None = None,
    target_concurrency: int | None = None,
    target_rate_rps: float | None = None,
    extra_percentiles: Sequence[float] = (),
) -> RunMetrics:
    """Aggregate measured records (warm-up records are ignored).

    D runs from the first ``t_send`` to the last ``t_end`` of the measured requests.
    RPS = completed / D; output throughput = sum(n_out) / D; total throughput =
    sum(n_in + n_out) / D; achieved concurrency = sum(E2E) / D (Little's law).
    Token sums and latency distributions cover completed requests; failures are counted
    beside them and as misses in goodput and SLO attainment.
    """
    measured = [r for r in records if r.phase == "measure"]
    done = [r for r in measured if r.ok]
    failed = [r for r in measured if not r.ok]
    if measured:
        start = min(r.t_send_ns for r in measured)
        end = max(r.t_end_ns for r in measured)
        duration_s = max(end - start, 0) / 1e9
    else:
        duration_s = 0.0
    per = tuple(request_metrics(r) for r in done)

    def rate(x: float) -> float:
        return x / duration_s if duration_s > 0 else 0.0

    sum_out = sum(r.n_out for r in done)
    sum_in = sum(r.n_in or 0 for r in done)
    sum_e2e_s = sum((m.e2e_ms or 0.0) for m in per) / 1e3
    slo_report = evaluate_slo(slo, per, len(failed), duration_s) if slo is not None else None

    sends = sorted(r.t_send_ns for r in measured)
    send_rate = (
        (len(sends) - 1) / ((sends[-1] - sends[0]) / 1e9)
        if len(sends) >= 2 and sends[-1] > sends[0]
        else None
    )
    summary = Summary(
        requests_sent=len(measured),
        requests_completed=len(done),
        requests_failed=len(failed),
        duration_s=duration_s,
        request_throughput_rps=rate(len(done)),
        request_throughput_rpm=60.0 * rate(len(done)),
        output_token_throughput_tok_s=rate(sum_out),
        input_token_throughput_tok_s=rate(sum_in),
        total_token_throughput_tok_s=rate(sum_in + sum_out),
        achieved_concurrency=rate(sum_e2e_s),
        goodput_rps=slo_report.goodput_rps if slo_report else None,
        slo_attainment=slo_report.attainment if slo_report else None,
        error_rate=len(failed) / len(measured) if measured else 0.0,
        target_concurrency=target_concurrency,
        target_rate_rps=target_rate_rps,
        achieved_send_rate_rps=send_rate if target_rate_rps is not None else None,
    )

    def dist(values: Iterable[float | int | None]) -> Distribution:
        return distribution((float(v) for v in values if v is not None), extra_percentiles)

    dists = {
        "ttft_ms": dist(m.ttft_ms for m in per),
        "ttft_incl_queue_ms": dist(m.ttft_incl_queue_ms for m in per),
        "tpot_ms": dist(m.tpot_ms for m in per),
        "itl_ms": distribution(_joined(m.itl_ms for m in per), extra_percentiles),
        "e2e_ms": dist(m.e2e_ms for m in per),
        "inter_chunk_ms": distribution(_joined(m.inter_chunk_ms for m in per), extra_percentiles),
        "queue_delay_ms": dist(m.queue_delay_ms for m in per),
        "connect_ms": dist(m.connect_ms for m in per),
        "input_tokens": dist(m.n_in for m in per),
        "output_tokens": dist(m.n_out for m in per),
        "prefill_tps": dist(m.prefill_tps for m in per),
        "decode_tps": dist(m.decode_tps for m in per),
        "request_tps": dist(m.request_tps for m in per),
    }
    kinds = Counter(_error_label(r) for r in failed)
    examples: dict[str, str] = {}
    for r in failed:
        examples.setdefault(_error_label(r), r.error_message or "")
    sources = {
        "n_in": dict(Counter(r.n_in_source or "none" for r in done)),
        "n_out": dict(Counter(r.n_out_source for r in done)),
        "chunk_tokens": dict(Counter(r.chunk_tokens_source for r in done)),
    }
    compared = [r for r in done if r.n_in_target is not None and r.n_in is not None]
    mismatched = [r for r in compared if r.n_in != r.n_in_target]
    mismatch: dict[str, float | int] = {"compared": len(compared), "mismatched": len(mismatched)}
    counted = [r.n_in for r in done if r.n_in is not None and r.n_in_source == "server"]
    if counted:  # what the server counted, sized by a tokenizer or not
        mismatch["server_mean_input_tokens"] = float(np.mean(counted))
    if mismatched:
        diffs = [(r.n_in or 0) - (r.n_in_target or 0) for r in mismatched]
        mismatch["mean_difference_tokens"] = float(np.mean(diffs))
        mismatch["max_abs_difference_tokens"] = int(max(abs(d) for d in diffs))
    server_pairs = [
        (m.tpot_ms, float(r.server_timings["predicted_per_token_ms"]))
        for m, r in zip(per, done, strict=True)
        if r.server_timings
        and isinstance(r.server_timings.get("predicted_per_token_ms"), int | float)
    ]
    server_tpot = dist(s for _c, s in server_pairs)
    agreement = tpot_agreement([(c, s) for c, s in server_pairs if c is not None])
    timed = [
        (m, r.server_timings["prompt_ms"])
        for m, r in zip(per, done, strict=True)
        if r.server_timings
        and isinstance(r.server_timings.get("prompt_ms"), int | float)
        and m.ttft_ms is not None
    ]
    return RunMetrics(
        server_prompt_ms=dist(ms for _m, ms in timed),
        ttft_outside_prompt_ms=dist((m.ttft_ms or 0.0) - ms for m, ms in timed),
        summary=summary,
        distributions=dists,
        errors_by_kind=dict(kinds),
        error_examples=examples,
        token_sources=sources,
        input_tokens_mismatch=mismatch,
        server_tpot_ms=server_tpot,
        server_tpot_agreement=agreement,
        prompt_cache=prompt_cache_counts(done, [m.ttft_ms for m in per]),
        shared_first=shared_first_stamps(done, dists["itl_ms"].p50),
        peak_in_flight=peak_in_flight(measured),
        not_streamed=sum(not r.streamed for r in done),
        client_delay_p99_ms=distribution(
            max(m.queue_delay_ms - m.connect_ms, 0.0) for m in per
        ).p99,
        slo=slo_report,
        per_request=per,
    )
