"""Was the client the bottleneck? Verdicts from the client's own statistics (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infermeter.metrics.cache import FLATTER_MARGIN, PromptCacheVerdict, ttft_effect
from infermeter.metrics.stamps import SharedFirstStamps
from infermeter.text import counted

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
    spare_cores: float | None = None,
) -> list[str]:
    """One sentence per finding, each with the numbers that triggered it. ``capped``: an
    open loop's --max-concurrency was reached (its waiting is queue delay by design).
    ``spare_cores``: idle cores on the host during the run (None: not sampled), so that more
    --workers is advised only where another process would have a core to run on."""
    out: list[str] = []
    for w in workers:
        if w["cpu_util"] >= CPU_SATURATED:
            advice = (
                "use more --workers"
                if spare_cores is None or spare_cores >= 0.5
                else "the host has no idle core for more --workers: run the client on "
                "another machine (--cluster)"
            )
            out.append(
                f"client worker {w['worker']} used {100 * w['cpu_util']:.0f} % of a core: the "
                f"load generator may have limited this run; {advice}"
            )
        if w["loop_lag_p99_ms"] > LOOP_LAG_MS:
            worst = w.get("loop_lag_max_ms")
            lag = (
                f"client worker {w['worker']} event loop ran "
                f"{w['loop_lag_p99_ms']:.1f} ms late at p99"
                + (f" and {worst:,.1f} ms at worst" if worst is not None else "")
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
    elif queue_delay_p99_ms is not None and queue_delay_p99_ms > QUEUE_DELAY_MS:
        out.append(
            f"--max-concurrency was reached: requests waited for a free place up to "
            f"{queue_delay_p99_ms:.1f} ms (p99) after they were due, so the server saw a "
            "smoother load than the schedule's"
        )
    return out


def spare_cores(host: Mapping[str, Any]) -> float | None:
    """Idle cores on the host over the run, from the telemetry's host summary."""
    cpu, cores = (host.get("cpu_percent") or {}).get("mean"), host.get("cpu_count")
    if cpu is None or not cores:
        return None
    return float(cores) * (1 - float(cpu) / 100)


def not_streamed_warnings(not_streamed: int, completed: int) -> list[str]:
    """Answers sent whole although a stream was asked for."""
    if not not_streamed:
        return []
    return [
        f"{not_streamed} of {completed} requests were answered whole, not streamed (the "
        "server ignored stream=true): they count in E2E only, left out of TTFT, TPOT and "
        "ITL; they are marked in records.jsonl (streamed: false)"
    ]


def stamp_warnings(shared: SharedFirstStamps) -> list[str]:
    """Requests whose first token was read together with later ones, and their error."""
    if not shared.requests:
        return []
    late = shared.ttft_late_est_max_ms
    bound = (
        f"; their TTFT may be late by up to ~{late:,.1f} ms and TPOT low by up to "
        f"~{shared.tpot_low_est_max_ms or 0:,.2f} ms (estimated from each stream's own pace)"
        if late is not None
        else ""
    )
    return [
        f"{shared.requests} of {shared.of_requests} requests had their first token read "
        f"together with up to {shared.tokens_max} later tokens (the client could not read "
        f"while they arrived, or the server sent them at once){bound}; they are marked in "
        "records.jsonl (first_stamp_shared)"
    ]


def cache_warnings(cache: PromptCacheVerdict) -> list[str]:
    """A cached-prompt share above what the workload shares on purpose."""
    if not cache.flattered or cache.cached_share is None:
        return []
    expected = cache.expected_share
    why = (
        f"this workload shares {100 * expected:.0f} % on purpose"
        if expected
        else "this workload shares none on purpose"
        if expected is not None
        else "unless the dataset repeats prompts on purpose, that is the server's cache"
    )
    effect = ttft_effect(cache)
    effect = f"; {effect}" if effect else ""
    source = "per-request usage" if cache.source == "usage" else "the server's /metrics"
    return [
        f"{100 * cache.cached_share:.0f} % of prompt tokens were served from the server's "
        f"prefix cache ({source}; {why}, more than {100 * FLATTER_MARGIN:.0f} points over): "
        f"TTFT and throughput are flattered{effect}. A rerun of the same prompts (same "
        "--seed) on a warm server does this; leave --seed out for fresh prompts"
    ]


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


def trace_warnings(workload: Mapping[str, Any] | None) -> list[str]:
    """Rows of a replayed trace that were left out: the replay is not the whole trace."""
    trace = (workload or {}).get("trace") if (workload or {}).get("kind") == "trace" else None
    skipped: Mapping[str, int] = (trace or {}).get("skipped_rows") or {}
    if not skipped:
        return []
    why = ", ".join(f"{reason} ×{n}" for reason, n in skipped.items())
    first = (trace or {}).get("first_skipped")
    rows = counted(sum(skipped.values()), "trace row")
    return [f"{rows} left out ({why})" + (f"; the first: {first}" if first else "")]
