"""Was the client the bottleneck? Verdicts from the client's own statistics (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: A worker process busier than this share of one core is saturated or close to it.
CPU_SATURATED = 0.85
#: Event-loop lag (p99) beyond which arrival stamps may be late by as much.
LOOP_LAG_MS = 5.0
#: Client queue delay (p99) beyond which requests left noticeably after they were due.
QUEUE_DELAY_MS = 5.0


def client_warnings(
    workers: Sequence[Mapping[str, Any]],
    queue_delay_p99_ms: float | None,
    *,
    capped: bool = False,
) -> list[str]:
    """One sentence per finding, each with the numbers that triggered it."""
    out: list[str] = []
    for w in workers:
        if w["cpu_util"] >= CPU_SATURATED:
            out.append(
                f"client worker {w['worker']} used {100 * w['cpu_util']:.0f} % of a core: the "
                "load generator may have limited this run; use more --workers"
            )
        if w["loop_lag_p99_ms"] > LOOP_LAG_MS:
            lag = (
                f"client worker {w['worker']} event loop ran "
                f"{w['loop_lag_p99_ms']:.1f} ms late at p99"
            )
            if w.get("arrival_stamps") == "kernel":
                out.append(
                    f"{lag}: arrivals carry the kernel's receive time, but chunks of one stream "
                    "arriving closer together than that may share the later one's (ITL, TTFT)"
                )
            else:
                out.append(f"{lag}: arrival stamps (TTFT, ITL) may be late by as much")
    if queue_delay_p99_ms is not None and queue_delay_p99_ms > QUEUE_DELAY_MS and not capped:
        out.append(
            f"client queue delay p99 {queue_delay_p99_ms:.1f} ms (connection set-up left out): "
            "requests left after they were due; the client, not the server, delayed them"
        )
    return out


def workload_warnings(workload: Mapping[str, Any] | None, mismatch: Mapping[str, Any]) -> list[str]:
    """Prompts that could not be sized to ``--input-tokens`` (no tokenizer) and came out far
    from it, as the server counted them."""
    if not workload or workload.get("verified_lengths") or workload.get("kind") != "synthetic":
        return []
    try:
        target = float(str(workload.get("input_tokens")))
    except ValueError:  # a distribution: no single target to hold the mean to
        return []
    mean = mismatch.get("server_mean_input_tokens")
    if mean is None or target <= 0 or abs(mean / target - 1) <= 0.1:
        return []
    return [
        f"prompts averaged {mean:,.0f} input tokens as the server counted them, against "
        f"--input-tokens {target:,.0f}: no tokenizer sized them (the server has no tokenize "
        "endpoint); pass --tokenizer MODEL_DIR|tokenizer.json for exact lengths"
    ]
