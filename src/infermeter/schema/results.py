"""``results.json``, typed: the document one run leaves, as every layer reads it.

A renamed or missing key is a type error here, not a broken render. The document is built by
:mod:`infermeter.results.build` and read by the analysis, the renderers, ``compare`` and the
sweep index. Keys a version added later are ``NotRequired``: an older file still reads.
Sections whose keys come from elsewhere (the run's config, the server's description, the
telemetry of an engine) are typed as far as infermeter relies on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from typing_extensions import NotRequired, TypedDict

#: Bumped when a field changes meaning or is removed; adding fields keeps it.
RESULTS_SCHEMA_VERSION = 1


class Distribution(TypedDict):
    """count, mean, std, min, p50, p90, p95, p99, max (None without samples); extra
    percentiles asked for (``p99_9``) are further keys of the same document."""

    count: int
    mean: float | None
    std: float | None
    min: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    #: Per percentile key (``p99``), its distribution-free 95 % interval [lower, upper]
    #: (None: a side this many requests cannot bound); per-request distributions only.
    interval95: NotRequired[dict[str, list[float | None]]]


def statistic(d: Distribution | None, key: str) -> float | None:
    """A distribution's statistic by name, its extra percentiles (``p99_9``) included; None
    where the run did not compute it or had no samples."""
    if d is None:
        return None
    value = cast("Mapping[str, object]", d).get(key)
    return float(value) if isinstance(value, (int, float)) else None


class RunOutcome(TypedDict, total=False):
    """How a run ended and what its client saw: what the load driver reports, and what
    reading the run back adds."""

    complete: bool
    interrupted: bool
    #: Why the run stopped early (the server went away, a worker failed), or None.
    aborted: str | None
    out_dir: str
    torn_last_record: bool
    client: list[ClientWorker]
    telemetry_notes: list[str]
    #: ``-c`` as given, where it was above ``-n`` and the run used ``-n`` streams.
    concurrency_asked: int
    worker_failures: list[str]
    #: The in-process engine's memory (``--url hf:``).
    engine_memory: dict[str, Any]


class RunStatus(RunOutcome):
    """results.json's ``run``: the run's identity and its outcome."""

    id: str | None
    started_at: str | None
    seed_drawn: bool


class ServerInfo(TypedDict):
    url: str
    kind: str
    model: str
    models: list[str] | None
    ctx_per_slot: int | None
    context_limit: NotRequired[int | None]
    slots: int | None
    details: dict[str, Any]


class Summary(TypedDict):
    requests_sent: int
    requests_completed: int
    requests_failed: int
    duration_s: float
    request_throughput_rps: float
    request_throughput_rpm: float
    output_token_throughput_tok_s: float
    input_token_throughput_tok_s: float
    total_token_throughput_tok_s: float
    achieved_concurrency: float
    goodput_rps: float | None
    slo_attainment: float | None
    error_rate: float
    target_concurrency: int | None
    target_rate_rps: float | None
    achieved_send_rate_rps: float | None


class Errors(TypedDict):
    by_kind: dict[str, int]
    examples: dict[str, str]


class TpotAgreement(TypedDict):
    requests: int
    median_ratio: float | None
    share_within_1pct: float | None


class ServerReported(TypedDict):
    """The server's own per-request figures from its answers (llama.cpp ``timings``)."""

    tpot_ms: Distribution
    prompt_ms: Distribution
    ttft_outside_prompt_ms: Distribution
    tpot_agreement: TpotAgreement


class PromptCache(TypedDict):
    cached_share: float | None
    source: str | None
    requests_counted: int
    expected_share: float | None
    flattered: bool
    ttft_p50_hit_ms: float | None
    ttft_p50_miss_ms: float | None
    requests_hit: int
    ttft_effect: str | None


class SharedFirstStamp(TypedDict):
    requests: int
    of_requests: int
    share: float | None
    tokens_max: int
    ttft_late_est_p50_ms: float | None
    ttft_late_est_max_ms: float | None
    tpot_low_est_max_ms: float | None


class SLOTermResult(TypedDict):
    name: str
    metric: str
    threshold: float
    percentile: float | None
    attainment: float
    measured: float | None
    passed: bool | None


class SLOResult(TypedDict):
    passed: bool | None
    attainment: float
    goodput_rps: float
    requests_meeting: int
    requests_total: int
    terms: list[SLOTermResult]


class ClientWorker(TypedDict):
    """One load-generating process's self-check."""

    worker: int
    cpu_s: NotRequired[float]
    wall_s: NotRequired[float]
    cpu_util: float
    loop_lag_p50_ms: NotRequired[float]
    loop_lag_p99_ms: NotRequired[float]
    loop_lag_max_ms: NotRequired[float]
    probes: NotRequired[int]
    nice: NotRequired[int | None]
    arrival_stamps: NotRequired[str]
    host: NotRequired[str]


class Client(TypedDict):
    workers: int
    per_worker: list[ClientWorker]
    in_process: bool
    queue_delay_p99_ms: float | None
    max_concurrency_reached: bool


class Stats(TypedDict):
    """A telemetry series over the measured window."""

    mean: float
    p95: float
    max: float
    samples: int


class BusiestOther(TypedDict):
    pid: int
    name: str
    cpu_percent_mean: float
    scans_busiest: int
    scans: int


class CoreSpeed(TypedDict):
    """The core probe (the same small piece of work, timed in thread CPU time each sample)
    over the measured window: a slower core takes longer, whatever else is running."""

    #: The window's fast level (10th percentile), its median and its 95th percentile (µs).
    fast_us: float
    p50_us: float
    p95_us: float
    #: Share of samples at or over ``SLOW_CORE`` × the fast level.
    slow_share: float
    samples: int


class HostTelemetry(TypedDict):
    cpu_percent: Stats | None
    memory_used_bytes: Stats | None
    memory_total_bytes: int
    client_cpu_percent: Stats | None
    client_rss_bytes: Stats | None
    cpu_count: int | None
    local_server_cpu_percent: NotRequired[Stats | None]
    local_server_rss_bytes: NotRequired[Stats | None]
    busiest_other: NotRequired[BusiestOther]
    #: Share of all cores' time a hypervisor gave to someone else (Linux guests).
    steal_percent: NotRequired[Stats | None]
    core_speed: NotRequired[CoreSpeed]
    #: The same probe pinned to the CPU the local server's busiest thread last ran on.
    server_core_speed: NotRequired[CoreSpeed]


class GpuTelemetry(TypedDict):
    index: int
    util_percent: Stats | None
    memory_used_bytes: Stats | None
    memory_total_bytes: int | None
    memory_util: float | None
    power_w: Stats | None


class SlotSpread(TypedDict):
    active_mean: float
    span_mean: float
    span_max: float
    #: Runs of consecutive busy slot ids (None: the telemetry did not sample them).
    runs_mean: float | None
    runs_max: float | None
    total: float
    samples: float
    span_mean_late: float
    span_mean_early: float


class ServerTelemetry(TypedDict):
    """The server's /metrics over the window, in infermeter's vocabulary (what an engine does
    not expose is absent)."""

    kind: str | None
    samples: int
    requests_running: NotRequired[Stats]
    requests_waiting: NotRequired[Stats]
    requests_waiting_capacity: NotRequired[Stats]
    requests_waiting_deferred: NotRequired[Stats]
    kv_cache_usage: NotRequired[Stats]
    prefix_cache_hit_rate: NotRequired[Stats]
    ttft_mean_ms: NotRequired[float]
    tpot_mean_ms: NotRequired[float]
    itl_mean_ms: NotRequired[float]
    e2e_mean_ms: NotRequired[float]
    queue_mean_ms: NotRequired[float]
    prefill_mean_ms: NotRequired[float]
    decode_mean_ms: NotRequired[float]
    inference_mean_ms: NotRequired[float]
    preemptions: NotRequired[float]
    prompt_tokens_cached: NotRequired[float]
    finished_length: NotRequired[float]
    finished_stop: NotRequired[float]
    finished_abort: NotRequired[float]
    finished_error: NotRequired[float]
    tokens_per_step_mean: NotRequired[float]
    steps_per_s: NotRequired[float]
    estimated_flops_per_s: NotRequired[float]
    estimated_read_bytes_per_s: NotRequired[float]
    info: NotRequired[dict[str, dict[str, str]]]
    prefix_cache_hit_share: NotRequired[float]
    slots: NotRequired[SlotSpread]
    generation_tokens_per_s: NotRequired[float]


class Telemetry(TypedDict):
    notes: NotRequired[list[str]]
    host: NotRequired[HostTelemetry]
    gpu: NotRequired[list[GpuTelemetry]]
    server: NotRequired[ServerTelemetry]


class Efficiency(TypedDict):
    """MBU, MFU and the speed-of-light bounds at the run's batch and context."""

    model: str
    gpu: str
    gpus: int
    tp: int
    batch_per_replica: int
    batch_source: Literal["server", "client"]
    context_tokens: int
    mbu: NotRequired[float]
    mfu_decode: NotRequired[float]
    tpot_lower_bound_ms: NotRequired[float]
    tpot_x_bound: NotRequired[float]
    output_throughput_upper_bound_tok_s: NotRequired[float]
    throughput_share_of_bound: NotRequired[float | None]
    server_mfu: NotRequired[float]
    server_mbu: NotRequired[float]
    ttft_lower_bound_ms: NotRequired[float]
    ttft_x_bound: NotRequired[float]
    mfu_prefill: NotRequired[float]


class LimitVerdict(TypedDict):
    limit: str
    metric: str
    measured: float | None
    passed: bool | None
    margin: float | None


class SLAVerdict(TypedDict):
    profile: str
    description: str
    passed: bool | None
    limits: list[LimitVerdict]


class Finding(TypedDict):
    rule: str
    severity: Literal["high", "medium", "low"]
    message: str
    evidence: dict[str, Any]


class Cost(TypedDict):
    gpu_hourly_price: float
    gpus: int
    per_request: float | None
    per_million_output_tokens: float | None
    per_million_total_tokens: float | None


class TtftBands(TypedDict, total=False):
    """Shares of requests by perceived TTFT; empty where no request had one."""

    instant: float
    fast: float
    slow: float
    sluggish: float


class Analysis(TypedDict):
    efficiency: Efficiency | None
    mbu: float | None
    mfu: float | None
    sla: SLAVerdict | None
    ttft_bands: TtftBands
    findings: list[Finding]
    cost: Cost | None
    notes: NotRequired[list[str]]


class TurnDoc(TypedDict):
    """One turn index of a multi-turn run."""

    turn: int
    requests: int
    completed: int
    ttft_ms: Distribution
    tpot_ms: Distribution
    input_tokens_mean: float | None
    cached_share: float | None


class Sessions(TypedDict):
    """A multi-turn run's sessions: how many, how long, and their figures by turn."""

    sessions: int
    completed: int
    turns_mean: float
    duration_s: Distribution
    by_turn: list[TurnDoc]


class Prediction(TypedDict):
    """A simulated run's provenance: the engine model it ran and what it found (``infermeter
    simulate``); results.json carries it beside ``predicted: true``."""

    engine_model: str
    engine: str
    model: str | None
    hardware: str | None
    #: How the engine model was carried to other hardware, or None (as measured).
    extrapolated: str | None
    replicas: int
    router: str
    #: Replicas packed onto one GPU, taking turns on it (absent: 1, each its own).
    replicas_per_gpu: NotRequired[int]
    #: Why the load is beyond what the replicas serve, or None.
    unstable: str | None
    #: Where the traffic leaves what the model was fitted on.
    extrapolations: list[str]
    #: Where the load sits beside fitted runs the model does not reproduce (its fit's
    #: self-check, infermeter.predict.model.self_check_notes).
    self_check: NotRequired[list[str]]
    #: Where the load sits near a batch size whose fitted steps ran at two levels
    #: (infermeter.predict.model.level_notes).
    step_levels: NotRequired[list[str]]
    #: Where the fitted runs disagree on the engine's speed at the same batch sizes
    #: (infermeter.predict.model.speed_notes).
    speed_spread: NotRequired[list[str]]
    #: Where the host's cores changed speed while the fitted runs were measured
    #: (infermeter.predict.model.host_notes).
    host_speed: NotRequired[list[str]]
    #: The share of the time the server's core was taken to read slow (simulate
    #: --core-slow-share) and how much longer that made the decode steps than the table's:
    #: the median over the batch sizes the fit measured it at, and the least and most
    #: (infermeter.predict.model.core_factors); absent: the table as fitted.
    core_slow_share: NotRequired[float]
    core_factor: NotRequired[float]
    core_factors: NotRequired[list[float]]
    fitted_on: list[str]
    #: Per replica: decoding sequences per step (time-weighted), share of time busy.
    mean_batch: list[float]
    busy_share: list[float]
    #: Per replica, where the engine model follows llama.cpp's slots: the forward passes a
    #: decoding step took (time-weighted; one per run of busy slot ids).
    mean_passes: NotRequired[list[float]]
    #: Per replica: sequences preempted because the KV cache was full (vLLM's recompute).
    preemptions: NotRequired[list[int]]
    #: Simulated time, and the wall time the simulation took.
    simulated_s: float
    wall_s: float


class Results(TypedDict):
    """The whole of results.json."""

    schema_version: int
    infermeter_version: str | None
    run: RunStatus
    server: ServerInfo | None
    workload: dict[str, Any] | None
    config: dict[str, Any] | None
    summary: Summary
    distributions: dict[str, Distribution]
    percentile_method: str
    errors: Errors
    token_sources: dict[str, dict[str, int]]
    input_tokens_mismatch: dict[str, float | int]
    server_reported: ServerReported
    prompt_cache: PromptCache
    shared_first_stamp: SharedFirstStamp
    peak_in_flight: int
    not_streamed: int
    slo: SLOResult | None
    client: Client
    telemetry: Telemetry
    warnings: list[str]
    #: Only for a multi-turn run.
    sessions: NotRequired[Sessions]
    #: Only for a simulated run (``infermeter simulate``): nothing in it was measured.
    predicted: NotRequired[bool]
    prediction: NotRequired[Prediction]
    analysis: NotRequired[Analysis]
