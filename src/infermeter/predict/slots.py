"""llama.cpp's slots as its server hands them out, and the runs of consecutive busy slot ids
that set how many forward passes a decode step takes (pure).

The server gives a new request the idle slot used least recently: never-used slots first,
and among equals the one with the highest id (``get_available_slot`` in llama.cpp's
server-context.cpp compares with ``<=``). Without a unified KV cache, the default once ``-np``
is given, each slot keeps a KV stream of its own and a batch is split into ubatches of
consecutive sequence ids (``split_equal(..., sequential=true)`` in llama-kv-cache.cpp): busy
slots 3, 4, 5 and 9 decode in two forward passes, each of which reads the weights. So the
step's cost follows the busy slots' runs, which the server's history sets: a fresh server's
requests take neighbouring slots, and answers of different lengths shuffle the order in which
slots come free."""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

from infermeter.predict.model import FloatArray, IntArray


class SlotTable:
    """The slots of one server: which are busy, the order the idle ones are taken in, and
    how many runs of consecutive ids the busy ones form (kept as slots are taken and freed,
    O(log n) each)."""

    def __init__(self, slots: int, order: list[int] | None = None) -> None:
        """``order``: the slots from least to most recently used, as :meth:`order` left
        them after an earlier load on the same server (default: a fresh server's)."""
        # (last used, -id): the least recently used first, then the highest id
        if order is None:
            self._idle: list[tuple[float, int]] = [(-1.0, -s) for s in range(slots)]
        else:
            # an earlier load's instants, all before this one's 0, in their order
            self._idle = [(float(k - len(order)), -s) for k, s in enumerate(order)]
        heapq.heapify(self._idle)
        self._busy = bytearray(slots + 2)  # slot s at s + 1: both neighbours always exist
        self.runs = 0
        self.busy = 0

    def take(self) -> int:
        """The slot a new request gets; -1 when every slot is busy."""
        if not self._idle:
            return -1
        _, neg = heapq.heappop(self._idle)
        s = -neg
        b = self._busy
        self.runs += 1 - b[s] - b[s + 2]
        b[s + 1] = 1
        self.busy += 1
        return s

    def order(self) -> list[int]:
        """The slots from least to most recently used; a busy slot counts as freed now, in
        the order of its id."""
        idle = [-neg for _, neg in sorted(self._idle)]
        return idle + [s for s in range(len(self._busy) - 2) if self._busy[s + 1]]

    def below(self, slot: int) -> int:
        """How many busy slots have a lower id than ``slot``: its place in the order in which
        the server sends a step's tokens (slot by slot, by id)."""
        return self._busy.count(1, 1, slot + 1)

    def free(self, slot: int, t: float) -> None:
        """Slot ``slot`` comes free at ``t``."""
        b = self._busy
        b[slot + 1] = 0
        self.runs -= 1 - b[slot] - b[slot + 2]
        self.busy -= 1
        heapq.heappush(self._idle, (t, -slot))


def replay_runs(
    send_ms: FloatArray, end_ms: FloatArray, slots: int
) -> tuple[FloatArray, IntArray, IntArray]:
    """Hand one server's requests (sent at ``send_ms``, ended at ``end_ms``, one clock, from
    a fresh server) their slots, as the server does; a request sent while every slot is busy
    takes the first one to come free. Returns the instants the busy set changed, the runs of
    consecutive busy ids from each instant on, and each request's slot."""
    n = send_ms.size
    # an end before a send at the same instant: the slot is free for it
    times = np.concatenate([end_ms, send_ms])
    kinds = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    who = np.concatenate([np.arange(n), np.arange(n)])
    order = np.lexsort((kinds, times))
    table = SlotTable(slots)
    slot_of = np.full(n, -1, dtype=np.int64)
    runs = np.zeros(order.size, dtype=np.int64)
    queued: deque[int] = deque()
    for k, e in enumerate(order.tolist()):
        i = int(who[e])
        if kinds[e]:
            slot_of[i] = table.take()
            if slot_of[i] < 0:
                queued.append(i)
        elif slot_of[i] >= 0:
            table.free(int(slot_of[i]), float(times[e]))
            if queued:
                slot_of[queued.popleft()] = table.take()
        runs[k] = table.runs
    return times[order], runs, slot_of
