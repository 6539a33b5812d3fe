"""Per-request metrics (metrics spec section 3). Times in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from infermeter.records.schema import RequestRecord

NS_PER_MS = 1e6
_NS_PER_MS = NS_PER_MS
FloatArray = npt.NDArray[np.float64]
_NONE: FloatArray = np.empty(0, dtype=np.float64)
_NONE.flags.writeable = False


@dataclass(frozen=True, slots=True)
class RequestMetrics:
    """Derived figures of one completed request. ``None`` where undefined."""

    ttft_ms: float | None
    ttft_incl_queue_ms: float | None
    queue_delay_ms: float
    #: Connection set-up inside the queue delay (0 when a pooled connection was reused).
    connect_ms: float
    e2e_ms: float | None
    tpot_ms: float | None
    #: One value per token after the first, and one per chunk gap: float64 arrays (8 bytes a
    #: value, not a boxed float each: a run's summary holds every request's).
    itl_ms: FloatArray
    inter_chunk_ms: FloatArray
    prefill_tps: float | None
    decode_tps: float | None
    request_tps: float | None
    n_in: int | None
    n_out: int
    #: Reasoning models: time to first answer token (None: no answer chunk, or not
    #: streamed), the thinking's time (None: no reasoning) and tokens.
    ttfa_ms: float | None = None
    reasoning_ms: float | None = None
    n_reason: int = 0


def request_metrics(r: RequestRecord) -> RequestMetrics:
    """Compute the spec's per-request metrics from one record.

    - TTFT = t_first - t_send; TTFT incl. client queue = t_first - t_sched
    - client queue delay = t_send - t_sched
    - E2E = t_last - t_send
    - TPOT = (t_last - t_first) / (n_out - 1), only for n_out >= 2
    - ITL: chunk i>0 gives (t_chunk[i] - t_chunk[i-1]) / k[i], counted k[i] times
    - inter-chunk = t_chunk[i] - t_chunk[i-1]
    - prefill TPS = n_in / TTFT, decode TPS = 1 / TPOT, per-request TPS = n_out / E2E
    - TTFA = t_answer - t_send (t_answer: the first chunk of answer, not reasoning);
      reasoning time = t_answer - t_first, or t_last - t_first where no answer came, for a
      request with reasoning tokens

    An answer sent whole, not streamed, has its E2E and per-request TPS only (spec section
    7): its one arrival is no first token, and it has no time between tokens.
    """
    queue_ms = (r.t_send_ns - r.t_sched_ns) / _NS_PER_MS
    connect_ms = r.connect_ns / _NS_PER_MS
    if r.t_first_ns is None or r.t_last_ns is None:
        return RequestMetrics(
            *(None, None, queue_ms, connect_ms, None, None, _NONE, _NONE),
            *(None, None, None, r.n_in, r.n_out),
            n_reason=r.n_reason,
        )
    e2e = (r.t_last_ns - r.t_send_ns) / _NS_PER_MS
    req_tps = r.n_out / (e2e / 1e3) if e2e > 0 else None
    if not r.streamed:
        return RequestMetrics(
            *(None, None, queue_ms, connect_ms, e2e, None, _NONE, _NONE),
            *(None, None, req_tps, r.n_in, r.n_out),
            n_reason=r.n_reason,
        )
    ttft = (r.t_first_ns - r.t_send_ns) / _NS_PER_MS
    ttft_q = (r.t_first_ns - r.t_sched_ns) / _NS_PER_MS
    tpot = (r.t_last_ns - r.t_first_ns) / _NS_PER_MS / (r.n_out - 1) if r.n_out >= 2 else None
    gaps, itl = gaps_and_itl(r)
    prefill = r.n_in / (ttft / 1e3) if (r.n_in and ttft > 0) else None
    decode = 1e3 / tpot if (tpot is not None and tpot > 0) else None
    a = r.answer_chunk
    t_answer = r.chunk_ns[a] if a is not None and 0 <= a < len(r.chunk_ns) else None
    ttfa = (t_answer - r.t_send_ns) / _NS_PER_MS if t_answer is not None else None
    thought = (t_answer if t_answer is not None else r.t_last_ns) - r.t_first_ns
    reasoning = thought / _NS_PER_MS if r.n_reason > 0 else None
    return RequestMetrics(
        ttft_ms=ttft,
        ttft_incl_queue_ms=ttft_q,
        queue_delay_ms=queue_ms,
        connect_ms=connect_ms,
        e2e_ms=e2e,
        tpot_ms=tpot,
        itl_ms=itl,
        inter_chunk_ms=gaps,
        prefill_tps=prefill,
        decode_tps=decode,
        request_tps=req_tps,
        n_in=r.n_in,
        n_out=r.n_out,
        ttfa_ms=ttfa,
        reasoning_ms=reasoning,
        n_reason=r.n_reason,
    )


def gaps_and_itl(r: RequestRecord) -> tuple[FloatArray, FloatArray]:
    """Chunk gaps, and each spread over the tokens of the chunk that ends it. Where every
    chunk carried one token the ITL samples are the gaps: the same array is returned twice."""
    return gaps_and_itl_of(r.chunk_ns, r.chunk_tokens)


def gaps_and_itl_of(
    chunk_ns: Sequence[int] | npt.NDArray[np.int64], chunk_tokens: Sequence[int]
) -> tuple[FloatArray, FloatArray]:
    """:func:`gaps_and_itl` of a record's two chunk lists."""
    n = len(chunk_ns)
    if n < 2:
        return _NONE, _NONE
    gaps = np.diff(np.asarray(chunk_ns, dtype=np.float64)) / _NS_PER_MS
    ks = np.ones(n - 1, dtype=np.int64)
    given = chunk_tokens[1:n]
    ks[: len(given)] = given
    if (ks == 1).all():
        return gaps, gaps
    keep = ks > 0
    itl = np.repeat(gaps[keep] / ks[keep], ks[keep])
    return gaps, itl
