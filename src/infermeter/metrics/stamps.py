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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from infermeter.schema.results import SharedFirstStamp


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


def pace_ms(chunk_ns: Sequence[int], chunk_tokens: Sequence[int], start: int) -> float | None:
    """Median time per token of the chunks from index ``start`` on (ITL samples)."""
    per: list[float] = []
    for i in range(max(start, 1), len(chunk_ns)):
        k = chunk_tokens[i] if i < len(chunk_tokens) else 1
        if k > 0:
            per.append((chunk_ns[i] - chunk_ns[i - 1]) / 1e6 / k)
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

    def to_dict(self) -> SharedFirstStamp:
        return {
            "requests": self.requests,
            "of_requests": self.of_requests,
            "share": self.requests / self.of_requests if self.of_requests else None,
            "tokens_max": self.tokens_max,
            "ttft_late_est_p50_ms": self.ttft_late_est_p50_ms,
            "ttft_late_est_max_ms": self.ttft_late_est_max_ms,
            "tpot_low_est_max_ms": self.tpot_low_est_max_ms,
        }


def shared_first(chunk_ns: Sequence[int], chunk_tokens: Sequence[int]) -> tuple[int, float | None]:
    """One stream's shared first stamp: the output tokens read under the first token's stamp,
    and the stream's own pace (ms per token) after that read (None: nothing followed it)."""
    k = first_stamp_shared(chunk_ns, chunk_tokens)
    if not k:
        return 0, None
    # the chunks sharing the first stamp are 0..j-1; the stream's pace from chunk j on
    j = next((i for i, t in enumerate(chunk_ns) if t != chunk_ns[0]), len(chunk_ns))
    return k, pace_ms(chunk_ns, chunk_tokens, j) if j < len(chunk_ns) else None


def shared_first_stamps(
    shared_tokens: npt.NDArray[np.int64],
    pace: npt.NDArray[np.float64],
    n_out: npt.NDArray[np.int64],
    run_itl_p50_ms: float | None,
) -> SharedFirstStamps:
    """Over the completed requests with two or more token chunks: each one's shared tokens
    and pace (NaN: none) from :func:`shared_first`, and its output tokens."""
    late: list[float] = []
    tpot_low: list[float] = []
    tokens_max = 0
    marked = np.flatnonzero(shared_tokens)
    for i in marked:
        k = int(shared_tokens[i])
        tokens_max = max(tokens_max, k)
        own = float(pace[i])
        rate = run_itl_p50_ms if math.isnan(own) else own
        if rate is None:
            continue
        late.append(k * rate)
        if n_out[i] >= 2:
            tpot_low.append(k * rate / (int(n_out[i]) - 1))
    return SharedFirstStamps(
        requests=int(marked.size),
        of_requests=int(shared_tokens.size),
        tokens_max=tokens_max,
        ttft_late_est_p50_ms=float(np.median(late)) if late else None,
        ttft_late_est_max_ms=max(late) if late else None,
        tpot_low_est_max_ms=max(tpot_low) if tpot_low else None,
    )
