"""The per-request metrics (metrics spec section 3) of a run's completed requests, as columns
computed from its :class:`~infermeter.metrics.table.RequestTable` (pure).

Each column applies the formula of :func:`infermeter.metrics.per_request.request_metrics`
with the same floating-point operations in the same order, so a value here is bit-for-bit
the one computed from the record alone; NaN stands where that function gives ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from infermeter.metrics.per_request import RequestMetrics
from infermeter.metrics.table import MISSING, RequestTable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_NS_PER_MS = 1e6
#: Distributions reported only where some request reasoned.
_REASONING = ("ttfa_ms", "reasoning_ms", "reasoning_tokens")


@dataclass(frozen=True, slots=True)
class RequestColumns:
    """One entry per completed request, in record order."""

    ttft_ms: FloatArray
    ttft_incl_queue_ms: FloatArray
    queue_delay_ms: FloatArray
    connect_ms: FloatArray
    e2e_ms: FloatArray
    tpot_ms: FloatArray
    prefill_tps: FloatArray
    decode_tps: FloatArray
    request_tps: FloatArray
    #: Reasoning models: time to the first answer token, and the thinking's time and tokens.
    ttfa_ms: FloatArray
    reasoning_ms: FloatArray
    n_reason: IntArray
    #: Prompt tokens (:data:`~infermeter.metrics.table.MISSING` where unknown) and output tokens.
    n_in: IntArray
    n_out: IntArray
    #: Every completed request's ITL samples and chunk gaps, concatenated in record order;
    #: request i's are ``itl_ms[itl_start[i]:itl_end[i]]``.
    itl_ms: FloatArray
    itl_start: IntArray
    itl_end: IntArray
    inter_chunk_ms: FloatArray
    gap_start: IntArray
    gap_end: IntArray

    def __len__(self) -> int:
        return int(self.n_out.size)

    def samples(self, name: str) -> FloatArray:
        """The samples of the distribution ``name`` (a catalogue key), undefined entries left
        out, in record order."""
        if name == "input_tokens":
            known: IntArray = self.n_in[self.n_in != MISSING]
            return known.astype(np.float64)
        if name == "output_tokens":
            return self.n_out.astype(np.float64)
        if name in _REASONING and not (self.n_reason > 0).any():
            # No request reasoned: TTFA would repeat TTFT, and every count be 0.
            return np.empty(0, dtype=np.float64)
        if name == "reasoning_tokens":
            return self.n_reason.astype(np.float64)
        column: FloatArray = getattr(self, name)  # a distribution's key names its column
        if name in ("itl_ms", "inter_chunk_ms"):
            return column  # samples of every request, none undefined (and no copy of them)
        return column[~np.isnan(column)]

    def row(self, i: int) -> RequestMetrics:
        """Request i's metrics as :func:`~infermeter.metrics.per_request.request_metrics`
        gives them."""

        def opt(col: FloatArray) -> float | None:
            v = float(col[i])
            return None if v != v else v  # NaN: undefined

        n_in = int(self.n_in[i])
        return RequestMetrics(
            ttft_ms=opt(self.ttft_ms),
            ttft_incl_queue_ms=opt(self.ttft_incl_queue_ms),
            queue_delay_ms=float(self.queue_delay_ms[i]),
            connect_ms=float(self.connect_ms[i]),
            e2e_ms=opt(self.e2e_ms),
            tpot_ms=opt(self.tpot_ms),
            itl_ms=self.itl_ms[self.itl_start[i] : self.itl_end[i]],
            inter_chunk_ms=self.inter_chunk_ms[self.gap_start[i] : self.gap_end[i]],
            prefill_tps=opt(self.prefill_tps),
            decode_tps=opt(self.decode_tps),
            request_tps=opt(self.request_tps),
            n_in=None if n_in == MISSING else n_in,
            n_out=int(self.n_out[i]),
            ttfa_ms=opt(self.ttfa_ms),
            reasoning_ms=opt(self.reasoning_ms),
            n_reason=int(self.n_reason[i]),
        )

    def rows(self) -> tuple[RequestMetrics, ...]:
        return tuple(self.row(i) for i in range(len(self)))


def request_columns(t: RequestTable) -> RequestColumns:
    """The completed requests' metrics (see :func:`~infermeter.metrics.per_request.
    request_metrics` for the formulas and when each is undefined)."""
    done = t.ok
    send, sched = t.t_send_ns[done], t.t_sched_ns[done]
    first, last = t.t_first_ns[done], t.t_last_ns[done]
    n_in, n_out = t.n_in[done], t.n_out[done]
    nan = np.float64("nan")
    timed = (first != MISSING) & (last != MISSING)
    streamed = timed & t.streamed[done]
    # Undefined entries divide by zero or subtract a MISSING; np.where drops them.
    with np.errstate(divide="ignore", invalid="ignore"):
        ttft = np.where(streamed, (first - send) / _NS_PER_MS, nan)
        ttft_q = np.where(streamed, (first - sched) / _NS_PER_MS, nan)
        e2e = np.where(timed, (last - send) / _NS_PER_MS, nan)
        per_token = streamed & (n_out >= 2)
        tpot = np.where(per_token, (last - first) / _NS_PER_MS / (n_out - 1), nan)
        prefill = np.where(streamed & (n_in > 0) & (ttft > 0), n_in / (ttft / 1e3), nan)
        decode = np.where(tpot > 0, 1e3 / tpot, nan)
        req_tps = np.where(e2e > 0, n_out / (e2e / 1e3), nan)
        answer, n_reason = t.answer_ns[done], t.n_reason[done]
        answered = streamed & (answer != MISSING)
        ttfa = np.where(answered, (answer - send) / _NS_PER_MS, nan)
        thought = np.where(answered, answer - first, last - first)
        reasoning = np.where(streamed & (n_reason > 0), thought / _NS_PER_MS, nan)
    return RequestColumns(
        ttft_ms=ttft,
        ttft_incl_queue_ms=ttft_q,
        queue_delay_ms=(send - sched) / _NS_PER_MS,
        connect_ms=t.connect_ns[done] / _NS_PER_MS,
        e2e_ms=e2e,
        tpot_ms=tpot,
        prefill_tps=prefill,
        decode_tps=decode,
        request_tps=req_tps,
        ttfa_ms=ttfa,
        reasoning_ms=reasoning,
        n_reason=n_reason,
        n_in=n_in,
        n_out=n_out,
        # Failed requests add no ITL samples and no gaps: the arrays are the completed ones'.
        itl_ms=t.itl_ms,
        itl_start=t.itl_offsets[:-1][done],
        itl_end=t.itl_offsets[1:][done],
        inter_chunk_ms=t.gaps_ms,
        gap_start=t.gap_offsets[:-1][done],
        gap_end=t.gap_offsets[1:][done],
    )
