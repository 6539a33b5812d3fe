"""Rules over the evidence that name a bottleneck and a remedy; each finding cites the numbers
that triggered it (pure).

One function per rule, each given the run's results and its speed-of-light efficiency (None
without a GPU and model shape) and returning its finding or None; :data:`RULES` runs them in
the order the findings are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infermeter.metrics.client import LOOP_LAG_MS, QUEUE_DELAY_MS, spare_cores
from infermeter.schema.results import (
    CoreSpeed,
    Efficiency,
    Finding,
    HostTelemetry,
    Results,
    ServerTelemetry,
    Stats,
)
from infermeter.telemetry.host import SLOW_CORE, SLOW_CORE_SHARE

#: Thresholds, named so the docs and tests can refer to them.
TTFT_X_BOUND_QUEUEING = 5.0
WAITING_MEAN_QUEUEING = 1.0
LOW_MBU = 0.3
SMALL_BATCH = 4
KV_FULL = 0.95
CLIENT_CPU = 0.85
#: A host this busy (all cores, mean), with at least this many cores' worth used by other
#: processes, is saturated by something else.
HOST_BUSY_PERCENT = 90.0
#: llama.cpp's busy slots in this many runs of consecutive ids on average (forward passes a
#: decode step takes) before it is a finding: 1.16 measured fresh and fast, 1.81 slow.
SLOT_RUNS_MEAN = 1.5
#: Telemetry without the runs: busy requests over this many times as many slot ids as
#: there are busy requests, and at least this many slots more, before it is a finding.
SLOT_SPAN_X = 1.5
SLOT_SPAN_EXTRA = 2.0
#: ... or this many times as many slots as busy requests, and at least this many slots.
SLOTS_IDLE_X = 4.0
SLOTS_IDLE_MIN = 16
OTHER_CORES = 0.5
#: A host whose hypervisor took this much of all cores' time (mean) ran slower than it does
#: when quiet (as does one whose core probe read slow in ``SLOW_CORE_SHARE`` of samples).
STEAL_PERCENT = 5.0
#: Probe samples a window needs before its slow share is a finding (a short run's few).
MIN_CORE_SAMPLES = 10
#: A local server using this much of a core (mean) may have host-bound steps.
HOST_BOUND_PERCENT = 80.0
#: TTFT spent outside the server's own prompt processing, as a multiple of it, and at least
#: this many milliseconds, before it is a finding.
OUTSIDE_PROMPT_X = 3.0
OUTSIDE_PROMPT_MS = 50.0
#: Client TTFT over the server's own TTFT (vLLM), as a multiple and in milliseconds, before
#: the front end is a finding.
FRONTEND_X = 1.5
FRONTEND_MS = 20.0


@dataclass(frozen=True)
class Evidence:
    """What several rules read, taken from the results once."""

    results: Results
    eff: Efficiency | None
    server: ServerTelemetry
    host: HostTelemetry | None
    ttft_p50: float | None

    @classmethod
    def of(cls, results: Results, eff: Efficiency | None) -> Evidence:
        telemetry = results.get("telemetry") or {}
        server: ServerTelemetry = telemetry.get("server") or {"kind": None, "samples": 0}
        return cls(
            results,
            eff,
            server,
            telemetry.get("host"),
            results["distributions"]["ttft_ms"].get("p50"),
        )


def _mean(stats: Stats | None) -> float | None:
    return stats["mean"] if stats else None


def _max(stats: Stats | None) -> float | None:
    return stats["max"] if stats else None


def queueing(e: Evidence) -> Finding | None:
    waiting = _mean(e.server.get("requests_waiting"))
    x_bound = e.eff.get("ttft_x_bound") if e.eff else None
    if (
        e.ttft_p50 is None
        or waiting is None
        or waiting < WAITING_MEAN_QUEUEING
        or (
            e.eff is not None
            and (x_bound if x_bound is not None else TTFT_X_BOUND_QUEUEING) < TTFT_X_BOUND_QUEUEING
        )
    ):
        return None
    return {
        "rule": "queueing",
        "severity": "high",
        "message": "requests wait in the server's queue before prefill: add replicas, "
        "enable chunked prefill, or lower the load",
        "evidence": {
            "ttft_p50_ms": e.ttft_p50,
            "server_waiting_mean": waiting,
            "ttft_x_bound": x_bound,
        },
    }


def ttft_outside_prompt(e: Evidence) -> Finding | None:
    reported = e.results.get("server_reported")
    outside = reported["ttft_outside_prompt_ms"]["p50"] if reported else None
    prompt = reported["prompt_ms"]["p50"] if reported else None
    if (
        outside is None
        or prompt is None
        or outside < OUTSIDE_PROMPT_MS
        or outside < OUTSIDE_PROMPT_X * prompt
    ):
        return None
    server = e.results.get("server")
    llama = bool(server) and server is not None and server.get("kind") == "llama.cpp"
    return {
        "rule": "ttft_outside_prompt",
        "severity": "high",
        "message": f"most of TTFT passes before the server starts the prompt "
        f"({outside:,.0f} ms at p50 against {prompt:,.0f} ms of prompt processing, by the "
        "server's own timings): requests wait in its queue or front end, not on the GPU"
        + (
            "; with slots free, llama.cpp's host-RAM prompt cache is the usual cause "
            "(--cache-ram 0 disables it), else add slots (-np)"
            if llama
            else ""
        ),
        "evidence": {
            "ttft_outside_prompt_p50_ms": outside,
            "server_prompt_p50_ms": prompt,
            "ttft_p50_ms": e.ttft_p50,
        },
    }


def launch_overhead(e: Evidence) -> Finding | None:
    mbu = e.eff.get("mbu") if e.eff else None
    if e.eff is None or mbu is None or mbu >= LOW_MBU or e.eff["batch_per_replica"] > SMALL_BATCH:
        return None
    return {
        "rule": "launch_overhead",
        "severity": "medium",
        "message": "small batches use little of the memory bandwidth: kernel-launch and "
        "CPU "
        "overhead dominate; use CUDA graphs or a serving engine, or batch more",
        "evidence": {
            "mbu": mbu,
            "batch_per_replica": e.eff["batch_per_replica"],
            "tpot_x_bound": e.eff.get("tpot_x_bound"),
        },
    }


def kv_cache_full(e: Evidence) -> Finding | None:
    kv_max = _max(e.server.get("kv_cache_usage"))
    waiting_max = _max(e.server.get("requests_waiting"))
    if kv_max is None or kv_max < KV_FULL or waiting_max is None or waiting_max < 1:
        return None
    return {
        "rule": "kv_cache_full",
        "severity": "high",
        "message": "the KV cache is full while requests wait: quantise the KV cache (fp8), "
        "use paged attention / prefix caching, or add GPUs",
        "evidence": {"kv_cache_usage_max": kv_max, "server_waiting_max": waiting_max},
    }


def kv_cache_pressure(e: Evidence) -> Finding | None:
    """Preemptions and requests held back for KV-cache room, by the server's counters."""
    preempted = e.server.get("preemptions") or 0
    waiting_kv = _max(e.server.get("requests_waiting_capacity")) or 0
    if not preempted and not waiting_kv:
        return None
    what = []
    if preempted:
        what.append(
            f"preempted {preempted:,.0f} running requests (their work is done again, "
            "inside their TTFT and TPOT)"
        )
    if waiting_kv:
        what.append(f"held up to {waiting_kv:,.0f} requests back for want of room")
    return {
        "rule": "kv_cache_pressure",
        "severity": "high" if preempted else "medium",
        "message": "the server ran out of KV-cache room: it "
        + " and ".join(what)
        + ". Give the KV cache more memory (vLLM: --gpu-memory-utilization, "
        "VLLM_CPU_KVCACHE_SPACE on CPU, --kv-cache-dtype fp8), lower --max-num-seqs, "
        "or send shorter contexts",
        "evidence": _present(
            {
                "preemptions": preempted or None,
                "waiting_for_kv_max": waiting_kv or None,
                "kv_cache_usage_max": _max(e.server.get("kv_cache_usage")),
            }
        ),
    }


def ttft_outside_server(e: Evidence) -> Finding | None:
    """TTFT that passes outside the server's own clock (vLLM's, from arrival)."""
    own = e.server.get("ttft_mean_ms")
    client = e.results["distributions"]["ttft_ms"].get("mean")
    if not (
        e.server.get("kind") == "vllm"
        and own
        and client
        and client - own >= FRONTEND_MS
        and client >= FRONTEND_X * own
    ):
        return None
    return {
        "rule": "ttft_outside_server",
        "severity": "medium",
        "message": f"{client - own:,.0f} ms of the mean TTFT ({client:,.0f} ms) passes "
        f"outside the server's own clock ({own:,.0f} ms from a request's arrival to its "
        "first token, by its /metrics): in its HTTP front end, tokenization and "
        "streaming, or on the network. Give its API server CPU (vLLM: "
        "--api-server-count, a less busy host) or measure nearer to it",
        "evidence": {"ttft_mean_ms": client, "server_ttft_mean_ms": own},
    }


def slot_spread(e: Evidence) -> Finding | None:
    slots = e.server.get("slots")
    if not slots:
        return None
    runs = slots.get("runs_mean")
    total = slots.get("total") or 0
    if runs is not None:
        if runs < SLOT_RUNS_MEAN:
            return None
        what = (
            f"llama.cpp's busy slots formed {runs:.2f} runs of consecutive slot ids on "
            f"average (up to {slots.get('runs_max') or runs:.0f}) for "
            f"{slots['active_mean']:.1f} busy requests: without a unified KV cache it "
            "decodes each run as a forward pass of its own, every pass reading the weights, "
            "and it hands out the least recently used slot first, so the busy requests "
            "scatter as the server serves answers of different lengths (on an H200, 8 "
            "streams on a 64-slot server: TPOT 10.3 ms at 1.16 runs, 15.0 ms at 1.81, "
            "18.9 ms at 2.55; docs/engines.md)"
        )
    else:  # telemetry from before the runs were sampled: the span and the slot count
        spread = (
            slots["span_mean"] >= SLOT_SPAN_X * slots["active_mean"]
            and slots["span_mean"] - slots["active_mean"] >= SLOT_SPAN_EXTRA
        )
        idle = total >= SLOTS_IDLE_MIN and total >= SLOTS_IDLE_X * max(slots["active_mean"], 1.0)
        if not (spread or idle):
            return None
        what = (
            f"llama.cpp's busy requests were spread over {slots['span_mean']:.1f} slot ids "
            f"on average (up to {slots['span_max']:.0f}) for {slots['active_mean']:.1f} "
            f"busy, on {total:.0f} slots: without a unified KV cache it decodes each run of "
            "consecutive busy slot ids as a forward pass of its own, and it hands out the "
            "least recently used slot first, so a server that has served answers of "
            "different lengths decodes in more passes a step (docs/engines.md)"
        )
    return {
        "rule": "slot_spread",
        "severity": "medium",
        "message": what + ". Run -np at the concurrency you serve (no idle slot to scatter "
        "to) or measure on a freshly started server; --kv-unified is no remedy (one pass, "
        "but its attention reads every slot's cached tokens: 8× slower on the H200)",
        "evidence": _present(
            {
                "slot_runs_mean": runs,
                "slot_runs_max": slots.get("runs_max"),
                "slot_span_mean": slots["span_mean"],
                "slot_span_max": slots["span_max"],
                "active_slots_mean": slots["active_mean"],
                "slots": slots.get("total"),
                "span_mean_early": slots.get("span_mean_early"),
                "span_mean_late": slots.get("span_mean_late"),
            }
        ),
    }


def client_bottleneck(e: Evidence) -> Finding | None:
    """On the client's own evidence only, saying which."""
    client = e.results.get("client")
    if not client or client.get("in_process"):
        return None  # an engine in the client's process: its CPU is the model's
    workers = client.get("per_worker") or []
    busy = [w for w in workers if w.get("cpu_util", 0) >= CLIENT_CPU]
    moved = [
        w
        for w in workers
        if w.get("loop_lag_p99_ms", 0) > LOOP_LAG_MS and w.get("arrival_stamps") != "kernel"
    ]
    # Tokens read together are the client's doing only if its loop was late at all; else the
    # server wrote them together (its HTTP thread descheduled), which is no client limit.
    lagged = any(
        w.get("loop_lag_max_ms", w.get("loop_lag_p99_ms", 0)) > LOOP_LAG_MS for w in workers
    )
    stamps = e.results.get("shared_first_stamp")
    shared = (stamps["requests"] if stamps else 0) if lagged else 0
    queue_p99 = client.get("queue_delay_p99_ms")
    capped = bool(client.get("max_concurrency_reached"))
    queued = queue_p99 is not None and queue_p99 > QUEUE_DELAY_MS and not capped
    reasons = []
    if busy:
        reasons.append(
            f"a client process used {100 * max(w['cpu_util'] for w in busy):.0f} % of a core"
        )
    if moved:
        reasons.append(
            f"its event loop ran {max(w.get('loop_lag_p99_ms', 0) for w in moved):.1f} ms late "
            "at p99 with arrival stamps taken by the loop"
        )
    if shared:
        reasons.append(f"{shared} requests had their first token read with later ones")
    if queued:
        reasons.append(f"requests left {queue_p99:.1f} ms after they were due (p99)")
    if not reasons:
        return None
    spare = spare_cores(e.host or {})
    more_workers = busy and (spare is None or spare >= 0.5)
    advice = (
        "use more --workers (or --cluster)"
        if more_workers
        else "run the client on a machine of its own (--cluster)"
        if busy
        else "give the client a quieter core (fewer other processes) or more --workers"
    )
    return {
        "rule": "client_bottleneck",
        "severity": "high" if busy or queued else "medium",
        "message": "the load generator, not the server, may have limited this run: "
        + "; ".join(reasons)
        + f". {advice[0].upper()}{advice[1:]}",
        "evidence": _present(
            {
                "busiest_worker_cpu": max((w["cpu_util"] for w in workers), default=None),
                "loop_lag_p99_ms": max(
                    (w.get("loop_lag_p99_ms", 0) for w in workers), default=None
                ),
                "shared_first_stamp_requests": shared or None,
                "client_queue_delay_p99_ms": queue_p99 if queued else None,
                "spare_cores": spare,
            }
        ),
    }


def host_saturated(e: Evidence) -> Finding | None:
    """A host kept busy by other processes: a different thing from a client limit. Not
    judged for an engine in the client's process (its CPU is the client's there)."""
    host = e.host
    client = e.results.get("client")
    if host is None or not client or client.get("in_process"):
        return None
    other = _other_cores(host)
    cpu = _mean(host.get("cpu_percent"))
    if cpu is None or cpu < HOST_BUSY_PERCENT or other is None or other < OTHER_CORES:
        return None
    top = host.get("busiest_other")
    who = (
        f"; the busiest was {top['name']} (pid {top['pid']}) at "
        f"{top['cpu_percent_mean']:.0f} % of a core"
        if top
        else ""
    )
    return {
        "rule": "host_saturated",
        "severity": "high",
        "message": f"the host's CPUs were {cpu:.0f} % busy and processes outside the "
        f"benchmark and its server used {other:.1f} cores{who}: the server and the "
        "client competed with them for CPU, so latencies include that contention "
        "(not the server's nor the client's own limit). Measure on a quieter host",
        "evidence": _present(
            {
                "host_cpu_percent_mean": cpu,
                "cpu_count": host.get("cpu_count"),
                "other_cores": other,
                "client_cpu_percent_mean": _mean(host.get("client_cpu_percent")),
                "local_server_cpu_percent_mean": _mean(host.get("local_server_cpu_percent")),
                "busiest_other": top["name"] if top else None,
            }
        ),
    }


def _slow_core(speed: CoreSpeed | None) -> bool:
    return (
        speed is not None
        and speed["samples"] >= MIN_CORE_SAMPLES
        and speed["fast_us"] > 0
        and speed["slow_share"] >= SLOW_CORE_SHARE
    )


def host_slowed(e: Evidence) -> Finding | None:
    """Cores that ran slower for part of the window, or time a hypervisor took: invisible
    in any CPU percentage, yet a host-bound server's every step slows by it."""
    host = e.host
    if host is None:
        return None
    steal = _mean(host.get("steal_percent"))
    stolen = steal is not None and steal >= STEAL_PERCENT
    # the core the server's busiest thread ran on, where sampled, is the one its steps felt
    # (the unpinned probe moves among cores, of two kinds on some CPUs); a window that core
    # was slow throughout reads as its own fast level, so its median is also set against
    # the fast level of the cores the unpinned probe found
    pinned, anywhere = host.get("server_core_speed"), host.get("core_speed")
    told = pinned is not None and pinned["samples"] >= MIN_CORE_SAMPLES
    probe = pinned if told else anywhere
    speed = probe if _slow_core(probe) else None
    # the server's core's median over the moving probe's fast level, where that says it
    # was slow throughout
    throughout: float | None = None
    if told and speed is None and pinned and anywhere and anywhere["fast_us"] > 0:
        ratio = pinned["p50_us"] / anywhere["fast_us"]
        throughout = ratio if ratio >= SLOW_CORE else None
    if speed is None and throughout is None and not stolen:
        return None
    server = _mean(host.get("local_server_cpu_percent"))
    parts = []
    if speed is not None:
        where = " on the server's busiest thread's CPU" if speed is pinned else ""
        parts.append(
            f"a fixed piece of work{where} took {speed['p95_us'] / speed['fast_us']:.1f}× its "
            f"fast level (10th percentile) at p95, and ≥ {SLOW_CORE:g}× in "
            f"{speed['slow_share'] * 100:.0f} % of the samples (the cores' clocks, a "
            "neighbour on the same physical core or cache)"
        )
    elif throughout is not None:
        parts.append(
            "a fixed piece of work on the server's busiest thread's CPU took "
            f"{throughout:.1f}× as long (median) as the fast level "
            "of the cores a probe that moves among them found: the server's core was slow "
            "throughout (its clock, a neighbour on the same physical core)"
        )
    if stolen:
        parts.append(f"the hypervisor gave {steal:.0f} % of the cores' time to someone else")
    if server is None:
        # no server on this host: the probe timed the client's machine
        who = (
            "this host (the client's; no server was measured on it) ran slower for part of "
            "the window: "
        )
        then = ". The client's own timing may include it; the server's cannot"
    else:
        who = "the host ran slower for part of the window: "
        bound = (
            f"; the local server used {server:.0f} % of a core, so its steps may be "
            "host-bound and slowed with it"
            if server >= HOST_BOUND_PERCENT
            else ""
        )
        then = (
            f"{bound}. Latencies may include it, and a run on the same host at another time "
            "may differ: compare runs with care, or measure on a dedicated host"
        )
    return {
        "rule": "host_slowed",
        "severity": "medium" if server is not None else "low",
        "message": who + " and ".join(parts) + then,
        "evidence": _present(
            {
                "steal_percent_mean": steal,
                "core_probe_fast_us": speed["fast_us"] if speed else None,
                "core_probe_p95_us": speed["p95_us"] if speed else None,
                "core_slow_share": speed["slow_share"] if speed else None,
                "core_probe_on_server_cpu": True if told else None,
                "server_core_probe_p50_us": (
                    pinned["p50_us"] if throughout is not None and pinned else None
                ),
                "local_server_cpu_percent_mean": server,
            }
        ),
    }


def prefix_cache_flattered(e: Evidence) -> Finding | None:
    cache = e.results.get("prompt_cache")
    if not cache or not cache.get("flattered") or cache["cached_share"] is None:
        return None
    share = float(cache["cached_share"])
    hit, miss = cache.get("ttft_p50_hit_ms"), cache.get("ttft_p50_miss_ms")
    effect = f" ({cache['ttft_effect']})" if cache.get("ttft_effect") else ""
    return {
        "rule": "prefix_cache_flattered",
        "severity": "high",
        "message": f"{100 * share:.0f} % of prompt tokens came from the server's prefix "
        f"cache, more than the workload shares on purpose{effect}: TTFT and throughput "
        "are better than fresh traffic would get. Rerun without --seed (fresh prompts), "
        "restart the server, or disable its prompt cache to measure prefill",
        "evidence": _present(
            {
                "cached_share": share,
                "expected_share": cache.get("expected_share"),
                "source": cache.get("source"),
                "ttft_p50_hit_ms": hit,
                "ttft_p50_miss_ms": miss,
                "ttft_p50_ms": e.ttft_p50,
            }
        ),
    }


def errors(e: Evidence) -> Finding | None:
    s = e.results["summary"]
    if not s["requests_failed"]:
        return None
    errs = e.results.get("errors")
    kinds = (errs["by_kind"] if errs else None) or {}
    return {
        "rule": "errors",
        "severity": "high",
        "message": "requests failed: " + ", ".join(f"{k} ×{v}" for k, v in kinds.items()),
        "evidence": {"error_rate": s["error_rate"], "by_kind": kinds},
    }


Rule = Callable[[Evidence], "Finding | None"]
#: Every rule, in the order its finding is listed.
RULES: tuple[Rule, ...] = (
    queueing,
    ttft_outside_prompt,
    launch_overhead,
    kv_cache_full,
    kv_cache_pressure,
    ttft_outside_server,
    slot_spread,
    client_bottleneck,
    host_saturated,
    host_slowed,
    prefix_cache_flattered,
    errors,
)


def diagnose(results: Results, eff: Efficiency | None) -> list[Finding]:
    """The findings of every rule that fires, in :data:`RULES` order."""
    evidence = Evidence.of(results, eff)
    return [f for rule in RULES if (f := rule(evidence)) is not None]


def _present(evidence: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evidence.items() if v is not None}


def _other_cores(host: HostTelemetry) -> float | None:
    """Cores used by processes other than the benchmark's and its local server's."""
    cpu, cores = _mean(host.get("cpu_percent")), host.get("cpu_count")
    if cpu is None or not cores:
        return None
    client = _mean(host.get("client_cpu_percent")) or 0.0
    server = _mean(host.get("local_server_cpu_percent")) or 0.0
    return max(float(cores) * float(cpu) / 100 - (client + server) / 100, 0.0)
