"""Run aggregates (metrics spec section 4): throughput, concurrency, goodput, distributions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from infermeter.metrics.cache import PromptCacheCounts, prompt_cache_counts
from infermeter.metrics.catalogue import DISTRIBUTION_NAMES, NOT_PER_REQUEST
from infermeter.metrics.columns import RequestColumns, request_columns
from infermeter.metrics.intervals import quantile_intervals
from infermeter.metrics.per_request import RequestMetrics
from infermeter.metrics.quantiles import percentiles, std
from infermeter.metrics.slo import SLO, SLOReport, evaluate_slo
from infermeter.metrics.stamps import SharedFirstStamps, shared_first_stamps
from infermeter.metrics.table import MISSING, RequestTable, request_table
from infermeter.records.schema import RequestRecord
from infermeter.schema.results import Distribution as DistributionDoc
from infermeter.schema.results import TpotAgreement as TpotAgreementDoc

#: Written into every result so readers know how percentiles were taken.
PERCENTILE_METHOD = "linear"
STANDARD_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)


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
    #: Per percentile key, its 95 % interval (lower, upper; None for a side the sample
    #: cannot bound): :mod:`~infermeter.metrics.intervals`. Empty where not asked for.
    intervals: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def to_dict(self) -> DistributionDoc:
        out: DistributionDoc = {
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
        for key, value in self.extra.items():
            out[key] = value  # type: ignore[literal-required]  # asked-for extra percentiles
        if self.intervals:
            out["interval95"] = {k: [lo, hi] for k, (lo, hi) in self.intervals.items()}
        return out


def _pct_key(p: float) -> str:
    return f"p{p:g}".replace(".", "_")


def distribution(
    values: Iterable[float] | npt.NDArray[np.float64],
    extra_percentiles: Sequence[float] = (),
    intervals: bool = False,
) -> Distribution:
    """Summarise values; percentiles by linear interpolation between order statistics (exact
    for any number of values, without copying a large sample: :mod:`~infermeter.metrics.
    quantiles`). ``intervals``: each percentile's 95 % interval too, for samples that are
    one per request (a request's tokens are not independent draws)."""
    arr = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=np.float64)
    if arr.size == 0:
        return Distribution(count=0)
    wanted = [*STANDARD_PERCENTILES, *extra_percentiles]
    pcts = percentiles(arr, wanted)
    extra = {_pct_key(p): float(v) for p, v in zip(extra_percentiles, pcts[4:], strict=True)}
    bounds = (
        dict(zip(map(_pct_key, wanted), quantile_intervals(arr, wanted), strict=True))
        if intervals
        else {}
    )
    return Distribution(
        count=int(arr.size),
        mean=float(arr.mean()),
        std=std(arr),
        min=float(arr.min()),
        p50=float(pcts[0]),
        p90=float(pcts[1]),
        p95=float(pcts[2]),
        p99=float(pcts[3]),
        max=float(arr.max()),
        extra=extra,
        intervals=bounds,
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

    def to_dict(self) -> TpotAgreementDoc:
        return {
            "requests": self.requests,
            "median_ratio": self.median_ratio,
            "share_within_1pct": self.share_within_1pct,
        }


def tpot_agreement(
    client_ms: npt.NDArray[np.float64], server_ms: npt.NDArray[np.float64]
) -> TpotAgreement:
    """Client and server TPOT of the same requests, in one order: two means can look 6 %
    apart when all but a few requests match exactly, so the comparison is per request."""
    positive = server_ms > 0
    with np.errstate(over="ignore"):  # a denormal server figure: an infinite ratio, not a fault
        ratios = client_ms[positive] / server_ms[positive]
    if ratios.size == 0:
        return TpotAgreement(0, None, None)
    within = float(np.mean(np.abs(ratios - 1.0) <= TPOT_MATCH))
    return TpotAgreement(int(ratios.size), float(np.median(ratios)), within)


def peak_in_flight(t_send_ns: npt.NDArray[np.int64], t_end_ns: npt.NDArray[np.int64]) -> int:
    """The most requests between their ``t_send`` and ``t_end`` at one instant."""
    if t_send_ns.size == 0:
        return 0
    times = np.concatenate([t_send_ns, t_end_ns])
    steps = np.concatenate(
        [np.ones(t_send_ns.size, dtype=np.int64), -np.ones(t_end_ns.size, dtype=np.int64)]
    )
    order = np.lexsort((steps, times))  # by instant; an end before a send at the same one
    return int(max(np.cumsum(steps[order]).max(), 0))


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
    #: The completed requests' metrics as columns (the summary holds no record).
    requests: RequestColumns
    #: The measured window: the first ``t_send`` and the last ``t_end`` (None: no request).
    window_ns: tuple[int, int] | None
    #: The measured requests as columns (what the timeline charts draw).
    table: RequestTable

    @property
    def per_request(self) -> tuple[RequestMetrics, ...]:
        """The completed requests' metrics one by one (built on each access)."""
        return self.requests.rows()


def compute_run_metrics(
    records: Iterable[RequestRecord],
    *,
    slo: SLO | None = None,
    target_concurrency: int | None = None,
    target_rate_rps: float | None = None,
    extra_percentiles: Sequence[float] = (),
) -> RunMetrics:
    """Aggregate measured records (warm-up records are ignored); see :func:`table_metrics`.
    ``records`` may be a stream: each is folded into columns and not kept."""
    return table_metrics(
        request_table(records),
        slo=slo,
        target_concurrency=target_concurrency,
        target_rate_rps=target_rate_rps,
        extra_percentiles=extra_percentiles,
    )


def table_metrics(
    table: RequestTable,
    *,
    slo: SLO | None = None,
    target_concurrency: int | None = None,
    target_rate_rps: float | None = None,
    extra_percentiles: Sequence[float] = (),
) -> RunMetrics:
    """Aggregate a run's measured requests.

    D runs from the first ``t_send`` to the last ``t_end`` of the measured requests.
    RPS = completed / D; output throughput = sum(n_out) / D; total throughput =
    sum(n_in + n_out) / D; achieved concurrency = sum(E2E) / D (Little's law).
    Token sums and latency distributions cover completed requests; failures are counted
    beside them and as misses in goodput and SLO attainment.
    """
    n_sent = len(table)
    done = table.ok
    n_done = int(done.sum())
    n_failed = n_sent - n_done
    window: tuple[int, int] | None = None
    duration_s = 0.0
    if n_sent:
        window = (int(table.t_send_ns.min()), int(table.t_end_ns.max()))
        duration_s = max(window[1] - window[0], 0) / 1e9
    cols = request_columns(table)

    def rate(x: float) -> float:
        return x / duration_s if duration_s > 0 else 0.0

    n_in = cols.n_in
    sum_out = int(cols.n_out.sum())
    sum_in = int(n_in[n_in != MISSING].sum())
    # Python's own float sum, term by term in record order, as the formula has always been.
    sum_e2e_s = sum(np.where(np.isnan(cols.e2e_ms), 0.0, cols.e2e_ms).tolist()) / 1e3
    slo_report = evaluate_slo(slo, cols, n_failed, duration_s) if slo is not None else None

    sends = np.sort(table.t_send_ns)
    send_rate = (
        (sends.size - 1) / ((int(sends[-1]) - int(sends[0])) / 1e9)
        if sends.size >= 2 and sends[-1] > sends[0]
        else None
    )
    summary = Summary(
        requests_sent=n_sent,
        requests_completed=n_done,
        requests_failed=n_failed,
        duration_s=duration_s,
        request_throughput_rps=rate(n_done),
        request_throughput_rpm=60.0 * rate(n_done),
        output_token_throughput_tok_s=rate(sum_out),
        input_token_throughput_tok_s=rate(sum_in),
        total_token_throughput_tok_s=rate(sum_in + sum_out),
        achieved_concurrency=rate(sum_e2e_s),
        goodput_rps=slo_report.goodput_rps if slo_report else None,
        slo_attainment=slo_report.attainment if slo_report else None,
        error_rate=n_failed / n_sent if n_sent else 0.0,
        target_concurrency=target_concurrency,
        target_rate_rps=target_rate_rps,
        achieved_send_rate_rps=send_rate if target_rate_rps is not None else None,
    )

    dists: dict[str, Distribution] = {}
    for name in DISTRIBUTION_NAMES:
        if name == "inter_chunk_ms" and cols.inter_chunk_ms is cols.itl_ms and "itl_ms" in dists:
            dists[name] = dists["itl_ms"]  # every chunk carried one token: the same samples
        else:
            dists[name] = distribution(
                cols.samples(name), extra_percentiles, intervals=name not in NOT_PER_REQUEST
            )
    target = table.n_in_target[done]
    compared = (target != MISSING) & (n_in != MISSING)
    mismatched = compared & (n_in != target)
    mismatch: dict[str, float | int] = {
        "compared": int(compared.sum()),
        "mismatched": int(mismatched.sum()),
    }
    from_server = n_in[(n_in != MISSING) & table.n_in_from_server[done]]
    if from_server.size:  # what the server counted, sized by a tokenizer or not
        mismatch["server_mean_input_tokens"] = float(np.mean(from_server))
    if mismatched.any():
        diffs = n_in[mismatched] - target[mismatched]
        mismatch["mean_difference_tokens"] = float(np.mean(diffs))
        mismatch["max_abs_difference_tokens"] = int(np.abs(diffs).max())
    server_tpot_all = table.server_tpot_ms[done]
    reported = ~np.isnan(server_tpot_all)
    server_tpot = server_tpot_all[reported]
    client_tpot = cols.tpot_ms[reported]
    both = ~np.isnan(client_tpot)
    agreement = tpot_agreement(client_tpot[both], server_tpot[both])
    prompt_ms_all = table.server_prompt_ms[done]
    timed = ~np.isnan(prompt_ms_all) & ~np.isnan(cols.ttft_ms)
    prompt_ms = prompt_ms_all[timed]
    streamed_rows = table.n_chunks[done] >= 2
    queue_less_connect = cols.queue_delay_ms - cols.connect_ms
    return RunMetrics(
        server_prompt_ms=distribution(prompt_ms, extra_percentiles),
        ttft_outside_prompt_ms=distribution(cols.ttft_ms[timed] - prompt_ms, extra_percentiles),
        summary=summary,
        distributions=dists,
        errors_by_kind=dict(table.errors_by_kind),
        error_examples=dict(table.error_examples),
        token_sources={k: dict(v) for k, v in table.token_sources.items()},
        input_tokens_mismatch=mismatch,
        server_tpot_ms=distribution(server_tpot, extra_percentiles),
        server_tpot_agreement=agreement,
        prompt_cache=prompt_cache_counts(n_in, table.n_cached[done], cols.ttft_ms),
        shared_first=shared_first_stamps(
            table.shared_tokens[done][streamed_rows],
            table.shared_pace_ms[done][streamed_rows],
            cols.n_out[streamed_rows],
            dists["itl_ms"].p50,
        ),
        peak_in_flight=peak_in_flight(table.t_send_ns, table.t_end_ns),
        not_streamed=int((~table.streamed[done]).sum()),
        # max(x, 0.0) as Python takes it: x unless 0.0 is greater
        client_delay_p99_ms=distribution(
            np.where(queue_less_connect < 0.0, 0.0, queue_less_connect)
        ).p99,
        slo=slo_report,
        requests=cols,
        window_ns=window,
        table=table,
    )
