"""A discrete-event simulation of replicas of one engine under a load: pure, seeded by the
caller's workload, and linear in steps (a step costs O(1) however large its batch).

Each replica admits requests only between steps, as llama.cpp and vLLM do: a step carries one
token for every decoding sequence and as many prompt tokens as its budget leaves, and lasts
what the engine model says a step of that shape lasts. A request's tokens are the ends of the
consecutive steps it decoded in, so its stamps are read off its replica's step clock.

Where the engine model knows its KV cache (vLLM's continuous batching), a sequence holds its
prompt from admission and one more token a step, as vLLM allocates; when a step's tokens do
not fit, the sequence admitted last is preempted, as vLLM's scheduler does: its cache is
freed and it waits at the head of the queue to compute its prompt and the tokens it had
again (recompute), its stamps then in two or more runs of steps."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from infermeter.predict.model import WAVE_MS, EngineModel, FloatArray, IntArray, StepTable
from infermeter.predict.slots import SLOT_SIMILARITY, SlotTable

Router = Literal["round-robin", "least-outstanding"]

_STEP, _ARRIVE, _DONE, _READY, _BEGIN = 0, 1, 2, 3, 4
SPREAD_CYCLE = 4096


@dataclass(frozen=True)
class SimLoad:
    """When the client sends. Closed loop: ``concurrency`` users, each sending its next
    request when its last one ends. Open loop: request i is due at ``due_ms[i]``, held back
    while ``cap`` requests are in flight."""

    n_in: IntArray
    n_out: IntArray
    concurrency: int | None = None
    due_ms: FloatArray | None = None
    cap: int | None = None
    #: Closed loop: no request is sent after this.
    duration_ms: float | None = None
    #: Closed loop: when each user first sends (a ramp-up); default all at 0.
    start_ms: FloatArray | None = None
    #: Seeds the draw of each step's spread around the engine model's table.
    seed: int = 0


@dataclass
class SimResult:
    """Per request (NaN where never sent or not finished by the horizon) and per replica."""

    t_sched: FloatArray
    t_send: FloatArray
    t_admit: FloatArray
    t_last: FloatArray
    t_end: FloatArray
    first_step: IntArray
    replica: IntArray
    n_in: IntArray
    n_out: IntArray
    steps: list[FloatArray]
    #: Sum of each replica's step times, and of batch × step time (for the mean batch).
    busy_ms: list[float]
    batch_ms: list[float]
    horizon_ms: float
    #: Requests waiting for a sequence at each arrival, per arrival (for stability).
    waiting_at_arrival: IntArray
    sim_end_ms: float = 0.0
    #: Added to every step end a request's tokens are read off (its time outside the steps).
    post_ms: float = 0.0
    #: Per request: its place in its steps' emission order, as a delay after the step's end;
    #: at its first step, and at its last where the place moves over its life (llama.cpp
    #: sends by slot id, and newer sequences take slots around the older ones).
    offset_ms: FloatArray | None = None
    last_offset_ms: FloatArray | None = None
    #: Requests preempted at least once: their runs of steps, (first step, tokens) each.
    segments: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: Sequences preempted, per replica.
    preemptions: list[int] = field(default_factory=list)
    #: Per replica, the time of its steps that decode, and forward passes x that time.
    decode_ms: list[float] = field(default_factory=list)
    pass_ms: list[float] = field(default_factory=list)
    #: Per replica, its slots from least to most recently used at the end (llama.cpp's, where
    #: the engine model follows them): where a next load on the same servers starts.
    slot_order: list[list[int]] = field(default_factory=list)
    #: ... and those of them that never held a prompt.
    slot_unused: list[list[int]] = field(default_factory=list)

    @property
    def sent(self) -> npt.NDArray[np.bool_]:
        return ~np.isnan(self.t_send)

    @property
    def mean_batch(self) -> float:
        """Sequences a step, over the replicas' busy time: where a load sits on the load
        axis."""
        busy = sum(self.busy_ms)
        return sum(self.batch_ms) / busy if busy else 0.0

    @property
    def mean_passes(self) -> list[float]:
        """Per replica, the forward passes a decoding step took, weighted by its time (more
        than one where llama.cpp's busy slots lie in several runs of ids)."""
        return [p / d if d else 0.0 for p, d in zip(self.pass_ms, self.decode_ms, strict=True)]

    @property
    def finished(self) -> npt.NDArray[np.bool_]:
        return ~np.isnan(self.t_end)

    def t_first(self) -> FloatArray:
        out = np.full(self.first_step.size, np.nan)
        for r, steps in enumerate(self.steps):
            sel = (self.replica == r) & (self.first_step >= 0)
            out[sel] = steps[self.first_step[sel]] + self.post_ms
        if self.offset_ms is not None:
            out += self.offset_ms
        return out

    def token_ms(self, i: int) -> FloatArray:
        first = float(self.offset_ms[i]) if self.offset_ms is not None else 0.0
        shift = self.post_ms + first
        steps = self.steps[int(self.replica[i])]
        runs = self.segments.get(i)
        if runs is not None:
            return np.concatenate([steps[a : a + n] for a, n in runs]) + shift
        s = int(self.first_step[i])
        out = steps[s : s + int(self.n_out[i])] + shift
        last = float(self.last_offset_ms[i]) if self.last_offset_ms is not None else first
        if last != first and out.size > 1:
            # the place is known at the first and the last token; between, it moves evenly
            out += np.linspace(0.0, last - first, out.size)
        return out


@dataclass
class _Replica:
    table: StepTable
    max_seqs: int
    budget: int
    spread: list[float]
    waiting: deque[int] = field(default_factory=deque)
    prefilling: deque[int] = field(default_factory=deque)
    finishing: dict[int, list[int]] = field(default_factory=dict)
    steps: list[float] = field(default_factory=list)
    completing: list[int] = field(default_factory=list)
    running: int = 0
    decoding: int = 0
    #: A static batch's rows (all computed until the batch ends).
    rows: int = 0
    #: KV-cache tokens held by admitted sequences: their whole context, reserved at admission
    #: (static batches, and any engine without a known KV cache), else what they hold so far.
    kv_used: int = 0
    #: Admitted sequences in admission order: the last is the one preempted.
    admitted: dict[int, None] = field(default_factory=dict)
    #: Blocks of more than one token: the decoding sequences that take a new block at a step.
    crossing: dict[int, list[int]] = field(default_factory=dict)
    preemptions: int = 0
    #: llama.cpp's slots, where which are busy sets a step's forward passes.
    slots: SlotTable | None = None
    ctx: float = 0.0
    busy: bool = False
    #: Between a step's tokens and the next step's start (the engine's host work).
    gathering: bool = False
    #: Woken from idle: the first step takes the first request and the model's share of
    #: those that came with it.
    waking: bool = False
    busy_ms: float = 0.0
    batch_ms: float = 0.0
    #: Over the steps that decode: their time, and their forward passes x time (llama.cpp's
    #: runs of busy slots; one pass elsewhere).
    decode_ms: float = 0.0
    pass_ms: float = 0.0

    @property
    def outstanding(self) -> int:
        return len(self.waiting) + self.running


class _Sim:
    def __init__(
        self,
        model: EngineModel,
        load: SimLoad,
        fleet: Fleet,
        slot_order: list[list[int]] | None = None,
        slot_unused: list[list[int]] | None = None,
    ) -> None:
        n = load.n_in.size
        self.m = model
        self.load = load
        self.n_in = load.n_in.astype(np.int64)
        self.n_out = load.n_out.astype(np.int64)
        self.rem = self.n_in.tolist()
        #: Each request's whole context (prompt and answer): what it holds of the KV cache.
        self.need = (self.n_in + self.n_out).tolist()
        table = StepTable.of(model)
        #: A step's cost for each run of busy slots beyond the first (llama.cpp's ubatches).
        self.ubatch = model.ubatch_ms if model.follows_slots else 0.0
        self.sum_passes = model.pass_cost == "sum"
        self.reps = [
            _Replica(
                table,
                model.max_seqs,
                model.token_budget,
                self._spread(load.seed, r),
                slots=SlotTable(
                    model.max_seqs,
                    slot_order[r] if slot_order else None,
                    slot_unused[r] if slot_unused else None,
                )
                if self.ubatch > 0
                else None,
            )
            for r in range(fleet.replicas)
        ]
        self.slot = [-1] * n
        #: Replicas packed onto one GPU take turns on it: when each one's GPU comes free.
        self.per_gpu = fleet.per_gpu
        self.gpu_free = [0.0] * fleet.gpus
        self.router = fleet.router
        self.rr = 0
        self.heap: list[tuple[float, int, int, int, float]] = []
        self.seq = 0
        nan = np.full(n, np.nan)
        self.t_sched, self.t_send, self.t_admit = nan.copy(), nan.copy(), nan.copy()
        self.t_last, self.t_end = nan.copy(), nan.copy()
        #: Each request's first step (-1: none yet); Python lists, as the loop reads them.
        self.first_step = [-1] * n
        self.ins = self.n_in.tolist()
        self.outs = self.n_out.tolist()
        self.replica = np.full(n, -1, dtype=np.int64)
        self.waiting_at_arrival = np.zeros(n, dtype=np.int64)
        self.inflight = 0
        self.overhead = model.ttft_overhead_ms
        self.tail = model.tail_ms
        self.gap = model.client_gap_ms
        self.admit = model.admit_ms
        self.kv = model.kv_tokens
        self.static = model.scheduler == "static"
        #: vLLM's way: the cache is taken as the sequences grow, and preemption frees it.
        self.grows = self.kv is not None and model.scheduler == "continuous"
        self.block = model.kv_block_tokens
        #: Tokens emitted before the request's current run of steps, and where that run began.
        self.produced = [0] * n
        self.seg_start = [0] * n
        #: What a sequence held when admitted (its prompt, and its tokens if recomputed).
        self.base = [0] * n
        self.decoding_now = [False] * n
        #: The step a decoding sequence emits its last token at.
        self.last_step = [0] * n
        self.segments: dict[int, list[tuple[int, int]]] = {}
        self.gather = model.gather_ms
        self.wake = model.wake_share
        self.emit = model.emit_ms_per_seq
        self.offset = [0.0] * n
        # prompts short enough for the template's shared tokens to pass llama-server's
        # similarity threshold take a slot by similarity, not by least recent use
        share = model.cached_prefix_tokens / np.maximum(self.n_in, 1)
        self.similar: list[bool] = (share > SLOT_SIMILARITY).tolist()
        self.last_offset = [0.0] * n
        self.place = random.Random(load.seed)

    def _spread(self, seed: int, replica: int) -> list[float]:
        """Each step's factor around the table, drawn ahead (a cycle of 4,096 per replica)
        from the fitted quantiles."""
        q = np.asarray(self.m.step_spread)
        u = np.random.default_rng([seed, 7, replica]).random(SPREAD_CYCLE)
        draws: list[float] = np.interp(u, np.linspace(0, 1, q.size), q).tolist()
        return draws

    def push(self, t: float, kind: int, x: int, spent: float = 0.0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, x, spent))

    # -- the client --
    def send(self, i: int, now: float, due: float) -> None:
        self.t_sched[i] = due
        self.t_send[i] = now + self.gap
        self.inflight += 1
        self.push(now + self.gap, _ARRIVE, i)

    # -- a replica --
    def arrive(self, i: int, t: float) -> None:
        if self.router == "round-robin":
            r = self.rr % len(self.reps)
            self.rr += 1
        else:
            r = min(range(len(self.reps)), key=lambda k: self.reps[k].outstanding)
        rep = self.reps[r]
        self.replica[i] = r
        rep.waiting.append(i)
        self.waiting_at_arrival[i] = sum(len(x.waiting) for x in self.reps)
        if rep.busy or rep.gathering:
            return
        if self.static and self.gather > 0 and rep.running == 0:
            # A static engine waits a moment after a batch's first request for it to fill.
            self.pause(rep, r, t + self.gather)
        elif self.wake is not None and not self.static and rep.running == 0:
            # Requests sent with this one are in its first step as the model's share says;
            # the step still begins when this one came (the window counts as spent).
            rep.waking = True
            self.pause(rep, r, t + WAVE_MS, WAVE_MS)
        else:
            self.start(r, t)

    def pause(self, rep: _Replica, r: int, until: float, spent: float = 0.0) -> None:
        """Let the replica take arrivals until ``until``, then start a step (``spent`` of
        which the pause already was)."""
        rep.busy = False
        rep.gathering = True
        self.push(until, _BEGIN, r, spent)

    def start(self, r: int, t: float, spent: float = 0.0) -> None:
        """Admit what waits and begin a step at ``t``; ``spent`` of it already passed in
        the host work that ran from the last step's tokens until now."""
        rep = self.reps[r]
        rep.gathering = False
        if self.static:
            self._start_static(rep, r, t)
            return
        preempted = False
        if self.grows:
            assert self.kv is not None
            while rep.kv_used + self._taken(rep) > self.kv and rep.running > 1:
                self._preempt(rep)
                preempted = True
            self._take(rep)
        limit = len(rep.waiting)
        if rep.waking:
            rep.waking = False
            assert self.wake is not None
            limit = 1 + round(self.wake * (limit - 1))
        # vLLM admits nothing in a step that preempted
        while rep.waiting and rep.running < rep.max_seqs and not preempted and limit > 0:
            limit -= 1
            i = rep.waiting[0]
            hold = self._blocks(self.rem[i]) if self.grows else self.need[i]
            if self.kv is not None and rep.kv_used + hold > self.kv and rep.running:
                break  # no room in the KV cache until a sequence ends
            rep.waiting.popleft()
            if rep.slots is not None:
                slots = rep.slots
                self.slot[i] = slots.take_similar() if self.similar[i] else slots.take()
            rep.kv_used += hold
            self.base[i] = self.rem[i]
            if not self.grows or math.isnan(self.t_admit[i]):  # (a preempted one: admitted)
                self.t_admit[i] = t
            rep.running += 1
            if self.grows:
                rep.admitted[i] = None
            if rep.slots is not None:
                # llama.cpp takes the prompts of a step in the order of their slots' ids
                at = len(rep.prefilling)
                while at and self.slot[rep.prefilling[at - 1]] > self.slot[i]:
                    at -= 1
                rep.prefilling.insert(at, i)
            else:
                rep.prefilling.append(i)
        room = rep.budget - rep.decoding
        prompt = 0
        rep.completing = []
        while rep.prefilling and room > prompt:
            i = rep.prefilling[0]
            take = min(self.rem[i], room - prompt)
            self.rem[i] -= take
            prompt += take
            if self.rem[i] == 0:
                rep.prefilling.popleft()
                rep.completing.append(i)
        if rep.decoding == 0 and prompt == 0:
            rep.busy = False
            return
        dur = rep.table.step_ms(rep.decoding, rep.ctx, prompt)
        if rep.decoding:
            runs = max(rep.slots.runs, 1) if rep.slots is not None else 1
            if runs > 1 and self.sum_passes and rep.slots is not None:
                dur += self._passes(rep.table, rep.slots.sizes(), rep.ctx)
            else:
                dur += self.ubatch * (runs - 1)
            dur *= rep.spread[len(rep.steps) % SPREAD_CYCLE]
            rep.decode_ms += dur
            rep.pass_ms += dur * runs
        rep.busy = True
        rep.busy_ms += dur
        rep.batch_ms += dur * rep.decoding
        self.push(self._on_gpu(r, t, dur, spent), _STEP, r)

    @staticmethod
    def _passes(table: StepTable, sizes: list[int], ctx: float) -> float:
        """What a step's passes add to its one-pass time, each pass priced as a one-pass
        step of its own sequences (the context shared out by their count)."""
        busy = sum(sizes)
        whole = table.step_ms(busy, ctx, 0)
        return sum(table.step_ms(n, ctx * n / busy, 0) for n in sizes) - whole

    def _on_gpu(self, r: int, t: float, dur: float, spent: float = 0.0) -> float:
        """When replica ``r``'s step begun at ``t`` ends (``spent`` of it already passed).
        A GPU runs one process's steps at a time, whole (no MPS; bench/gpu_share.py): a
        step that finds another replica's on its GPU starts when that one ends, and holds
        the GPU for all of its time, the host work before it included (two llama.cpp
        servers' token gaps on one H100 were both steps whole and more;
        docs/results/prediction.md, "On one GPU")."""
        end = t + max(dur - spent, 1e-6)
        if self.per_gpu > 1:
            g = r // self.per_gpu
            end = max(end, self.gpu_free[g] + dur)
            self.gpu_free[g] = end
        return end

    # -- the KV cache, where it grows (vLLM) --
    def _blocks(self, tokens: int) -> int:
        """The cache whole blocks of ``tokens`` take, in tokens."""
        return -(-tokens // self.block) * self.block

    def _next_block(self, i: int, k: int) -> int:
        """The first step from ``k`` on at which decoding sequence ``i`` takes a new block:
        the step that stores its token at a block's first place."""
        s = self.seg_start[i]
        first = s + 1 + (-self.base[i]) % self.block
        return first if k <= first else first + -(-(k - first) // self.block) * self.block

    def _taken(self, rep: _Replica) -> int:
        """The cache the step about to start takes beyond what is held."""
        if self.block == 1:
            return rep.decoding
        return self.block * len(rep.crossing.get(len(rep.steps), ()))

    def _take(self, rep: _Replica) -> None:
        k = len(rep.steps)
        if self.block == 1:
            rep.kv_used += rep.decoding  # this step's token of every decoding sequence
            return
        taking = rep.crossing.pop(k, [])
        rep.kv_used += self.block * len(taking)
        for i in taking:
            if k + self.block <= self.last_step[i]:
                rep.crossing.setdefault(k + self.block, []).append(i)

    def _decode_from(self, rep: _Replica, i: int) -> None:
        """Sequence ``i`` decodes from the step after its run began: its first new block."""
        if self.block > 1:
            c = self._next_block(i, self.seg_start[i] + 1)
            if c <= self.last_step[i]:
                rep.crossing.setdefault(c, []).append(i)

    def _stop_growing(self, rep: _Replica, i: int, k: int) -> None:
        """Sequence ``i`` takes no block from step ``k`` on."""
        if self.block > 1:
            c = self._next_block(i, k)
            if c <= self.last_step[i]:
                rep.crossing[c].remove(i)

    def _preempt(self, rep: _Replica) -> None:
        """Free the cache of the sequence admitted last and queue it first, to compute its
        prompt and the tokens it had again (vLLM's recompute preemption)."""
        i = next(reversed(rep.admitted))
        del rep.admitted[i]
        k = len(rep.steps)  # the step about to start
        if self.decoding_now[i]:
            s = self.seg_start[i]
            done = k - s  # tokens of this run, emitted at steps s … k - 1
            self._stop_growing(rep, i, k)
            rep.kv_used -= self._blocks(self.base[i] + done - 1)
            rep.decoding -= 1
            rep.ctx -= self.ins[i] + self.produced[i] + done
            rep.finishing[self.last_step[i]].remove(i)
            self.segments.setdefault(i, []).append((s, done))
            self.produced[i] += done
            self.decoding_now[i] = False
        else:  # still taking its prompt
            rep.kv_used -= self._blocks(self.base[i])
            rep.prefilling.remove(i)
        self.rem[i] = self.ins[i] + self.produced[i]
        rep.running -= 1
        rep.preemptions += 1
        rep.waiting.appendleft(i)

    def _start_static(self, rep: _Replica, r: int, t: float) -> None:
        """A static batch: formed only when the last one has ended, its prompts left-padded to
        the longest and run in one step, then every row decoding until the longest answer
        is done (rows that finished run on)."""
        if rep.running == 0:
            batch: list[int] = []
            while rep.waiting and len(batch) < rep.max_seqs:
                batch.append(rep.waiting.popleft())
            if not batch:
                rep.busy = False
                return
            for i in batch:
                self.t_admit[i] = t
                rep.kv_used += self.need[i]
            rep.running = rep.rows = len(batch)
            rep.completing = batch
            dur = rep.table.step_ms(0, 0.0, rep.rows * int(max(self.n_in[i] for i in batch)))
        else:
            rep.completing = []
            dur = rep.table.step_ms(rep.rows, rep.ctx, 0)
            dur *= rep.spread[len(rep.steps) % SPREAD_CYCLE]
        rep.busy = True
        rep.busy_ms += dur
        rep.batch_ms += dur * rep.rows
        self.push(self._on_gpu(r, t, dur), _STEP, r)

    def end_step(self, r: int, t: float) -> None:
        rep = self.reps[r]
        s = len(rep.steps)
        rep.steps.append(t)
        # The step's tokens go out one sequence after another from t: a new sequence takes
        # a place in that order and keeps it.
        tokens = rep.decoding + len(rep.completing)
        for i in rep.completing:
            if self.first_step[i] < 0:
                # llama.cpp sends a step's tokens slot by slot in the order of their ids
                place = (
                    rep.slots.below(self.slot[i])
                    if rep.slots is not None
                    else self.place.randrange(tokens)
                )
                self.offset[i] = self.emit * place
                self.last_offset[i] = self.offset[i]
        rep.ctx += rep.decoding
        grows = self.grows
        freed: list[int] = []
        for i in rep.finishing.pop(s, ()):
            if rep.slots is not None:
                # its place now: sequences that came after it took slots on either side
                self.last_offset[i] = self.emit * rep.slots.below(self.slot[i])
            rep.decoding -= 1
            rep.running -= 1
            rep.ctx -= self.need[i]
            if grows:
                self._release(rep, i, s)
            else:
                rep.kv_used -= self.need[i]
            freed.append(i)
            self.complete(i, t)
        for i in rep.completing:
            if self.first_step[i] < 0:
                self.first_step[i] = s
            left = self.outs[i] - self.produced[i]
            if left <= 1:
                rep.running -= 1
                if grows:
                    self.seg_start[i] = s
                    self._release(rep, i, s)
                else:
                    rep.kv_used -= self.need[i]
                freed.append(i)
                self.complete(i, t)
            else:
                rep.decoding += 1
                rep.ctx += self.ins[i] + self.produced[i] + 1
                rep.finishing.setdefault(s + left - 1, []).append(i)
                if grows:
                    self.seg_start[i] = s
                    self.decoding_now[i] = True
                    self.last_step[i] = s + left - 1
                    self._decode_from(rep, i)
        if rep.slots is not None:
            # The sequences a step finishes come free one after another as the server walks
            # its slots by id, sending each one's token: the lowest id is the least recently
            # used of them.
            freed.sort(key=lambda i: self.slot[i])
            for k, i in enumerate(freed):
                rep.slots.free(self.slot[i], t + k * 1e-9)
        window = self.admit + self.emit * tokens
        if self.static:
            if rep.running == 0 and rep.waiting and self.gather > 0:
                # the next batch gathers as the first one did
                self.pause(rep, r, t + self.gather)
            else:
                self.start(r, t)
        elif window > 0 and (rep.decoding or rep.prefilling):
            self.pause(rep, r, t + window, window)
        else:
            self.start(r, t)

    def _release(self, rep: _Replica, i: int, s: int) -> None:
        """A sequence of a growing cache ends at step ``s``: its cache is freed, its last run
        of steps kept."""
        del rep.admitted[i]
        self.decoding_now[i] = False
        rep.kv_used -= self._blocks(self.base[i] + (s - self.seg_start[i]))
        if i in self.segments:
            self.segments[i].append((self.seg_start[i], self.outs[i] - self.produced[i]))

    def complete(self, i: int, t: float) -> None:
        # The request's time outside the steps is put after its tokens (the response path):
        # it arrives when sent, so it can still join the step that follows its send.
        last = t + self.last_offset[i] + self.overhead
        self.t_last[i] = last
        self.push(last + self.tail, _DONE, i)

    def run(self, horizon_ms: float) -> float:
        load = self.load
        n = self.n_in.size
        closed = load.concurrency is not None
        limit = math.inf if load.cap is None else load.cap
        due = load.due_ms
        stop = load.duration_ms if load.duration_ms is not None else math.inf
        user = np.zeros(n, dtype=np.int64)
        if load.concurrency is not None:
            starts = load.start_ms if load.start_ms is not None else np.zeros(load.concurrency)
            for u, t0 in enumerate(starts.tolist()):
                self.push(t0, _READY, u)
        nxt = 0
        now = 0.0
        while True:
            if not closed and nxt < n and self.inflight < limit and due is not None:
                t_due = float(due[nxt])
                if not self.heap or t_due <= self.heap[0][0]:
                    self.send(nxt, max(t_due, now), t_due)
                    nxt += 1
                    continue
            if not self.heap:
                break
            t, _, kind, x, spent = heapq.heappop(self.heap)
            if t > horizon_ms:
                break
            now = t
            if kind == _STEP:
                self.end_step(x, t)
            elif kind == _ARRIVE:
                self.arrive(x, t)
            elif kind == _BEGIN:
                self.start(x, t, spent)
            elif kind == _DONE:
                self.t_end[x] = t
                self.inflight -= 1
                if closed:
                    self.push(t, _READY, int(user[x]))
            elif nxt < n and t <= stop:
                user[nxt] = x
                self.send(nxt, t, t)
                nxt += 1
        return now


@dataclass(frozen=True)
class Fleet:
    """The copies of the engine a load runs on: how many, the router that spreads requests
    over them, and how many share each GPU, taking turns on it (1: each its own GPU, as
    the model was fitted; the last GPU may hold fewer)."""

    replicas: int = 1
    router: Router = "least-outstanding"
    per_gpu: int = 1

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError("a fleet needs at least one replica")
        if self.per_gpu < 1:
            raise ValueError("replicas per GPU must be at least 1")

    @property
    def gpus(self) -> int:
        """The GPUs the replicas take, packed ``per_gpu`` to a GPU."""
        return -(-self.replicas // self.per_gpu)

    def of(self, replicas: int) -> Fleet:
        """The same fleet with ``replicas`` copies."""
        return replace(self, replicas=replicas)


#: One copy of the engine on a GPU of its own: what a model is fitted on.
SOLO = Fleet()


def simulate(
    model: EngineModel,
    load: SimLoad,
    *,
    fleet: Fleet = SOLO,
    horizon_ms: float | None = None,
    slot_order: list[list[int]] | None = None,
    slot_unused: list[list[int]] | None = None,
) -> SimResult:
    """Run ``load`` on ``fleet`` until every request is served or the horizon passes
    (default: the last due time plus as long again, at least 10 minutes).
    ``slot_order``: where an earlier load left the servers' slots (its result's
    ``slot_order``, and ``slot_unused``: those that never held a prompt), for a load that
    follows it on the same servers; default fresh ones."""
    if slot_order is not None and len(slot_order) != fleet.replicas:
        raise ValueError("slot_order: one order per replica")
    sim = _Sim(model, load, fleet, slot_order, slot_unused)
    if horizon_ms is None:
        last = float(load.due_ms[-1]) if load.due_ms is not None and load.due_ms.size else 0.0
        if load.duration_ms is not None:
            last = max(last, load.duration_ms)
        horizon_ms = 2 * last + 600_000.0
    end = sim.run(horizon_ms)
    return SimResult(
        t_sched=sim.t_sched,
        t_send=sim.t_send,
        t_admit=sim.t_admit,
        t_last=sim.t_last,
        t_end=sim.t_end,
        first_step=np.array(sim.first_step, dtype=np.int64),
        replica=sim.replica,
        n_in=sim.n_in,
        n_out=sim.n_out,
        steps=[np.array(r.steps) for r in sim.reps],
        busy_ms=[r.busy_ms for r in sim.reps],
        batch_ms=[r.batch_ms for r in sim.reps],
        decode_ms=[r.decode_ms for r in sim.reps],
        pass_ms=[r.pass_ms for r in sim.reps],
        horizon_ms=horizon_ms,
        waiting_at_arrival=sim.waiting_at_arrival,
        sim_end_ms=float(end),
        post_ms=model.ttft_overhead_ms,
        offset_ms=np.array(sim.offset),
        last_offset_ms=np.array(sim.last_offset),
        segments=sim.segments,
        preemptions=[r.preemptions for r in sim.reps],
        slot_order=[r.slots.order() for r in sim.reps if r.slots is not None],
        slot_unused=[r.slots.unused() for r in sim.reps if r.slots is not None],
    )
