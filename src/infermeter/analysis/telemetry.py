"""Telemetry over a run's measured window: means, peaks and rates (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from infermeter.schema.results import (
    BusiestOther,
    CoreSpeed,
    GpuTelemetry,
    HostTelemetry,
    ServerTelemetry,
    SlotSpread,
    Stats,
    Telemetry,
)
from infermeter.telemetry.host import SLOW_CORE


def _stats(values: Sequence[float]) -> Stats | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    return {
        "mean": float(arr.mean()),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
        "samples": int(arr.size),
    }


def _delta(first: dict[str, float], last: dict[str, float], key: str) -> float | None:
    if key in first and key in last:
        return last[key] - first[key]
    return None


def _busiest_other(tops: Sequence[dict[str, Any]]) -> BusiestOther | None:
    """The other process that was busiest most often, with its mean CPU over those scans
    (percent of one core)."""
    by: dict[tuple[int, str], list[float]] = {}
    for t in tops:
        by.setdefault((int(t["pid"]), str(t["name"])), []).append(float(t["cpu_percent"]))
    if not by:
        return None
    (pid, name), cpus = max(by.items(), key=lambda kv: sum(kv[1]))
    return {
        "pid": pid,
        "name": name,
        "cpu_percent_mean": sum(cpus) / len(cpus),
        "scans_busiest": len(cpus),
        "scans": len(tops),
    }


def slot_spread(busy: Sequence[dict[str, int]]) -> SlotSpread:
    """Over the samples with a busy slot: how many were busy, how wide a range of slot ids
    they covered, and in how many runs of consecutive ids (llama.cpp without a unified KV
    cache decodes each run as a forward pass of its own)."""
    active = [float(s["active"]) for s in busy]
    span = [float(s["span"]) for s in busy]
    # runs of consecutive busy ids: absent from telemetry written before they were sampled
    runs = [float(s["runs"]) for s in busy if "runs" in s]
    n = len(busy)
    return {
        "active_mean": sum(active) / n,
        "span_mean": sum(span) / n,
        "span_max": max(span),
        "runs_mean": sum(runs) / len(runs) if runs else None,
        "runs_max": max(runs) if runs else None,
        "total": float(busy[-1].get("total") or 0),
        "samples": float(n),
        # the second half of the window against the first: a span that grows as the server ages
        "span_mean_late": sum(span[n // 2 :]) / max(n - n // 2, 1),
        "span_mean_early": sum(span[: max(n // 2, 1)]) / max(n // 2, 1),
    }


#: Per-request times the server keeps as histograms (their window means are reported).
SERVER_TIMES = (
    "ttft_seconds",
    "tpot_seconds",
    "itl_seconds",
    "e2e_seconds",
    "queue_seconds",
    "prefill_seconds",
    "decode_seconds",
    "inference_seconds",
)
#: Counters whose growth over the window is reported.
SERVER_COUNTS = (
    "preemptions",
    "prompt_tokens_cached",
    "finished_length",
    "finished_stop",
    "finished_abort",
    "finished_error",
)


def summarize_telemetry(samples: Sequence[dict[str, Any]], start_ns: int, end_ns: int) -> Telemetry:
    """Summaries of the samples taken inside [start_ns, end_ns] (the measured window)."""
    inside = [s for s in samples if start_ns <= s.get("t_ns", -1) <= end_ns]
    out: Telemetry = {}
    host = [s for s in inside if s.get("source") == "host"]
    if host:
        out["host"] = _host(host)
    gpu = [s for s in inside if s.get("source") == "gpu"]
    if gpu:
        out["gpu"] = _gpus(gpu)
    server = [s for s in inside if s.get("source") == "server"]
    bracket = _bracket([s for s in samples if s.get("source") == "server"], start_ns, end_ns)
    if bracket is not None:
        out["server"] = _server(server, bracket)
    return out


def _bracket(
    samples: Sequence[dict[str, Any]], start_ns: int, end_ns: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The samples a counter's growth over [start_ns, end_ns] is read between: the last
    at or before the start and the first at or after the end, where taken (the recorder
    takes one before the load and one after it), else the first and last inside; None
    when neither end has one. A counter sampled each second would otherwise miss up to a
    second at each end, and all of a run shorter than two periods."""
    before = [s for s in samples if s.get("t_ns", -1) <= start_ns]
    after = [s for s in samples if s.get("t_ns", -1) >= end_ns]
    inside = [s for s in samples if start_ns <= s.get("t_ns", -1) <= end_ns]
    first = before[-1] if before else (inside[0] if inside else None)
    last = after[0] if after else (inside[-1] if inside else None)
    return (first, last) if first is not None and last is not None else None


def _host(host: Sequence[dict[str, Any]]) -> HostTelemetry:
    out: HostTelemetry = {
        "cpu_percent": _stats([s["cpu_percent"] for s in host]),
        "memory_used_bytes": _stats([s["memory_used_bytes"] for s in host]),
        "memory_total_bytes": host[-1]["memory_total_bytes"],
        "client_cpu_percent": _stats([s["client_cpu_percent"] for s in host]),
        "client_rss_bytes": _stats([s["client_rss_bytes"] for s in host]),
        "cpu_count": host[-1].get("cpu_count"),
    }
    local = [s["local_server_cpu_percent"] for s in host if "local_server_cpu_percent" in s]
    if local:
        out["local_server_cpu_percent"] = _stats(local)
        out["local_server_rss_bytes"] = _stats(
            [s["local_server_rss_bytes"] for s in host if "local_server_rss_bytes" in s]
        )
    busiest = _busiest_other([s["busiest_other"] for s in host if s.get("busiest_other")])
    if busiest is not None:
        out["busiest_other"] = busiest
    steal = [s["steal_percent"] for s in host if "steal_percent" in s]
    if steal:
        out["steal_percent"] = _stats(steal)
    speed = core_speed([s["core_probe_us"] for s in host if "core_probe_us" in s])
    if speed is not None:
        out["core_speed"] = speed
    pinned = core_speed([s["server_core_probe_us"] for s in host if "server_core_probe_us" in s])
    if pinned is not None:
        out["server_core_speed"] = pinned
    return out


#: The percentile of a set of core probe readings taken as their fast level.
FAST_PERCENTILE = 10


def fast_level(probe_us: Sequence[float] | npt.NDArray[np.float64]) -> float:
    """The fast level of core probe readings (their 10th percentile): what the core does
    when nothing slows it, robust to the odd reading quicker than that."""
    return float(np.percentile(np.asarray(probe_us, dtype=float), FAST_PERCENTILE))


def slow_readings(probe_us: npt.NDArray[np.float64], fast: float) -> npt.NDArray[np.bool_]:
    """Which readings are slow: ``SLOW_CORE`` × the fast level or more."""
    return np.asarray(probe_us >= SLOW_CORE * fast)


def core_speed(probe_us: Sequence[float]) -> CoreSpeed | None:
    """The window's probe readings against its own fast level: a window slow throughout
    reads as its own fast level, so compare windows by their medians too. A reading of 0
    (a thread clock too coarse for the probe) says nothing and is left out."""
    arr = np.asarray([v for v in probe_us if v > 0], dtype=float)
    if not arr.size:
        return None
    fast = fast_level(arr)
    return {
        "fast_us": fast,
        "p50_us": float(np.percentile(arr, 50)),
        "p95_us": float(np.percentile(arr, 95)),
        "slow_share": float(np.mean(slow_readings(arr, fast))),
        "samples": int(arr.size),
    }


def _gpus(gpu: Sequence[dict[str, Any]]) -> list[GpuTelemetry]:
    per: dict[int, dict[str, list[float]]] = {}
    for s in gpu:
        for g in s["gpus"]:
            d = per.setdefault(g["index"], {"util": [], "mem": [], "power": [], "total": []})
            d["util"].append(g["util_percent"])
            d["mem"].append(g["memory_used_bytes"])
            d["total"].append(g["memory_total_bytes"])
            if "power_w" in g:
                d["power"].append(g["power_w"])
    return [
        {
            "index": i,
            "util_percent": _stats(d["util"]),
            "memory_used_bytes": _stats(d["mem"]),
            "memory_total_bytes": int(d["total"][-1]) if d["total"] else None,
            "memory_util": (max(d["mem"]) / d["total"][-1]) if d["total"] else None,
            "power_w": _stats(d["power"]),
        }
        for i, d in sorted(per.items())
    ]


#: Gauges summarised over the window (mean, p95, max).
SERVER_GAUGES = (
    "requests_running",
    "requests_waiting",
    "requests_waiting_capacity",
    "requests_waiting_deferred",
    "kv_cache_usage",
    "prefix_cache_hit_rate",
)


def _server(
    server: Sequence[dict[str, Any]], bracket: tuple[dict[str, Any], dict[str, Any]]
) -> ServerTelemetry:
    """Gauges over the samples inside the window (``server``), counters' growth between
    the ``bracket`` samples around it."""
    first, last = bracket[0]["mapped"], bracket[1]["mapped"]
    span_s = (bracket[1]["t_ns"] - bracket[0]["t_ns"]) / 1e9
    mapped = [s["mapped"] for s in server]
    # Keys made from the engine vocabulary's names (a test holds them to ServerTelemetry's).
    summary: dict[str, Any] = {"kind": bracket[1].get("kind"), "samples": len(server)}
    for key in SERVER_GAUGES:
        vals = [m[key] for m in mapped if key in m]
        if vals:
            summary[key] = _stats(vals)
    # Means over the requests the server finished inside the window, by its own clocks.
    for key in SERVER_TIMES:
        ds, dc = _delta(first, last, f"{key}_sum"), _delta(first, last, f"{key}_count")
        if ds is not None and dc:
            summary[f"{key.removesuffix('_seconds')}_mean_ms"] = 1e3 * ds / dc
    for key in SERVER_COUNTS:
        grew = _delta(first, last, key)
        if grew is not None:
            summary[key] = grew
    ds = _delta(first, last, "iteration_tokens_sum")
    dc = _delta(first, last, "iteration_tokens_count")
    if ds is not None and dc:
        summary["tokens_per_step_mean"] = ds / dc
        if span_s > 0:
            summary["steps_per_s"] = dc / span_s
    for key in ("estimated_flops", "estimated_read_bytes"):
        done = _delta(first, last, key)
        if done is not None and span_s > 0:
            summary[f"{key}_per_s"] = done / span_s
    info = bracket[1].get("info")
    if info:
        summary["info"] = info
    hits = _delta(first, last, "prefix_cache_hits")
    queries = _delta(first, last, "prefix_cache_queries")
    prompt = _delta(first, last, "prompt_tokens")
    if hits is not None and queries:
        summary["prefix_cache_hit_share"] = hits / queries
    elif hits is not None and prompt is not None and (hits + prompt) > 0:
        # llama.cpp counts prompt tokens processed apart from those reused from cache.
        summary["prefix_cache_hit_share"] = hits / (hits + prompt)
    slots = [s["slots"] for s in server if s.get("slots") and s["slots"].get("active")]
    if slots:
        summary["slots"] = slot_spread(slots)
    gen = _delta(first, last, "generation_tokens")
    if gen is not None and span_s > 0:
        summary["generation_tokens_per_s"] = gen / span_s
    return cast(ServerTelemetry, summary)


def server_summary_keys() -> frozenset[str]:
    """Every key :func:`_server` can write (held to ServerTelemetry by a test)."""
    return frozenset(
        {
            "kind",
            "samples",
            *SERVER_GAUGES,
            *(f"{k.removesuffix('_seconds')}_mean_ms" for k in SERVER_TIMES),
            *SERVER_COUNTS,
            "tokens_per_step_mean",
            "steps_per_s",
            "estimated_flops_per_s",
            "estimated_read_bytes_per_s",
            "info",
            "prefix_cache_hit_share",
            "slots",
            "generation_tokens_per_s",
        }
    )
