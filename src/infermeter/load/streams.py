"""How many closed-loop streams a run can use: never more than it has requests to send.

Streams beyond the request budget would sit idle, yet each costs a task, a connection slot
and a share of a worker before the first request: ``-c 1000000000 -n 4`` allocated gigabytes.
The extra streams are dropped before anything is allocated, and the run says so.
"""

from __future__ import annotations

from infermeter.errors import UsageError

#: The most streams one run holds open without a request budget to bound them (each is a
#: socket and a task; far past what one server, or one client machine, can serve).
MAX_STREAMS = 100_000


def bounded_streams(concurrency: int | None, num_requests: int | None) -> int | None:
    """The streams a closed loop runs: ``concurrency`` capped at ``num_requests``.

    Raises :class:`UsageError` for a count no run could hold open.
    """
    if concurrency is None:
        return None
    if num_requests is not None:
        return min(concurrency, num_requests)
    if concurrency > MAX_STREAMS:
        raise UsageError(
            f"--concurrency {concurrency:,} is more streams than one run holds open "
            f"(at most {MAX_STREAMS:,}); give --num-requests to bound it, or split the load "
            "over several runs"
        )
    return concurrency


def stream_warnings(asked: int | None, ran: int | None) -> list[str]:
    """The run's note when it ran fewer streams than asked."""
    if asked is None or ran is None or asked <= ran:
        return []
    return [
        f"--concurrency {asked:,} is more than the {ran:,} requests to send: {ran:,} streams "
        "ran (the rest would have had nothing to send)"
    ]
