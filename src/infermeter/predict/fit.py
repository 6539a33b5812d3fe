"""Fitting an engine model to measured runs: pure math over the requests' token stamps.

Every stream's token arrivals say when the engine finished a step. A gap between two tokens of
one stream is one step; the streams decoding at its middle are its batch, the context they hold
is summed from their prompts and tokens so far, and the first tokens of other streams landing
at its end are the prompts it carried. Steps with no prompt give the decode table (median per
batch: no curve is assumed); steps with prompts give the cost per prompt token; requests sent
to an idle server give the time a request spends outside the steps."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

from infermeter.errors import UsageError
from infermeter.predict.model import (
    WAVE_MS,
    BoolArray,
    CoreEffect,
    EngineModel,
    FitQuality,
    FitRange,
    FloatArray,
    IntArray,
    PrefillPoint,
    RunSpeed,
    SchedulerKind,
    StepLevels,
    StepPoint,
    StepTable,
    host_notes,
    levels_said,
    speed_notes,
)
from infermeter.predict.slots import SLOT_SIMILARITY, replay_runs

#: Gaps a batch size needs before its median enters the table...
MIN_SAMPLES = 20
#: ... and at least this share of the gaps of some one run.
RARE_SHARE = 0.03
#: Token arrivals further apart than this share of the shortest step belong to different steps.
EMIT_APART = 0.3
#: Requests to an idle server with the server's own prompt time, for that time to be used.
MIN_TOLD = 5
#: Steps with a prompt a batch size needs before its own prompt cost enters the table.
MIN_MIXED = 30
#: A first token this share of a gap after the gap's end still came from the same step: the
#: streams of one step are written one after another (llama.cpp slot by slot, a quarter of
#: a step at batch 64 on the H200), and first tokens land either near a step's end or near
#: the next one's, so the midpoint tells them apart. A smaller share gave the next step,
#: which carries no prompt, the prompts of the stream's own step.
LANDING_SLACK = 0.5
#: Percent of gaps left out at either end: the client's or the host's hiccups, not steps.
TRIM = 0.5
#: Gaps at one count of busy-slot runs, within one batch size, for their median to count.
MIN_RUN_GAPS = 10
#: Quantiles kept of a step's spread around its table entry.
SPREAD_POINTS = 41
#: Two step levels at one batch size: gaps enough to tell, the slower level this many times
#: the faster, each level this share of the gaps at least, and the two levels this share of
#: the gaps' variance (Otsu's measure: 0.64 for one normal level, 1 for two spikes).
LEVELS_MIN_GAPS = 200
LEVELS_RATIO = 1.3
LEVELS_SHARE = 0.1
LEVELS_SEPARATION = 0.85


@dataclass(frozen=True)
class ObservedRun:
    """One run's completed requests (every phase: warm-up requests fill batches too), on one
    clock in milliseconds."""

    label: str
    t_sched: FloatArray
    t_send: FloatArray
    t_first: FloatArray
    t_last: FloatArray
    t_end: FloatArray
    n_in: IntArray
    n_out: IntArray
    #: Arrival of each single-token chunk after the first, per request (coalesced chunks,
    #: which hide their steps, are left out).
    token_ms: list[FloatArray] = field(default_factory=list)
    #: The server's own time for each prompt and the prompt tokens it processed (llama.cpp's
    #: ``timings.prompt_ms``/``prompt_n``; NaN where the server does not say).
    server_prompt_ms: FloatArray | None = None
    server_prompt_n: FloatArray | None = None
    #: Runs of one ``server`` key ran on one server, one after another, the first on a fresh
    #: one; ``origin_ms`` puts this run's clock on theirs (where llama.cpp's slots matter).
    server: str = ""
    origin_ms: float = 0.0
    #: Prompt tokens the server served from a slot's cache, per request (NaN: not told).
    n_cached: FloatArray | None = None
    #: Which requests were the pre-flight one (a slot taken before the warm-up).
    probe: npt.NDArray[np.bool_] | None = None
    #: The host's core probe over the run's window (telemetry): its median (µs) and the
    #: share of slow samples; None where the run did not sample it.
    core_probe_us: float | None = None
    core_slow_share: float | None = None
    #: The probe pinned to the server's busiest thread's CPU, sample by sample: when (ms,
    #: the run's clock) and whether it read slow (``SLOW_CORE`` × ``core_fast_us``, the
    #: fast level pooled over all the fitted runs' pinned readings).
    core_ms: FloatArray | None = None
    core_slow: BoolArray | None = None
    core_fast_us: float | None = None

    @property
    def kept_probe(self) -> bool:
        """Whether the run holds bench's pre-flight record (runs made before it was kept do
        not): then every request that took a slot of the server is known."""
        return self.probe is not None and bool(self.probe.any())

    def without_probe(self) -> ObservedRun:
        """The run less its pre-flight request: a slot it took, but none of the engine's
        figures (a one-token answer to a short prompt on an idle server)."""
        probe = self.probe
        if probe is None or not self.kept_probe:
            return self
        keep = ~probe
        idx = np.flatnonzero(keep)

        def cut(a: FloatArray | None) -> FloatArray | None:
            return None if a is None else a[keep]

        return replace(
            self,
            t_sched=self.t_sched[keep],
            t_send=self.t_send[keep],
            t_first=self.t_first[keep],
            t_last=self.t_last[keep],
            t_end=self.t_end[keep],
            n_in=self.n_in[keep],
            n_out=self.n_out[keep],
            token_ms=[self.token_ms[i] for i in idx] if self.token_ms else [],
            server_prompt_ms=cut(self.server_prompt_ms),
            server_prompt_n=cut(self.server_prompt_n),
            n_cached=cut(self.n_cached),
            probe=None,
        )

    def similar(self) -> npt.NDArray[np.bool_]:
        """The requests llama-server gave a slot by prompt similarity, not by least recent
        use: those whose cached share of the prompt passed its threshold."""
        if self.n_cached is None:
            return np.zeros(self.n_in.size, dtype=np.bool_)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self.n_cached / np.maximum(self.n_in, 1)
        return np.nan_to_num(share, nan=0.0) > SLOT_SIMILARITY

    @cached_property
    def arrivals(self) -> FloatArray:
        """Every token arrival of ``token_ms``, in time order (several parts of a fit read
        them, and a long run holds millions)."""
        if not self.token_ms:
            return np.zeros(0)
        return np.sort(np.concatenate(self.token_ms))


@dataclass(frozen=True)
class Limits:
    """The scheduler's limits, as the server told or as inferred, with where each came from."""

    scheduler: SchedulerKind
    max_seqs: int
    max_seqs_source: str
    token_budget: int
    token_budget_source: str
    ctx_per_seq: int | None
    kv_tokens: int | None = None
    kv_tokens_source: str | None = None
    kv_block_tokens: int = 1
    #: A static engine's wait for its batch to fill.
    gather_ms: float = 0.0


@dataclass
class _Gaps:
    gap: list[FloatArray] = field(default_factory=list)
    batch: list[IntArray] = field(default_factory=list)
    ctx: list[FloatArray] = field(default_factory=list)
    prompt: list[FloatArray] = field(default_factory=list)
    #: The run each gap was measured in (its index).
    run: list[IntArray] = field(default_factory=list)
    #: Runs of consecutive busy slot ids at the gap's middle (1 where not followed).
    slot_runs: list[IntArray] = field(default_factory=list)
    #: The server's core at the gap's middle: 1 slow, 0 fast, -1 not sampled near it.
    core: list[IntArray] = field(default_factory=list)

    def joined(self) -> tuple[FloatArray, IntArray, FloatArray, FloatArray, IntArray, IntArray]:
        if not self.gap:
            empty = np.zeros(0)
            none = np.zeros(0, dtype=np.int64)
            return empty, none, empty, empty, none, none
        return (
            np.concatenate(self.gap),
            np.concatenate(self.batch),
            np.concatenate(self.ctx),
            np.concatenate(self.prompt),
            np.concatenate(self.run),
            np.concatenate(self.slot_runs),
        )


def in_flight_at_send(run: ObservedRun) -> IntArray:
    """How many requests were in flight as each was sent, itself included."""
    starts, ends = np.sort(run.t_send), np.sort(run.t_end)
    return np.searchsorted(starts, run.t_send, "right") - np.searchsorted(ends, run.t_send, "right")


def _prefix(values: FloatArray) -> FloatArray:
    return np.concatenate(([0.0], np.cumsum(values)))


class _Occupancy:
    """How many streams decode at an instant, and the context they hold, from sorted ends."""

    def __init__(self, run: ObservedRun) -> None:
        live = (run.n_out >= 2) & (run.t_last > run.t_first)
        first, last = run.t_first[live], run.t_last[live]
        # Context of stream j at t: prompt + first token + tokens since, at its own pace.
        rate = (run.n_out[live] - 1) / (last - first)
        base = run.n_in[live] + 1.0 - first * rate
        by_first, by_last = np.argsort(first), np.argsort(last)
        self.first, self.last = first[by_first], last[by_last]
        self.base_in, self.rate_in = _prefix(base[by_first]), _prefix(rate[by_first])
        self.base_out, self.rate_out = _prefix(base[by_last]), _prefix(rate[by_last])

    def at(self, t: FloatArray) -> tuple[IntArray, FloatArray]:
        i = np.searchsorted(self.first, t, side="right")
        j = np.searchsorted(self.last, t, side="right")
        count = (i - j).astype(np.int64)
        ctx = (self.base_in[i] - self.base_out[j]) + t * (self.rate_in[i] - self.rate_out[j])
        return count, np.maximum(ctx, 0.0)


def _emit_slack(run: ObservedRun) -> float:
    """Token arrivals closer than this belong to one step: a share of the run's median
    gap between a stream's tokens (a step each)."""
    steps = np.concatenate([np.diff(t) for t in run.token_ms])
    steps = steps[steps > 0]
    return EMIT_APART * float(np.median(steps)) if steps.size else 0.0


def _before_first(run: ObservedRun) -> FloatArray:
    """A slot taken at the end of the step before the one that carried the request's
    prompt (the last token of any stream before its first, the tokens of its own step left
    out), or when it was sent if the server was idle: the take of runs whose server's
    every request is not known (no pre-flight record), where the finer rule of
    :func:`admitted` predicted worse (docs/results/prediction.md)."""
    arrivals = run.arrivals
    slack = _emit_slack(run)
    before = np.searchsorted(arrivals, run.t_first - slack, side="left") - 1
    step_end = np.where(before >= 0, arrivals[np.maximum(before, 0)], -np.inf)
    return np.maximum(run.t_send, step_end)


def admitted(run: ObservedRun, budget: int | None = None) -> FloatArray:
    """When each request took its slot. llama-server takes the requests that have come
    each time it is about to start a step, whether or not their prompts fit that step's
    batch, and fills the batch walking the slots by id. A request that comes while a step
    runs is taken once that step's tokens are out (the last token of the first step that
    ends after its send, every stream's first tokens counted). Requests sent together to
    an idle server: those whose prompts ran in its first step it had taken when it woke
    (the instant the first was sent), and the rest with them where that step's batch of
    ``budget`` prompt tokens was full, else after it. Requests taken at one instant share
    it exactly: the replay hands them their slots together
    (:func:`infermeter.predict.slots.replay_runs`). A slot comes free with its request's
    last token. Without ``budget``, :func:`_before_first`."""
    if not run.token_ms:
        return run.t_send
    if budget is None:
        return _before_first(run)
    tokens = np.sort(np.concatenate([run.arrivals, run.t_first]))
    slack = _emit_slack(run)
    ends = tokens[cut_steps(tokens, slack)[1]]
    k = np.searchsorted(ends, run.t_send, side="right")
    end = ends[np.minimum(k, ends.size - 1)]
    # taken at the end of the step in flight at the send (none: its own first step)
    after = np.where((k < ends.size) & (end < run.t_first), end, run.t_send)
    take: FloatArray = after.copy()
    for wave in idle_waves(run, budget):
        for w, early in zip(wave.ids, wave.first_step.tolist(), strict=True):
            # Those whose prompts ran in the first step had reached the server when it
            # woke; the rest too where that step's batch had no room for another prompt
            # (else one would have joined it), and they were taken after it where it had.
            take[w] = run.t_send[wave.ids[0]] if (early or wave.full) else after[w]
    return take


@dataclass(frozen=True)
class IdleWave:
    """Requests sent together (within :data:`WAVE_MS` of the first) to a server with
    nothing in flight: which of them ran their prompts in its first step, and whether that
    step's batch of prompt tokens had room for one more of the rest."""

    ids: list[int]
    first_step: BoolArray
    full: bool


def idle_waves(run: ObservedRun, budget: int) -> list[IdleWave]:
    """The run's requests sent together to an idle server, in the order they were sent
    (a lone request to an idle server is a wave of one)."""
    slack = _emit_slack(run)
    by_send = np.argsort(run.t_send, kind="stable").tolist()
    held = -np.inf  # the latest last token of the requests sent so far
    waves: list[IdleWave] = []
    n = 0
    while n < len(by_send):
        j = by_send[n]
        if held > run.t_send[j]:  # a step runs
            held = max(held, run.t_last[j])
            n += 1
            continue
        ids = [j]
        while (
            n + len(ids) < len(by_send)
            and run.t_send[by_send[n + len(ids)]] - run.t_send[j] <= WAVE_MS
        ):
            ids.append(by_send[n + len(ids)])
        firsts = run.t_first[ids]
        first_step = firsts <= firsts.min() + slack
        rest = run.n_in[ids][~first_step]
        full = rest.size > 0 and int(run.n_in[ids][first_step].sum()) + int(rest.min()) > budget
        waves.append(IdleWave(ids=ids, first_step=first_step, full=full))
        held = max(held, float(run.t_last[ids].max()))
        n += len(ids)
    return waves


def _wake_share(runs: list[ObservedRun], budget: int) -> float | None:
    """Of the requests sent together to an idle server beyond the first, the share that ran
    their prompts in its first step (waves whose first step had no room for the rest left
    out); None where the runs sent no such wave."""
    joined = others = 0
    for run in runs:
        if not run.token_ms:
            continue
        for wave in idle_waves(run, budget):
            if len(wave.ids) < 2 or wave.full:
                continue
            joined += int(wave.first_step.sum()) - 1
            others += len(wave.ids) - 1
    return joined / others if others else None


def step_apart_ms(points: list[StepPoint]) -> float:
    """Token arrivals further apart than this belong to different steps (a share of the
    shortest step in the table)."""
    return EMIT_APART * min(p.step_ms for p in points)


def cut_steps(tokens: FloatArray, apart_ms: float) -> tuple[IntArray, IntArray]:
    """Sorted token arrivals cut into steps wherever ``apart_ms`` passes with none: the
    index of each step's first and last token."""
    cuts = np.flatnonzero(np.diff(tokens) > apart_ms)
    return np.concatenate(([0], cuts + 1)), np.concatenate((cuts, [tokens.size - 1]))


@dataclass(frozen=True)
class JoinSamples:
    """Requests sent to a busy server with a sequence free, each set against the step under
    way: ``lead_ms``, how long before that step's last token the request was sent;
    ``joined``, whether its first token came with the very next step."""

    lead_ms: FloatArray
    joined: npt.NDArray[np.bool_]

    def within(self, lo_ms: float, hi_ms: float) -> JoinSamples:
        """Those sent between ``lo_ms`` and ``hi_ms`` before the step's last token."""
        keep = (self.lead_ms >= lo_ms) & (self.lead_ms <= hi_ms)
        return JoinSamples(self.lead_ms[keep], self.joined[keep])

    def misread(self, threshold_ms: float) -> int:
        """How many of them a rule "joins the next step if sent more than ``threshold_ms``
        before the step's last token" gets wrong."""
        early = self.lead_ms > threshold_ms
        return int(np.count_nonzero(early != self.joined))


def join_samples(runs: list[ObservedRun], apart_ms: float, max_seqs: int) -> JoinSamples:
    """Which step each request sent to a busy server joined: every run's token arrivals
    (first tokens included) cut into steps wherever ``apart_ms`` passes with none, each
    request set against the first step whose last token arrived after its send. Requests
    that found every sequence taken wait for one to end, not for a step, and are left out."""
    leads: list[FloatArray] = []
    joins: list[npt.NDArray[np.bool_]] = []
    for run in runs:
        if not run.token_ms or run.t_send.size < 2:
            continue
        tokens = np.sort(np.concatenate([run.arrivals, run.t_first]))
        first, last = cut_steps(tokens, apart_ms)
        starts, ends = tokens[first], tokens[last]
        # the step whose last token is the first to arrive after the send
        under_way = np.searchsorted(ends, run.t_send, side="left")
        first_in = np.searchsorted(starts, run.t_first, side="right") - 1
        others = in_flight_at_send(run) - 1
        keep = (under_way + 1 < starts.size) & (others >= 1)
        keep &= others < max_seqs
        keep &= first_in > under_way
        j = under_way[keep]
        leads.append(ends[j] - run.t_send[keep])
        joins.append(first_in[keep] == j + 1)
    if not leads:
        return JoinSamples(np.zeros(0), np.zeros(0, dtype=np.bool_))
    return JoinSamples(np.concatenate(leads), np.concatenate(joins))


@dataclass(frozen=True)
class ServerReplay:
    """The slots one server handed out, replayed from its runs' records (one clock): each
    request's take and free instants and its slot, and the runs of consecutive busy ids from
    each instant the busy set changed on."""

    take: FloatArray
    free: FloatArray
    slot: IntArray
    times: FloatArray
    runs: IntArray


def replay_server(
    members: list[ObservedRun], slots: int, budget: int | None = None
) -> ServerReplay:
    """The slots handed out again to every request of ``members``, the runs of one server
    in the order they ran, each put on the server's clock by its ``origin_ms``, the first
    on a fresh server (infermeter.predict.slots). ``budget``: the prompt tokens a step
    takes (llama.cpp's ``-b``), for when requests sent together were taken."""
    known = all(r.kept_probe for r in members)
    # Every request that took a slot is known (the pre-flight ones too), so the ids
    # replayed can be the server's: requests are taken as the server takes them (and those
    # taken together hold their slots in the order their prompts ran), and the ends of one
    # step (closer together than a share of the shortest step) come free in the order of
    # their ids, not in the order the client saw them. Without that, the coarser take and
    # the client's order of ends predicted better (docs/results/prediction.md).
    take = np.concatenate([admitted(r, budget if known else None) + r.origin_ms for r in members])
    free = np.concatenate([r.t_last + r.origin_ms for r in members])
    similar = np.concatenate([r.similar() for r in members])
    same_step = 0.0
    first = None
    if known:
        # one step's tokens, as admitted() reads them, on the run with the shortest steps
        slacks = [_emit_slack(r) for r in members if r.token_ms]
        same_step = min((x for x in slacks if x > 0), default=0.0)
        first = np.concatenate([r.t_first + r.origin_ms for r in members])
    times, runs, slot = replay_runs(take, free, slots, similar, same_step, first)
    return ServerReplay(take, free, slot, times, runs)


def _slot_history(
    runs: list[ObservedRun], slots: int, budget: int | None
) -> list[tuple[FloatArray, IntArray]]:
    """Per run, on its own clock: the instants its server's busy slots changed and the runs
    of consecutive busy ids from each on, replaying the slots the server handed out to the
    requests of every run on it, in order."""
    out: list[tuple[FloatArray, IntArray]] = [(np.zeros(0), np.zeros(0, np.int64))] * len(runs)
    servers: dict[str, list[int]] = {}
    for k, run in enumerate(runs):
        servers.setdefault(run.server, []).append(k)
    for members in servers.values():
        members.sort(key=lambda k: runs[k].origin_ms)
        replayed = replay_server([runs[k] for k in members], slots, budget)
        for k in members:
            out[k] = (replayed.times - runs[k].origin_ms, replayed.runs)
    return out


def _gaps(run: ObservedRun, index: int, into: _Gaps, history: tuple[FloatArray, IntArray]) -> None:
    occ = _Occupancy(run)
    times, busy_runs = history
    if not times.size:  # not followed: one run
        times, busy_runs = np.zeros(1), np.ones(1, dtype=np.int64)
    order = np.argsort(run.t_first)
    landings = run.t_first[order]
    landed_prompt = _prefix(run.n_in[order].astype(np.float64))
    # a prompt served mostly from a slot's cache (the same prompt sent again) computed
    # only what the cache lacked: the steps it landed in are no one's evidence
    landed_reused = _prefix(run.similar()[order].astype(np.float64))
    for toks in run.token_ms:
        if toks.size < 2:
            continue
        a, b = toks[:-1], toks[1:]
        gap = b - a
        keep = gap > 0
        a, b, gap = a[keep], b[keep], gap[keep]
        batch, ctx = occ.at((a + b) / 2)
        slack = LANDING_SLACK * gap
        lo = np.searchsorted(landings, a + slack, side="right")
        hi = np.searchsorted(landings, b + slack, side="right")
        clean = landed_reused[hi] == landed_reused[lo]
        a, b, gap, batch, ctx, lo, hi = (x[clean] for x in (a, b, gap, batch, ctx, lo, hi))
        into.gap.append(gap)
        into.batch.append(np.maximum(batch, 1))
        into.ctx.append(ctx)
        into.prompt.append(landed_prompt[hi] - landed_prompt[lo])
        into.run.append(np.full(gap.size, index, dtype=np.int64))
        at = np.searchsorted(times, (a + b) / 2, side="right") - 1
        into.slot_runs.append(np.maximum(np.where(at >= 0, busy_runs[np.maximum(at, 0)], 1), 1))
        into.core.append(_core_state(run, (a + b) / 2))


#: A step's core state is read off the pinned probe sample nearest its middle, where one lies
#: this close (the host sampler's period is 500 ms).
CORE_NEAR_MS = 250.0
#: Steps needed each way (core fast, core slow) at a batch size to compare them there.
MIN_CORE_GAPS = 30


def _core_state(run: ObservedRun, mid: FloatArray) -> IntArray:
    """1 where the server's core read slow nearest ``mid``, 0 fast, -1 no sample near."""
    out = np.full(mid.size, -1, dtype=np.int64)
    times, slow = run.core_ms, run.core_slow
    if times is None or slow is None or not times.size:
        return out
    right = np.clip(np.searchsorted(times, mid), 0, times.size - 1)
    left = np.clip(right - 1, 0, times.size - 1)
    near = np.where(np.abs(times[left] - mid) < np.abs(times[right] - mid), left, right)
    close = np.abs(times[near] - mid) <= CORE_NEAR_MS
    out[close] = slow[near[close]].astype(np.int64)
    return out


def core_effect(
    ratio: FloatArray,
    batch: IntArray,
    core: IntArray,
    points: list[StepPoint],
    fast_us: float | None = None,
) -> CoreEffect | None:
    """At each table batch size, the median decode step while the server's core read slow
    over the median while it read fast, where both have :data:`MIN_CORE_GAPS`; None where no
    batch size has. ``ratio`` is each step over the table's time for its batch and context,
    so a context that grew while the core was slow is not taken for the core. ``fast_us``:
    the probe's fast level the slow readings were told by, kept so that another run's
    readings can be told the same way."""
    fasts: list[float] = []
    slows: list[float] = []
    batches: list[int] = []
    for p in points:
        at = batch == p.batch
        fast, slow = ratio[at & (core == 0)], ratio[at & (core == 1)]
        if fast.size >= MIN_CORE_GAPS and slow.size >= MIN_CORE_GAPS:
            fasts.append(float(np.median(fast)))
            slows.append(float(np.median(slow)))
            batches.append(p.batch)
    told = core >= 0
    if not batches:
        return None
    return CoreEffect(
        ratios=[s / f for f, s in zip(fasts, slows, strict=True)],
        batches=batches,
        slow_share=float((core[told] == 1).mean()),
        fast_us=fast_us,
        fast=fasts,
        slow=slows,
    )


@dataclass(frozen=True)
class _Solo:
    """The requests sent while no other was in flight: TTFT, prompt length, and the server's
    own prompt time and processed tokens where it says (else NaN)."""

    ttft: FloatArray
    n_in: FloatArray
    server_ms: FloatArray
    server_n: FloatArray


def _solo(runs: list[ObservedRun]) -> _Solo:
    parts = []
    for run in runs:
        # a prompt served from the cache is no evidence of what computing one costs
        solo = (in_flight_at_send(run) == 1) & ~run.similar()
        nan = np.full(run.t_send.size, np.nan)
        ms = run.server_prompt_ms if run.server_prompt_ms is not None else nan
        n = run.server_prompt_n if run.server_prompt_n is not None else nan
        parts.append(
            ((run.t_first - run.t_send)[solo], run.n_in[solo].astype(np.float64), ms[solo], n[solo])
        )
    return _Solo(*(np.concatenate([p[i] for p in parts]) for i in range(4)))


#: A lone prompt priced apart from the pooled cost where it took under this share of it.
IDLE_SHARE = 0.5


def _spread(n_in: FloatArray) -> bool:
    """Whether prompt lengths spread wide enough to draw a line of time against length
    through: the longest half as long again as the shortest (a template's few tokens of
    difference, 509 to 514, would give a slope of noise)."""
    n = n_in[n_in > 0]
    return bool(n.size) and float(n.max()) >= 1.5 * float(n.min())


def _idle_prompt(
    ttft: FloatArray, n_in: FloatArray, floor: float, pooled: float
) -> tuple[float, float, bool]:
    """A prompt's cost per token on an idle engine, the time outside the steps, and whether
    the two were folded together, from the requests sent to an idle server where it told no
    prompt times. The pooled cost of prompts beside decodes stands unless those requests'
    prompts took under half of what it allows: a GPU engine whose lone prompt hides in the
    host's time for the step, while one beside decodes adds to it (a step floor fitted a
    little high makes a smaller shortfall, which is no such regime). Then they are the
    measurement: a line through their lengths where those spread (:func:`_spread`), else
    their cost per token with the time around it folded in."""
    left = float(np.median(ttft - floor - pooled * n_in))
    keep = n_in > 0
    if not keep.any():
        return pooled, max(left, 0.0), False
    took = float(np.median(ttft[keep] - floor))
    if took >= IDLE_SHARE * pooled * float(np.median(n_in[keep])):
        return pooled, max(left, 0.0), False
    ttft, n_in = ttft[keep], n_in[keep]
    if _spread(n_in):
        per_token = max(float(np.polyfit(n_in, ttft - floor, 1)[0]), 0.0)
        return per_token, max(float(np.median(ttft - floor - per_token * n_in)), 0.0), False
    return max(float(np.median((ttft - floor) / n_in)), 0.0), 0.0, True


def _prompt_line(cost: FloatArray, batch: IntArray, max_seqs: int) -> list[PrefillPoint]:
    """A prompt's cost per token as a line in the decodes beside it, where no batch size
    had enough prompts for a cost of its own: a robust line (the median of the slopes between
    the batches' medians) through three or more batch sizes; nothing for fewer sizes.

    A rising line goes on to the engine's sequence limit: each decode beside the prompt adds
    its own work to the step, the same for the next one. A falling one (a GPU's prompt riding
    on the weight reads the decodes pay for) must level off at the prompt's own cost, which
    the line does not show: it is held at the largest size seen (the table is flat beyond
    its points)."""
    sizes = np.unique(batch)
    if sizes.size < 3 or cost.size < MIN_MIXED:
        return []
    medians = np.array([np.median(cost[batch == b]) for b in sizes])
    i, j = np.triu_indices(sizes.size, k=1)
    slope = float(np.median((medians[j] - medians[i]) / (sizes[j] - sizes[i])))
    at = float(np.median(medians - slope * sizes))
    ends = [int(sizes[0]), int(sizes[-1])]
    if slope > 0 and max_seqs > ends[-1]:
        ends.append(max_seqs)
    return [
        PrefillPoint(
            batch=b,
            ms_per_token=max(at + slope * float(b), 0.0),
            samples=max(int((batch == b).sum()), 1),
        )
        for b in ends
    ]


def _emission(runs: list[ObservedRun], apart_ms: float) -> float:
    """How far apart the tokens of one step reach their streams, per sequence: every run's
    token arrivals cut into steps wherever ``apart_ms`` passes with none, the median of each
    step's span over its tokens (steps of three tokens or more)."""
    spacing = []
    for run in runs:
        if not run.token_ms:
            continue
        arrivals = run.arrivals
        if arrivals.size < 3:
            continue
        first, last = cut_steps(arrivals, apart_ms)
        count = last - first + 1
        big = count >= 3
        spacing.append((arrivals[last] - arrivals[first])[big] / (count[big] - 1))
    joined = np.concatenate(spacing) if spacing else np.zeros(0)
    return float(np.median(joined)) if joined.size else 0.0


def _static_prefill(
    runs: list[ObservedRun], limits: Limits, floor: float
) -> tuple[float, float] | None:
    """A static batch's prompts run together, padded: across runs of different batch sizes
    TTFT grows with rows × prompt tokens, whose slope is a prompt token's cost and whose
    intercept is the time outside the steps (the batch's gathering taken out)."""
    x, y = [], []
    for run in runs:
        rows = min(int(in_flight_at_send(run).max()), limits.max_seqs)
        x.append(rows * float(np.median(run.n_in)))
        y.append(float(np.median(run.t_first - run.t_send)))
    if len(set(x)) < 2:
        return None
    slope, intercept = np.polyfit(np.array(x), np.array(y), 1)
    return max(float(slope), 0.0), max(float(intercept) - floor - limits.gather_ms, 0.0)


def _table(gap: FloatArray, batch: IntArray, ctx: FloatArray, run_of: IntArray) -> list[StepPoint]:
    # A batch size a run passed through only briefly (a stream ending, the next one's prompt
    # not yet in) is where a step is most often mislabelled: it must be common in some run.
    common: set[int] = set()
    for r in np.unique(run_of):
        sizes, counts = np.unique(batch[run_of == r], return_counts=True)
        common.update(int(b) for b in sizes[counts >= RARE_SHARE * counts.sum()])
    points = []
    for b in np.unique(batch):
        sel = batch == b
        if int(b) not in common or int(sel.sum()) < MIN_SAMPLES:
            continue
        # The median: a prompt's step not told apart from a decode's moves it little.
        points.append(
            StepPoint(
                batch=int(b),
                step_ms=float(np.median(gap[sel])),
                ctx_tokens=float(ctx[sel].mean()),
                samples=int(sel.sum()),
            )
        )
    return points


def _two_levels(gap: FloatArray) -> tuple[float, float, float] | None:
    """(fast median, slow median, slow share) where ``gap`` parts into two levels (Otsu's
    split, on the gaps' logarithms: a level's spread grows with it), else None."""
    if gap.size < LEVELS_MIN_GAPS:
        return None
    lo_cut, hi_cut = np.percentile(gap, [TRIM, 100 - TRIM])
    x = np.sort(np.log(gap[(gap >= lo_cut) & (gap <= hi_cut) & (gap > 0)]))
    n = x.size
    if n < LEVELS_MIN_GAPS or float(x.var()) == 0.0:
        return None
    k = np.arange(1, n)
    low = np.cumsum(x)[:-1]
    m0, m1 = low / k, (x.sum() - low) / (n - k)
    between = k * (n - k) * (m1 - m0) ** 2 / n**2
    i = int(np.argmax(between))
    fast, slow = x[: i + 1], x[i + 1 :]
    share = slow.size / n
    ratio = float(np.exp(np.median(slow) - np.median(fast)))
    if (
        float(between[i]) / float(x.var()) < LEVELS_SEPARATION
        or ratio < LEVELS_RATIO
        or min(share, 1 - share) < LEVELS_SHARE
    ):
        return None
    return float(np.exp(np.median(fast))), float(np.exp(np.median(slow))), share


def step_levels(gap: FloatArray, batch: IntArray, points: list[StepPoint]) -> list[StepLevels]:
    """The batch sizes of the table whose decode steps ran at two levels."""
    found = []
    for p in points:
        two = _two_levels(gap[batch == p.batch])
        if two is not None:
            found.append(
                StepLevels(batch=p.batch, fast_ms=two[0], slow_ms=two[1], slow_share=two[2])
            )
    return found


def levels_note(found: list[StepLevels]) -> str | None:
    """A note where the decode steps of one batch size ran at two levels: the table's median
    then stands between them, and a load that runs at one level misses by their ratio."""
    if not found:
        return None
    return (
        f"decode steps with the same number of sequences ran at two levels "
        f"({levels_said(found, 4)}): either the engine's step depends on more than its batch "
        "(transformers serve on a GPU: torch's cuDNN attention building a graph for each "
        "new length, docs/engines.md; a host busy part of the time, or whose cores change "
        "speed: the core probe's note says where it saw that), or some steps were "
        "labelled with the wrong batch (a size the loads passed through only briefly); the "
        "table holds their median, so a load that runs at one level is missed by their ratio"
    )


#: Decode gaps a run needs at the table's batch sizes for its speed to be told.
MIN_SPEED_GAPS = 50


def run_speeds(
    ratio: FloatArray,
    run_of: IntArray,
    in_table: BoolArray,
    labels: list[str],
    probes: list[tuple[float, float] | None] | None = None,
) -> list[RunSpeed]:
    """Each run's decode steps against the shared table: ``ratio`` is each gap over the
    table's time for its batch and context. Only batch sizes the table measured count (an
    interpolated size says nothing of the run). ``probes``: each run's core probe median
    and share of slow samples (telemetry), kept beside its speed."""
    out = []
    for index, label in enumerate(labels):
        sel = (run_of == index) & in_table
        if int(sel.sum()) >= MIN_SPEED_GAPS:
            core = probes[index] if probes else None
            out.append(
                RunSpeed(
                    label=label,
                    shift=float(np.median(ratio[sel])) - 1,
                    gaps=int(sel.sum()),
                    core_probe_us=core[0] if core else None,
                    core_slow_share=core[1] if core else None,
                )
            )
    return out


def _ubatch(
    gap: FloatArray, batch: IntArray, extra: FloatArray, points: list[StepPoint]
) -> float | None:
    """What each run of busy slots beyond the first adds to a step: within each batch size
    of the table, the median gap at each count of runs (with enough gaps), its growth with
    the count pooled over the batch sizes, weighted by the gaps (medians, not means: a
    prompt's step not told apart moves them little; no trim, which would cut the very
    steps of several runs). None where no batch size had enough gaps at two counts: the
    runs never showed what a pass costs."""
    sxy = sxx = 0.0
    for p in points:
        sel = batch == p.batch
        g, x = gap[sel], extra[sel]
        values, counts = np.unique(x, return_counts=True)
        keep = counts >= MIN_RUN_GAPS
        if int(keep.sum()) < 2:
            continue
        xs, w = values[keep], counts[keep].astype(np.float64)
        ys = np.array([float(np.median(g[x == v])) for v in xs])
        xm, ym = float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())
        sxy += float((w * (xs - xm) * (ys - ym)).sum())
        sxx += float((w * (xs - xm) ** 2).sum())
    return max(sxy / sxx, 0.0) if sxx > 0 else None


def _cached_prefix(runs: list[ObservedRun]) -> int:
    """The prompt tokens every prompt shares with a slot's cached one: the median the server
    served from cache for the requests it gave a slot by least recent use (0: not told)."""
    told = [
        r.n_cached[~r.similar() & ~np.isnan(r.n_cached)] for r in runs if r.n_cached is not None
    ]
    joined = np.concatenate(told) if told else np.zeros(0)
    return int(np.median(joined)) if joined.size else 0


def _probe_tokens(runs: list[ObservedRun]) -> int | None:
    """The pre-flight request's prompt as the server counted it, where the runs kept it."""
    kept = [r.n_in[r.probe] for r in runs if r.probe is not None]
    sizes = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    sizes = sizes[sizes > 0]
    return int(np.median(sizes)) if sizes.size else None


def _ctx_slope(gap: FloatArray, batch: IntArray, ctx: FloatArray, points: list[StepPoint]) -> float:
    """Step growth per context token, pooled within batch sizes (each batch's own level
    removed), on the gaps within three MADs of their batch's median."""
    sxy = sxx = 0.0
    for p in points:
        sel = batch == p.batch
        y = gap[sel] - p.step_ms
        x = ctx[sel] - ctx[sel].mean()
        mad = float(np.median(np.abs(y))) or 1e-9
        ok = np.abs(y) <= 3 * 1.4826 * mad
        sxy += float((x[ok] * y[ok]).sum())
        sxx += float((x[ok] * x[ok]).sum())
    return max(sxy / sxx, 0.0) if sxx > 0 else 0.0


def fit_engine(
    runs: list[ObservedRun],
    limits: Limits,
    *,
    engine: str,
    model: str | None,
    hardware: str | None,
    pass_floor_ms: float = 0.0,
) -> EngineModel:
    """``pass_floor_ms``: the least a forward pass can take (the weights read once at the
    GPU's bandwidth, where the runs told the model): what llama.cpp's passes beyond a step's
    first are held to, as the slot replay of a server with an untold history can fit less."""
    gaps = _Gaps()
    slots = limits.scheduler == "slots"
    none = (np.zeros(0), np.zeros(0, dtype=np.int64))
    histories = (
        _slot_history(runs, limits.max_seqs, limits.token_budget) if slots else [none] * len(runs)
    )
    probes = _probe_tokens(runs)
    every_probe = all(r.kept_probe for r in runs)
    # the pre-flight request took a slot (the replay above) and is nothing else's evidence
    runs = [r.without_probe() for r in runs]
    for index, run in enumerate(runs):
        _gaps(run, index, gaps, histories[index])
    gap, batch, ctx, prompt, run_of, slot_runs = gaps.joined()
    core = np.concatenate(gaps.core) if gaps.core else np.zeros(0, dtype=np.int64)
    decode = prompt == 0
    points = _table(gap[decode], batch[decode], ctx[decode], run_of[decode])
    if not points:
        raise UsageError(
            f"fit: too few token gaps to learn a decode step ({int(decode.sum())} without a "
            f"prompt beside them; {MIN_SAMPLES} at one batch size are needed): the runs need "
            "streamed answers of several tokens each"
        )
    notes: list[str] = []
    reused = sum(int(r.similar().sum()) for r in runs)
    if reused:
        total = sum(r.n_in.size for r in runs)
        notes.append(
            f"{reused} of {total} requests of the runs were served mostly from the server's "
            "prompt cache (a prompt sent again, e.g. runs with one seed on one server): "
            "neither they nor the steps they landed in are fitted on, and the simulation "
            "computes every prompt whole"
        )
    if slots and not every_probe:
        notes.append(
            "the runs do not hold bench's pre-flight record (made before it was kept): "
            "llama.cpp's slots are replayed from when each prompt started, not as the "
            "server took them, which misplaces requests sent together"
        )
    extra = (slot_runs - 1).astype(np.float64)
    ubatch = _ubatch(gap[decode], batch[decode], extra[decode], points) if slots else 0.0
    ubatch_source = "fitted" if slots else None
    pass_cost: Literal["added", "sum"] = "added"
    if ubatch is None:
        # Streams that stay in step take neighbouring slots, so a sweep of closed loops can
        # show no step of several passes; the held-out loads that scatter over the slots
        # then run them. Each pass reads the weights and computes its own sequences, so it
        # is priced as a one-pass step of those (``pass_cost`` "sum"), not at nothing: on a
        # CPU whose step of two costs 2.5 steps of one, two passes of one cost less than
        # one pass of two (measured: 13.3 against 15.8 ms). ``ubatch_ms`` keeps the step of
        # one (or the weights' read, where larger) that the simulation follows slots by.
        one_step = min(points, key=lambda p: p.batch).step_ms
        ubatch = max(one_step, pass_floor_ms)
        pass_cost = "sum"
        ubatch_source = "assumed: no fitted step ran several passes"
        notes.append(
            "no step of the runs decoded its busy slots in several forward passes (they "
            "stayed neighbours): each pass is priced as a one-pass step of its own "
            "sequences; fit a sweep whose streams scatter over the slots (e.g. with "
            "--ramp-up) to measure it"
        )
    if slots and 0.0 < ubatch < pass_floor_ms:
        notes.append(
            f"a forward pass beyond a step's first fitted at {ubatch:.2f} ms, less than reading "
            f"the weights takes: held to {pass_floor_ms:.2f} ms"
        )
        ubatch = pass_floor_ms
    # the table holds steps of one run: each gap as one run of its batch would have taken
    single = gap - ubatch * extra
    if ubatch > 0 and all(
        float(np.median(single[decode & (batch == p.batch)])) > 0 for p in points
    ):
        gap = single
        points = _table(gap[decode], batch[decode], ctx[decode], run_of[decode])
    elif ubatch > 0:
        notes.append(
            f"the busy slots replayed from the records would put {ubatch:.2f} ms on each "
            "forward pass beyond the first, more than some steps took: not followed (a "
            "server whose slot history the runs do not show?)"
        )
        ubatch = 0.0
        pass_cost = "added"
        ubatch_source = "not followed: the replayed slots disagree with the steps"
    levels = step_levels(gap[decode], batch[decode], points)
    two_levels = levels_note(levels)
    if two_levels:
        notes.append(two_levels)
    slope = _ctx_slope(gap[decode], batch[decode], ctx[decode], points)
    by_batch = {p.batch: p.step_ms for p in points}
    one = by_batch.get(1, points[0].step_ms)
    two = by_batch.get(2)
    # A step with no decode costs what a batch of one would, less one sequence's share.
    floor = min(max(2 * one - two, 0.0), one) if two is not None else one
    table = StepTable(
        points, limits.max_seqs, ctx_ms_per_token=slope, step_floor_ms=floor, prefill_ms_per_token=0
    )
    expected = table.decode_ms(batch, ctx)
    mixed = prompt > 0
    per_token = 0.0
    prefill: list[PrefillPoint] = []
    if mixed.any():
        cost = (gap[mixed] - expected[mixed]) / prompt[mixed]
        per_token = max(float(np.median(cost)), 0.0)
        mixed_batch = batch[mixed]
        for b in np.unique(mixed_batch):
            sel = mixed_batch == b
            if int(sel.sum()) >= MIN_MIXED:
                prefill.append(
                    PrefillPoint(
                        batch=int(b),
                        ms_per_token=max(float(np.median(cost[sel])), 0.0),
                        samples=int(sel.sum()),
                    )
                )
        if not prefill:
            prefill = _prompt_line(cost, mixed_batch, limits.max_seqs)
    solo = _solo(runs)
    solo_ttft, solo_n = solo.ttft, solo.n_in
    static = _static_prefill(runs, limits, floor) if limits.scheduler == "static" else None
    told = ~np.isnan(solo.server_ms) & (solo.server_n > 0)
    overhead = 0.0
    told_used = 0  # requests whose server-told prompt time set the overhead
    if static is not None:
        per_token, overhead = static
    elif int(told.sum()) >= MIN_TOLD:
        told_used = int(told.sum())
        # The server's own clock splits a prompt's step from the time around it, whatever
        # the prompt lengths: the overhead is what TTFT holds beyond the prompt's time.
        overhead = max(float(np.median(solo_ttft[told] - solo.server_ms[told])), 0.0)
        alone = max(float(np.median((solo.server_ms[told] - floor) / solo.server_n[told])), 0.0)
        prefill.insert(0, PrefillPoint(batch=0, ms_per_token=alone, samples=told_used))
        if not mixed.any():
            per_token = alone
    elif solo_ttft.size:
        if not mixed.any() and _spread(solo_n):
            per_token = max(float(np.polyfit(solo_n, solo_ttft, 1)[0]), 0.0)
        if not prefill:
            overhead = max(float(np.median(solo_ttft - floor - per_token * solo_n)), 0.0)
        else:
            alone, overhead, folded = _idle_prompt(solo_ttft, solo_n, floor, per_token)
            prefill.insert(
                0, PrefillPoint(batch=0, ms_per_token=alone, samples=int(solo_ttft.size))
            )
            if folded:
                notes.append(
                    "a prompt sent to an idle engine took under half of what the cost of a "
                    "prompt beside decodes allows, and with prompts of about one length its "
                    "cost could not be told from the time around it: prompts of other lengths "
                    "sent to an idle engine extrapolate"
                )
    else:
        notes.append(
            "no request was sent to an idle server: the time outside the engine's steps is "
            "taken as 0 (fit a run at concurrency 1 too)"
        )
    if static is None and not mixed.any() and not _spread(solo_n) and int(told.sum()) < MIN_TOLD:
        notes.append(
            "the cost per prompt token could not be separated from the per-request overhead "
            "(prompts of about one length, no prompt beside a decode, no server prompt times): "
            "other prompt lengths extrapolate"
        )
    ratio = gap[decode] / expected[decode]
    speeds = run_speeds(
        ratio,
        run_of[decode],
        np.isin(batch[decode], list(by_batch)),
        [r.label for r in runs],
        [
            (r.core_probe_us, r.core_slow_share)
            if r.core_probe_us is not None and r.core_slow_share is not None
            else None
            for r in runs
        ],
    )
    notes += speed_notes(speeds)
    fast = next((r.core_fast_us for r in runs if r.core_fast_us is not None), None)
    effect = core_effect(ratio, batch[decode], core[decode], points, fast)
    notes += host_notes(speeds, effect)
    t_end = np.concatenate([r.t_end - r.t_last for r in runs])
    gap_to_send = np.concatenate([r.t_send - r.t_sched for r in runs])
    dev = np.abs(ratio - 1)
    # The extreme percent either way is the client's or the host's, not the engine's.
    lo, hi = np.percentile(ratio, [TRIM, 100 - TRIM]) if ratio.size else (1.0, 1.0)
    spread = np.percentile(np.clip(ratio, lo, hi), np.linspace(0, 100, SPREAD_POINTS))
    spread /= spread.mean() if ratio.size else 1.0
    n_in = np.concatenate([r.n_in for r in runs])
    n_out = np.concatenate([r.n_out for r in runs])
    return EngineModel(
        engine=engine,
        model=model,
        hardware=hardware,
        scheduler=limits.scheduler,
        max_seqs=limits.max_seqs,
        max_seqs_source=limits.max_seqs_source,
        token_budget=limits.token_budget,
        token_budget_source=limits.token_budget_source,
        ctx_per_seq=limits.ctx_per_seq,
        gather_ms=limits.gather_ms,
        kv_tokens=limits.kv_tokens,
        kv_tokens_source=limits.kv_tokens_source,
        kv_block_tokens=limits.kv_block_tokens,
        decode=points,
        ctx_ms_per_token=slope,
        ubatch_ms=ubatch,
        ubatch_source=ubatch_source,
        pass_cost=pass_cost,
        wake_share=_wake_share(runs, limits.token_budget) if slots else None,
        emit_ms_per_seq=_emission(runs, step_apart_ms(points)),
        step_spread=[float(x) for x in spread] if ratio.size else [1.0, 1.0],
        prefill_ms_per_token=per_token,
        prefill=prefill,
        step_floor_ms=floor,
        ttft_overhead_ms=overhead,
        tail_ms=max(float(np.median(t_end)), 0.0) if t_end.size else 0.0,
        cached_prefix_tokens=_cached_prefix(runs),
        probe_tokens=probes,
        client_gap_ms=max(float(np.median(gap_to_send)), 0.0) if gap_to_send.size else 0.0,
        fitted_on=FitRange(
            runs=[r.label for r in runs],
            input_tokens_min=int(n_in.min()),
            input_tokens_max=int(n_in.max()),
            output_tokens_min=int(n_out.min()),
            output_tokens_max=int(n_out.max()),
            batch_max=max(p.batch for p in points),
        ),
        quality=FitQuality(
            decode_gaps=int(decode.sum()),
            mixed_gaps=int(mixed.sum()),
            solo_requests=int(solo_ttft.size),
            decode_gap_mad=float(np.median(dev)) if dev.size else 0.0,
            told_requests=told_used,
            notes=notes,
            levels=levels,
            run_speeds=speeds,
            core_effect=effect,
        ),
    )
