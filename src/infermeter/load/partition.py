"""Splitting one run's load among worker processes (pure).

Closed loop: the concurrency, the request budget and the warm-up are divided as evenly as
possible; every worker stops at the same duration. Open loop: the one global arrival schedule
is drawn here and dealt out round-robin, so the merged arrivals are exactly the requested
process (rate, distribution, burstiness), whatever the number of workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from infermeter.load.runner import LoadPlan, slot_delays

#: One worker process per this many concurrent streams when --workers is "auto" (one
#: process keeps arrival lag well under a millisecond up to ~100 streams; bench/RESULTS.md).
STREAMS_PER_WORKER = 128


def split_evenly(total: int, parts: int) -> list[int]:
    """``[4, 3, 3]`` for 10 over 3: sizes differ by at most one, larger ones first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def auto_workers(plan: LoadPlan, cores: int) -> int:
    """How many worker processes a load needs, never more than the cores available."""
    if plan.concurrency is not None:
        streams = plan.concurrency
    elif plan.max_concurrency is not None:
        streams = plan.max_concurrency
    else:
        # Open loop without a cap: a rough stream count, two seconds' worth of arrivals.
        streams = math.ceil((plan.mean_rate or 1.0) * 2)
    return max(1, min(cores, math.ceil(streams / STREAMS_PER_WORKER)))


@dataclass(frozen=True)
class WorkerShare:
    """What one worker sends: its load plan, its prompts (indexes into the run's pool) and,
    for open loop, its arrival offsets on the run's schedule."""

    worker: int
    plan: LoadPlan
    prompt_indexes: list[int]
    warmup_indexes: list[int]
    offsets_s: list[float] | None = field(default=None)


def partition(plan: LoadPlan, n_prompts: int, n_warmup: int, workers: int) -> list[WorkerShare]:
    """Divide ``plan`` over ``workers``; prompts are dealt out so no two workers share one."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    warm = split_evenly(n_warmup, workers)
    warm_start = [sum(warm[:i]) for i in range(workers)]
    shares: list[WorkerShare] = []
    if not plan.open_loop:
        assert plan.concurrency is not None
        workers = min(workers, plan.concurrency)
        conc = split_evenly(plan.concurrency, workers)
        budget = split_evenly(plan.num_requests, workers) if plan.num_requests is not None else None
        # the run's streams interleave over the workers: worker w's j-th is stream j·workers + w
        ramp = slot_delays(plan)
        for w in range(workers):
            sub = LoadPlan(
                slot_delays_s=tuple(ramp[j * workers + w] for j in range(conc[w])) if ramp else (),
                concurrency=conc[w],
                num_requests=budget[w] if budget else None,
                duration_s=plan.duration_s,
                warmup=warm[w],
                seed=plan.seed + w,
                abort_after_connection_errors=plan.abort_after_connection_errors,
                raise_priority=plan.raise_priority,
            )
            shares.append(
                WorkerShare(
                    w,
                    sub,
                    [i for i in range(n_prompts) if i % workers == w],
                    list(range(warm_start[w], warm_start[w] + warm[w])),
                )
            )
        return shares
    offsets = plan.arrivals()
    cap = split_evenly(plan.max_concurrency, workers) if plan.max_concurrency else None
    for w in range(workers):
        mine = list(range(w, len(offsets), workers))
        sub = LoadPlan(
            rate=plan.rate,
            arrival=plan.arrival,
            burstiness=plan.burstiness,
            max_concurrency=max(cap[w], 1) if cap else None,
            num_requests=len(mine),
            duration_s=plan.duration_s,
            warmup=warm[w],
            seed=plan.seed,
            abort_after_connection_errors=plan.abort_after_connection_errors,
            raise_priority=plan.raise_priority,
            trace_offsets_s=tuple(offsets[i] for i in mine) if plan.trace_offsets_s else None,
        )
        shares.append(
            WorkerShare(
                w,
                sub,
                [i % max(n_prompts, 1) for i in mine],
                list(range(warm_start[w], warm_start[w] + warm[w])),
                [offsets[i] for i in mine],
            )
        )
    return shares
