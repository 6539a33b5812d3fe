"""Running one benchmark on several local processes, each with its own event loop and
connections, all feeding the one records file.

The parent builds everything a worker needs (its share of the load, its prompts, the request
format) and starts the workers with the ``spawn`` method. Each worker connects, reports ready,
and waits at a common start line (a wall-clock instant the parent picks once all are ready);
its records stream back over a queue, already serialised, and the parent writes them as they
come, so a worker that dies loses nothing the others did. Per-request times are taken on each
worker's own monotonic clock, shifted onto the run's timeline by wall-clock anchors (exact on
one machine, where every process reads the same CLOCK_MONOTONIC).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from infermeter.clients import clock as stamping_loop
from infermeter.clients.formats import ApiFormat, RequestOptions
from infermeter.clients.stream import StreamingClient, StreamTransport
from infermeter.clients.transport import Timeouts, open_clients
from infermeter.lifetime import die_with_parent, sigterm_as_interrupt
from infermeter.load.partition import WorkerShare
from infermeter.load.runner import Runner, RunState
from infermeter.load.selfcheck import ClientStats
from infermeter.records.schema import RequestRecord
from infermeter.schema.results import ClientWorker
from infermeter.workload.tokenizer import LocalTokenizer
from infermeter.workload.types import Prompt

READY_TIMEOUT_S = 120.0
START_MARGIN_S = 0.25
#: How often a ready worker looks for the start line.
START_POLL_S = 0.01


@dataclass
class WorkerJob:
    """Everything one worker process needs; pickled once when it starts."""

    share: WorkerShare
    prompts: list[Prompt]
    warmup: list[Prompt]
    url: str
    fmt: ApiFormat
    options: RequestOptions
    headers: dict[str, str]
    timeouts: Timeouts
    transport: str
    #: The run's origin: a wall-clock instant and the parent's monotonic reading of it.
    wall0_ns: int
    n_workers: int = 1
    tokenizer_path: str | None = None
    secrets: tuple[str, ...] = field(default_factory=tuple)


Emit = Callable[[str, int, Any], None]


class _EmitListener:
    def __init__(self, emit: Emit, worker: int, phase: str) -> None:
        self._emit, self._worker, self._phase = emit, worker, phase

    def on_record(self, record: RequestRecord) -> None:
        self._emit("rec", self._worker, (self._phase, orjson.dumps(record)))


def worker_main(
    job: WorkerJob, out: Any, start_wall_ns: Any, parent_pid: int | None = None
) -> None:
    """A worker process: connect, report ready, wait for the start line, run its share."""
    die_with_parent(parent_pid=parent_pid)
    # The pool stops a worker with SIGINT; a parent started in the background (SIGINT
    # ignored, as shells do for `cmd &`) must not pass that deafness on to its workers.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A SIGTERM to the whole group (timeout, systemd) stops it as the pool's SIGINT does.
    sigterm_as_interrupt()

    async def wait_for_start() -> int:
        # Polled, not an Event: a worker killed while waiting on a multiprocessing Event
        # leaves the parent's set() waiting forever for it. The start line is set
        # START_MARGIN_S ahead, far more than one poll.
        while not start_wall_ns.value:
            await asyncio.sleep(START_POLL_S)
        return int(start_wall_ns.value)

    try:
        stamping_loop.run(serve_share(job, lambda *m: out.put(m), wait_for_start))
    except KeyboardInterrupt:
        pass
    except BaseException as exc:  # reported to the parent, which fails the run cleanly
        out.put(("error", job.share.worker, f"{type(exc).__name__}: {exc}"))


def client_report(stats: ClientStats | None, client: object) -> ClientWorker | None:
    """A process's self-check for the run's results, with where its arrival stamps came from
    (HTTP clients say; an in-process engine does not)."""
    if stats is None:
        return None
    stamps = getattr(client, "arrival_stamps", None)
    return {**stats.to_dict(), "arrival_stamps": stamps} if stamps else stats.to_dict()


async def serve_share(
    job: WorkerJob, emit: Emit, wait_for_start: Callable[[], Awaitable[int]]
) -> None:
    """Run one worker's share of the load, wherever it lives (process, Ray actor).

    ``emit(kind, worker, payload)`` reports "ready", every "rec" (phase, serialised record)
    as it finishes, periodic "state", and "done"; ``wait_for_start`` returns the wall-clock
    start line once every worker is ready.
    """
    w = job.share.worker
    # This process's reading of the run's origin: same instant, its own monotonic clock.
    t0 = time.perf_counter_ns() - (time.time_ns() - job.wall0_ns)
    count = None
    if job.tokenizer_path:
        count = LocalTokenizer(Path(job.tokenizer_path)).count_sync
    aio, raw = open_clients(job.headers, job.timeouts)
    async with aio, raw:
        streamer: StreamTransport = aio if job.transport == "aiohttp" else raw
        client = StreamingClient(
            streamer,
            job.url,
            job.fmt,
            job.options,
            t0_ns=t0,
            count_tokens=count,
            secrets=job.secrets,
        )

        async def send(rid: int, prompt: Prompt, t_sched: int, phase: str) -> RequestRecord:
            return await client.send(rid, prompt, t_sched, phase=phase, worker=w)

        runner = Runner(
            send,
            job.share.plan,
            listeners=[_EmitListener(emit, w, "measure")],
            warmup_listeners=[_EmitListener(emit, w, "warmup")],
            worker=w,
            # Ids unique across workers without coordination: w, w + N, w + 2N, ...
            ids=itertools.count(w, job.n_workers),
        )
        emit("ready", w, None)
        start_wall = await wait_for_start()
        start_perf = time.perf_counter_ns() + (start_wall - time.time_ns())
        ticker = asyncio.ensure_future(_report_state(emit, w, runner.state))
        try:
            state = await runner.run(
                job.prompts, job.warmup, job.share.offsets_s, start_at_ns=start_perf
            )
        finally:
            ticker.cancel()
        emit(
            "done",
            w,
            {
                "aborted": state.aborted,
                "client": client_report(state.client, client),
            },
        )


async def _report_state(emit: Emit, worker: int, state: RunState) -> None:
    while True:
        emit("state", worker, {"in_flight": state.in_flight, "phase": state.phase})
        await asyncio.sleep(0.5)


@dataclass
class PoolOutcome:
    aborted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    clients: list[ClientWorker] = field(default_factory=list)


class Collector:
    """Turns the workers' messages into records on disk, live counters and an outcome."""

    def __init__(self, n: int, on_record: Callable[[str, bytes], None], state: RunState) -> None:
        self.n = n
        self.on_record = on_record
        self.state = state
        self.ready: set[int] = set()
        self.done: set[int] = set()
        self.in_flight: dict[int, int] = {}
        self.outcome = PoolOutcome()

    def handle(self, kind: str, w: int, payload: Any) -> None:
        if kind == "rec":
            self.on_record(*payload)
        elif kind == "ready":
            self.ready.add(w)
        elif kind == "state":
            self.in_flight[w] = payload["in_flight"]
            self.state.in_flight = sum(self.in_flight.values())
            if payload["phase"] == "measure":
                self.state.phase = "measure"
        elif kind == "done":
            self.done.add(w)
            if payload.get("aborted"):
                self.outcome.aborted.append(f"worker {w}: {payload['aborted']}")
            if payload.get("client"):
                self.outcome.clients.append(payload["client"])
        elif kind == "error":
            self.fail(w, f"worker {w} failed: {payload}")

    def fail(self, w: int, message: str) -> None:
        if w not in self.done:
            self.done.add(w)
            self.outcome.failures.append(message)

    @property
    def all_ready(self) -> bool:
        return len(self.ready) == self.n

    @property
    def finished(self) -> bool:
        return len(self.done) >= self.n


def run_pool(
    jobs: list[WorkerJob],
    on_record: Callable[[str, bytes], None],
    state: RunState,
    stop: threading.Event | None = None,
) -> PoolOutcome:
    """Start one process per job, run them to the end, hand every record to ``on_record``.

    A worker that dies is reported in the outcome's failures; the others run on.
    """
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # No lock: one aligned 64-bit word, written once; a lock held by a killed worker would
    # block the parent.
    start_wall = ctx.Value("q", 0, lock=False)
    procs = {}
    for job in jobs:
        p = ctx.Process(
            target=worker_main,
            args=(job, out, start_wall, os.getpid()),
            name=f"infermeter-worker-{job.share.worker}",
            daemon=True,
        )
        p.start()
        procs[job.share.worker] = p
    col = Collector(len(procs), on_record, state)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while not col.finished and not (stop is not None and stop.is_set()):
            try:
                col.handle(*out.get(timeout=0.2))
            except queue_mod.Empty:
                pass
            if not start_wall.value:
                if col.all_ready:
                    start_wall.value = time.time_ns() + int(START_MARGIN_S * 1e9)
                elif time.monotonic() > deadline:
                    col.outcome.failures.append("workers did not start in time")
                    break
            for w, p in procs.items():
                if w not in col.done and not p.is_alive() and out.empty():
                    col.fail(
                        w,
                        f"worker {w} died (exit code {p.exitcode}); its finished requests are kept",
                    )
    finally:
        # Ctrl-C reaches the workers through the process group; a SIGTERM to the parent
        # alone does not: interrupt them the same way, so each sends what it finished.
        for w, p in procs.items():
            if w not in col.done and p.is_alive() and p.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(p.pid, signal.SIGINT)
        for p in procs.values():
            p.join(timeout=3)
        for p in procs.values():
            if p.is_alive():
                p.terminate()
        for p in procs.values():
            p.join(timeout=5)
        # Whatever was queued before a worker ended still lands on disk.
        while True:
            try:
                kind, w, payload = out.get_nowait()
            except (queue_mod.Empty, OSError, ValueError):
                break
            if kind == "rec":
                on_record(*payload)
    return col.outcome
