"""``plan --format json``: a capacity plan as a typed document."""

from __future__ import annotations

from typing_extensions import NotRequired, TypedDict


class TrialDoc(TypedDict):
    replicas: int
    #: The GPUs those replicas take (packed ones share, a replica may take several).
    gpus: int
    passed: bool
    unstable: str | None
    request_rps: float
    output_tok_s: float
    mean_batch: float
    busy_share: float
    #: The traffic over the highest rate one replica alone sustains, times the replicas (or,
    #: packed onto shared GPUs, times the GPUs they take).
    load_share: float
    #: metric → "p50"/"p90"/... → ms
    latency_ms: dict[str, dict[str, float | None]]
    limits: list[dict[str, object]]


class CostDoc(TypedDict):
    gpus_per_replica: int
    gpu_hourly_price: float
    per_hour: float
    per_request: float
    per_million_output_tokens: float
    per_million_tokens: float
    per_million_output_tokens_at_max_rate: float


class BracketDoc(TypedDict):
    """A what-if's plan with every step scaled by bandwidth alone, and by compute alone."""

    replicas: list[int]
    max_rate_per_replica_rps: list[float]


class SlowerDoc(TypedDict):
    """The plan again with every decode step slower: by the fitted runs' spread, where they
    disagree on the engine's speed (infermeter.predict.model.speed_notes), or as if the
    server's core stayed slow (infermeter.predict.model.slow_core_factor)."""

    #: How much longer every decode step is taken to be, less 1 (the slowest run's median
    #: step against the fastest's; or the slow-core factor).
    spread: float
    #: None where no count meets the limits at that speed (``failed`` says why).
    replicas: int | None
    max_rate_per_replica_rps: float | None
    failed: str | None


class PlanDoc(TypedDict):
    predicted: bool
    engine_model: str
    engine: str
    model: str | None
    hardware: str | None
    extrapolated: str | None
    traffic: dict[str, float | int]
    limits: list[str]
    replicas: int
    #: Replicas packed onto each GPU (1: each its own), and the GPUs the count takes.
    replicas_per_gpu: int
    gpus: int
    max_rate_per_replica_rps: float
    at_replicas: TrialDoc
    one_fewer: TrialDoc | None
    cost: CostDoc | None
    #: Only for a model carried to other hardware (``--on-gpu``).
    bracket: NotRequired[BracketDoc]
    #: Only where the fitted runs disagree on the engine's speed.
    at_runs_spread: NotRequired[SlowerDoc]
    #: Only where the fit measured the steps slower while the server's core read slow.
    at_slow_core: NotRequired[SlowerDoc]
    notes: list[str]
