"""``infermeter plan``: the fewest replicas that serve a traffic within its latency limits,
found by simulating the engine model, with the highest rate one replica sustains and what
that costs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infermeter.analysis.verdicts import load_profile
from infermeter.config import BenchConfig
from infermeter.errors import UsageError
from infermeter.load.strategies import CapacitySearch
from infermeter.metrics.slo import parse_slo
from infermeter.predict.model import (
    EngineModel,
    at_speed,
    host_notes,
    level_notes,
    run_spread,
    self_check_notes,
    speed_notes,
)
from infermeter.predict.simulate import SOLO, Fleet, simulate
from infermeter.predict.summary import LATENCIES, SimSummary, Term, meets, summarize
from infermeter.run.predict import SimPlan, extrapolations, sim_plan, stability
from infermeter.schema.plan import CostDoc, PlanDoc, SlowerDoc, TrialDoc

#: Requests each trial of the per-replica rate search simulates.
SEARCH_REQUESTS = 2000
#: The per-replica rate is pinned down to this ratio of a failing rate over a passing one.
SEARCH_TOL = 1 / 256
#: Replicas tried past the first estimate before giving up.
MAX_EXTRA_REPLICAS = 64


@dataclass(frozen=True)
class Trial:
    """One simulation judged against the limits."""

    replicas: int
    summary: SimSummary
    verdicts: list[tuple[Term, float, bool]]
    unstable: str | None

    @property
    def passed(self) -> bool:
        return self.unstable is None and all(ok for _, _, ok in self.verdicts)


@dataclass(frozen=True)
class PlanResult:
    rate_rps: float
    requests: int
    mean_input_tokens: float
    mean_output_tokens: float
    terms: list[Term]
    max_rate_per_replica_rps: float
    at: Trial
    one_fewer: Trial | None
    cost: CostDoc | None
    notes: list[str] = field(default_factory=list)
    #: The router and the replicas packed onto each GPU the count was planned with (its
    #: own count aside), or GPUs each replica takes.
    fleet: Fleet = SOLO
    gpus_per_replica: int = 1

    def gpus_of(self, replicas: int) -> int:
        """The GPUs ``replicas`` take."""
        return self.fleet.of(replicas).gpus * self.gpus_per_replica

    @property
    def gpus(self) -> int:
        """The GPUs the planned count takes."""
        return self.gpus_of(self.at.replicas)


def latency_terms(slo: str | None, profile: str | None) -> tuple[list[Term], list[str]]:
    """The limits to plan for: percentile terms of ``--slo`` and a profile's latency limits.
    A profile's throughput and memory limits are not the planner's to meet (the traffic sets
    the throughput; memory use is not predicted): they are named as left out."""
    terms: list[Term] = []
    notes: list[str] = []
    if slo:
        for t in parse_slo(slo).terms:
            if t.percentile is None:
                raise UsageError(
                    f"--slo {t.name}: plan needs a percentile on every term, e.g. "
                    f"p95_{t.metric}={t.threshold:g}"
                )
            if t.metric not in LATENCIES:
                raise UsageError(f"--slo {t.name}: plan predicts {', '.join(LATENCIES)} only")
            terms.append(Term(t.metric, t.percentile, t.threshold))
    if profile:
        p = load_profile(profile)
        for lim in p.limits:
            if lim.metric in LATENCIES and lim.max is not None:
                terms.append(Term(lim.metric, lim.percentile or 50.0, lim.max))
            else:
                notes.append(
                    f"profile {p.name}: {lim.name} is not planned for (not a latency limit)"
                )
    if not terms:
        raise UsageError("plan needs latency limits: --slo p95_ttft_ms=500,... or --profile chat")
    return terms, notes


def _trial(
    model: EngineModel,
    plan: SimPlan,
    terms: list[Term],
    fleet: Fleet,
) -> Trial:
    res = simulate(model, plan.load, fleet=fleet)
    summary = summarize(res, tuple(t.percentile for t in terms))
    return Trial(fleet.replicas, summary, meets(summary, terms), stability(res, plan))


def _at_rate(config: BenchConfig, rate: float, base_rate: float) -> BenchConfig:
    """The traffic at another mean rate: a rate's arrivals redrawn at it, a trace's times
    stretched or squeezed (its shape and lengths kept); its first requests only."""
    n = min(SEARCH_REQUESTS, config.num_requests or SEARCH_REQUESTS)
    if config.trace is not None:
        return config.model_copy(
            update={"time_scale": config.time_scale * base_rate / rate, "num_requests": n}
        )
    return config.model_copy(update={"rate": rate, "num_requests": n, "duration_s": None})


def max_rate(
    model: EngineModel,
    config: BenchConfig,
    base_rate: float,
    mean_out: float,
    terms: list[Term],
) -> float:
    """The highest mean rate of this traffic one replica, alone on its GPU, serves within
    the limits, to within 0.4 %; 0 when none does. (A router has nothing to choose among
    one replica, so none is taken.)"""

    # Start from a quarter of what full batches of the traffic's answers could finish a
    # second, and search as sweep --find-max does: bracket by doubling, then bisect.
    step = min(p.step_ms for p in model.decode)
    guess = max(model.max_seqs * 1000.0 / (step * max(mean_out, 1.0)) / 4, 1e-3)
    search = CapacitySearch(
        start=guess, upper=guess * 2**30, integer=False, rel_tol=SEARCH_TOL, max_runs=60
    )
    while (rate := search.next_value()) is not None:
        plan = sim_plan(_at_rate(config, rate, base_rate), model)
        search.record(rate, _trial(model, plan, terms, SOLO).passed)
    return search.best_pass or 0.0


def plan_capacity(
    model: EngineModel,
    config: BenchConfig,
    terms: list[Term],
    *,
    fleet: Fleet = SOLO,
    gpus_per_replica: int = 1,
    gpu_hourly_price: float | None = None,
) -> PlanResult:
    """``fleet``: the router and the replicas packed onto each GPU (its count is what is
    planned); packed ones take turns on their GPU and are planned in whole GPUs, while the
    highest rate of one replica is still that of one alone on its GPU."""
    if fleet.per_gpu > 1 and gpus_per_replica > 1:
        raise UsageError("a replica of several GPUs cannot share one: --replicas-per-gpu 1")
    traffic = sim_plan(config, model)
    notes = extrapolations(model, traffic)
    load = traffic.load
    n = int(load.n_in.size)
    due = load.due_ms
    assert due is not None, "plan is for an open loop: a rate or a trace"
    span_s = float(due[-1] - due[0]) / 1000.0 if n > 1 else 0.0
    rate = (n - 1) / span_s if span_s > 0 else float(config.rate or 0.0)
    mean_in = float(np.mean(load.n_in))
    mean_out = float(np.mean(load.n_out))
    per_replica = max_rate(model, config, rate, mean_out, terms)
    if per_replica <= 0:
        raise UsageError(
            "no rate meets the limits on one replica: a request alone is slower than the "
            f"limits ({', '.join(t.name for t in terms)})"
        )
    # The count is searched in whole GPUs where replicas are packed (N replicas each), so
    # "one fewer" is one GPU fewer: the step a buyer takes. Unpacked, a unit is a replica.
    unit = fleet.per_gpu
    trials: dict[int, Trial] = {}

    def trial(units: int) -> Trial:
        if units not in trials:
            trials[units] = _trial(model, traffic, terms, fleet.of(units * unit))
        return trials[units]

    # (a packed GPU serves about what one replica alone does, or less: turns cost more)
    u = max(1, math.ceil(rate / per_replica) - 1)
    cap = math.ceil(rate / per_replica) + MAX_EXTRA_REPLICAS
    if not trial(u).passed:
        # Gallop up from the estimate, then bisect: a count far above it (limits no count
        # meets, or one far from the estimate) takes a few trials, not one per unit.
        failed, step = u, 1
        while not trial(u := min(failed + step, cap)).passed:
            if u == cap:
                packed = (
                    f" ({unit} to a GPU, each step waits for the others' on it)" if unit > 1 else ""
                )
                raise UsageError(
                    f"no count of replicas up to {cap * unit} meets the limits for this "
                    f"traffic{packed}"
                )
            failed, step = u, 2 * step
        while u - failed > 1:
            mid = (failed + u) // 2
            if trial(mid).passed:
                u = mid
            else:
                failed = mid
    while u > 1 and trial(u - 1).passed:
        u -= 1
    at = trial(u)
    fewer = trial(u - 1) if u > 1 else None
    notes += self_check_notes(model, at.summary.mean_batch)
    notes += level_notes(model, at.summary.mean_batch)
    notes += speed_notes(model.quality.run_speeds)
    notes += host_notes(model.quality.run_speeds, model.quality.core_effect)
    cost: CostDoc | None = None
    if gpu_hourly_price is not None:
        per_hour = fleet.of(at.replicas).gpus * gpus_per_replica * gpu_hourly_price
        cost = {
            "gpus_per_replica": gpus_per_replica,
            "gpu_hourly_price": gpu_hourly_price,
            "per_hour": per_hour,
            "per_request": per_hour / (rate * 3600.0),
            "per_million_output_tokens": per_hour / (rate * mean_out * 3600.0) * 1e6,
            "per_million_tokens": per_hour / (rate * (mean_in + mean_out) * 3600.0) * 1e6,
            # One replica at the highest rate it sustains: the seeds' "cost at full use".
            "per_million_output_tokens_at_max_rate": gpus_per_replica
            * gpu_hourly_price
            / (per_replica * mean_out * 3600.0)
            * 1e6,
        }
    return PlanResult(
        rate_rps=rate,
        requests=n,
        mean_input_tokens=mean_in,
        mean_output_tokens=mean_out,
        terms=terms,
        max_rate_per_replica_rps=per_replica,
        at=at,
        one_fewer=fewer,
        cost=cost,
        notes=notes,
        fleet=fleet,
        gpus_per_replica=gpus_per_replica,
    )


def plan_at_spread(
    model: EngineModel,
    config: BenchConfig,
    terms: list[Term],
    *,
    fleet: Fleet = SOLO,
    gpus_per_replica: int = 1,
) -> SlowerDoc | None:
    """Where the fitted runs disagree on the engine's speed, the plan again with every
    decode step slower by their spread (the slowest run over the fastest): a later load may
    meet the slower speed, as held-out runs did (docs/results/prediction.md). None where
    the runs agree."""
    spread = run_spread(model)
    if spread is None:
        return None
    return plan_slower(model, config, terms, spread, fleet=fleet, gpus_per_replica=gpus_per_replica)


def plan_slower(
    model: EngineModel,
    config: BenchConfig,
    terms: list[Term],
    spread: float,
    *,
    fleet: Fleet = SOLO,
    gpus_per_replica: int = 1,
    slowed: EngineModel | None = None,
) -> SlowerDoc:
    """The plan with every decode step ``1 + spread`` times as long, or on ``slowed`` where
    given (``spread`` then says by how much, in one figure), or why none holds: a bound where
    the fitted runs disagree on speed (:func:`plan_at_spread`) or the steps follow a core
    that may stay slow (``at_core_share``)."""
    try:
        slower = plan_capacity(
            slowed if slowed is not None else at_speed(model, 1 + spread),
            config,
            terms,
            fleet=fleet,
            gpus_per_replica=gpus_per_replica,
        )
    except UsageError as exc:
        return {
            "spread": spread,
            "replicas": None,
            "max_rate_per_replica_rps": None,
            "failed": str(exc),
        }
    return {
        "spread": spread,
        "replicas": slower.at.replicas,
        "max_rate_per_replica_rps": slower.max_rate_per_replica_rps,
        "failed": None,
    }


def _num(v: float) -> float | None:
    return None if v != v else v  # NaN → null


def _trial_doc(t: Trial, r: PlanResult) -> TrialDoc:
    # replicas apart, or the GPUs packed ones take: the traffic over what they would serve,
    # one replica alone on each
    units = r.fleet.of(t.replicas).gpus
    capacity = units * r.max_rate_per_replica_rps
    rate = r.rate_rps
    s: SimSummary = t.summary
    return {
        "replicas": t.replicas,
        "gpus": r.gpus_of(t.replicas),
        "passed": t.passed,
        "unstable": t.unstable,
        "request_rps": s.request_rps,
        "output_tok_s": s.output_tok_s,
        "mean_batch": s.mean_batch,
        "busy_share": s.busy_share,
        "load_share": rate / capacity if capacity > 0 else float("inf"),
        "latency_ms": {m: {f"p{p:g}": _num(v) for p, v in s.latency[m].items()} for m in LATENCIES},
        "limits": [
            {"limit": term.name, "predicted": _num(v), "passed": ok} for term, v, ok in t.verdicts
        ],
    }


def plan_doc(r: PlanResult, m: EngineModel, path: Path, notes: list[str]) -> PlanDoc:
    return {
        "predicted": True,
        "engine_model": str(path),
        "engine": m.engine,
        "model": m.model,
        "hardware": m.hardware,
        "extrapolated": m.extrapolated,
        "traffic": {
            "rate_rps": r.rate_rps,
            "requests": r.requests,
            "mean_input_tokens": r.mean_input_tokens,
            "mean_output_tokens": r.mean_output_tokens,
        },
        "limits": [t.name for t in r.terms],
        "replicas": r.at.replicas,
        "replicas_per_gpu": r.fleet.per_gpu,
        "gpus": r.gpus,
        "max_rate_per_replica_rps": r.max_rate_per_replica_rps,
        "at_replicas": _trial_doc(r.at, r),
        "one_fewer": _trial_doc(r.one_fewer, r) if r.one_fewer else None,
        "cost": r.cost,
        "notes": [*notes, *r.notes],
    }
