"""Workers as Ray actors, across the machines of a Ray cluster (optional extra ``ray``).

Each actor runs :func:`infermeter.workers.serve_share`, the same code as a local worker
process: its own event loop and connections, per-request times on its own monotonic clock,
shifted onto the run's timeline by wall-clock anchors (so the nodes' clocks must be in NTP
sync, as they are on any managed cluster). Records come back in small batches through an
inbox actor as they finish; a node or actor that dies is reported and costs only its own
last unflushed batch. infermeter must be installed on every node.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from infermeter.errors import UsageError
from infermeter.load.runner import RunState
from infermeter.run.local_pool import (
    READY_TIMEOUT_S,
    START_MARGIN_S,
    Collector,
    PoolOutcome,
    WorkerJob,
)

FLUSH_S = 0.1


class _Inbox:
    """Messages from every worker, taken by the driver in batches."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int, Any]] = []
        self.start_wall_ns = 0

    def push(self, items: list[tuple[str, int, Any]]) -> None:
        self.items.extend(items)

    def take(self) -> list[tuple[str, int, Any]]:
        items, self.items = self.items, []
        return items

    def set_start(self, wall_ns: int) -> None:
        self.start_wall_ns = wall_ns

    def start(self) -> int:
        return self.start_wall_ns


class _RayWorker:
    async def run(self, job: WorkerJob, inbox: Any) -> None:
        from infermeter.run.local_pool import serve_share

        buffer: list[tuple[str, int, Any]] = []

        def emit(kind: str, w: int, payload: Any) -> None:
            buffer.append((kind, w, payload))

        async def flusher() -> None:
            while True:
                await asyncio.sleep(FLUSH_S)
                if buffer:
                    batch = buffer[:]
                    buffer.clear()
                    await inbox.push.remote(batch)

        async def wait_for_start() -> int:
            while True:
                start = await inbox.start.remote()
                if start:
                    return int(start)
                await asyncio.sleep(0.05)

        task = asyncio.ensure_future(flusher())
        try:
            await serve_share(job, emit, wait_for_start)
        except BaseException as exc:
            buffer.append(("error", job.share.worker, f"{type(exc).__name__}: {exc}"))
        finally:
            task.cancel()
            if buffer:
                await inbox.push.remote(buffer[:])


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--cluster needs Ray: pip install 'infermeter[ray]'") from None
    return ray


def connect(address: str) -> bool:
    """Join (or, for "local", start) the Ray cluster from the calling thread, which should be
    the main one. Returns True if this call initialised Ray (and so should shut it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    try:
        local = address == "local"
        ray.init(
            address=None if local else address,
            # A local instance stays on loopback.
            _node_ip_address="127.0.0.1" if local else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=False,
        )
    except Exception as exc:
        raise UsageError(f"--cluster {address}: cannot join the Ray cluster ({exc})") from None
    return True


def disconnect() -> None:
    _ray().shutdown()


def run_ray(
    jobs: list[WorkerJob],
    on_record: Callable[[str, bytes], None],
    state: RunState,
    stop: threading.Event | None,
    address: str,
) -> PoolOutcome:
    """Run the jobs as Ray actors on the cluster at ``address`` ("local" starts one here)."""
    ray = _ray()
    started_here = connect(address)
    try:
        inbox = ray.remote(num_cpus=0)(_Inbox).remote()
        actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
        actors = [actor_cls.remote() for _ in jobs]
        pending = {
            a.run.remote(job, inbox): job.share.worker for a, job in zip(actors, jobs, strict=True)
        }
        col = Collector(len(jobs), on_record, state)
        deadline = time.monotonic() + READY_TIMEOUT_S
        started = False
        while not col.finished and not (stop is not None and stop.is_set()):
            for msg in ray.get(inbox.take.remote()):
                col.handle(*msg)
            if not started:
                if col.all_ready:
                    ray.get(inbox.set_start.remote(time.time_ns() + int(START_MARGIN_S * 1e9)))
                    started = True
                elif time.monotonic() > deadline:
                    col.outcome.failures.append("Ray workers did not start in time")
                    break
            if pending:
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=FLUSH_S)
                for ref in ready:
                    w = pending.pop(ref)
                    try:
                        ray.get(ref)
                    except Exception as exc:  # a dead actor or node
                        for msg in ray.get(inbox.take.remote()):
                            col.handle(*msg)
                        col.fail(
                            w,
                            f"worker {w} died ({type(exc).__name__}); "
                            "its finished requests are kept",
                        )
            else:
                time.sleep(FLUSH_S)
        for msg in ray.get(inbox.take.remote()):
            col.handle(*msg)
        return col.outcome
    finally:
        if started_here:
            ray.shutdown()
