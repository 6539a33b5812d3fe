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
#: TTFT spent outside the server's own prompt processing, as a multiple of it, and at least
#: this many milliseconds, before it is a finding.
OUTSIDE_PROMPT_X = 3.0
OUTSIDE_PROMPT_MS = 50.0


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
    reported = results.get("server_reported") or {}
    outside = (reported.get("ttft_outside_prompt_ms") or {}).get("p50")
    prompt = (reported.get("prompt_ms") or {}).get("p50")
    if (
        outside is not None
        and prompt is not None
        and outside >= OUTSIDE_PROMPT_MS
        and outside >= OUTSIDE_PROMPT_X * prompt
    ):
        llama = ((results.get("server") or {}).get("kind") or "") == "llama.cpp"
        findings.append(
            {
                "rule": "ttft_outside_prompt",
                "severity": "high",
                "message": f"most of TTFT passes before the server starts the prompt "
                f"({outside:,.0f} ms at p50 against {prompt:,.0f} ms of prompt processing, by the "
                "server's own timings): requests wait in its queue or front end, not on the GPU"
                + (
                    "; with slots free, llama.cpp's host-RAM prompt cache is the usual cause "
                    "(--cache-ram 0 disables it), else add slots (-np)"
                    if llama
                    else ""
                ),
                "evidence": {
                    "ttft_outside_prompt_p50_ms": outside,
                    "server_prompt_p50_ms": prompt,
                    "ttft_p50_ms": ttft_p50,
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
