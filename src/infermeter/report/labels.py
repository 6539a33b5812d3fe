"""Human labels for result fields, shared by every renderer: the metrics' from their catalogue
(:mod:`infermeter.metrics.catalogue`), and the glossary of everything else a report names."""

from collections.abc import Mapping
from typing import Any, NamedTuple

from infermeter.metrics.catalogue import DISTRIBUTIONS, SUMMARY, Metric
from infermeter.metrics.intervals import samples_to_bound
from infermeter.schema.results import Prediction, Sessions

SUMMARY_LABELS: dict[str, str] = {m.key: m.label for m in SUMMARY}
DIST_LABELS: dict[str, str] = {m.key: m.label for m in DISTRIBUTIONS}


class Definition(NamedTuple):
    """One metric of the contract (docs/metrics.md): its name, formula and meaning in a line."""

    name: str
    formula: str
    meaning: str


#: The glossary's sections, as docs/metrics.md's: key -> (title, the definitions in it).
#: A report links a section (``#def-per_request``) where no one metric is meant.
DEFINITION_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "timestamps": (
        "What is recorded per request",
        ("t_sched", "t_send", "t_chunk", "t_end", "n_in_n_out"),
    ),
    "per_request": (
        "Per-request metrics",
        (
            "ttft_ms",
            "ttft_incl_queue_ms",
            "queue_delay_ms",
            "ttfa_ms",
            "reasoning_ms",
            "tpot_ms",
            "itl_ms",
            "inter_chunk_ms",
            "e2e_ms",
            "prefill_tps",
            "decode_tps",
            "request_tps",
        ),
    ),
    "aggregates": (
        "Run aggregates",
        (
            "duration_s",
            "request_throughput_rps",
            "output_token_throughput_tok_s",
            "total_token_throughput_tok_s",
            "achieved_concurrency",
            "error_rate",
            "percentiles",
        ),
    ),
    "slo": ("SLOs", ("goodput_rps", "slo_attainment", "slo_percentile")),
    "client": ("The client's own health", ("client_cpu", "loop_lag")),
    "telemetry": (
        "Telemetry",
        ("gpu_util", "gpu_memory", "host_cpu", "core_speed", "server_metrics"),
    ),
    "analysis": (
        "Analysis",
        ("mbu", "mfu", "x_bound", "sla", "ttft_bands", "findings", "cost"),
    ),
}

#: The catalogue's metrics the glossary defines (the others are labels only).
_GLOSSARY_METRICS = frozenset(key for _title, keys in DEFINITION_GROUPS.values() for key in keys)


def _definition(m: Metric) -> Definition:
    return Definition(m.name, m.formula, m.meaning)


#: The metric contract, one line per metric, in docs/metrics.md's symbols (a test checks the
#: per-request and aggregate formulas against it). The HTML report embeds these as its
#: glossary and its "definition" links point into it, so the definitions travel with the page.
DEFINITIONS: dict[str, Definition] = {
    # 3-4. the metrics the glossary lists (per request, run aggregates, SLOs), from their
    # catalogue
    **{m.key: _definition(m) for m in (*DISTRIBUTIONS, *SUMMARY) if m.key in _GLOSSARY_METRICS},
    # 1. what is recorded per request
    "t_sched": Definition(
        "t_sched",
        "",
        "when the load generator meant the request to start: its open-loop schedule slot, "
        "or the moment a closed-loop slot became free",
    ),
    "t_send": Definition(
        "t_send", "", "when the request is handed to the socket, after any connection set-up"
    ),
    "t_chunk": Definition(
        "t_chunk[i], k[i]",
        "",
        "arrival of the i-th stream chunk that carries output text, and the tokens it carries "
        "(role-only, empty and usage-only chunks never count as tokens); t_first and t_last "
        "are the first and the last",
    ),
    "t_end": Definition(
        "t_end", "", "end of the response ([DONE], the end of the body, or the failure)"
    ),
    "n_in_n_out": Definition(
        "n_in, n_out",
        "",
        "prompt and output tokens (reasoning included), from the best source: the server's "
        "usage, per-chunk usage, a local tokenizer, else one per chunk",
    ),
    # what the run aggregates and SLOs rest on
    "percentiles": Definition(
        "percentiles",
        "",
        "linear interpolation between order statistics (numpy's default); latency "
        "distributions cover completed requests, failures are counted beside them",
    ),
    "slo_percentile": Definition(
        "percentile SLO term (p95_ttft_ms=300)",
        "",
        "the run passes when at least 95 % of all measured requests, failures as misses, are "
        "within 300 ms; the measured p95 is shown beside it",
    ),
    # 5. the client's own health
    "client_cpu": Definition(
        "client CPU",
        "CPU seconds / wall seconds, per client process",
        "1.0 is a full core; a worker above 85 % is named in a warning",
    ),
    "loop_lag": Definition(
        "event-loop lag",
        "lateness of a 50 ms timer, p99",
        "above 5 ms a warning: arrival stamps taken at the poll may be late by as much",
    ),
    # 6. telemetry
    "gpu_util": Definition(
        "GPU utilisation",
        "NVML busy %, sampled in the window",
        "share of time a kernel ran, not how much of the GPU it used",
    ),
    "gpu_memory": Definition("GPU memory", "used / total device memory", "per GPU, over time"),
    "host_cpu": Definition(
        "host CPU", "all cores, %", "the client processes' CPU is in % of one core"
    ),
    "core_speed": Definition(
        "host core speed",
        "the same small piece of work, timed in thread CPU time each sample",
        "as a speed against the run's fast level (its 10th-percentile time); waiting for a "
        "core or time a hypervisor stole does not count, so a dip is a slower core",
    ),
    "server_metrics": Definition(
        "server metrics",
        "the server's own /metrics",
        "running and waiting requests, KV-cache usage and prefix-cache hits, mapped per engine",
    ),
    # 7. analysis
    "mbu": Definition(
        "MBU",
        "bytes read per decode step / TPOT / peak bandwidth",
        "bytes = weights read (one embedding row per sequence; active experts only for MoE) "
        "+ every sequence's KV cache, at the achieved concurrency and mid-sequence context",
    ),
    "mfu": Definition(
        "MFU",
        "achieved FLOP/s / peak FLOP/s",
        "2 × active params FLOPs per token plus attention; decode from the mean TPOT, "
        "prefill from the TTFT p50",
    ),
    "x_bound": Definition(
        "× its bound",
        "measured / speed-of-light bound",
        "how far a figure is from what no engine can beat on this hardware (1 = at the bound)",
    ),
    "sla": Definition(
        "SLA profile",
        "",
        "a profile's limits, each with the measured value, pass/fail and the margin "
        "(positive = headroom); a limit with nothing measured is 'not measured', never a pass",
    ),
    "ttft_bands": Definition(
        "TTFT bands",
        "",
        "shares of requests with TTFT < 100 ms (instant), 100–300 (fast), 300–1,000 (slow), "
        "≥ 1,000 (sluggish)",
    ),
    "findings": Definition(
        "findings", "", "rules that name a bottleneck and a remedy, with the numbers that fired"
    ),
    "cost": Definition(
        "cost per 1M tokens",
        "(price per GPU-hour × GPUs) / 3600 / throughput × 1e6",
        "for output and for total tokens, and per request",
    ),
}


def trace_load(workload: Mapping[str, Any] | None, cap: int | None = None) -> str | None:
    """A replayed trace's load in words, with its in-flight cap (None: the run replayed
    no trace)."""
    if not workload or workload.get("kind") != "trace":
        return None
    t: Mapping[str, Any] = workload.get("trace") or {}
    text = f"trace ({workload.get('format')}), {t.get('requests')} requests"
    if t.get("span_s"):
        text += f" over {float(t['span_s']):,.1f} s"
    if t.get("mean_rate_rps"):
        text += f" ({float(t['mean_rate_rps']):,.3g} req/s)"
    if t.get("time_scale", 1.0) != 1.0:
        text += f", time ×{float(t['time_scale']):g}"
    if t.get("start_s") or t.get("duration_s"):
        text += f", from {float(t.get('start_s') or 0):g} s"
        if t.get("duration_s"):
            text += f" for {float(t['duration_s']):g} s"
    if cap:
        text += f", at most {cap} in flight"
    return text


def trace_reuse(workload: Mapping[str, Any] | None) -> float | None:
    """The share of prompt tokens a replayed trace reuses from earlier requests."""
    if not workload or workload.get("kind") != "trace":
        return None
    share = (workload.get("trace") or {}).get("prefix_reuse_share")
    return float(share) if share is not None else None


#: The by-turn table of a multi-turn run, as every renderer shows it.
TURN_COLUMNS = (
    "turn",
    "requests",
    "TTFT p50 (ms)",
    "TTFT p90 (ms)",
    "TPOT p50 (ms)",
    "input tokens (mean)",
    "cached",
)


def turn_rows(sessions: Sessions) -> list[list[str]]:
    """One row per turn index: its requests, TTFT, TPOT, prompt size and cache share."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    rows = []
    for t in sessions["by_turn"]:
        cached = t["cached_share"]
        rows.append(
            [
                str(t["turn"] + 1),
                f"{t['completed']}/{t['requests']}",
                ms(t["ttft_ms"]["p50"]),
                ms(t["ttft_ms"]["p90"]),
                ms(t["tpot_ms"]["p50"]),
                "-" if t["input_tokens_mean"] is None else f"{t['input_tokens_mean']:,.0f}",
                "-" if cached is None else f"{100 * cached:.1f} %",
            ]
        )
    return rows


def sessions_line(sessions: Sessions) -> str:
    """``6 sessions (6 whole), 3.0 turns each; duration p50 1.2 s, p90 1.5 s``."""
    d = sessions["duration_s"]
    text = (
        f"{sessions['sessions']} sessions ({sessions['completed']} whole), "
        f"{sessions['turns_mean']:.1f} turns each"
    )
    if d["count"]:
        text += f"; duration p50 {d['p50']:,.2f} s, p90 {d['p90']:,.2f} s, max {d['max']:,.2f} s"
    return text


def sessions_load(workload: Mapping[str, Any] | None, cfg: Mapping[str, Any]) -> str | None:
    """A multi-turn run's load in words (None: not one)."""
    if not workload or workload.get("kind") != "sessions":
        return None
    s: Mapping[str, Any] = workload.get("sessions") or {}
    if cfg.get("rate") is not None:
        load = f"{float(cfg['rate']):g} sessions/s ({cfg.get('arrival') or 'poisson'})"
    else:
        load = f"{cfg.get('concurrency')} sessions at once"
    think = s.get("think_time_s", "0")
    return f"{load}, {s.get('sessions')} sessions of {s.get('turns')} turns, think {think} s"


def simulated_replicas(pred: Prediction | None) -> str:
    """A simulated run's replicas for its heading (empty for one): how many, the router, and
    how many shared a GPU."""
    if pred is None or pred["replicas"] <= 1:
        return ""
    packed = pred.get("replicas_per_gpu", 1)
    share = f", {packed} per GPU" if packed > 1 else ""
    return f"{pred['replicas']} replicas ({pred['router']}{share})"


#: The distributions whose p99 bounds a report names, in its order.
_BOUNDED = ("ttft_ms", "tpot_ms", "e2e_ms")


def p99_bounds_note(distributions: Mapping[str, Any]) -> str | None:
    """A line where a run's p99 rests on too few requests to be bounded from above: its 95 %
    interval (:mod:`infermeter.metrics.intervals`) is open there, so the p99 printed is what
    those requests reached, and the server's own p99 may lie anywhere beyond its lower side.
    None where every p99 is bounded, or the run predates intervals."""
    open_: list[str] = []
    count = 0
    for key in _BOUNDED:
        d = distributions.get(key) or {}
        pair = (d.get("interval95") or {}).get("p99")
        if not pair or pair[1] is not None:
            continue
        count = max(count, int(d.get("count") or 0))
        lo = pair[0]
        short = next(m.short for m in DISTRIBUTIONS if m.key == key)
        open_.append(f"{short} ≥ {lo:,.1f}" if lo is not None else f"{short} unbounded")
    if not open_:
        return None
    return (
        f"p99 rests on {count:,} requests, too few to bound it from above at 95 % "
        f"({samples_to_bound(0.99):,} would): all they show is {', '.join(open_)} ms"
    )
