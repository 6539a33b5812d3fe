"""Rules over the evidence that name a bottleneck and a remedy; each finding cites the numbers
that triggered it (pure)."""

from __future__ import annotations

from typing import Any

#: Thresholds, named so the docs and tests can refer to them.
TTFT_X_BOUND_QUEUEING = 5.0
WAITING_MEAN_QUEUEING = 1.0
LOW_MBU = 0.3
SMALL_BATCH = 4
KV_FULL = 0.95
CLIENT_CPU = 0.85


def diagnose(results: dict[str, Any], eff: dict[str, Any] | None) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []
    s, dist = results["summary"], results["distributions"]
    server = (results.get("telemetry") or {}).get("server") or {}
    waiting = (server.get("requests_waiting") or {}).get("mean")
    kv_max = (server.get("kv_cache_usage") or {}).get("max")
    ttft_p50 = dist["ttft_ms"].get("p50")

    if (
        ttft_p50 is not None
        and waiting is not None
        and waiting >= WAITING_MEAN_QUEUEING
        and (eff is None or eff.get("ttft_x_bound", TTFT_X_BOUND_QUEUEING) >= TTFT_X_BOUND_QUEUEING)
    ):
        findings.append(
            {
                "rule": "queueing",
                "severity": "high",
                "message": "requests wait in the server's queue before prefill: add replicas, "
                "enable chunked prefill, or lower the load",
                "evidence": {
                    "ttft_p50_ms": ttft_p50,
                    "server_waiting_mean": waiting,
                    "ttft_x_bound": (eff or {}).get("ttft_x_bound"),
                },
            }
        )
    if (
        eff
        and eff.get("mbu") is not None
        and eff["mbu"] < LOW_MBU
        and eff["batch_per_replica"] <= SMALL_BATCH
    ):
        findings.append(
            {
                "rule": "launch_overhead",
                "severity": "medium",
                "message": "small batches use little of the memory bandwidth: kernel-launch and "
                "CPU "
                "overhead dominate; use CUDA graphs or a serving engine, or batch more",
                "evidence": {
                    "mbu": eff["mbu"],
                    "batch_per_replica": eff["batch_per_replica"],
                    "tpot_x_bound": eff.get("tpot_x_bound"),
                },
            }
        )
    if (
        kv_max is not None
        and kv_max >= KV_FULL
        and ((server.get("requests_waiting") or {}).get("max", 0) >= 1)
    ):
        findings.append(
            {
                "rule": "kv_cache_full",
                "severity": "high",
                "message": "the KV cache is full while requests wait: quantise the KV cache (fp8), "
                "use paged attention / prefix caching, or add GPUs",
                "evidence": {
                    "kv_cache_usage_max": kv_max,
                    "server_waiting_max": server["requests_waiting"]["max"],
                },
            }
        )
    client = results.get("client") or {}
    workers = client.get("per_worker") or []
    busy = [w for w in workers if w.get("cpu_util", 0) >= CLIENT_CPU]
    # An in-process engine shares the client's process: its CPU is the model's, not the load's.
    if (busy or results.get("warnings")) and not client.get("in_process"):
        findings.append(
            {
                "rule": "client_bottleneck",
                "severity": "high" if busy else "low",
                "message": "the load generator, not the server, may have limited this run: use "
                "more "
                "--workers (or --cluster) and check the warnings",
                "evidence": {
                    "busiest_worker_cpu": max((w["cpu_util"] for w in workers), default=None),
                    "warnings": list(results.get("warnings") or []),
                },
            }
        )
    if s["requests_failed"]:
        kinds = (results.get("errors") or {}).get("by_kind") or {}
        findings.append(
            {
                "rule": "errors",
                "severity": "high",
                "message": "requests failed: " + ", ".join(f"{k} ×{v}" for k, v in kinds.items()),
                "evidence": {"error_rate": s["error_rate"], "by_kind": kinds},
            }
        )
    return findings
