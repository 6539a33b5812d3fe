"""SLA profiles, TTFT perception bands and cost (pure functions over a results document)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from infermeter.errors import UsageError
from infermeter.schema.results import (
    Cost,
    LimitVerdict,
    Results,
    SLAVerdict,
    TtftBands,
    statistic,
)

#: Measured quantities a profile limit may name, and where they are read from.
#: ``ttft_ms``/``tpot_ms``/``e2e_ms`` take a percentile; the rest are run-level figures.
LIMIT_METRICS = ("ttft_ms", "tpot_ms", "e2e_ms", "output_tok_s", "total_tok_s", "gpu_memory_util")


@dataclass(frozen=True)
class Limit:
    metric: str
    max: float | None = None
    min: float | None = None
    percentile: float | None = None

    @property
    def name(self) -> str:
        p = f"p{self.percentile:g} " if self.percentile is not None else ""
        bound = f"< {self.max:g}" if self.max is not None else f"> {self.min:g}"
        return f"{p}{self.metric} {bound}"


@dataclass(frozen=True)
class Profile:
    name: str
    limits: tuple[Limit, ...]
    description: str = ""


#: The three usual service levels (chat, batch, realtime): TTFT, throughput and memory
#: utilisation. TTFT limits apply to the p95 (the source targets name no percentile; p95 is
#: the common SLO).
BUILTIN_PROFILES: dict[str, Profile] = {
    "chat": Profile(
        "chat",
        (
            Limit("ttft_ms", max=200, percentile=95),
            Limit("output_tok_s", min=1000),
            Limit("gpu_memory_util", min=0.70),
        ),
        "interactive chat: TTFT < 200 ms, > 1,000 tok/s, memory > 70 %",
    ),
    "batch": Profile(
        "batch",
        (
            Limit("ttft_ms", max=1000, percentile=95),
            Limit("output_tok_s", min=5000),
            Limit("gpu_memory_util", min=0.90),
        ),
        "offline batch: TTFT < 1,000 ms, > 5,000 tok/s, memory > 90 %",
    ),
    "realtime": Profile(
        "realtime",
        (
            Limit("ttft_ms", max=50, percentile=95),
            Limit("output_tok_s", min=500),
            Limit("gpu_memory_util", min=0.80),
        ),
        "realtime: TTFT < 50 ms, > 500 tok/s, memory > 80 %",
    ),
}


def load_profile(spec: str) -> Profile:
    """A built-in profile name, or a JSON file ``{"name", "limits": [{"metric", "max"|"min",
    "percentile"?}]}``."""
    if spec in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[spec]
    path = Path(spec)
    if not path.exists():
        raise UsageError(
            f"--profile: {spec!r} is neither a built-in profile "
            f"({', '.join(BUILTIN_PROFILES)}) nor a file"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg})") from None
    limits = []
    for i, raw in enumerate(data.get("limits") or []):
        metric = raw.get("metric")
        if metric not in LIMIT_METRICS:
            raise UsageError(
                f"{path}: limits[{i}].metric must be one of {', '.join(LIMIT_METRICS)}"
            )
        if (raw.get("max") is None) == (raw.get("min") is None):
            raise UsageError(f"{path}: limits[{i}] needs exactly one of max or min")
        limits.append(Limit(metric, raw.get("max"), raw.get("min"), raw.get("percentile")))
    if not limits:
        raise UsageError(f"{path}: no limits")
    return Profile(
        str(data.get("name") or path.stem), tuple(limits), str(data.get("description", ""))
    )


def _measured(results: Results, limit: Limit) -> float | None:
    if limit.metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
        key = f"p{limit.percentile:g}".replace(".", "_") if limit.percentile is not None else "mean"
        # a percentile the run did not compute is "not measured"
        return statistic(results["distributions"].get(limit.metric), key)
    summary = results["summary"]
    if limit.metric == "output_tok_s":
        return float(summary["output_token_throughput_tok_s"])
    if limit.metric == "total_tok_s":
        return float(summary["total_token_throughput_tok_s"])
    gpus = results["telemetry"].get("gpu") or []
    utils = [u for g in gpus if (u := g["memory_util"]) is not None]
    return max(utils) if utils else None


def evaluate_profile(results: Results, profile: Profile) -> SLAVerdict:
    """Pass/fail per limit with the measured value and the margin (positive = headroom)."""
    verdicts: list[LimitVerdict] = []
    for limit in profile.limits:
        value = _measured(results, limit)
        passed: bool | None
        if value is None:
            passed, margin = None, None
        elif limit.max is not None:
            passed, margin = value < limit.max, (limit.max - value) / limit.max
        else:
            assert limit.min is not None
            passed, margin = value > limit.min, (value - limit.min) / limit.min
        verdicts.append(
            {
                "limit": limit.name,
                "metric": limit.metric,
                "measured": value,
                "passed": passed,
                "margin": margin,
            }
        )
    judged = [v["passed"] for v in verdicts if v["passed"] is not None]
    return {
        "profile": profile.name,
        "description": profile.description,
        "passed": all(judged) if judged else None,
        "limits": verdicts,
    }


#: How users perceive the first token: < 100 ms instant, 100-300 fast, 300-1,000 slow,
#: > 1,000 sluggish.
TTFT_BANDS = (
    ("instant", 0.0, 100.0),
    ("fast", 100.0, 300.0),
    ("slow", 300.0, 1000.0),
    ("sluggish", 1000.0, float("inf")),
)


def ttft_bands(ttfts_ms: list[float]) -> TtftBands:
    """Share of requests whose TTFT falls in each perception band (none without a TTFT)."""
    n = len(ttfts_ms)
    if not n:
        return {}

    def share(band: str) -> float:
        _name, lo, hi = next(b for b in TTFT_BANDS if b[0] == band)
        return sum(1 for t in ttfts_ms if lo <= t < hi) / n

    return {
        "instant": share("instant"),
        "fast": share("fast"),
        "slow": share("slow"),
        "sluggish": share("sluggish"),
    }


def cost(results: Results, gpu_hourly_price: float, gpus: int) -> Cost:
    """``(price per hour × GPUs) / (throughput × 3600) × 1e6`` per million tokens (metrics
    spec section 5), and per request."""
    s = results["summary"]
    per_second = gpu_hourly_price * gpus / 3600.0

    def per_million(tok_s: float) -> float | None:
        return per_second / tok_s * 1e6 if tok_s > 0 else None

    rps = s["request_throughput_rps"]
    return {
        "gpu_hourly_price": gpu_hourly_price,
        "gpus": gpus,
        "per_request": per_second / rps if rps > 0 else None,
        "per_million_output_tokens": per_million(s["output_token_throughput_tok_s"]),
        "per_million_total_tokens": per_million(s["total_token_throughput_tok_s"]),
    }
