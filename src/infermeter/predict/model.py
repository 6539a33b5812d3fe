"""An engine model: what ``infermeter fit`` learns from measured runs and ``simulate`` and
``plan`` run on. Measured tables, not curves: a decode step's time for each batch size seen,
interpolated between them, plus the few constants a step and a request add."""

from __future__ import annotations

import bisect
import statistics
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infermeter.errors import OutputError, UsageError
from infermeter.telemetry.host import SLOW_CORE_SHARE
from infermeter.text import signed_percent

ENGINE_MODEL_VERSION = 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: How the engine forms its batches. ``slots``: llama.cpp's fixed slots, prompts batched with
#: the running decodes; ``continuous``: vLLM's iteration-level scheduler with chunked prefill
#: (both admit work only between steps; they differ in their limits, which the model holds);
#: ``static``: infermeter's in-process transformers backend, a batch formed when the last one
#: ends and run until its longest answer is done.
SchedulerKind = Literal["slots", "continuous", "static"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepPoint(_Frozen):
    """The median decode step at one batch size, from the token gaps measured at it."""

    batch: int = Field(ge=1)
    step_ms: float = Field(gt=0)
    #: Mean context (prompt + tokens so far) summed over the batch, where it was measured.
    ctx_tokens: float = Field(ge=0)
    samples: int = Field(ge=1)


class PrefillPoint(_Frozen):
    """The cost of a prompt token in a step beside ``batch`` decodes (batch 0: a step of
    prompt alone, from requests sent to an idle server). On a GPU a prompt rides on the
    weight reads the decodes pay for anyway, so it costs less beside a larger batch."""

    batch: int = Field(ge=0)
    ms_per_token: float = Field(ge=0)
    samples: int = Field(ge=1)


class FitRange(_Frozen):
    """What the model was fitted on: traffic outside it is an extrapolation."""

    runs: list[str]
    input_tokens_min: int
    input_tokens_max: int
    output_tokens_min: int
    output_tokens_max: int
    batch_max: int


class SelfCheck(_Frozen):
    """One fitted run simulated on the model fitted on it, as bench drove it: how well the
    model holds its own evidence there. Not a held-out error (the run taught the model),
    but where it misses its own run it cannot meet a held-out one nearby either."""

    label: str
    #: The simulated run's sequences a step, on average: where on the load axis it sits.
    mean_batch: float = Field(ge=0)
    #: (predicted − measured) / measured; None where the run lacks the figure.
    tpot_p50_error: float | None = None
    e2e_p50_error: float | None = None
    ttft_p50_error: float | None = None
    output_tok_s_error: float | None = None

    def worst(self) -> float:
        """The larger miss of TPOT p50 and E2E p50, the figures a step's time sets."""
        return max(abs(e) for e in (self.tpot_p50_error, self.e2e_p50_error, 0.0) if e is not None)


class StepLevels(_Frozen):
    """Decode steps of one batch size that ran at two levels (fit's note says what it may
    mean): each level's median and the slow level's share of the steps."""

    batch: int = Field(ge=1)
    fast_ms: float = Field(gt=0)
    slow_ms: float = Field(gt=0)
    slow_share: float = Field(ge=0, le=1)


def levels_said(levels: list[StepLevels], most: int) -> str:
    """The first ``most`` of ``levels`` in words, size by size (fit's note, simulate's and
    plan's warning)."""
    said = "; ".join(
        f"{lv.batch} sequence{'' if lv.batch == 1 else 's'}: {lv.fast_ms:.1f} and "
        f"{lv.slow_ms:.1f} ms, {100 * lv.slow_share:.0f} % of steps slow"
        for lv in levels[:most]
    )
    more = len(levels) - most
    return f"{said} and {more} more sizes" if more > 0 else said


class RunSpeed(_Frozen):
    """One fitted run's decode steps against the table all the runs share: the median of
    each step over the table's time for its batch and context, less 1 (negative: the run
    stepped faster than the runs together)."""

    label: str
    shift: float = Field(gt=-1)
    gaps: int = Field(ge=0)
    #: The run's median core probe (µs: pinned to the server's core where sampled, else
    #: unpinned where a server on the host was measured) and its share of slow readings
    #: against one fast level for all the fitted runs, where the run sampled them.
    core_probe_us: float | None = Field(default=None, gt=0)
    core_slow_share: float | None = Field(default=None, ge=0, le=1)


class CoreEffect(_Frozen):
    """Decode steps against the speed of the core the server's busiest thread ran on (the
    pinned core probe nearest each step): at each table batch size with enough steps both
    ways, the median step while that core read slow over the median while it read fast."""

    #: The ratio (slow over fast) at each such batch size, smallest batch first.
    ratios: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    batches: list[int] = Field(min_length=1)
    #: Share of the decode steps with a probe reading near them taken while it read slow.
    slow_share: float = Field(ge=0, le=1)
    #: The pinned probe's fast level (µs) that told slow readings from fast: another run's
    #: readings against it give that run's slow share on the same scale.
    fast_us: float | None = Field(default=None, gt=0)
    #: At each of ``batches``: the median step while the core read fast, and while it read
    #: slow, each over the table's time for its batch and context (so ``ratios`` is their
    #: quotient); absent in models fitted before they were kept.
    fast: list[Annotated[float, Field(gt=0)]] | None = None
    slow: list[Annotated[float, Field(gt=0)]] | None = None

    @model_validator(mode="after")
    def _paired(self) -> CoreEffect:
        n = len(self.batches)
        if len(self.ratios) != n or any(
            x is not None and len(x) != n for x in (self.fast, self.slow)
        ):
            raise ValueError("core_effect: one ratio per batch size")
        return self

    @property
    def median(self) -> float:
        return float(statistics.median(self.ratios))


class FitQuality(_Frozen):
    """How well the model follows the data it was fitted on (not a held-out error)."""

    decode_gaps: int
    mixed_gaps: int
    solo_requests: int
    #: Median absolute relative error of a decode gap against its batch's table entry.
    decode_gap_mad: float
    #: Requests to an idle server whose prompt time the server told (llama.cpp's timings,
    #: vLLM's histogram means), which set the time outside the steps; 0 where none did.
    told_requests: int = 0
    notes: list[str] = Field(default_factory=list)
    #: Each fitted run simulated on the model (empty: not checked, or a model from before).
    self_check: list[SelfCheck] = Field(default_factory=list)
    #: Batch sizes whose decode steps ran at two levels (empty: none, or a model from before).
    levels: list[StepLevels] = Field(default_factory=list)
    #: Each fitted run with enough decode steps, against the shared table (empty: a model
    #: from before).
    run_speeds: list[RunSpeed] = Field(default_factory=list)
    #: How the steps followed the server's core's speed (None: not sampled, or too few).
    core_effect: CoreEffect | None = None


class EngineModel(_Frozen):
    """One engine serving one model on one machine, as measured."""

    schema_version: int = ENGINE_MODEL_VERSION
    kind: Literal["infermeter-engine-model"] = "infermeter-engine-model"
    engine: str
    model: str | None = None
    #: The catalogue GPU the runs were measured on (None: unknown, e.g. a CPU).
    hardware: str | None = None
    scheduler: SchedulerKind
    #: Sequences one replica runs at once (llama.cpp's slots, vLLM's max_num_seqs).
    max_seqs: int = Field(ge=1)
    max_seqs_source: str
    #: Tokens one step may carry, decodes and prompt chunks together (llama.cpp's n_batch,
    #: vLLM's max_num_batched_tokens).
    token_budget: int = Field(ge=1)
    token_budget_source: str
    #: Context one sequence may hold (llama.cpp's per-slot context, vLLM's max_model_len).
    ctx_per_seq: int | None = None
    #: A static engine's wait after a batch's first request for the batch to fill.
    gather_ms: float = Field(default=0.0, ge=0)
    #: Prompt tokens any new prompt shares with a slot's cached one (the chat template's
    #: start, as the server's cached-token counts show): a prompt short enough for them to
    #: pass llama-server's similarity threshold takes a slot by similarity.
    cached_prefix_tokens: int = Field(default=0, ge=0)
    #: Prompt tokens of infermeter's pre-flight request as the server counted them, where the
    #: fitted runs kept it (None: not simulated): it takes a slot before the warm-up.
    probe_tokens: int | None = Field(default=None, ge=1)
    #: Tokens the KV cache holds in all (vLLM's ``cache_config_info``), and where from; None:
    #: the sequence limit alone bounds admission (llama.cpp's slots own their context).
    kv_tokens: int | None = None
    kv_tokens_source: str | None = None
    #: Tokens a block of that cache holds: a sequence holds whole blocks (vLLM's block_size:
    #: 16 on GPUs, 128 in its CPU build).
    kv_block_tokens: int = Field(default=1, ge=1)
    decode: list[StepPoint] = Field(min_length=1)
    #: A decode step's growth per context token held by the batch (attention reads).
    ctx_ms_per_token: float = Field(ge=0)
    #: llama.cpp without a unified KV cache runs each run of consecutive busy slot ids as a
    #: forward pass of its own: what each run beyond the first adds to a step (0: the
    #: engine's steps do not depend on which slots are busy). The decode table holds steps
    #: of one run (infermeter.predict.slots).
    ubatch_ms: float = Field(default=0.0, ge=0)
    #: Where ``ubatch_ms`` came from: fitted on steps of several passes, or assumed where
    #: the runs had none (None: not a slots engine, or a model fitted before this was kept).
    ubatch_source: str | None = None
    #: How a step of several passes is priced: "added", the one-pass step of the whole
    #: batch plus ``ubatch_ms`` a pass beyond the first (fitted where the runs showed such
    #: steps); "sum", each pass as a one-pass step of its own sequences (where they showed
    #: none: a CPU's steps can grow far from linearly with the batch, 6.4 ms at one
    #: sequence and 15.8 at two, so two passes of one cost less than one of two).
    pass_cost: Literal["added", "sum"] = "added"
    #: Quantiles (evenly spaced, 0 to 100 %) of a decode gap over its table entry, scaled to
    #: a mean of 1: how one step varies around the table, drawn from in simulation.
    step_spread: list[float] = Field(default_factory=lambda: [1.0, 1.0], min_length=2)
    #: A step's growth per prompt token it processes: the median over every step that
    #: carried a prompt, and by batch where enough steps of that batch did.
    prefill_ms_per_token: float = Field(ge=0)
    prefill: list[PrefillPoint] = Field(default_factory=list)
    #: A step's cost with no decode in it (before its prompt tokens).
    step_floor_ms: float = Field(ge=0)
    #: Time of a request outside the engine's steps: HTTP, templating, tokenising, the first write.
    ttft_overhead_ms: float = Field(ge=0)
    #: How long after a step's tokens a request may still arrive and join the next step (the
    #: engine's host work between steps: sampling, writing the streams); chosen so that the
    #: fitted runs' TTFT is met.
    admit_ms: float = Field(default=0.0, ge=0)
    #: How the window was found: from the steps requests sent near a step's end joined, or
    #: from the fitted runs' TTFT alone (None: not fitted).
    admit_source: str | None = None
    #: Of requests that reach an idle server together (within :data:`WAVE_MS` of the
    #: first), the share beyond the first that its first step takes; the rest wait for the
    #: next. llama-server's loop wakes on the first request and takes those its HTTP
    #: threads have handed over by then: all of them where the threads share its one core,
    #: part where they have cores of their own. None: not fitted (the first alone).
    wake_share: float | None = Field(default=None, ge=0, le=1)
    #: The tokens of one step reach their streams one after another, this far apart (the
    #: engine samples and writes each sequence in turn): a step's tokens span this times its
    #: batch, and a request arriving before the last of them still joins the next step.
    emit_ms_per_seq: float = Field(default=0.0, ge=0)
    #: From the last token to the end of the answer.
    tail_ms: float = Field(ge=0)
    #: The client's own delay from scheduling a request to sending it.
    client_gap_ms: float = Field(ge=0)
    fitted_on: FitRange
    quality: FitQuality
    #: Set when the model was carried to other hardware by the roofline: how, and how sure.
    extrapolated: str | None = None
    #: The model's catalogue shape and weight precision as the runs were told them
    #: (``--model-shape``, ``--weight-dtype``): what a step must read at the least, which
    #: carrying the model to other hardware splits each step by (None: not told).
    model_shape: str | None = None
    weight_dtype: str | None = None

    @property
    def follows_slots(self) -> bool:
        """Whether a simulation follows which slots are busy (llama.cpp's ubatches)."""
        return self.scheduler == "slots" and self.ubatch_ms > 0


#: Requests sent within this of the first to an idle server are sent together (its log
#: shows eight sent 0.3 ms apart taken within a millisecond).
WAVE_MS = 1.0

#: A fitted run the model misses by more than this (TPOT p50 or E2E p50: the accuracy a
#: prediction of them aims at) marks the load around it as one the model does not hold
#: to that accuracy: a held-out load there missed by as much or more in every case seen
#: (docs/results/prediction.md), while a few held out beside such a run still came close.
SELF_MISS = 0.05


def self_check_notes(model: EngineModel, batch: float) -> list[str]:
    """Where a load of ``batch`` sequences a step lies among fitted runs the model does not
    reproduce (:attr:`FitQuality.self_check`): their misses (the larger of TPOT and E2E p50)
    read off at ``batch`` along the mean batch, linearly between the nearest fitted run on
    either side and flat beyond the ends. Past :data:`SELF_MISS`, a note names the
    neighbours that missed, with their errors."""
    checks = sorted(model.quality.self_check, key=lambda c: c.mean_batch)
    if not checks:
        return []
    below = [c for c in checks if c.mean_batch <= batch]
    above = [c for c in checks if c.mean_batch > batch]
    near = [*below[-1:], *above[:1]]
    if len(near) == 2 and near[1].mean_batch > near[0].mean_batch:
        lo, hi = near
        t = (batch - lo.mean_batch) / (hi.mean_batch - lo.mean_batch)
        expected = lo.worst() + t * (hi.worst() - lo.worst())
    else:
        expected = near[0].worst()
    if expected <= SELF_MISS:
        return []
    named = "; ".join(
        f"{c.label} (mean batch {c.mean_batch:.1f}): TPOT p50 "
        f"{signed_percent(c.tpot_p50_error)}, E2E p50 {signed_percent(c.e2e_p50_error)}"
        for c in near
        if c.worst() > SELF_MISS
    )
    return [
        f"at a mean batch of {batch:.1f} this load sits among fitted runs the engine model "
        f"does not reproduce ({named}): there it is off its own runs by about "
        f"{100 * expected:.0f} %"
    ]


def level_notes(model: EngineModel, batch: float) -> list[str]:
    """Where a load of ``batch`` sequences a step lies near a batch size whose fitted steps
    ran at two levels (:attr:`FitQuality.levels`): the table's median stands between them,
    and the engine may run this load at either."""
    near = [lv for lv in model.quality.levels if abs(lv.batch - batch) <= max(2.0, batch / 2)]
    if not near:
        return []
    return [
        f"near this load's mean batch of {batch:.1f} the fitted steps ran at two levels "
        f"({levels_said(near, 3)}): the simulation steps at their median, and the engine "
        "may run this load at either (the fit's note says why that may be)"
    ]


#: Fitted runs whose decode steps sit this far apart against the table they share (the
#: slowest run's median over the fastest's, less 1) disagree on the engine's speed by more
#: than a TPOT prediction aims at. In 24 of the 25 one-sweep fits of docs/results the runs
#: sat at most 5.1 % apart; an H100 whose engine stepped 15 % slower from the sweep's fifth
#: run on, 13.8 %; a CPU sweep fitted with its rerun after the held-out runs, 6.3-8.4 %.
RUN_SPREAD = 0.06
#: The slower run's share of slow core readings this much above the faster's before the note
#: says the host's cores were slower too.
PROBE_AGREES = 0.2


def _speed_spread(run_speeds: list[RunSpeed]) -> tuple[float, RunSpeed, RunSpeed] | None:
    """(spread, fastest, slowest) where the runs sit :data:`RUN_SPREAD` or more apart."""
    if len(run_speeds) < 2:
        return None
    fast = min(run_speeds, key=lambda r: r.shift)
    slow = max(run_speeds, key=lambda r: r.shift)
    spread = (1 + slow.shift) / (1 + fast.shift) - 1
    return (spread, fast, slow) if spread >= RUN_SPREAD else None


def speed_notes(run_speeds: list[RunSpeed]) -> list[str]:
    """Where the fitted runs disagree on the engine's speed (:data:`RUN_SPREAD`): the table
    holds their median, and any load may run at the speed of either end (fit's note,
    simulate's and plan's warning)."""
    found = _speed_spread(run_speeds)
    if found is None:
        return []
    spread, fast, slow = found

    def said(r: RunSpeed) -> str:
        return f"{r.label} {100 * abs(r.shift):.1f} % {'slower' if r.shift > 0 else 'faster'}"

    host = ""
    if fast.core_slow_share is not None and slow.core_slow_share is not None:
        # shares of slow readings, not medians: a median of a two-level probe jumps from one
        # level to the other between runs that differ by a few readings
        more = slow.core_slow_share - fast.core_slow_share
        host = (
            f"; the core probe read slow in {100 * slow.core_slow_share:.0f} % of the slower "
            f"run's readings and {100 * fast.core_slow_share:.0f} % of the faster's: "
            + (
                "its cores were slower too"
                if more >= PROBE_AGREES
                else "not its cores, where the probe ran"
                if more <= 0
                else "its cores may have been slower too"
            )
        )
    return [
        f"the fitted runs' decode steps sat up to {100 * spread:.1f} % apart against the "
        f"step table they share ({said(fast)}, {said(slow)}): the engine's speed changed "
        "between runs (the host's clocks or load, a state the engine carries), which the "
        f"model cannot tell from the load{host}; it steps at the runs' median, and a run may "
        "go at either speed"
    ]


def host_notes(run_speeds: list[RunSpeed], effect: CoreEffect | None = None) -> list[str]:
    """Where the host's cores changed speed while the fitted runs were measured (their
    telemetry's core probe), with how much the engine's steps followed the core its busiest
    thread ran on where that was sampled (fit's note, simulate's and plan's warning)."""
    told = [r.core_slow_share for r in run_speeds if r.core_slow_share is not None]
    slow = [share for share in told if share >= SLOW_CORE_SHARE]
    if not slow:
        return []
    followed = ""
    if effect is not None:
        lo, hi = min(effect.ratios), max(effect.ratios)
        followed = (
            "; steps taken while the core of the server's busiest thread read slow took "
            f"{effect.median:.2f}× as long as those taken while it read fast (median; "
            f"{lo:.2f}-{hi:.2f}× over {len(effect.ratios)} batch sizes), and "
            f"{100 * effect.slow_share:.0f} % of the steps near a reading were taken while it "
            "read slow"
        )
    lo, hi = min(slow), max(slow)
    share = (
        f"{100 * lo:.0f} %"
        if round(100 * lo) == round(100 * hi)
        else f"{100 * lo:.0f}-{100 * hi:.0f} %"
    )
    then = (
        "the engine's steps hardly followed that core: its speed did not rest on it"
        if effect is not None and effect.median - 1 < CORE_BOUND
        else "a host-bound engine's steps ran at the mix of speeds the runs met, and a later "
        "load meets whatever speed its host then has"
    )
    return [
        f"the host's cores changed speed while {len(slow)} of the {len(told)} fitted runs with "
        f"a core probe were measured (slow in {share} of their readings){followed}: {then}"
    ]


#: The slow-core bound is planned where it slows every step by this much or more (less is
#: inside what a TPOT prediction aims at anyway).
CORE_BOUND = 0.03


def core_factors(model: EngineModel, share: float) -> tuple[list[int], list[float]] | None:
    """At each batch size of the fit's :class:`CoreEffect`, how much longer a decode step
    would be than the table's were the server's core slow ``share`` of the time (0: fast
    throughout, 1: slow throughout). A step while the core reads fast takes ``f`` times the
    table's and one while it reads slow ``s`` times (measured at that batch size), so over a
    stretch of time slow in ``share`` of it the mean step is ``1 / (share/s + (1 −
    share)/f)``: more fast steps fit in the fast time. Models fitted before ``f`` and ``s``
    were kept take them from the ratio and the fit's share of slow steps ``m``, the table as
    their mean (``f = 1 / (1 + m(R − 1))``). None where the fit measured no core effect."""
    effect = model.quality.core_effect
    if effect is None:
        return None
    if effect.fast is not None and effect.slow is not None:
        pairs = list(zip(effect.fast, effect.slow, strict=True))
    else:
        m = effect.slow_share
        pairs = [(1 / (1 + m * (r - 1)), r / (1 + m * (r - 1))) for r in effect.ratios]
    factors = [1 / (share / slow + (1 - share) / fast) for fast, slow in pairs]
    return list(effect.batches), factors


def core_factor(model: EngineModel, share: float) -> float | None:
    """:func:`core_factors`' median over the batch sizes: one figure to say it by."""
    found = core_factors(model, share)
    return None if found is None else float(statistics.median(found[1]))


def at_core_share(model: EngineModel, share: float) -> EngineModel | None:
    """``model`` as if the server's core read slow ``share`` of the time (:func:`core_factors`):
    each decode table entry times the factor at its batch size (interpolated between those
    measured, the nearest beyond them), the step with no decode and a pass beyond a step's
    first at the smallest batch's, the context's share at the median. None where the fit
    measured no core effect."""
    found = core_factors(model, share)
    if found is None:
        return None
    batches, factors = found

    def at(batch: float) -> float:
        return float(np.interp(batch, batches, factors))

    return model.model_copy(
        update={
            "decode": [
                p.model_copy(update={"step_ms": p.step_ms * at(p.batch)}) for p in model.decode
            ],
            "step_floor_ms": model.step_floor_ms * factors[0],
            "ubatch_ms": model.ubatch_ms * factors[0],
            "ctx_ms_per_token": model.ctx_ms_per_token * float(statistics.median(factors)),
        }
    )


def slow_core_factor(model: EngineModel) -> float | None:
    """:func:`core_factor` of a core slow throughout, where it lengthens the steps by
    :data:`CORE_BOUND` or more; None where the effect is unknown or smaller."""
    factor = core_factor(model, 1.0)
    return factor if factor is not None and factor - 1 >= CORE_BOUND else None


def run_spread(model: EngineModel) -> float | None:
    """How much slower the slowest fitted run stepped than the fastest, where that is past
    :data:`RUN_SPREAD`, else None."""
    found = _speed_spread(model.quality.run_speeds)
    return None if found is None else found[0]


#: Where more of a run's decode steps lie at batch sizes the fitted runs never measured
#: than this, :func:`speed_against` tells no speed.
OWN_SIZES_MOST = 0.5
#: A run whose steps took this much longer or shorter than the fitted runs' or more ran at
#: another speed than they did (less is inside what a TPOT prediction aims at anyway).
SPEED_APART = 0.03


def speed_against(own: EngineModel, fitted: EngineModel) -> float | None:
    """How long a run's decode steps took against those of the runs ``fitted`` was fitted
    on (1.05: 5 % longer), from ``own``, a fit of that run alone: at each batch size both
    tables measured, its step over ``fitted``'s at its own context, averaged by its steps
    there. Only measured sizes count (an interpolated one says nothing of either run);
    where more than :data:`OWN_SIZES_MOST` of its steps lie at sizes ``fitted`` lacks, or
    where the run is of another engine, model or GPU (a speed there says nothing of this
    one), None."""
    for mine, theirs in (
        (own.engine, fitted.engine),
        (own.model, fitted.model),
        (own.hardware, fitted.hardware),
    ):
        if mine is not None and theirs is not None and mine != theirs:
            return None
    by_batch = {p.batch: p for p in fitted.decode}
    shared = [p for p in own.decode if p.batch in by_batch]
    told = sum(p.samples for p in shared)
    if not shared or told < (1 - OWN_SIZES_MOST) * sum(p.samples for p in own.decode):
        return None
    ratios = [
        p.step_ms
        / (
            by_batch[p.batch].step_ms
            + fitted.ctx_ms_per_token * (p.ctx_tokens - by_batch[p.batch].ctx_tokens)
        )
        for p in shared
    ]
    return sum(r * p.samples for r, p in zip(ratios, shared, strict=True)) / told


def at_speed(model: EngineModel, factor: float) -> EngineModel:
    """``model`` with every decode step ``factor`` times as long: its table, the step with
    no decode (under a prompt), a forward pass beyond a step's first and the context's
    share. A prompt token's cost and the time outside the steps are kept: the runs'
    speeds were read off their decode steps alone."""
    return model.model_copy(
        update={
            "decode": [p.model_copy(update={"step_ms": p.step_ms * factor}) for p in model.decode],
            "step_floor_ms": model.step_floor_ms * factor,
            "ubatch_ms": model.ubatch_ms * factor,
            "ctx_ms_per_token": model.ctx_ms_per_token * factor,
        }
    )


class StepTable:
    """The model's step time for every batch size up to its limit, looked up in O(1)."""

    def __init__(
        self,
        points: list[StepPoint],
        max_seqs: int,
        *,
        ctx_ms_per_token: float,
        step_floor_ms: float,
        prefill_ms_per_token: float,
        prefill: list[PrefillPoint] | None = None,
    ) -> None:
        pts = sorted(points, key=lambda p: p.batch)
        xs = [p.batch for p in pts]
        top = max(max_seqs, xs[-1])
        self.base = [0.0] * (top + 1)
        self.ref = [0.0] * (top + 1)
        for b in range(1, top + 1):
            self.base[b], self.ref[b] = _interpolate(pts, xs, b)
        self.slope = ctx_ms_per_token
        self.prefill = [prefill_ms_per_token] * (top + 1)
        by = sorted(prefill or [], key=lambda p: p.batch)
        if by:
            # Between measured batches linear, beyond them flat.
            self.prefill = np.interp(
                np.arange(top + 1), [p.batch for p in by], [p.ms_per_token for p in by]
            ).tolist()
        self.floor = step_floor_ms

    @classmethod
    def of(cls, m: EngineModel) -> StepTable:
        return cls(
            m.decode,
            m.max_seqs,
            ctx_ms_per_token=m.ctx_ms_per_token,
            step_floor_ms=m.step_floor_ms,
            prefill_ms_per_token=m.prefill_ms_per_token,
            prefill=m.prefill,
        )

    def step_ms(self, batch: int, ctx_tokens: float, prompt_tokens: int) -> float:
        """One step: ``batch`` decodes holding ``ctx_tokens`` of context, plus ``prompt_tokens``."""
        if batch == 0:
            t = self.floor
        else:
            t = self.base[batch] + self.slope * (ctx_tokens - self.ref[batch])
        # A step never gets cheaper than its floor, whatever the context does.
        return max(t, self.floor, 1e-3) + self.prefill[batch] * prompt_tokens

    def decode_ms(self, batch: IntArray, ctx_tokens: FloatArray) -> FloatArray:
        """:meth:`step_ms` of many decode-only steps at once (batches of one or more)."""
        at = np.minimum(batch, len(self.base) - 1)
        base, ref = np.asarray(self.base)[at], np.asarray(self.ref)[at]
        step: FloatArray = np.maximum(base + self.slope * (ctx_tokens - ref), max(self.floor, 1e-3))
        return step


def _interpolate(pts: list[StepPoint], xs: list[int], b: int) -> tuple[float, float]:
    """Linear between the measured batches. Beyond the largest, along the line from the
    measured batch nearest half of it (not the last two: neighbours such as 31 and 32 differ
    by their noise, and on the H100 their slope was negative), and never below the largest:
    a batch past the measured ones is not taken as cheaper than they are."""
    i = bisect.bisect_left(xs, b)
    if i < len(xs) and xs[i] == b:
        return pts[i].step_ms, pts[i].ctx_tokens
    if i == 0:
        lo, hi = pts[0], pts[1] if len(pts) > 1 else pts[0]
    elif i == len(xs):
        hi = pts[-1]
        lo = min(pts[:-1], key=lambda p: abs(p.batch - hi.batch / 2), default=hi)
    else:
        lo, hi = pts[i - 1], pts[i]
    if hi.batch == lo.batch:
        scale = b / lo.batch
        return lo.step_ms, lo.ctx_tokens * scale
    w = (b - lo.batch) / (hi.batch - lo.batch)
    step = lo.step_ms + w * (hi.step_ms - lo.step_ms)
    ctx = lo.ctx_tokens + w * (hi.ctx_tokens - lo.ctx_tokens)
    if i == len(xs):
        step = max(step, hi.step_ms)
    return max(step, 1e-3), max(ctx, 0.0)


def read_engine_model(path: Path) -> EngineModel:
    """An engine model file, or a one-line UsageError saying what is wrong with it."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--engine-model {path}: {exc.strerror or exc}") from None
    try:
        model = EngineModel.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "the file"
        raise UsageError(
            f"--engine-model {path}: not an engine model ({where}: {err['msg']})"
        ) from None
    if model.schema_version > ENGINE_MODEL_VERSION:
        raise UsageError(f"--engine-model {path} was written by a newer infermeter; upgrade")
    return model


def write_engine_model(model: EngineModel, path: Path) -> None:
    try:
        path.write_text(model.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise OutputError.writing(path, exc) from None
