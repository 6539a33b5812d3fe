"""A simulated run on disk: bench's load for a config, checked against what the engine model
was fitted on, simulated and written as an ordinary run directory (``results.json`` says
``predicted: true``), so that ``report``, ``analyze``, ``compare``, ``export`` and the HTML
report read it unchanged. The fit from run directories is :mod:`infermeter.run.fit`'s."""

from __future__ import annotations

import datetime as _dt
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from infermeter._version import __version__
from infermeter.config import BenchConfig
from infermeter.errors import OutputError, UsageError
from infermeter.load.arrivals import schedule
from infermeter.predict.fit import MIN_CORE_GAPS
from infermeter.predict.model import (
    EngineModel,
    at_core_share,
    core_factor,
    core_factors,
    host_notes,
    level_notes,
    self_check_notes,
    speed_notes,
)
from infermeter.predict.simulate import SOLO, Fleet, SimLoad, SimResult, simulate
from infermeter.records.rundir import (
    RECORDS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    RUN_SCHEMA_VERSION,
    is_run_dir,
    write_json,
)
from infermeter.results.build import full_results
from infermeter.run.rundir import Run, load_run, read_run_meta
from infermeter.run.trace import trace_window, window_meta
from infermeter.schema.results import Prediction
from infermeter.workload.lengths import LengthSpec
from infermeter.workload.plan import trace_meta

# -- the config a run was made with ---------------------------------------------------------


def replay_config(meta: dict[str, Any]) -> BenchConfig:
    """The config a run's run.json says it was made with, to drive its load again: header
    values (masked there) and the run's own directory left out."""
    stored = meta.get("config") or {}
    keep = BenchConfig.model_fields.keys() - {"headers", "out", "api_key"}
    return BenchConfig.build(**{k: v for k, v in stored.items() if k in keep})


# -- the simulated load --------------------------------------------------------------------


@dataclass(frozen=True)
class SimPlan:
    """What to send, as bench would send it for the same flags and seed."""

    load: SimLoad
    workload: dict[str, Any]


def _drawn(config: BenchConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The lengths bench draws for this seed: the warm-up prompts, then the measured pool."""
    rng = np.random.default_rng([seed, 1])
    total = config.warmup + config.pool_size()
    n_in = np.array(config.input_spec().sample(rng, total), dtype=np.int64)
    n_out = np.array(config.output_spec().sample(rng, total), dtype=np.int64)
    return n_in, n_out


def _measured(config: BenchConfig, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The lengths of ``n`` measured requests as bench draws them for this seed: its pool of
    prompts after the warm-up ones, cycled. (Warm-up requests run before the measured phase
    and leave the server empty: the simulation starts where the measurement does.)"""
    n_in, n_out = (a[config.warmup :] for a in _drawn(config, seed))
    idx = np.arange(n) % n_in.size
    return n_in[idx], n_out[idx]


def _warmup_load(config: BenchConfig) -> SimLoad | None:
    """The warm-up as bench sends it: its prompts in a closed loop as wide as the measured
    load's concurrency (else 8 at most). It leaves the server empty but its slots in the
    order the warm-up's answers ended, which the measured load inherits."""
    if config.warmup <= 0 or config.trace is not None or config.dataset is not None:
        return None
    width = config.concurrency or config.max_concurrency or min(config.warmup, 8)
    n_in, n_out = (a[: config.warmup] for a in _drawn(config, config.seed or 0))
    return SimLoad(n_in, n_out, concurrency=int(width), seed=config.seed or 0)


def _probe_load(model: EngineModel) -> SimLoad | None:
    """bench's pre-flight request (a one-token answer to a short prompt), where the fitted
    runs kept it: it takes a slot before the warm-up."""
    if model.probe_tokens is None:
        return None
    return SimLoad(np.array([model.probe_tokens]), np.ones(1, dtype=np.int64), concurrency=1)


def sim_plan(config: BenchConfig, model: EngineModel) -> SimPlan:
    seed = config.seed or 0
    if config.trace is not None:
        return _trace_plan(config, seed)
    workload = {
        "kind": "synthetic",
        "verified_lengths": True,
        "input_tokens": str(config.input_spec()),
        "output_tokens": str(config.output_spec()),
        "shared_prefix_tokens": 0,
        "seed": seed,
    }
    duration_ms = config.duration_s * 1000.0 if config.duration_s is not None else None
    if config.rate is not None:
        due_s = schedule(
            config.rate,
            config.num_requests,
            config.duration_s,
            kind=config.arrival,
            burstiness=config.burstiness,
            seed=seed,
        )
        n_in, n_out = _measured(config, seed, int(due_s.size))
        load = SimLoad(
            n_in,
            n_out,
            due_ms=due_s * 1000.0,
            cap=config.max_concurrency,
            seed=seed,
        )
        return SimPlan(load, workload)
    c = int(config.concurrency or 1)
    if config.num_requests is not None and duration_ms is None:
        n = config.num_requests
    else:
        n = _duration_bound(config, model, c)
        if config.num_requests is not None:
            n = min(n, config.num_requests)
    n_in, n_out = _measured(config, seed, n)
    ramp = config.ramp_up_s * 1000.0
    starts = np.arange(c) / c * ramp if ramp else None
    load = SimLoad(
        n_in,
        n_out,
        concurrency=c,
        duration_ms=duration_ms,
        start_ms=starts,
        seed=seed,
    )
    return SimPlan(load, workload)


def _trace_plan(config: BenchConfig, seed: int) -> SimPlan:
    trace = trace_window(config)
    reqs = trace.requests
    workload = {
        "kind": "trace",
        "verified_lengths": True,
        "path": str(trace.path),
        "format": trace.format,
        "input_tokens": "from the trace",
        "output_tokens": "from the trace",
        "seed": seed,
        "trace": trace_meta(trace, reqs, window_meta(config)),
    }
    root = config.trace if config.trace is not None and is_run_dir(config.trace) else None
    if root is not None:
        # A run replayed as a trace says what served it: a model of another engine or model
        # predicts this traffic by extrapolation, and the run says so.
        server = read_run_meta(root / RUN_FILE).get("server") or {}
        workload["recorded_on"] = {"engine": server.get("kind"), "model": server.get("model")}
    load = SimLoad(
        np.array([r.input_tokens for r in reqs], dtype=np.int64),
        np.array([r.output_tokens for r in reqs], dtype=np.int64),
        due_ms=np.array([r.offset_s * 1000.0 for r in reqs]),
        cap=config.max_concurrency,
        seed=seed,
    )
    return SimPlan(load, workload)


def _shortest(spec: LengthSpec) -> int:
    return int(spec.a) if spec.kind in ("fixed", "uniform") else spec.lo


#: A closed loop of this many requests or more is refused rather than simulated.
MAX_REQUESTS = 20_000_000


def _duration_bound(config: BenchConfig, model: EngineModel, c: int) -> int:
    """The most requests ``c`` users can send in the duration: each takes at least the
    overhead and one step per output token."""
    fastest = min(p.step_ms for p in model.decode)
    shortest = max(_shortest(config.output_spec()), 1)
    per = max(model.ttft_overhead_ms + model.tail_ms + fastest * shortest, 0.05)
    n = c * (math.ceil((config.duration_s or 0) * 1000.0 / per) + 1)
    if n > MAX_REQUESTS:
        raise UsageError(
            f"--duration {config.duration_s:g} at --concurrency {c} could send over "
            f"{MAX_REQUESTS:,} requests; give -n to bound it"
        )
    return n


# -- checks of the traffic against the model -------------------------------------------------


def extrapolations(model: EngineModel, plan: SimPlan) -> list[str]:
    """Where the traffic leaves what the model was fitted on: named, not refused."""
    f = model.fitted_on
    load = plan.load
    out: list[str] = []
    recorded = plan.workload.get("recorded_on")
    if recorded and (recorded.get("engine"), recorded.get("model")) != (model.engine, model.model):
        out.append(
            f"the trace was recorded on {recorded.get('engine')} serving "
            f"{recorded.get('model')}; the engine model is {model.engine} serving {model.model}"
        )
    share = (plan.workload.get("trace") or {}).get("prefix_reuse_share") or 0.0
    if share > 0:
        out.append(
            f"the trace reuses {100 * share:.0f} % of its prompt tokens; the simulation "
            "models no prefix cache and charges their prefill in full"
        )
    lo_in, hi_in = int(load.n_in.min()), int(load.n_in.max())
    lo_out, hi_out = int(load.n_out.min()), int(load.n_out.max())
    if lo_in < f.input_tokens_min * 0.5 or hi_in > f.input_tokens_max * 1.5:
        out.append(
            f"prompts of {lo_in}-{hi_in} tokens, fitted on {f.input_tokens_min}-"
            f"{f.input_tokens_max}: prefill times are extrapolated"
        )
    if lo_out < f.output_tokens_min * 0.5 or hi_out > f.output_tokens_max * 1.5:
        out.append(
            f"answers of {lo_out}-{hi_out} tokens, fitted on {f.output_tokens_min}-"
            f"{f.output_tokens_max}: the context the decode steps hold is extrapolated"
        )
    biggest = load.concurrency or load.cap or model.max_seqs
    if min(biggest, model.max_seqs) > f.batch_max:
        out.append(
            f"batches up to {min(biggest, model.max_seqs)} sequences, measured up to "
            f"{f.batch_max}: larger steps follow the line from the measured batch nearest half "
            f"of {f.batch_max}, never below batch {f.batch_max}'s"
        )
    if model.ctx_per_seq is not None and hi_in + hi_out > model.ctx_per_seq:
        raise UsageError(
            f"requests of up to {hi_in} + {hi_out} tokens exceed the engine's context of "
            f"{model.ctx_per_seq} per sequence: the server would refuse them"
        )
    return out


def stability(res: SimResult, plan: SimPlan) -> str | None:
    """Why the load is beyond what the replicas serve, or None: a queue still growing at the
    last arrival, or requests not served by the horizon."""
    unserved = int((res.sent & ~res.finished).sum())
    if unserved:
        return (
            f"{unserved:,} requests were not served within the simulation's horizon "
            f"({res.horizon_ms / 1000:,.0f} s): the queue grows without bound"
        )
    if plan.load.concurrency is not None:
        return None
    w = res.waiting_at_arrival
    if w.size < 20:
        return None
    half = w[w.size // 2 :]
    last_quarter = float(np.mean(w[-max(w.size // 8, 1) :]))
    first_quarter = float(np.mean(half[: max(half.size // 4, 1)]))
    limit = max(sum(1 for _ in res.steps) * 4, 0.02 * w.size)
    if last_quarter > limit and last_quarter > 1.5 * first_quarter:
        return (
            f"the queue was still growing at the last arrival ({last_quarter:,.0f} requests "
            "waiting for a sequence on average over the last eighth): the offered load is "
            "beyond what the replicas serve"
        )
    return None


# -- a simulated run on disk ------------------------------------------------------------------


def _record(res: SimResult, i: int, horizon_ns: int, first_id: int) -> bytes:
    ns = 1e6
    rec: dict[str, Any] = {
        "id": first_id + i,
        "phase": "measure",
        "t_sched_ns": int(res.t_sched[i] * ns),
        "t_send_ns": int(res.t_send[i] * ns),
        "n_in_target": int(res.n_in[i]),
        "n_out_target": int(res.n_out[i]),
        "n_in": int(res.n_in[i]),
        "n_in_source": "predicted",
    }
    if np.isnan(res.t_end[i]):
        rec.update(
            t_end_ns=horizon_ns,
            ok=False,
            error_kind="timeout",
            error_message="predicted: not served within the simulation's horizon",
        )
        return orjson.dumps(rec)
    stamps = (res.token_ms(i) * ns).astype(np.int64).tolist()
    rec.update(
        t_first_ns=stamps[0],
        t_last_ns=stamps[-1],
        t_end_ns=int(res.t_end[i] * ns),
        chunk_ns=stamps,
        chunk_tokens=[1] * len(stamps),
        chunk_tokens_source="one-per-chunk",
        n_out=len(stamps),
        n_out_source="predicted",
        finish_reason="length",
        ok=True,
        http_status=200,
    )
    return orjson.dumps(rec)


def _write_records(res: SimResult, out: Path, first_id: int) -> None:
    """The simulated requests, numbered after the warm-up's as bench's one worker numbers
    them, so that a measured run and its simulation share ids request by request."""
    horizon_ns = int(res.horizon_ms * 1e6)
    sent = np.flatnonzero(res.sent)
    try:
        with open(out / RECORDS_FILE, "wb") as fh:
            for i in sent.tolist():
                fh.write(_record(res, i, horizon_ns, first_id))
                fh.write(b"\n")
    except OSError as exc:
        raise OutputError.writing(out, exc) from None


def _server(model: EngineModel, replicas: int) -> dict[str, Any]:
    return {
        "url": "predicted",
        "kind": model.engine,
        "model": model.model,
        "models": [model.model] if model.model else [],
        "slots": model.max_seqs * replicas,
        "ctx_per_slot": model.ctx_per_seq,
    }


@dataclass
class ServerHistory:
    """What simulated servers carry from one load to the next: llama.cpp's slots, in the
    order they were last used (None: fresh servers)."""

    slot_order: list[list[int]] | None = None
    slot_unused: list[list[int]] | None = None


def _simulate_on(
    model: EngineModel,
    config: BenchConfig,
    plan: SimPlan,
    history: ServerHistory,
    *,
    fleet: Fleet = SOLO,
) -> SimResult:
    """``plan``'s load on servers as ``history`` left them, after bench's pre-flight request
    and warm-up where the engine's slots remember them; ``history`` is left as it ends."""

    def on_servers(load: SimLoad) -> SimResult:
        res = simulate(
            model,
            load,
            fleet=fleet,
            slot_order=history.slot_order,
            slot_unused=history.slot_unused,
        )
        history.slot_order = res.slot_order or None
        history.slot_unused = res.slot_unused or None
        return res

    # bench's pre-flight request, then its warm-up, leave the slots as the measured load
    # finds them
    for before in [_probe_load(model), _warmup_load(config)] if model.follows_slots else []:
        if before is not None:
            on_servers(before)
    return on_servers(plan.load)


def simulate_like(model: EngineModel, config: BenchConfig, history: ServerHistory) -> SimResult:
    """``config``'s load as bench drives it (its flags and seed), on one server as
    ``history`` left it: what a fitted run's own simulation is, without a run directory."""
    return _simulate_on(model, config, sim_plan(config, model), history)


def simulate_run(
    model: EngineModel,
    model_path: Path,
    config: BenchConfig,
    *,
    out: Path,
    fleet: Fleet = SOLO,
    servers: ServerHistory | None = None,
    core_slow_share: float | None = None,
) -> Run:
    """Simulate ``config``'s load on ``fleet`` and write it as a run.
    ``servers``: the history of servers this load follows an earlier one on; left where
    this load leaves it. ``core_slow_share``: simulate as if the server's core read slow
    this share of the time (:func:`core_factor`), not the share the fitted runs met."""
    factors, factor = None, None
    if core_slow_share is not None:
        if not 0 <= core_slow_share <= 1:
            raise UsageError(f"--core-slow-share must be between 0 and 1, got {core_slow_share:g}")
        at_share = at_core_share(model, core_slow_share)
        factors = core_factors(model, core_slow_share)
        factor = core_factor(model, core_slow_share)
        if at_share is None or factors is None or factor is None:
            raise UsageError(
                f"--core-slow-share: {model_path} holds no core effect: its fit sampled no "
                "probe pinned to a local server's core, or had fewer than "
                f"{MIN_CORE_GAPS} decode steps each way (core slow, core fast) at every "
                "batch size, or an older infermeter wrote it"
            )
        model = at_share
    plan = sim_plan(config, model)
    notes = extrapolations(model, plan)
    started = time.perf_counter()
    history = servers if servers is not None else ServerHistory()
    res = _simulate_on(
        model,
        config,
        plan,
        history,
        fleet=fleet,
    )
    sim_s = time.perf_counter() - started
    unstable = stability(res, plan)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError.writing(out, exc) from None
    stored = config.public_dict()
    stored["url"] = f"sim:{model_path}"
    stored["out"] = str(out)
    prediction: Prediction = {
        "engine_model": str(model_path),
        "engine": model.engine,
        "model": model.model,
        "hardware": model.hardware,
        "extrapolated": model.extrapolated,
        "replicas": fleet.replicas,
        "router": fleet.router,
        "replicas_per_gpu": fleet.per_gpu,
        "unstable": unstable,
        "extrapolations": notes,
        "self_check": self_check_notes(model, res.mean_batch),
        "step_levels": level_notes(model, res.mean_batch),
        "speed_spread": speed_notes(model.quality.run_speeds),
        "host_speed": host_notes(model.quality.run_speeds, model.quality.core_effect),
        "fitted_on": list(model.fitted_on.runs),
        "mean_batch": [b / t if t else 0.0 for b, t in zip(res.batch_ms, res.busy_ms, strict=True)],
        "busy_share": [t / res.sim_end_ms if res.sim_end_ms else 0.0 for t in res.busy_ms],
        "preemptions": res.preemptions,
        "simulated_s": res.sim_end_ms / 1000.0,
        "wall_s": sim_s,
    }
    if model.follows_slots:
        prediction["mean_passes"] = res.mean_passes
    if core_slow_share is not None and factors is not None and factor is not None:
        prediction["core_slow_share"] = core_slow_share
        prediction["core_factor"] = factor
        prediction["core_factors"] = [min(factors[1]), max(factors[1])]
    meta = {
        "schema_version": RUN_SCHEMA_VERSION,
        "infermeter_version": __version__,
        "run_id": uuid.uuid4().hex[:12],
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "t0_wall_ns": 0,
        "config": stored,
        "seed_drawn": False,
        "server": _server(model, fleet.replicas),
        "workload": plan.workload,
        "prediction": prediction,
    }
    write_json(out / RUN_FILE, meta)
    _write_records(res, out, config.warmup)
    write_json(
        out / RESULTS_FILE, {"run": {"complete": True, "interrupted": False, "aborted": None}}
    )
    run = load_run(out)
    run.results = full_results(run.meta, run.metrics, run.status, run.telemetry)
    write_json(out / RESULTS_FILE, run.results)
    return run
