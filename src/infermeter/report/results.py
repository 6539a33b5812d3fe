"""``results.json``: the versioned, secret-free result of a run, built from its metrics."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from infermeter.metrics.aggregate import DISTRIBUTION_NAMES, PERCENTILE_METHOD, RunMetrics
from infermeter.metrics.client import client_warnings, workload_warnings

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
    result: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "infermeter_version": meta.get("infermeter_version"),
        "run": {
            "id": meta.get("run_id"),
            "started_at": meta.get("started_at"),
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
        },
        "slo": _slo(metrics),
        "client": {"workers": len(clients), "per_worker": clients, "in_process": in_process},
        "telemetry": {"notes": list(status.get("telemetry_notes") or []), **(telemetry or {})},
        "warnings": (
            []
            if in_process
            else client_warnings(
                clients,
                metrics.client_delay_p99_ms,
                capped=bool((meta.get("config") or {}).get("max_concurrency")),
            )
        )
        + workload_warnings(meta.get("workload"), metrics.input_tokens_mismatch),
    }
    return result


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
