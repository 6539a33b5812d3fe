"""Human labels for result fields (one place, shared by every renderer)."""

SUMMARY_LABELS: dict[str, str] = {
    "requests_sent": "requests sent",
    "requests_completed": "requests completed",
    "requests_failed": "requests failed",
    "duration_s": "measured window D (s)",
    "request_throughput_rps": "request throughput (req/s)",
    "request_throughput_rpm": "request throughput (req/min)",
    "output_token_throughput_tok_s": "output token throughput (tok/s)",
    "input_token_throughput_tok_s": "input token throughput (tok/s)",
    "total_token_throughput_tok_s": "total token throughput (tok/s)",
    "achieved_concurrency": "achieved concurrency (Little's law)",
    "target_concurrency": "target concurrency",
    "target_rate_rps": "target rate (req/s)",
    "achieved_send_rate_rps": "achieved send rate (req/s)",
    "goodput_rps": "goodput (req/s meeting every SLO)",
    "slo_attainment": "SLO attainment",
    "error_rate": "error rate",
}

DIST_LABELS: dict[str, str] = {
    "ttft_ms": "TTFT (ms)",
    "ttft_incl_queue_ms": "TTFT incl. client queue (ms)",
    "tpot_ms": "TPOT (ms)",
    "itl_ms": "ITL per token (ms)",
    "e2e_ms": "E2E latency (ms)",
    "inter_chunk_ms": "inter-chunk (ms)",
    "queue_delay_ms": "client queue delay (ms)",
    "connect_ms": "connection set-up (ms)",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "prefill_tps": "prefill TPS (tok/s)",
    "decode_tps": "decode TPS (tok/s)",
    "request_tps": "per-request TPS (tok/s)",
}
