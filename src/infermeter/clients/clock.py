"""Arrival stamps taken when the kernel said data was there, not when Python got to it.

When many streams deliver at once (a burst), one event-loop iteration reads hundreds of
sockets one after another; stamping each read as its callback runs would add the time spent
on the reads before it. ``StampingSelector`` notes the instant ``epoll``/``select`` returned,
and the lean HTTP client stamps every read of that iteration with it: the earliest moment the
process could know the bytes were there (and never earlier than they arrived). Loops not made
here (Ray's, a user's) fall back to the time of the read itself.

On Linux the lean client does better for plain TCP: it reads with ``recvmsg`` and takes the
kernel's own receive time (``clients/sockio.py``).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_clock = time.perf_counter_ns


class StampingSelector(selectors.DefaultSelector):
    """The platform's default selector, noting when each poll returned."""

    def __init__(self) -> None:
        super().__init__()
        self.stamp_ns = 0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        ready = super().select(timeout)
        self.stamp_ns = _clock()
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
