"""llama.cpp's slots as its server hands them out, and the runs of consecutive busy slot ids
that set how many forward passes a decode step takes (pure).

The server gives a new request the idle slot used least recently: never-used slots first,
and among equals the one with the highest id (``get_available_slot`` in llama.cpp's
server-context.cpp compares with ``<=``). Before that it looks for an idle slot whose cached
prompt shares more than a tenth of the new one (``--slot-prompt-similarity``, 0.1): with
prompts that share only the chat template's first tokens, that happens to short prompts
alone (infermeter's pre-flight request, 24 tokens of which 3 are the template's), and takes
the idle slot of lowest id that has held a prompt (every such slot shares the same few
tokens; the first of equals wins). Without a unified KV cache, the default once ``-np``
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
import numpy.typing as npt

from infermeter.predict.model import FloatArray, IntArray

#: llama-server's --slot-prompt-similarity default: a prompt sharing more than this share
#: with an idle slot's cached one gets that slot, not the least recently used one.
SLOT_SIMILARITY = 0.1


class SlotTable:
    """The slots of one server: which are busy, the order the idle ones are taken in, and
    how many runs of consecutive ids the busy ones form (kept as slots are taken and freed,
    O(log n) each)."""

    def __init__(
        self, slots: int, order: list[int] | None = None, unused: list[int] | None = None
    ) -> None:
        """``order``: the slots from least to most recently used, as :meth:`order` left
        them after an earlier load on the same server (default: a fresh server's), and
        ``unused`` those of them that never held a prompt (:meth:`unused`; default none)."""
        # (last used, -id): the least recently used first, then the highest id
        if order is None:
            self._idle: list[tuple[float, int]] = [(-1.0, -s) for s in range(slots)]
        else:
            # an earlier load's instants, all before this one's 0, in their order
            self._idle = [(float(k - len(order)), -s) for k, s in enumerate(order)]
        heapq.heapify(self._idle)
        self._busy = bytearray(slots + 2)  # slot s at s + 1: both neighbours always exist
        # slots that have held a prompt
        self._used = bytearray([order is not None] * slots)
        for u in unused or ():
            self._used[u] = 0
        self.runs = 0
        self.busy = 0

    def take(self) -> int:
        """The slot a new request gets; -1 when every slot is busy."""
        if not self._idle:
            return -1
        _, neg = heapq.heappop(self._idle)
        return self._hold(-neg)

    def take_similar(self) -> int:
        """The slot a short prompt gets, one that shares more than the server's similarity
        threshold with any cached prompt: the idle slot of lowest id that has held one (else
        the least recently used, as :meth:`take`); -1 when every slot is busy."""
        held = [-neg for _, neg in self._idle if self._used[-neg]]
        if not held:
            return self.take()
        s = min(held)
        self._idle = [e for e in self._idle if e[1] != -s]
        heapq.heapify(self._idle)
        return self._hold(s)

    def _hold(self, s: int) -> int:
        self._used[s] = 1
        b = self._busy
        self.runs += 1 - b[s] - b[s + 2]
        b[s + 1] = 1
        self.busy += 1
        return s

    def sizes(self) -> list[int]:
        """The busy slots' runs of consecutive ids, by how many slots each holds."""
        out: list[int] = []
        run = 0
        for b in self._busy:
            if b:
                run += 1
            elif run:
                out.append(run)
                run = 0
        return out

    def order(self) -> list[int]:
        """The slots from least to most recently used; a busy slot counts as freed now, in
        the order of its id."""
        idle = [-neg for _, neg in sorted(self._idle)]
        return idle + [s for s in range(len(self._busy) - 2) if self._busy[s + 1]]

    def unused(self) -> list[int]:
        """The slots that never held a prompt."""
        return [s for s, used in enumerate(self._used) if not used]

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
    send_ms: FloatArray,
    end_ms: FloatArray,
    slots: int,
    similar: npt.NDArray[np.bool_] | None = None,
    same_step_ms: float = 0.0,
    first_ms: FloatArray | None = None,
) -> tuple[FloatArray, IntArray, IntArray]:
    """Hand one server's requests (sent at ``send_ms``, ended at ``end_ms``, one clock, from
    a fresh server) their slots, as the server does; a request sent while every slot is busy
    takes the first one to come free; one marked ``similar`` (its prompt shares more than
    the server's threshold with cached ones) takes :meth:`SlotTable.take_similar`'s. Ends
    within ``same_step_ms`` of each other, no send between, came in one step: the server
    frees those slots walking them by id, so they come free in id order whatever order the
    client saw their last tokens in. With ``first_ms`` (each request's first token), the
    requests taken at one instant hold the slots they took in the order their first tokens
    came: the server hands them out in the order the requests reached it, then runs their
    prompts walking the slots by id. Returns the instants the busy set changed, the runs of
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
    events = order.tolist()
    k = 0
    while k < len(events):
        e = events[k]
        if kinds[e]:
            # every request taken at this instant: the server hands them slots in the order
            # they came, then starts their prompts walking the slots by id, so the one whose
            # first token came first holds the lowest of the slots they took
            group = k + 1
            while group < len(events) and kinds[events[group]] and times[events[group]] == times[e]:
                group += 1
            members = [int(who[x]) for x in events[k:group]]
            for j in members:
                slot_of[j] = (
                    table.take_similar() if similar is not None and similar[j] else table.take()
                )
            # (a slot taken by prompt similarity is that prompt's whatever the order)
            held = [
                j for j in members if slot_of[j] >= 0 and not (similar is not None and similar[j])
            ]
            if first_ms is not None and len(held) > 1:
                ids = sorted(int(slot_of[j]) for j in held)
                for j, s in zip(sorted(held, key=lambda j: first_ms[j]), ids, strict=True):
                    slot_of[j] = s
            for m, j in enumerate(members):
                if slot_of[j] < 0:
                    queued.append(j)
                runs[k + m] = table.runs
            k = group
            continue
        group = k + 1
        while (
            group < len(events)
            and not kinds[events[group]]
            and times[events[group]] - times[e] <= same_step_ms
        ):
            group += 1
        ends = sorted(
            (int(who[x]) for x in events[k:group]), key=lambda j: (slot_of[j] < 0, slot_of[j])
        )
        for m, j in enumerate(ends):
            if slot_of[j] >= 0:
                table.free(int(slot_of[j]), float(times[e]) + m * 1e-9)
                if queued:
                    slot_of[queued.popleft()] = table.take()
            runs[k + m] = table.runs
        k = group
    return times[order], runs, slot_of
