"""A server's Prometheus ``/metrics``, parsed with the Prometheus client library's own text
parser, mapped to one vocabulary per engine (vLLM, SGLang, TGI, llama.cpp); every numeric
series is also kept raw, so an engine without a mapping still leaves its figures."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

#: Standard name -> metric family names to look for, per engine, first found wins; a name may
#: pick one label's series (``family{label=value}``), else every label set is summed.
#: Gauges give their value; counters their running total; histograms their sum and count
#: (so a window's mean is Δsum / Δcount).
MAPPINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "vllm": {
        "requests_running": ("vllm:num_requests_running",),
        "requests_waiting": ("vllm:num_requests_waiting",),
        # Why requests wait (0.3x on): no KV-cache room, or deferred by the scheduler.
        "requests_waiting_capacity": ("vllm:num_requests_waiting_by_reason{reason=capacity}",),
        "requests_waiting_deferred": ("vllm:num_requests_waiting_by_reason{reason=deferred}",),
        "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        "prefix_cache_queries": ("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"),
        "prefix_cache_hits": ("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
        "prompt_tokens": ("vllm:prompt_tokens",),
        "prompt_tokens_cached": ("vllm:prompt_tokens_cached",),
        "generation_tokens": ("vllm:generation_tokens",),
        "preemptions": ("vllm:num_preemptions",),
        "finished_length": ("vllm:request_success{finished_reason=length}",),
        "finished_stop": ("vllm:request_success{finished_reason=stop}",),
        "finished_abort": ("vllm:request_success{finished_reason=abort}",),
        "finished_error": ("vllm:request_success{finished_reason=error}",),
        "ttft_seconds": ("vllm:time_to_first_token_seconds",),
        # Per-request TPOT (the spec's); older servers only had per-token gaps.
        "tpot_seconds": (
            "vllm:request_time_per_output_token_seconds",
            "vllm:time_per_output_token_seconds",
            "vllm:inter_token_latency_seconds",
        ),
        "itl_seconds": ("vllm:inter_token_latency_seconds",),
        "e2e_seconds": ("vllm:e2e_request_latency_seconds",),
        "queue_seconds": ("vllm:request_queue_time_seconds",),
        "prefill_seconds": ("vllm:request_prefill_time_seconds",),
        "decode_seconds": ("vllm:request_decode_time_seconds",),
        "inference_seconds": ("vllm:request_inference_time_seconds",),
        # Tokens per engine step (prefill and decode together): how full the batches ran.
        "iteration_tokens": ("vllm:iteration_tokens_total",),
        # vLLM's own estimates of the work done (zero on CPU): its MFU and MBU numerators.
        "estimated_flops": ("vllm:estimated_flops_per_gpu",),
        "estimated_read_bytes": ("vllm:estimated_read_bytes_per_gpu",),
    },
    "sglang": {
        "requests_running": ("sglang:num_running_reqs",),
        "requests_waiting": ("sglang:num_queue_reqs",),
        "kv_cache_usage": ("sglang:token_usage",),
        "prefix_cache_hit_rate": ("sglang:cache_hit_rate",),
        "prompt_tokens": ("sglang:prompt_tokens",),
        "generation_tokens": ("sglang:generation_tokens",),
        "ttft_seconds": ("sglang:time_to_first_token_seconds",),
        "tpot_seconds": (
            "sglang:inter_token_latency_seconds",
            "sglang:time_per_output_token_seconds",
        ),
        "e2e_seconds": ("sglang:e2e_request_latency_seconds",),
    },
    "tgi": {
        "requests_running": ("tgi_batch_current_size",),
        "requests_waiting": ("tgi_queue_size",),
        "generation_tokens": ("tgi_request_generated_tokens",),
        "tpot_seconds": ("tgi_request_mean_time_per_token_duration",),
        "e2e_seconds": ("tgi_request_duration",),
        "queue_seconds": ("tgi_request_queue_duration",),
    },
    "llama.cpp": {
        "requests_running": ("llamacpp:requests_processing",),
        "requests_waiting": ("llamacpp:requests_deferred",),
        "kv_cache_usage": ("llamacpp:kv_cache_usage_ratio",),
        "prefix_cache_hits": ("llamacpp:prompt_tokens_cached",),
        "prompt_tokens": ("llamacpp:prompt_tokens",),
        "generation_tokens": ("llamacpp:tokens_predicted",),
    },
}

#: Info series (a gauge of 1 whose labels are the facts), per engine: kept as label maps.
INFO_FAMILIES: dict[str, dict[str, str]] = {
    "vllm": {"cache_config": "vllm:cache_config_info"},
}

MAX_RAW_SERIES = 2000


def detect_kind(families: dict[str, Any]) -> str:
    for prefix, kind in (
        ("vllm:", "vllm"),
        ("sglang:", "sglang"),
        ("llamacpp:", "llama.cpp"),
        ("tgi_", "tgi"),
    ):
        if any(name.startswith(prefix) for name in families):
            return kind
    return "unknown"


def parse_exposition(text: str) -> dict[str, Any]:
    """Metric families by name: ``{"type", "samples": [(sample_name, labels, value)]}``."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = {
            "type": fam.type,
            "samples": [(s.name, dict(s.labels), float(s.value)) for s in fam.samples],
        }
    return out


def _sum(samples: list[tuple[str, dict[str, str], float]], suffix: str = "") -> float | None:
    """Sum over label sets (several models, engines or ranks) of one sample kind."""
    values = [v for name, _labels, v in samples if not suffix or name.endswith(suffix)]
    return sum(values) if values else None


def _selector(name: str) -> tuple[str, tuple[str, str] | None]:
    """``family{label=value}`` → (family, (label, value)); a bare name selects every series."""
    if not name.endswith("}") or "{" not in name:
        return name, None
    family, _, rest = name[:-1].partition("{")
    label, _, value = rest.partition("=")
    return family, (label, value)


def map_families(families: dict[str, Any], kind: str) -> dict[str, float]:
    """The engine's series in the standard vocabulary (absent ones are left out)."""
    mapped: dict[str, float] = {}
    for std, names in MAPPINGS.get(kind, {}).items():
        for name in names:
            family, only = _selector(name)
            fam = families.get(family)
            if fam is None:
                continue
            samples = fam["samples"]
            if only is not None:
                samples = [x for x in samples if x[1].get(only[0]) == only[1]]
                if not samples:
                    continue
            fam = {"type": fam["type"], "samples": samples}
            if fam["type"] == "histogram":
                s = _sum(fam["samples"], "_sum")
                c = _sum(fam["samples"], "_count")
                if s is not None and c is not None:
                    mapped[f"{std}_sum"] = s
                    mapped[f"{std}_count"] = c
            elif fam["type"] == "counter":
                # A zero total is a value; only a counter without _total samples is summed.
                v = _sum(fam["samples"], "_total")
                if v is None:
                    v = _sum(fam["samples"])
                if v is not None:
                    mapped[std] = v
            else:
                v = _sum(fam["samples"])
                if v is not None:
                    mapped[std] = v
            break
    return mapped


def info_labels(families: dict[str, Any], kind: str) -> dict[str, dict[str, str]]:
    """The engine's info series as label maps (the first series of each)."""
    out: dict[str, dict[str, str]] = {}
    for key, family in INFO_FAMILIES.get(kind, {}).items():
        fam = families.get(family)
        if fam and fam["samples"]:
            out[key] = dict(fam["samples"][0][1])
    return out


def slot_use(table: list[Any]) -> dict[str, int]:
    """``active`` busy slots, ``span`` ids from the lowest to the highest busy one, ``runs``
    of consecutive busy ids (both 0 when none is busy), ``total`` slots. Without a unified
    KV cache llama.cpp decodes each run as a forward pass of its own."""
    busy = sorted(
        int(s["id"])
        for s in table
        if isinstance(s, dict) and s.get("is_processing") and isinstance(s.get("id"), int)
    )
    return {
        "active": len(busy),
        "span": (busy[-1] - busy[0] + 1) if busy else 0,
        "runs": sum(1 for k, b in enumerate(busy) if k == 0 or b != busy[k - 1] + 1),
        "total": len(table),
    }


def raw_series(families: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in families.values():
        for name, labels, value in fam["samples"]:
            if len(out) >= MAX_RAW_SERIES:
                return out
            key = name + (
                "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
                if labels
                else ""
            )
            out[key] = value
    return out


class PrometheusSampler:
    name = "server"

    def __init__(
        self,
        origin: str,
        kind: str = "unknown",
        period_s: float = 1.0,
        headers: dict[str, str] | None = None,
        keep_raw: bool = True,
    ) -> None:
        self.url = origin.rstrip("/") + "/metrics"
        #: llama.cpp's slot table: which slots are busy (its decode step reads the KV cache of
        #: every slot between the lowest and the highest busy one).
        self.slots_url: str | None = origin.rstrip("/") + "/slots"
        self.kind = kind
        self.period_s = period_s
        self.headers = dict(headers or {})
        self.keep_raw = keep_raw

    def _fetch(self) -> str:
        req = urllib.request.Request(self.url, headers=self.headers)
        with urllib.request.urlopen(req, timeout=5) as resp:
            return str(resp.read().decode("utf-8", "replace"))

    def start(self) -> str | None:
        try:
            import prometheus_client.parser  # noqa: F401
        except ImportError:
            return "server metrics off: prometheus-client is not installed"
        try:
            families = parse_exposition(self._fetch())
        except (urllib.error.URLError, OSError) as exc:
            return f"server metrics off: {self.url} did not answer ({exc})"
        except ValueError as exc:
            return f"server metrics off: {self.url} is not Prometheus text ({exc})"
        if self.kind not in MAPPINGS:
            self.kind = detect_kind(families)
        return None

    def sample(self) -> dict[str, Any]:
        families = parse_exposition(self._fetch())
        out: dict[str, Any] = {"kind": self.kind, "mapped": map_families(families, self.kind)}
        if info := info_labels(families, self.kind):
            out["info"] = info
        if self.kind == "llama.cpp" and self.slots_url is not None:
            slots = self._slots()
            if slots is not None:
                out["slots"] = slots
        if self.keep_raw:
            out["raw"] = raw_series(families)
        return out

    def _slots(self) -> dict[str, int] | None:
        """Busy slots and the span of ids they cover; None (and no more asking) where the
        server does not list its slots (``--no-slots``)."""
        assert self.slots_url is not None
        req = urllib.request.Request(self.slots_url, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                table = orjson.loads(resp.read())
        except (urllib.error.URLError, OSError, orjson.JSONDecodeError):
            self.slots_url = None
            return None
        if not isinstance(table, list):
            self.slots_url = None
            return None
        return slot_use(table)

    def close(self) -> None:
        pass
