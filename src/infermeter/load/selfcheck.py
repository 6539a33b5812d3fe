"""The client watching itself: CPU use and event-loop lag of each load-generating process.

A saturated client reports its own queueing as the server's latency. Every run measures how
busy each client process was (CPU seconds over wall seconds, 1.0 = one full core) and how
late its event loop ran timers (a probe every 50 ms), so the summary can say, with numbers,
when the client rather than the server limited the result.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import numpy as np

from infermeter.schema.results import ClientWorker

PROBE_PERIOD_S = 0.05

#: How long a burst of bookkeeping may keep the loop from polling its sockets.
IO_BUDGET_NS = 2_000_000


async def let_io_in(budget_ns: int = IO_BUDGET_NS) -> None:
    """Yield to the loop if it has not polled its sockets for ``budget_ns``.

    When hundreds of streams end together (a closed loop whose streams started together),
    their records and next requests are one long run of callbacks; reads wait behind it and
    a stream's chunks pile up in its socket, where they can no longer be told apart in time.
    Work that can wait calls this first, so the loop reads what has arrived every couple of
    milliseconds. Only loops whose selector notes its polls (``clients/clock.py``) say when
    they last polled; on others this does nothing."""
    polled = getattr(getattr(asyncio.get_running_loop(), "_selector", None), "stamp_ns", 0)
    if polled and time.perf_counter_ns() - polled > budget_ns:
        await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class ClientStats:
    worker: int
    cpu_s: float
    wall_s: float
    cpu_util: float
    loop_lag_p50_ms: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    probes: int
    #: The nice value the load ran at (lower runs first), None where it cannot be read.
    nice: int | None = None

    def to_dict(self) -> ClientWorker:
        return {
            "worker": self.worker,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "cpu_util": self.cpu_util,
            "loop_lag_p50_ms": self.loop_lag_p50_ms,
            "loop_lag_p99_ms": self.loop_lag_p99_ms,
            "loop_lag_max_ms": self.loop_lag_max_ms,
            "probes": self.probes,
            "nice": self.nice,
        }


#: How far a load-generating thread raises its scheduling priority when allowed. On a host
#: where other processes keep the cores busy, a client at the default priority waits for a
#: core while its streams' chunks pile up and merge in the kernel (one stamp for many tokens);
#: at nice -10 that stopped (bench/RESULTS.md). Its own CPU use is small, so the server it
#: measures loses little.
CLIENT_NICE = -10


class Priority:
    """``with Priority(raise_it):`` every thread of this process runs at ``CLIENT_NICE`` where
    permitted, and goes back to its old nice after. Linux nice is per thread, and all of them:
    a thread left at the default priority that is preempted while it holds the interpreter
    lock would keep the event loop waiting all the same."""

    def __init__(self, raise_it: bool = True) -> None:
        self.raise_it = raise_it
        self._old: dict[int, int] = {}
        self.nice: int | None = None

    def __enter__(self) -> Priority:
        try:
            self.nice = os.getpriority(os.PRIO_PROCESS, 0)
        except (AttributeError, OSError):  # not POSIX: nothing to say
            return self
        if not self.raise_it or self.nice <= CLIENT_NICE:
            return self
        for tid in _threads():
            try:
                old = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, CLIENT_NICE)
            except OSError:  # not permitted (no CAP_SYS_NICE), or the thread has ended
                continue
            self._old[tid] = old
        if self._old:
            self.nice = os.getpriority(os.PRIO_PROCESS, 0)
        return self

    def __exit__(self, *exc: object) -> None:
        for tid, old in self._old.items():
            try:
                os.setpriority(os.PRIO_PROCESS, tid, old)
            except OSError:
                pass
        self._old.clear()


def _threads() -> list[int]:
    """This process's thread ids (Linux), else just the calling thread (0)."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


class LoopMonitor:
    """``start()`` when load begins, ``stop()`` when it ends; costs one timer per 50 ms."""

    def __init__(self, worker: int = 0, period_s: float = PROBE_PERIOD_S) -> None:
        self.worker = worker
        self.period_s = period_s
        self._lags: list[float] = []
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def start(self) -> None:
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        self._arm()

    def _arm(self) -> None:
        self._due = time.perf_counter() + self.period_s
        self._handle = asyncio.get_running_loop().call_later(self.period_s, self._probe)

    def _probe(self) -> None:
        self._lags.append(max(time.perf_counter() - self._due, 0.0) * 1e3)
        self._arm()

    def stop(self, nice: int | None = None) -> ClientStats:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        wall = max(time.perf_counter() - self._wall0, 1e-9)
        cpu = time.process_time() - self._cpu0
        lags = np.asarray(self._lags) if self._lags else np.zeros(1)
        return ClientStats(
            worker=self.worker,
            cpu_s=cpu,
            wall_s=wall,
            cpu_util=cpu / wall,
            loop_lag_p50_ms=float(np.percentile(lags, 50)),
            loop_lag_p99_ms=float(np.percentile(lags, 99)),
            loop_lag_max_ms=float(lags.max()),
            probes=len(self._lags),
            nice=nice,
        )
