"""How much of the prompts the server served from its prefix cache (metrics spec section 7,
cached-prompt share), from the server's own per-request counts (pure).

A rerun whose prompts the server has already seen skips most of its prefill: TTFT falls and
throughput rises for a reason that has nothing to do with the configuration measured. The
share is shown with every run and judged against what the workload asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from infermeter.schema.results import PromptCache

#: Cached share, above what the workload shares on purpose, at which a run is flattered.
FLATTER_MARGIN = 0.10
#: A request with at least this share of its prompt cached is a "hit" in the TTFT comparison;
#: one with at most ``MISS_SHARE`` is a miss.
HIT_SHARE = 0.5
MISS_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class PromptCacheCounts:
    """The server's counts over completed requests that reported them."""

    requests_counted: int
    prompt_tokens: int
    cached_tokens: int
    requests_hit: int
    requests_miss: int
    ttft_p50_hit_ms: float | None
    ttft_p50_miss_ms: float | None

    @property
    def cached_share(self) -> float | None:
        if not self.requests_counted or self.prompt_tokens <= 0:
            return None
        return self.cached_tokens / self.prompt_tokens


def prompt_cache_counts(
    n_in: npt.NDArray[np.int64], n_cached: npt.NDArray[np.int64], ttft_ms: npt.NDArray[np.float64]
) -> PromptCacheCounts:
    """Over completed requests, in one order: prompt and cached tokens as the server counted
    them (negative: not reported) and TTFTs (NaN: none).
    cached share = sum(n_cached) / sum(n_in) over requests whose server said both."""
    counted = (n_cached >= 0) & (n_in > 0)
    n = n_in[counted]
    c = np.minimum(n_cached[counted], n)
    t = ttft_ms[counted]
    hit = c >= HIT_SHARE * n
    miss = c <= MISS_SHARE * n
    hit_ttft = t[hit & ~np.isnan(t)]
    miss_ttft = t[miss & ~np.isnan(t)]
    return PromptCacheCounts(
        requests_counted=int(counted.sum()),
        prompt_tokens=int(n.sum()),
        cached_tokens=int(c.sum()),
        requests_hit=int(hit.sum()),
        requests_miss=int(miss.sum()),
        ttft_p50_hit_ms=float(np.median(hit_ttft)) if hit_ttft.size else None,
        ttft_p50_miss_ms=float(np.median(miss_ttft)) if miss_ttft.size else None,
    )


@dataclass(frozen=True, slots=True)
class PromptCacheVerdict:
    """The share, where it came from, and whether it flattered the run."""

    cached_share: float | None
    #: "usage": the per-request counts; "server_metrics": the server's /metrics counters over
    #: the window (no per-request counts); None: the server told nothing.
    source: str | None
    requests_counted: int
    #: The share the workload shares on purpose (a shared prefix), or None when it may share
    #: by its nature (a dataset, a trace) and no expectation is known.
    expected_share: float | None
    flattered: bool
    ttft_p50_hit_ms: float | None
    ttft_p50_miss_ms: float | None
    requests_hit: int

    def to_dict(self) -> PromptCache:
        return {
            "cached_share": self.cached_share,
            "source": self.source,
            "requests_counted": self.requests_counted,
            "expected_share": self.expected_share,
            "flattered": self.flattered,
            "ttft_p50_hit_ms": self.ttft_p50_hit_ms,
            "ttft_p50_miss_ms": self.ttft_p50_miss_ms,
            "requests_hit": self.requests_hit,
            "ttft_effect": ttft_effect(self) or None,
        }


def expected_share(
    workload_kind: str | None,
    shared_prefix_tokens: int,
    mean_input_tokens: float | None,
    trace_reuse_share: float | None = None,
) -> float | None:
    """What the workload shares on purpose: a synthetic prompt shares only its
    ``--shared-prefix-tokens``; a replayed trace what its prefix blocks reuse (as an
    unbounded prefix cache would serve it); a dataset may share by its nature (unknown: None)."""
    if workload_kind == "trace":
        return trace_reuse_share
    if workload_kind == "synthetic":
        if shared_prefix_tokens and mean_input_tokens:
            return min(shared_prefix_tokens / mean_input_tokens, 1.0)
        return 0.0
    return None


def judge_prompt_cache(
    counts: PromptCacheCounts,
    expected: float | None,
    server_metrics_share: float | None = None,
) -> PromptCacheVerdict:
    """Flattered: the cached share exceeds what the workload shares on purpose by more than
    ``FLATTER_MARGIN`` (for a dataset, whose sharing is unknown: more than the margin at all)."""
    share = counts.cached_share
    source: str | None = "usage" if share is not None else None
    if share is None and server_metrics_share is not None:
        share, source = server_metrics_share, "server_metrics"
    flattered = share is not None and share > (expected or 0.0) + FLATTER_MARGIN
    return PromptCacheVerdict(
        cached_share=share,
        source=source,
        requests_counted=counts.requests_counted,
        expected_share=expected,
        flattered=flattered,
        ttft_p50_hit_ms=counts.ttft_p50_hit_ms,
        ttft_p50_miss_ms=counts.ttft_p50_miss_ms,
        requests_hit=counts.requests_hit,
    )


def ttft_effect(v: PromptCacheVerdict) -> str:
    """What the cache did to TTFT, in words ("" where the run cannot tell)."""
    hit, miss = v.ttft_p50_hit_ms, v.ttft_p50_miss_ms
    if hit is not None and miss is not None:
        return (
            f"TTFT p50 {hit:,.1f} ms for mostly-cached prompts against {miss:,.1f} ms for the rest"
        )
    if hit is not None:
        return (
            f"TTFT p50 {hit:,.1f} ms with {v.requests_hit} of {v.requests_counted} prompts "
            "mostly cached"
        )
    return ""
