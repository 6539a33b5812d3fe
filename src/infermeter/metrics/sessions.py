"""Multi-turn sessions, measured: each turn index's figures and each session's duration
(metrics spec section 3, "Sessions"; pure).

A session's duration is from its first request's ``t_send`` to its last request's ``t_end``,
think times included: what its user spent in the conversation. By turn, TTFT and TPOT are the
completed requests' of that turn index; the cached share is the prompt tokens the server said
it served from its cache, of that turn's prompt tokens (the conversation's reuse shows as TTFT
falling, or not, from turn to turn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infermeter.metrics.aggregate import Distribution, distribution
from infermeter.metrics.columns import FloatArray, RequestColumns
from infermeter.metrics.table import MISSING, RequestTable


@dataclass(frozen=True, slots=True)
class TurnStats:
    turn: int
    requests: int
    completed: int
    ttft_ms: Distribution
    tpot_ms: Distribution
    input_tokens_mean: float | None
    #: Prompt tokens served from the server's cache, of the prompt tokens of the requests
    #: whose cached count the server gave (None: it gave none).
    cached_share: float | None


@dataclass(frozen=True, slots=True)
class SessionStats:
    sessions: int
    #: Sessions whose every turn completed.
    completed: int
    turns_mean: float
    duration_s: Distribution
    by_turn: tuple[TurnStats, ...]


def session_stats(
    table: RequestTable, cols: RequestColumns, extra_percentiles: tuple[float, ...] = ()
) -> SessionStats | None:
    """The run's sessions (None: its requests belong to none)."""
    in_session = table.session != MISSING
    if not in_session.any():
        return None
    sid = table.session[in_session]
    ids, index = np.unique(sid, return_inverse=True)
    start = np.full(ids.size, np.iinfo(np.int64).max)
    np.minimum.at(start, index, table.t_send_ns[in_session])
    end = np.zeros(ids.size, dtype=np.int64)
    np.maximum.at(end, index, np.maximum(table.t_end_ns, table.t_send_ns)[in_session])
    failed = np.zeros(ids.size, dtype=np.int64)
    np.add.at(failed, index, (~table.ok[in_session]).astype(np.int64))
    turns_per = np.bincount(index, minlength=ids.size)
    done_turn = table.turn[table.ok]  # the completed requests', in the columns' order
    by_turn = []
    for k in np.unique(table.turn[in_session]).tolist():
        rows = table.turn == k
        done = done_turn == k
        cached = table.n_cached[rows]
        told = cached != MISSING
        n_in = table.n_in[rows]
        counted_in = n_in[told & (n_in != MISSING)]
        by_turn.append(
            TurnStats(
                turn=int(k),
                requests=int(rows.sum()),
                completed=int((rows & table.ok).sum()),
                ttft_ms=distribution(_present(cols.ttft_ms[done]), extra_percentiles),
                tpot_ms=distribution(_present(cols.tpot_ms[done]), extra_percentiles),
                input_tokens_mean=float(n_in[n_in != MISSING].mean())
                if (n_in != MISSING).any()
                else None,
                cached_share=float(cached[told & (n_in != MISSING)].sum() / counted_in.sum())
                if counted_in.sum() > 0
                else None,
            )
        )
    return SessionStats(
        sessions=int(ids.size),
        completed=int((failed == 0).sum()),
        turns_mean=float(turns_per.mean()),
        duration_s=distribution((end - start) / 1e9, extra_percentiles),
        by_turn=tuple(by_turn),
    )


def _present(values: FloatArray) -> FloatArray:
    present: FloatArray = values[~np.isnan(values)]
    return present
