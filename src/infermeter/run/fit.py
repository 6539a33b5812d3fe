"""An engine model fitted from run directories: their records on one clock, the scheduler's
limits the servers told (llama.cpp's slots, vLLM's KV cache) or the runs show, and the host
work between steps bounded by the steps requests sent near a step's end joined, where the
records show one cut, then tuned so that the runs' own TTFT is met
(:mod:`infermeter.predict.fit` does the math)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from infermeter.analysis.telemetry import fast_level, slow_readings
from infermeter.errors import UsageError
from infermeter.predict.fit import (
    JoinSamples,
    Limits,
    ObservedRun,
    fit_engine,
    in_flight_at_send,
    join_samples,
    step_apart_ms,
)
from infermeter.predict.hardware import told_deployment, weights_once_ms
from infermeter.predict.model import EngineModel, SelfCheck, speed_against
from infermeter.predict.simulate import simulate
from infermeter.predict.summary import summarize
from infermeter.records.reader import read_records
from infermeter.records.rundir import (
    RECORDS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    TELEMETRY_FILE,
    WARMUP_FILE,
    finished_points,
    is_run_dir,
    is_sweep_dir,
    read_telemetry,
)
from infermeter.records.schema import RequestRecord
from infermeter.run.predict import (
    ServerHistory,
    replay_config,
    sim_plan,
    simulate_like,
)
from infermeter.run.rundir import read_run_meta
from infermeter.theory import get_hardware, resolve_model
from infermeter.theory.precision import weight_bytes

#: llama.cpp's default n_batch: the prompt and decode tokens one step may carry.
LLAMA_CPP_BATCH = 2048
#: vLLM's default max_num_batched_tokens with chunked prefill (V1).
VLLM_BATCH = 2048
#: transformers' continuous batching: its default max_batch_tokens (5.x) when memory allows.
TRANSFORMERS_SERVE_BATCH = 8192
ENGINE_BATCH = {
    "llama.cpp": LLAMA_CPP_BATCH,
    "vllm": VLLM_BATCH,
    "transformers-serve": TRANSFORMERS_SERVE_BATCH,
}


def _run_dirs(paths: list[Path]) -> list[tuple[str, Path]]:
    dirs: list[tuple[str, Path]] = []
    for path in paths:
        if is_sweep_dir(path):
            dirs += [(f"{path.name}/{d.relative_to(path)}", d) for d in finished_points(path)]
        elif is_run_dir(path):
            dirs.append((path.name, path))
        else:
            raise UsageError(f"fit: {path} is neither a run nor a sweep directory")
    if not dirs:
        raise UsageError("fit: no finished run among the paths given")
    return dirs


def observed_run(label: str, path: Path) -> ObservedRun:
    records: list[RequestRecord] = []
    for name in (WARMUP_FILE, RECORDS_FILE):
        if (path / name).exists():
            records += read_records(path / name).records
    done = [
        r
        for r in records
        if r.ok and r.streamed and r.t_first_ns is not None and r.t_last_ns is not None
    ]
    if not done:
        raise UsageError(f"fit: {path} has no completed streamed request")

    def ms(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.float64) / 1e6

    tokens = []
    for r in done:
        k = np.array(r.chunk_tokens[1:], dtype=np.int64)
        stamps = ms(r.chunk_ns)
        # Only runs of single-token chunks show the steps; a chunk of several hides them.
        single = np.concatenate(([True], k == 1)) if k.size else np.array([True])
        cut = int(np.argmin(single)) if not single.all() else stamps.size
        tokens.append(stamps[:cut])
    return ObservedRun(
        label=label,
        t_sched=ms([r.t_sched_ns for r in done]),
        t_send=ms([r.t_send_ns for r in done]),
        t_first=ms([r.t_first_ns or 0 for r in done]),
        t_last=ms([r.t_last_ns or 0 for r in done]),
        t_end=ms([r.t_end_ns for r in done]),
        n_in=np.array([r.n_in if r.n_in is not None else 0 for r in done], dtype=np.int64),
        n_out=np.array([r.n_out for r in done], dtype=np.int64),
        token_ms=tokens,
        server_prompt_ms=np.array([_timing(r, "prompt_ms") for r in done]),
        server_prompt_n=np.array([_timing(r, "prompt_n") for r in done]),
        n_cached=np.array([np.nan if r.n_cached is None else r.n_cached for r in done]),
        probe=np.array([r.phase == "probe" for r in done], dtype=np.bool_),
    )


def _results(path: Path) -> dict[str, Any] | None:
    """A run's results.json, read once for everything the fit takes from it (None where
    there is none or it cannot be read)."""
    try:
        doc = orjson.loads((path / RESULTS_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _told_by_histograms(run: ObservedRun, results: dict[str, Any] | None) -> ObservedRun:
    """A run whose every request had the server to itself, from a server that keeps its
    per-request times as histograms (vLLM's queue and prefill times): each request's own
    prompt time is the run's mean of them, which splits TTFT into the engine's part and the
    time around it as llama.cpp's per-request timings do. Left as it was where the server
    told per request already, where any request shared the server, where the prefix cache
    served part of a prompt, or where the run's results hold no such means."""
    told = run.server_prompt_ms
    if told is not None and not np.isnan(told).all():
        return run
    means = _server_means(results)
    if means is None or not bool((in_flight_at_send(run) == 1).all()):
        return run
    ms = np.full(run.t_send.size, means)
    return replace(run, server_prompt_ms=ms, server_prompt_n=run.n_in.astype(np.float64))


def _server_means(results: dict[str, Any] | None) -> float | None:
    """The queue and prefill time a request spent in the engine, on the server's own clock,
    averaged over the requests it finished in the run's window (results.json's telemetry)."""
    server = ((results or {}).get("telemetry") or {}).get("server")
    if not isinstance(server, dict):
        return None
    prefill, queue = server.get("prefill_mean_ms"), server.get("queue_mean_ms", 0.0)
    if not isinstance(prefill, (int, float)) or not isinstance(queue, (int, float)):
        return None
    if server.get("prompt_tokens_cached"):
        return None
    return float(prefill) + float(queue)


def _timing(r: RequestRecord, key: str) -> float:
    """One of llama.cpp's per-request ``timings`` (NaN where the server gave none)."""
    value = (r.server_timings or {}).get(key)
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _same(values: list[Any], what: str, labels: list[str]) -> Any:
    distinct = sorted({str(v) for v in values})
    if len(distinct) > 1:
        raise UsageError(
            f"fit: the runs are of different {what}s ({', '.join(distinct)}): an engine model "
            "is one engine serving one model on one machine"
        )
    return values[0] if values else None


def fit_runs(
    paths: list[Path],
    *,
    max_seqs: int | None = None,
    token_budget: int | None = None,
    gpu: str | None = None,
) -> EngineModel:
    """An engine model from measured runs or sweeps of one engine, model and machine."""
    dirs = _run_dirs(paths)
    metas = [read_run_meta(d / RUN_FILE) for _, d in dirs]
    labels = [label for label, _ in dirs]
    servers = [m.get("server") or {} for m in metas]
    engine = _same([s.get("kind") or "unknown" for s in servers], "engine", labels)
    model = _same([s.get("model") for s in servers], "model", labels)
    hardware = gpu or _same([(m.get("config") or {}).get("gpu") for m in metas], "gpu", labels)
    results = [_results(d) for _, d in dirs]
    observed = [
        _told_by_histograms(observed_run(label, d), doc)
        for (label, d), doc in zip(dirs, results, strict=True)
    ]
    starts = [int(m.get("t0_wall_ns") or 0) for m in metas]
    telemetry = [read_telemetry(d / TELEMETRY_FILE) for _, d in dirs]
    observed = with_core_probe(observed, telemetry)
    keys = server_keys(servers, starts, telemetry)
    observed = [
        replace(o, server=key, origin_ms=(t - min(starts)) / 1e6)
        for o, key, t in zip(observed, keys, starts, strict=True)
    ]
    limits = _limits(engine, servers, observed, max_seqs, token_budget)
    kv = [k for samples in telemetry if (k := _kv_cache(samples)) is not None]
    if kv:
        tokens, block = min(kv)
        limits = replace(
            limits,
            kv_tokens=tokens,
            kv_tokens_source=(
                "the server (vLLM's cache_config_info: num_gpu_blocks less its null block,"
                " × block_size)"
            ),
            kv_block_tokens=block,
        )
    told = _told_shape([m.get("config") or {} for m in metas])
    fitted = fit_engine(
        observed,
        limits,
        engine=engine,
        model=model,
        hardware=hardware,
        pass_floor_ms=_pass_floor_ms(told, hardware),
    )
    fitted = fitted.model_copy(update=told)
    joins = join_samples(observed, step_apart_ms(fitted.decode), fitted.max_seqs)
    tuned = _tune_admit(fitted, list(zip(metas, results, strict=True)), joins)
    checks = _self_check(tuned, labels, metas, results, keys, starts)
    return tuned.model_copy(
        update={"quality": tuned.quality.model_copy(update={"self_check": checks})}
    )


@dataclass(frozen=True)
class _Probe:
    """One run's core probe readings inside its window, on the run's clock (ms)."""

    pinned: bool
    ms: np.ndarray
    us: np.ndarray


def _probe(run: ObservedRun, samples: list[dict[str, Any]]) -> _Probe | None:
    """The probe pinned to the server's busiest thread's CPU where the run sampled it, else
    the unpinned one where a server on this host was measured (without one it timed the
    client's machine, not the server's), over the run's requests' span."""
    lo, hi = float(run.t_send.min()), float(run.t_end.max())
    host = [
        s
        for s in samples
        if s.get("source") == "host"
        and isinstance(s.get("t_ns"), (int, float))
        and lo <= float(s["t_ns"]) / 1e6 <= hi
    ]

    def read(key: str) -> list[tuple[float, float]]:
        return sorted(
            (float(s["t_ns"]) / 1e6, float(s[key]))
            for s in host
            if isinstance(s.get(key), (int, float)) and s[key] > 0
        )

    pinned = read("server_core_probe_us")
    local = any("local_server_cpu_percent" in s for s in host)
    got, was_pinned = (pinned, True) if pinned else (read("core_probe_us") if local else [], False)
    if not got:
        return None
    return _Probe(was_pinned, np.array([t for t, _ in got]), np.array([v for _, v in got]))


def with_core_probe(
    runs: list[ObservedRun], telemetry: list[list[dict[str, Any]]]
) -> list[ObservedRun]:
    """Each run with its core probe: the median, the share of slow readings and, pinned,
    each reading's time and whether it was slow. Slow is ``SLOW_CORE`` × one fast level for
    all the fitted runs (the 10th percentile of their readings pooled, pinned and unpinned
    apart: they time the work differently), so a run slow throughout still reads slow
    beside the others, which its own summary cannot show."""
    probes = [_probe(r, s) for r, s in zip(runs, telemetry, strict=True)]
    fast: dict[bool, float] = {}
    for kind in (True, False):
        pooled = [p.us for p in probes if p is not None and p.pinned is kind]
        if pooled:
            fast[kind] = fast_level(np.concatenate(pooled))
    out = []
    for run, probe in zip(runs, probes, strict=True):
        if probe is None:
            out.append(run)
            continue
        slow = slow_readings(probe.us, fast[probe.pinned])
        out.append(
            replace(
                run,
                core_probe_us=float(np.median(probe.us)),
                core_slow_share=float(slow.mean()),
                core_ms=probe.ms if probe.pinned else None,
                core_slow=slow if probe.pinned else None,
                core_fast_us=fast[True] if probe.pinned else None,
            )
        )
    return out


def core_slow_share_of(path: Path, fast_us: float) -> float | None:
    """The share of a run's probe readings pinned to the server's core that read slow
    against ``fast_us`` (a fit's :attr:`CoreEffect.fast_us`), over its requests' span: the
    host's state a run met, on the scale the fit told its own by. None where the run
    sampled no pinned probe."""
    run = observed_run(path.name, path)
    probe = _probe(run, read_telemetry(path / TELEMETRY_FILE))
    if probe is None or not probe.pinned:
        return None
    return float(slow_readings(probe.us, fast_us).mean())


def _cache_flattered(results: dict[str, Any] | None) -> bool:
    """Whether the run's prompts were mostly served from the server's prompt cache (the
    same prompts sent again): its TTFT is not what the model's prompts cost."""
    cache = (results or {}).get("prompt_cache") or {}
    return bool(cache.get("flattered"))


def _error(predicted: float, measured: float | None) -> float | None:
    if measured is None or measured <= 0 or predicted != predicted:
        return None
    return (predicted - measured) / measured


def _self_check(
    model: EngineModel,
    labels: list[str],
    metas: list[dict[str, Any]],
    results: list[dict[str, Any] | None],
    keys: list[str],
    starts: list[int],
) -> list[SelfCheck]:
    """Each fitted run simulated on ``model`` as bench drove it, the runs of one server in
    the order they ran (each from the slots the last left), set beside what it measured."""
    histories = {key: ServerHistory() for key in keys}
    checks: dict[int, SelfCheck] = {}
    for k in sorted(range(len(labels)), key=lambda k: (keys[k], starts[k])):
        doc = results[k]
        try:
            config = replay_config(metas[k])
        except UsageError:
            continue
        if doc is None or config.trace is not None or config.dataset is not None:
            continue
        dists = doc.get("distributions") or {}

        def measured(metric: str, dists: dict[str, Any] = dists) -> float | None:
            value = (dists.get(metric) or {}).get("p50")
            return float(value) if isinstance(value, (int, float)) else None

        res = simulate_like(model, config, histories[keys[k]])
        if _cache_flattered(doc):
            continue  # simulated for the slots it leaves; its prompts were not computed
        got = summarize(res)
        tput = (doc.get("summary") or {}).get("output_token_throughput_tok_s")
        checks[k] = SelfCheck(
            label=labels[k],
            mean_batch=got.mean_batch,
            tpot_p50_error=_error(got.value("tpot_ms", 50.0), measured("tpot_ms")),
            e2e_p50_error=_error(got.value("e2e_ms", 50.0), measured("e2e_ms")),
            ttft_p50_error=_error(got.value("ttft_ms", 50.0), measured("ttft_ms")),
            output_tok_s_error=_error(
                got.output_tok_s, float(tput) if isinstance(tput, (int, float)) else None
            ),
        )
    return [checks[k] for k in sorted(checks)]


def _pass_floor_ms(told: dict[str, str], hardware: str | None) -> float:
    """A forward pass reads every weight once: its least time on the catalogue GPU the runs
    were measured on (0 where the shape or the GPU is not told)."""
    if not told or hardware is None:
        return 0.0
    try:
        gpu = get_hardware(hardware)
    except UsageError:
        return 0.0
    d = told_deployment(told["model_shape"], told["weight_dtype"], gpu)
    return weights_once_ms(d) if d is not None else 0.0


def _told_shape(configs: list[dict[str, Any]]) -> dict[str, str]:
    """The model shape and weight precision the runs were told, where they agree and the
    catalogue knows the shape (else none: a what-if then scales whole steps)."""
    told = {(c.get("model_shape"), c.get("weight_dtype") or "bf16") for c in configs}
    if len(told) != 1:
        return {}
    shape, dtype = told.pop()
    if shape is None:
        return {}
    try:
        resolve_model(str(shape))
        weight_bytes(dtype)
    except UsageError:
        return {}
    return {"model_shape": str(shape), "weight_dtype": dtype}


#: Host work between steps tried, as shares of the batch-1 step (a window is part of a step:
#: no longer than the shortest).
ADMIT_SHARES = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
#: Requests sent near a step's end, for the step they joined to bound the window.
MIN_JOIN_SAMPLES = 20
#: ... with at least this many on the side fewer are on (joined, or not) ...
MIN_JOIN_SIDE = 3
#: ... and a cut that reads at most this share of that side wrongly.
JOIN_MISREAD = 0.25
#: Misread requests a window may have beyond the fewest any window has, as a share of them
#: (the client's clock and the steps' cut are not exact).
JOIN_SLACK = 0.02


def _tune_admit(
    model: EngineModel,
    runs: list[tuple[dict[str, Any], dict[str, Any] | None]],
    joins: JoinSamples,
) -> EngineModel:
    """The window after a step in which an arrival still joins the next step. Where enough
    requests were sent near a step's end, the records show which step each joined: only
    windows that read them as they were are kept (in the simulation a request joins the next
    step if sent more than the time outside the steps, less a token's writing and the window,
    before that step's last token). Among those, the one that meets the fitted runs' own TTFT
    medians best (log error, summed) is chosen."""
    step = min(model.decode, key=lambda p: p.batch).step_ms
    windows = [share * step for share in ADMIT_SHARES]
    source = "chosen so that the fitted runs' TTFT medians are met"

    def threshold(admit: float) -> float:
        return model.ttft_overhead_ms - model.emit_ms_per_seq - admit

    # Only requests sent near where a window may put the cut tell it; far earlier ones wait
    # for other reasons (a burst past the step's token budget).
    joins = joins.within(threshold(2 * step), threshold(-step))
    cut = _join_cut(joins)
    if cut is not None:
        direct = threshold(0.0) - cut
        if 0 < direct < step:
            windows.append(direct)
        misread = {w: joins.misread(threshold(w)) for w in windows}
        allowed = min(misread.values()) + JOIN_SLACK * joins.lead_ms.size
        windows = [w for w in windows if misread[w] <= allowed]
        joined = int(np.count_nonzero(joins.joined))
        source = (
            f"{joins.lead_ms.size} requests sent to a busy server bound it: those sent more "
            f"than {cut:,.2f} ms before a step's last token joined the next step ({joined} "
            "did); the fitted runs' TTFT medians chose within"
        )
    cases = []
    for meta, results in runs:
        measured = _measured_ttft_p50(results)
        try:
            config = replay_config(meta)
        except UsageError:
            continue
        if measured is None or config.trace is not None or config.dataset is not None:
            continue
        if _cache_flattered(results):
            continue
        cases.append((config, measured))
    if not cases:
        return model.model_copy(update={"admit_ms": windows[0], "admit_source": source})
    best, best_err = model, math.inf
    for window in windows:
        candidate = model.model_copy(update={"admit_ms": window, "admit_source": source})
        err = 0.0
        for config, measured in cases:
            plan = sim_plan(config, candidate)
            res = simulate(candidate, plan.load)
            got = summarize(res).value("ttft_ms", 50.0)
            err += abs(math.log(got / measured)) if got > 0 else math.inf
        if err < best_err:
            best, best_err = candidate, err
    return best


def _join_cut(joins: JoinSamples) -> float | None:
    """How long before a step's last token a request had to be sent to join the next step,
    where the requests show one cut: enough of them on either side, and few read wrongly
    by it (on a host the client shares with the server, its clock lags the tokens and no
    cut holds; None then)."""
    n = joins.lead_ms.size
    joined = int(np.count_nonzero(joins.joined))
    fewer = min(joined, n - joined)
    if n < MIN_JOIN_SAMPLES or fewer < MIN_JOIN_SIDE:
        return None
    leads = np.sort(joins.lead_ms)
    cuts = (leads[1:] + leads[:-1]) / 2
    misread = np.array([joins.misread(c) for c in cuts])
    best = int(np.argmin(misread))
    if misread[best] > JOIN_MISREAD * fewer:
        return None
    return float(cuts[best])


def _measured_ttft_p50(results: dict[str, Any] | None) -> float | None:
    try:
        value = (results or {})["distributions"]["ttft_ms"].get("p50")
    except (KeyError, TypeError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _limits(
    engine: str,
    servers: list[dict[str, Any]],
    observed: list[ObservedRun],
    max_seqs: int | None,
    token_budget: int | None,
) -> Limits:
    # a server that says 0 slots (no fixed number) tells nothing about its limit
    slots: list[int] = [
        s["slots"] for s in servers if isinstance(s.get("slots"), int) and s["slots"] > 0
    ]
    ctx: list[int] = [s["ctx_per_slot"] for s in servers if isinstance(s.get("ctx_per_slot"), int)]
    peak = max(int(in_flight_at_send(o).max()) for o in observed)
    if max_seqs is not None:
        seqs, seqs_src = max_seqs, "given (--max-seqs)"
    elif slots and engine == "transformers":
        # the in-process engine's largest batch follows each run's concurrency
        seqs, seqs_src = max(slots), "the largest batch of the in-process runs"
    elif slots:
        seqs, seqs_src = min(slots), "the server (llama.cpp /props total_slots)"
    else:
        seqs, seqs_src = peak, "inferred: the most requests seen in flight (a lower bound)"
    llama = engine == "llama.cpp"
    static = engine == "transformers"
    if token_budget is not None:
        budget, budget_src = token_budget, "given (--token-budget)"
    elif static:
        budget, budget_src = 1 << 30, "none: a static batch runs its prompts in one step"
    elif engine in ENGINE_BATCH:
        budget = ENGINE_BATCH[engine]
        budget_src = f"assumed: the engine's default ({budget})"
    else:
        budget = VLLM_BATCH
        budget_src = f"assumed: {budget}, vLLM's default (engine {engine}: give --token-budget)"
    gather = 0.0
    if static:
        # (imported here: the in-process client brings aiohttp, which a fit needs nowhere else)
        from infermeter.clients.inprocess import GATHER_S

        gather = GATHER_S * 1000.0
    return Limits(
        scheduler="static" if static else "slots" if llama else "continuous",
        gather_ms=gather,
        max_seqs=seqs,
        max_seqs_source=seqs_src,
        token_budget=budget,
        token_budget_source=budget_src,
        ctx_per_seq=min(ctx) if ctx else None,
    )


def server_keys(
    servers: list[dict[str, Any]], starts: list[int], telemetry: list[list[dict[str, Any]]]
) -> list[str]:
    """Which runs ran on one server, one after another (each run's server section, start
    on the wall clock and telemetry samples): runs of one URL, a new server wherever the
    server's count of prompt tokens starts below where the run before it left it (a
    restart)."""
    keys = [""] * len(servers)
    left: dict[str, float] = {}
    restarts: dict[str, int] = {}
    for k in sorted(range(len(servers)), key=lambda k: starts[k]):
        url = str(servers[k].get("url") or "")
        counts = [
            float(c)
            for sample in telemetry[k]
            if isinstance(c := (sample.get("mapped") or {}).get("prompt_tokens"), (int, float))
        ]
        if counts and url in left and counts[0] < left[url]:
            restarts[url] = restarts.get(url, 0) + 1
        keys[k] = f"{url}#{restarts.get(url, 0)}"
        if counts:
            left[url] = counts[-1]
    return keys


def _kv_cache(samples: list[dict[str, Any]]) -> tuple[int, int] | None:
    """The KV cache sequences can hold, in tokens, and its block's size, where the server's
    /metrics told them during the run. vLLM's block pool keeps its first block as the null
    block (a placeholder no sequence writes), so one block fewer than ``num_gpu_blocks``
    holds tokens: on a small cache, the difference between fitting a wave and preempting."""
    for sample in samples:
        cache = (sample.get("info") or {}).get("cache_config") or {}
        try:
            block = int(cache["block_size"])
            return (int(cache["num_gpu_blocks"]) - 1) * block, max(block, 1)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def fit_alone(run: Path) -> EngineModel | None:
    """A fit of one measured run by itself (what :func:`measured_speed` reads its speed
    off); None where the run gives no step to read."""
    try:
        return fit_runs([run])
    except UsageError:
        return None


def measured_speed(run: Path, model: EngineModel) -> float | None:
    """How long a measured run's decode steps took against ``model``'s, at the batch sizes
    both measured (:func:`~infermeter.predict.model.speed_against`, from a fit of the run
    alone); None where the run gives no step to read or too few at those sizes."""
    own = fit_alone(run)
    return None if own is None else speed_against(own, model)
