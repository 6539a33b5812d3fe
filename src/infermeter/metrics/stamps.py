"""Requests whose first token was read together with later ones (metrics spec section 7,
shared first stamp), and how far that can move their TTFT and TPOT (pure).

A chunk's stamp is when its bytes were received. When the client could not read for a while
(descheduled, a long loop iteration) a stream's chunks pile up and the kernel merges them: the
first token then carries the stamp of the last one read with it. Its TTFT is late and its TPOT
low by about the time the server took to produce the tokens that shared the stamp. Such
requests stay in the distributions (their true values are unknown, and leaving them out would
flatter the run) but are counted, and their error is estimated, in every summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infermeter.records.schema import RequestRecord


def first_stamp_shared(chunk_ns: Sequence[int], chunk_tokens: Sequence[int]) -> int:
    """Output tokens after the first chunk's that carry the first chunk's stamp."""
    if len(chunk_ns) < 2:
        return 0
    first = chunk_ns[0]
    shared = 0
    for i in range(1, len(chunk_ns)):
        if chunk_ns[i] != first:
            break
        shared += chunk_tokens[i] if i < len(chunk_tokens) else 1
    return shared


def _pace_ms(r: RequestRecord, start: int) -> float | None:
    """Median time per token of the chunks from index ``start`` on (ITL samples)."""
    per: list[float] = []
    for i in range(max(start, 1), len(r.chunk_ns)):
        k = r.chunk_tokens[i] if i < len(r.chunk_tokens) else 1
        if k > 0:
            per.append((r.chunk_ns[i] - r.chunk_ns[i - 1]) / 1e6 / k)
    return float(np.median(per)) if per else None


@dataclass(frozen=True, slots=True)
class SharedFirstStamps:
    """Marked requests among the completed ones with two or more token chunks."""

    requests: int
    of_requests: int
    tokens_max: int
    #: Estimated lateness of the marked requests' TTFT: shared tokens × the stream's own pace
    #: after the shared read (the run's ITL p50 where nothing follows it).
    ttft_late_est_p50_ms: float | None
    ttft_late_est_max_ms: float | None
    #: The same error spread over the decode phase: how much too low their TPOT may be.
    tpot_low_est_max_ms: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "of_requests": self.of_requests,
            "share": self.requests / self.of_requests if self.of_requests else None,
            "tokens_max": self.tokens_max,
            "ttft_late_est_p50_ms": self.ttft_late_est_p50_ms,
            "ttft_late_est_max_ms": self.ttft_late_est_max_ms,
            "tpot_low_est_max_ms": self.tpot_low_est_max_ms,
        }


def shared_first_stamps(
    done: Sequence[RequestRecord], run_itl_p50_ms: float | None
) -> SharedFirstStamps:
    streamed = [r for r in done if len(r.chunk_ns) >= 2]
    late: list[float] = []
    tpot_low: list[float] = []
    tokens_max = 0
    marked = 0
    for r in streamed:
        k = first_stamp_shared(r.chunk_ns, r.chunk_tokens)
        if not k:
            continue
        marked += 1
        tokens_max = max(tokens_max, k)
        # the chunks sharing the first stamp are 0..j-1; the stream's pace from chunk j on
        j = next((i for i, t in enumerate(r.chunk_ns) if t != r.chunk_ns[0]), len(r.chunk_ns))
        pace = _pace_ms(r, j) if j < len(r.chunk_ns) else None
        pace = pace if pace is not None else run_itl_p50_ms
        if pace is None:
            continue
        late.append(k * pace)
        if r.n_out >= 2:
            tpot_low.append(k * pace / (r.n_out - 1))
    return SharedFirstStamps(
        requests=marked,
        of_requests=len(streamed),
        tokens_max=tokens_max,
        ttft_late_est_p50_ms=float(np.median(late)) if late else None,
        ttft_late_est_max_ms=max(late) if late else None,
        tpot_low_est_max_ms=max(tpot_low) if tpot_low else None,
    )
