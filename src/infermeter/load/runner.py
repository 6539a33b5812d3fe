"""The load runner: decides *when* each request starts, and nothing else.

It never computes statistics: every finished record goes to the listeners (the JSONL sink,
the live progress display), locust-style. Closed loop keeps N requests in flight; open loop
starts requests on an absolute schedule (so lateness never accumulates), optionally capped
by a concurrency limit whose waiting shows up as client queue delay.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from infermeter.load.arrivals import ArrivalKind, schedule
from infermeter.load.selfcheck import ClientStats, LoopMonitor, Priority, let_io_in
from infermeter.records.schema import RequestRecord
from infermeter.workload.types import Prompt

SendFn = Callable[[int, Prompt, int, str], Awaitable[RequestRecord]]
#: Sends one turn of a conversation; the answer's text is appended to the list given.
TurnSendFn = Callable[[int, Prompt, int, str, list[str]], Awaitable[RequestRecord]]


@dataclass(frozen=True, slots=True)
class Turn:
    """A request that is one turn of a session: how to send it, and where it belongs."""

    send: TurnSendFn
    session: int
    index: int
    answer: list[str]


class Listener(Protocol):
    def on_record(self, record: RequestRecord) -> None: ...


#: What a proxy or load balancer answers for a server it cannot reach (or that cannot take
#: work): behind one, a dead server looks like these, not like a refused connection.
GATEWAY_ERRORS = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """When to send. Exactly one of ``concurrency`` / ``rate`` / ``trace_offsets_s``; a
    closed loop or a rate needs one of the two stops (a trace ends with itself)."""

    concurrency: int | None = None
    rate: float | None = None
    arrival: ArrivalKind = "poisson"
    burstiness: float = 1.0
    max_concurrency: int | None = None
    num_requests: int | None = None
    duration_s: float | None = None
    warmup: int = 0
    seed: int = 0
    #: Closed loop: stream i of N first sends at i/N × ramp_up_s (not all at once).
    ramp_up_s: float = 0.0
    #: Each stream's first-send delay, when a partition of the run sets them (a worker's share).
    slot_delays_s: tuple[float, ...] = ()
    #: Stop sending after this many consecutive connection failures or gateway errors
    #: (a dead server, or one behind a proxy).
    abort_after_connection_errors: int = 20
    #: Run the measured phase at a raised scheduling priority where permitted.
    raise_priority: bool = True
    #: A replayed trace's send times (s from the start): an open loop on this schedule.
    trace_offsets_s: tuple[float, ...] | None = None

    @property
    def open_loop(self) -> bool:
        return self.rate is not None or self.trace_offsets_s is not None

    @property
    def mean_rate(self) -> float | None:
        """The schedule's rate: the asked one, or a trace's mean."""
        if self.rate is not None or not self.trace_offsets_s:
            return self.rate
        span = self.trace_offsets_s[-1] - self.trace_offsets_s[0]
        return (len(self.trace_offsets_s) - 1) / span if span > 0 else None

    def arrivals(self) -> list[float]:
        """An open loop's whole schedule (offsets in seconds), exact to its rate."""
        if self.trace_offsets_s is not None:
            return list(self.trace_offsets_s)
        assert self.rate is not None, "a closed loop has no arrival schedule"
        offsets = schedule(
            self.rate,
            self.num_requests,
            self.duration_s,
            kind=self.arrival,
            burstiness=self.burstiness,
            seed=self.seed,
        )
        return [float(t) for t in offsets]


def slot_delays(plan: LoadPlan) -> tuple[float, ...]:
    """When each closed-loop stream first sends: the partition's delays, or stream i of N at
    i/N × ramp_up_s (so a run does not start, and keep moving, as one lock-step wave)."""
    if plan.slot_delays_s:
        return plan.slot_delays_s
    n = plan.concurrency or 0
    if not plan.ramp_up_s or n <= 1:
        return ()
    return tuple(i / n * plan.ramp_up_s for i in range(n))


@dataclass(slots=True)
class RunState:
    """Live counters the progress display reads."""

    phase: str = "idle"
    sent: int = 0
    finished: int = 0
    failed: int = 0
    in_flight: int = 0
    output_tokens: int = 0
    started_ns: int = 0
    aborted: str | None = None
    client: ClientStats | None = None


class Runner:
    def __init__(
        self,
        send: SendFn,
        plan: LoadPlan,
        listeners: Sequence[Listener] = (),
        warmup_listeners: Sequence[Listener] = (),
        worker: int = 0,
        ids: Iterator[int] | None = None,
    ) -> None:
        self._send = send
        self.plan = plan
        self._listeners = list(listeners)
        self._warmup_listeners = list(warmup_listeners)
        self.state = RunState()
        self._ids = ids if ids is not None else itertools.count()
        self._consecutive_conn_errors = 0
        self._stop = asyncio.Event()
        self.worker = worker

    def stop(self, reason: str) -> None:
        if self.state.aborted is None:
            self.state.aborted = reason
        self._stop.set()

    async def _one(
        self, prompt: Prompt, t_sched: int, phase: str, turn: Turn | None = None
    ) -> RequestRecord:
        await let_io_in()  # a burst of sends waits for the loop to read what has arrived
        st = self.state
        st.sent += 1
        st.in_flight += 1
        try:
            if turn is None:
                rec = await self._send(next(self._ids), prompt, t_sched, phase)
            else:
                rec = await turn.send(next(self._ids), prompt, t_sched, phase, turn.answer)
                rec.session, rec.turn = turn.session, turn.index
        finally:
            st.in_flight -= 1
        st.finished += 1
        if not rec.ok:
            st.failed += 1
        st.output_tokens += rec.n_out
        for listener in self._warmup_listeners if phase == "warmup" else self._listeners:
            listener.on_record(rec)
        if rec.error_kind == "connection" or rec.http_status in GATEWAY_ERRORS:
            self._consecutive_conn_errors += 1
            limit = self.plan.abort_after_connection_errors
            if limit and self._consecutive_conn_errors >= limit:
                self.stop(
                    f"stopped after {self._consecutive_conn_errors} consecutive connection "
                    f"failures or gateway errors: {rec.error_message}"
                )
        else:
            self._consecutive_conn_errors = 0
        return rec

    async def run(
        self,
        measure: Sequence[Prompt],
        warmup: Sequence[Prompt] = (),
        offsets_s: Sequence[float] | None = None,
        start_at_ns: int | None = None,
    ) -> RunState:
        """Send ``warmup`` (closed loop, excluded from metrics), then the measured load.

        ``offsets_s``: an open-loop schedule drawn elsewhere (a worker's share of the run's
        arrivals) instead of one drawn here. ``start_at_ns``: a ``perf_counter_ns`` instant
        to start the measured phase at (the workers' common start line).
        """
        plan = self.plan
        st = self.state
        if warmup:
            st.phase = "warmup"
            width = plan.concurrency or plan.max_concurrency or min(len(warmup), 8)
            await self._closed_loop(iter(warmup), width, None, "warmup")
        if self._stop.is_set():
            return st
        if start_at_ns is not None:
            await asyncio.sleep(max(start_at_ns - time.perf_counter_ns(), 0) / 1e9)
        st.phase = "measure"
        st.started_ns = time.perf_counter_ns()
        prompts = self._prompt_iter(measure)
        monitor = LoopMonitor(self.worker)
        with Priority(plan.raise_priority) as priority:
            monitor.start()
            # Everything alive now (modules, config, prompts) lives through the run: moved out
            # of the collector's sight, its full passes stay short (bench/RESULTS.md: 40-60 ms
            # pauses at 500 streams otherwise, long enough to delay reading the next chunks).
            gc.collect()
            gc.freeze()
            try:
                await self._measured_phase(prompts, offsets_s, start_at_ns)
            finally:
                gc.unfreeze()
                st.client = monitor.stop(priority.nice)
        st.phase = "done"
        return st

    async def _measured_phase(
        self, prompts: Iterator[Prompt], offsets_s: Sequence[float] | None, start_at_ns: int | None
    ) -> None:
        plan = self.plan
        if plan.open_loop:
            await self._open_loop(prompts, offsets_s, start_at_ns)
        else:
            assert plan.concurrency is not None
            await self._closed_loop(
                prompts, plan.concurrency, plan.duration_s, "measure", slot_delays(plan)
            )

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the run is stopped first (True: stopped)."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            except asyncio.TimeoutError:
                pass
        return self._stop.is_set()

    def _prompt_iter(self, prompts: Sequence[Prompt]) -> Iterator[Prompt]:
        if self.plan.num_requests is not None:
            return itertools.islice(itertools.cycle(prompts), self.plan.num_requests)
        return itertools.cycle(prompts)

    async def _closed_loop(
        self,
        prompts: Iterator[Prompt],
        width: int,
        duration_s: float | None,
        phase: str,
        delays_s: Sequence[float] = (),
    ) -> None:
        clock = time.perf_counter_ns
        deadline = clock() + int(duration_s * 1e9) if duration_s is not None else None

        async def slot(delay_s: float) -> None:
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            for prompt in prompts:
                if self._stop.is_set():
                    return
                now = clock()
                if deadline is not None and now >= deadline:
                    return
                # Closed loop: the request is due the moment its slot became free.
                await self._one(prompt, now, phase)

        delays = list(delays_s) + [0.0] * (width - len(delays_s))
        await asyncio.gather(*(slot(delays[i]) for i in range(width)))

    async def _open_loop(
        self,
        prompts: Iterator[Prompt],
        given: Sequence[float] | None = None,
        start_at_ns: int | None = None,
    ) -> None:
        plan = self.plan
        assert plan.open_loop
        clock = time.perf_counter_ns
        offsets = iter(given if given is not None else plan.arrivals())
        limit = asyncio.Semaphore(plan.max_concurrency) if plan.max_concurrency else None
        # Workers share one start line: their schedules count from it, not from when each
        # woke up, so the merged arrivals are the run's one schedule.
        start = start_at_ns if start_at_ns is not None else clock()
        end = start + int(plan.duration_s * 1e9) if plan.duration_s is not None else None
        tasks: set[asyncio.Task[None]] = set()

        async def gated(prompt: Prompt, due: int) -> None:
            if limit is None:
                await self._one(prompt, due, "measure")
                return
            async with limit:
                if not self._stop.is_set():
                    await self._one(prompt, due, "measure")

        for prompt, offset in zip(prompts, offsets, strict=False):
            due = start + int(offset * 1e9)
            if end is not None and due >= end:
                break
            if await self._pause((due - clock()) / 1e9):
                break
            task = asyncio.ensure_future(gated(prompt, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
