"""Human labels for result fields (one place, shared by every renderer)."""

from typing import NamedTuple

SUMMARY_LABELS: dict[str, str] = {
    "requests_sent": "requests sent",
    "requests_completed": "requests completed",
    "requests_failed": "requests failed",
    "duration_s": "measured window D (s)",
    "request_throughput_rps": "request throughput (req/s)",
    "request_throughput_rpm": "request throughput (req/min)",
    "output_token_throughput_tok_s": "output token throughput (tok/s)",
    "input_token_throughput_tok_s": "input token throughput (tok/s)",
    "total_token_throughput_tok_s": "total token throughput (tok/s)",
    "achieved_concurrency": "achieved concurrency (Little's law)",
    "target_concurrency": "target concurrency",
    "target_rate_rps": "target rate (req/s)",
    "achieved_send_rate_rps": "achieved send rate (req/s)",
    "goodput_rps": "goodput (req/s meeting every SLO)",
    "slo_attainment": "SLO attainment",
    "error_rate": "error rate",
}

DIST_LABELS: dict[str, str] = {
    "ttft_ms": "TTFT (ms)",
    "ttft_incl_queue_ms": "TTFT incl. client queue (ms)",
    "tpot_ms": "TPOT (ms)",
    "itl_ms": "ITL per token (ms)",
    "e2e_ms": "E2E latency (ms)",
    "inter_chunk_ms": "inter-chunk (ms)",
    "queue_delay_ms": "client queue delay (ms)",
    "connect_ms": "connection set-up (ms)",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "prefill_tps": "prefill TPS (tok/s)",
    "decode_tps": "decode TPS (tok/s)",
    "request_tps": "per-request TPS (tok/s)",
}


class Definition(NamedTuple):
    """One metric of the contract (docs/metrics.md): its name, formula and meaning in a line."""

    name: str
    formula: str
    meaning: str


#: The metric contract, one line per metric, in docs/metrics.md's symbols (a test checks the
#: per-request and aggregate formulas against it). The HTML report embeds these as its
#: glossary and its "definition" links point into it, so the definitions travel with the page.
DEFINITIONS: dict[str, Definition] = {
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
    # 3. per-request metrics
    "ttft_ms": Definition(
        "TTFT", "t_first − t_send", "time to first token: queueing, prefill and network"
    ),
    "ttft_incl_queue_ms": Definition(
        "TTFT incl. client queue",
        "t_first − t_sched",
        "TTFT plus any wait in the client before the request was sent",
    ),
    "queue_delay_ms": Definition(
        "client queue delay",
        "t_send − t_sched",
        "~0 unless the client is saturated or --max-concurrency holds requests back; in open "
        "loop, the schedule lag",
    ),
    "tpot_ms": Definition(
        "TPOT",
        "(t_last − t_first) / (n_out − 1)",
        "time per output token of the decode phase, only for n_out ≥ 2",
    ),
    "itl_ms": Definition(
        "ITL, per token",
        "(t_chunk[i] − t_chunk[i−1]) / k[i]",
        "inter-token latency, counted k[i] times per chunk: a 3-token chunk after 30 ms gives "
        "three 10 ms samples",
    ),
    "inter_chunk_ms": Definition(
        "inter-chunk latency",
        "t_chunk[i] − t_chunk[i−1]",
        "gap between stream chunks; equals ITL when every chunk carries one token",
    ),
    "e2e_ms": Definition(
        "E2E latency",
        "t_last − t_send",
        "end-to-end latency of a request: E2E = TTFT + TPOT × (n_out − 1)",
    ),
    "prefill_tps": Definition("prefill TPS", "n_in / TTFT", "prompt tokens per second"),
    "decode_tps": Definition("decode TPS", "1 / TPOT", "output tokens per second of the decode"),
    "request_tps": Definition(
        "per-request TPS", "n_out / E2E", "output tokens per second over the whole request"
    ),
    # 4. run aggregates
    "duration_s": Definition(
        "measured window D",
        "",
        "from the first t_send to the last t_end of the measured requests (warm-up requests "
        "are kept apart), in seconds",
    ),
    "request_throughput_rps": Definition(
        "request throughput", "completed / D", "requests per second (RPM = 60 × RPS)"
    ),
    "output_token_throughput_tok_s": Definition(
        "output token throughput", "Σ n_out / D", "over the completed requests"
    ),
    "total_token_throughput_tok_s": Definition(
        "total token throughput",
        "Σ (n_in + n_out) / D",
        "input and output tokens of every request",
    ),
    "achieved_concurrency": Definition(
        "achieved concurrency",
        "Σ E2E / D",
        "Little's law: requests in flight on average, beside the target",
    ),
    "error_rate": Definition(
        "error rate",
        "failed / sent",
        "broken down by kind: http_<status>, timeout, connection, protocol, "
        "incomplete_stream, server_error",
    ),
    "percentiles": Definition(
        "percentiles",
        "",
        "linear interpolation between order statistics (numpy's default); latency "
        "distributions cover completed requests, failures are counted beside them",
    ),
    # SLOs
    "goodput_rps": Definition(
        "goodput", "requests meeting every SLO / D", "failed requests count as misses"
    ),
    "slo_attainment": Definition(
        "SLO attainment",
        "requests meeting every SLO / measured requests",
        "failures in the denominator",
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
    "telemetry": ("Telemetry", ("gpu_util", "gpu_memory", "host_cpu", "server_metrics")),
    "analysis": (
        "Analysis",
        ("mbu", "mfu", "x_bound", "sla", "ttft_bands", "findings", "cost"),
    ),
}
