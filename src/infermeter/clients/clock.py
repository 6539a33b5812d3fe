"""Arrival stamps taken when the kernel said data was there, not when Python got to it.

When many streams deliver at once (a burst), one event-loop iteration reads hundreds of
sockets one after another; stamping each read as its callback runs would add the time spent
on the reads before it. ``StampingSelector`` notes the instant ``epoll``/``select`` returned,
and the lean HTTP client stamps every read of that iteration with it: the earliest moment the
process could know the bytes were there (and never earlier than they arrived). Loops not made
here (Ray's, a user's) fall back to the time of the read itself.

Better still, on Linux the lean client reads plain TCP sockets with ``recvmsg`` and the
kernel's own receive time (``clients/sockio.py``); that stamp is on the wall clock, and
``stamp_and_offset`` gives what converts it to this module's clock.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_clock = time.perf_counter_ns
_wall = time.time_ns


class StampingSelector(selectors.DefaultSelector):
    """The platform's default selector, noting when each poll returned."""

    def __init__(self) -> None:
        super().__init__()
        self.stamp_ns = 0
        self.offset_ns = 0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        ready = super().select(timeout)
        self.stamp_ns = stamp = _clock()
        self.offset_ns = _wall() - stamp
        return ready


def arrival_ns() -> int:
    """The arrival stamp for bytes being handled now (see the module docstring)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _clock()
    selector = getattr(loop, "_selector", None)
    if isinstance(selector, StampingSelector) and selector.stamp_ns:
        return selector.stamp_ns
    return _clock()


def stamp_and_offset(selector: StampingSelector | None) -> tuple[int, int]:
    """``(arrival stamp, wall clock minus this clock)`` for bytes being handled now:
    ``selector`` is the running loop's stamping selector, or None (then: now)."""
    if selector is not None and selector.stamp_ns:
        return selector.stamp_ns, selector.offset_ns
    now = _clock()
    return now, _wall() - now


def stamping_selector(loop: asyncio.AbstractEventLoop) -> StampingSelector | None:
    selector = getattr(loop, "_selector", None)
    return selector if isinstance(selector, StampingSelector) else None


def new_event_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(StampingSelector())


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a loop with a stamping selector (Python 3.10+)."""
    loop = new_event_loop()
    runner = asyncio.Runner(loop_factory=lambda: loop) if hasattr(asyncio, "Runner") else None
    if runner is not None:
        with runner:
            outcome: T = runner.run(main)
            return outcome
    # Python 3.10 has no asyncio.Runner: do what its asyncio.run does, on our loop (cancel
    # what is left, e.g. after Ctrl-C, then close async generators and the executor).
    asyncio.set_event_loop(loop)
    try:
        result: T = loop.run_until_complete(main)
        return result
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
