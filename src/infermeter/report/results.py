"""``results.json``: the versioned, secret-free result of a run, built from its metrics."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from infermeter.load.streams import stream_warnings
from infermeter.metrics.aggregate import DISTRIBUTION_NAMES, PERCENTILE_METHOD, RunMetrics
from infermeter.metrics.cache import PromptCacheVerdict, expected_share, judge_prompt_cache
from infermeter.metrics.client import (
    cache_warnings,
    client_warnings,
    not_streamed_warnings,
    spare_cores,
    stamp_warnings,
    workload_warnings,
)
from infermeter.report.labels import counted

#: Bumped when a field changes meaning or is removed; adding fields keeps it.
RESULTS_SCHEMA_VERSION = 1


def build_results(
    meta: dict[str, Any],
    metrics: RunMetrics,
    status: dict[str, Any],
    telemetry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    summary = asdict(metrics.summary)
    clients = list(status.get("client") or [])
    in_process = (meta.get("server") or {}).get("kind") == "transformers"
    cfg = meta.get("config") or {}
    cache = prompt_cache(meta, metrics, telemetry)
    cap = cfg.get("max_concurrency")
    # An open loop's cap makes requests wait by design, but only once it is reached.
    cap_reached = cap is not None and metrics.peak_in_flight >= int(cap)
    result: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "infermeter_version": meta.get("infermeter_version"),
        "run": {
            "id": meta.get("run_id"),
            "started_at": meta.get("started_at"),
            "seed_drawn": bool(meta.get("seed_drawn")),
            **status,
        },
        "server": meta.get("server"),
        "workload": meta.get("workload"),
        "config": meta.get("config"),
        "summary": summary,
        "distributions": {
            name: metrics.distributions[name].to_dict() for name in DISTRIBUTION_NAMES
        },
        "percentile_method": PERCENTILE_METHOD,
        "errors": {"by_kind": metrics.errors_by_kind, "examples": metrics.error_examples},
        "token_sources": metrics.token_sources,
        "input_tokens_mismatch": metrics.input_tokens_mismatch,
        "server_reported": {
            "tpot_ms": metrics.server_tpot_ms.to_dict(),
            "prompt_ms": metrics.server_prompt_ms.to_dict(),
            "ttft_outside_prompt_ms": metrics.ttft_outside_prompt_ms.to_dict(),
            "tpot_agreement": metrics.server_tpot_agreement.to_dict(),
        },
        "prompt_cache": cache.to_dict(),
        "shared_first_stamp": metrics.shared_first.to_dict(),
        "peak_in_flight": metrics.peak_in_flight,
        "not_streamed": metrics.not_streamed,
        "slo": _slo(metrics),
        "client": {
            "workers": len(clients),
            "per_worker": clients,
            "in_process": in_process,
            "queue_delay_p99_ms": metrics.client_delay_p99_ms,
            "max_concurrency_reached": cap_reached,
        },
        "telemetry": {"notes": list(status.get("telemetry_notes") or []), **(telemetry or {})},
        "warnings": (
            []
            if in_process
            else client_warnings(
                clients,
                metrics.client_delay_p99_ms,
                capped=cap_reached,
                spare_cores=spare_cores((telemetry or {}).get("host") or {}),
            )
            + stamp_warnings(metrics.shared_first)
        )
        + not_streamed_warnings(metrics.not_streamed, int(summary["requests_completed"]))
        + workload_warnings(meta.get("workload"), metrics.input_tokens_mismatch)
        + cache_warnings(cache)
        + stream_warnings(
            status.get("concurrency_asked"), (meta.get("config") or {}).get("concurrency")
        )
        + preflight_warnings(meta.get("preflight_failures") or []),
    }
    return result


def preflight_warnings(failures: list[str]) -> list[str]:
    """A pre-flight request that needed retries: the server fails some of what it is sent."""
    if not failures:
        return []
    return [
        f"the pre-flight request failed {counted(len(failures), 'time')} before it succeeded "
        f"(last: {failures[-1]}): expect failed requests in the run"
    ]


def prompt_cache(
    meta: dict[str, Any], metrics: RunMetrics, telemetry: dict[str, Any] | None
) -> PromptCacheVerdict:
    """The run's cached-prompt share, judged against what its workload shares on purpose."""
    workload = meta.get("workload") or {}
    expected = expected_share(
        workload.get("kind"),
        int(workload.get("shared_prefix_tokens") or 0),
        metrics.distributions["input_tokens"].mean,
    )
    server = (telemetry or {}).get("server") or {}
    return judge_prompt_cache(metrics.prompt_cache, expected, server.get("prefix_cache_hit_share"))


def _slo(metrics: RunMetrics) -> dict[str, Any] | None:
    rep = metrics.slo
    if rep is None:
        return None
    return {
        "passed": rep.passed,
        "attainment": rep.attainment,
        "goodput_rps": rep.goodput_rps,
        "requests_meeting": rep.requests_meeting,
        "requests_total": rep.requests_total,
        "terms": [asdict(t) for t in rep.terms],
    }
