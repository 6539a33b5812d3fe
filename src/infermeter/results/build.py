"""``results.json``: the versioned, secret-free result of a run, built from its metrics and
joined with the analysis its config (or flags given now) asks for."""

from __future__ import annotations

from typing import Any

import numpy as np

from infermeter.analysis import analyze, load_profile
from infermeter.errors import UsageError
from infermeter.load.streams import stream_warnings
from infermeter.metrics.aggregate import PERCENTILE_METHOD, RunMetrics
from infermeter.metrics.cache import PromptCacheVerdict, expected_share, judge_prompt_cache
from infermeter.metrics.catalogue import DISTRIBUTION_NAMES
from infermeter.metrics.client import (
    cache_warnings,
    client_warnings,
    not_streamed_warnings,
    spare_cores,
    stamp_warnings,
    trace_warnings,
    workload_warnings,
)
from infermeter.metrics.sessions import SessionStats, session_stats
from infermeter.schema.results import (
    RESULTS_SCHEMA_VERSION,
    Analysis,
    Prediction,
    Results,
    RunOutcome,
    SLOResult,
    Summary,
    Telemetry,
)
from infermeter.schema.results import Sessions as SessionsDoc
from infermeter.text import counted
from infermeter.theory import Deployment, get_hardware, resolve_model


def build_results(
    meta: dict[str, Any],
    metrics: RunMetrics,
    status: RunOutcome,
    telemetry: Telemetry | None = None,
) -> Results:
    summary = summary_doc(metrics)
    clients = list(status.get("client") or [])
    in_process = (meta.get("server") or {}).get("kind") == "transformers"
    cfg = meta.get("config") or {}
    cache = prompt_cache(meta, metrics, telemetry)
    cap = cfg.get("max_concurrency")
    # An open loop's cap makes requests wait by design, but only once it is reached.
    cap_reached = cap is not None and metrics.peak_in_flight >= int(cap)
    notes: Telemetry = {"notes": list(status.get("telemetry_notes") or [])}
    result: Results = {
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
        "telemetry": {**notes, **(telemetry or {})},
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
        + trace_warnings(meta.get("workload"))
        + cache_warnings(cache)
        + stream_warnings(
            status.get("concurrency_asked"), (meta.get("config") or {}).get("concurrency")
        )
        + preflight_warnings(meta.get("preflight_failures") or []),
    }
    sessions = session_stats(metrics.table, metrics.requests, tuple(cfg.get("percentiles") or ()))
    if sessions is not None:
        result["sessions"] = sessions_doc(sessions)
    prediction = meta.get("prediction")
    if prediction is not None:
        result["predicted"] = True
        result["prediction"] = prediction
        result["warnings"] = prediction_warnings(prediction) + result["warnings"]
    return result


def prediction_warnings(p: Prediction) -> list[str]:
    """What a reader of a simulated run must not miss: it is not a measurement, where it
    leaves the data it was fitted on, and whether the load was more than it can serve."""
    out = [f"predicted by simulation ({p['engine_model']}), not measured"]
    if p["extrapolated"]:
        out.append(f"extrapolated to other hardware: {p['extrapolated']}")
    out += [f"extrapolated: {x}" for x in p["extrapolations"]]
    out += [f"not held by its own runs: {x}" for x in p.get("self_check") or ()]
    out += [f"two step levels: {x}" for x in p.get("step_levels") or ()]
    out += [f"runs disagree: {x}" for x in p.get("speed_spread") or ()]
    out += [f"fitted on a changing host: {x}" for x in p.get("host_speed") or ()]
    share, factors = p.get("core_slow_share"), p.get("core_factors")
    if share is not None and factors:
        lo, hi = min(factors), max(factors)
        by = f"{lo:.3f}×" if round(lo, 3) == round(hi, 3) else f"{lo:.3f}-{hi:.3f}×"
        out.append(
            f"simulated as if the server's core read slow {100 * share:.0f} % of the time: "
            f"decode steps {by} the fitted table's, by batch size"
            + (
                " (the core effect measured on the fitted host, not the one carried to)"
                if p["extrapolated"]
                else ""
            )
        )
    if p["unstable"]:
        out.append(f"unstable: {p['unstable']}")
    preempted = sum(p.get("preemptions") or ())
    if preempted:
        out.append(
            f"the simulated engine preempted sequences {preempted} "
            f"{'time' if preempted == 1 else 'times'}: its KV cache was full, and each "
            "preempted sequence computed its prompt and tokens again"
        )
    return out


def sessions_doc(s: SessionStats) -> SessionsDoc:
    return {
        "sessions": s.sessions,
        "completed": s.completed,
        "turns_mean": s.turns_mean,
        "duration_s": s.duration_s.to_dict(),
        "by_turn": [
            {
                "turn": t.turn,
                "requests": t.requests,
                "completed": t.completed,
                "ttft_ms": t.ttft_ms.to_dict(),
                "tpot_ms": t.tpot_ms.to_dict(),
                "input_tokens_mean": t.input_tokens_mean,
                "cached_share": t.cached_share,
            }
            for t in s.by_turn
        ],
    }


def preflight_warnings(failures: list[str]) -> list[str]:
    """A pre-flight request that needed retries: the server fails some of what it is sent."""
    if not failures:
        return []
    return [
        f"the pre-flight request failed {counted(len(failures), 'time')} before it succeeded "
        f"(last: {failures[-1]}): expect failed requests in the run"
    ]


def prompt_cache(
    meta: dict[str, Any], metrics: RunMetrics, telemetry: Telemetry | None
) -> PromptCacheVerdict:
    """The run's cached-prompt share, judged against what its workload shares on purpose."""
    workload = meta.get("workload") or {}
    expected = expected_share(
        workload.get("kind"),
        int(workload.get("shared_prefix_tokens") or 0),
        metrics.distributions["input_tokens"].mean,
        (workload.get("trace") or {}).get("prefix_reuse_share"),
    )
    server = telemetry.get("server") if telemetry else None
    share = server.get("prefix_cache_hit_share") if server else None
    return judge_prompt_cache(metrics.prompt_cache, expected, share)


def summary_doc(metrics: RunMetrics) -> Summary:
    s = metrics.summary
    return {
        "requests_sent": s.requests_sent,
        "requests_completed": s.requests_completed,
        "requests_failed": s.requests_failed,
        "duration_s": s.duration_s,
        "request_throughput_rps": s.request_throughput_rps,
        "request_throughput_rpm": s.request_throughput_rpm,
        "output_token_throughput_tok_s": s.output_token_throughput_tok_s,
        "input_token_throughput_tok_s": s.input_token_throughput_tok_s,
        "total_token_throughput_tok_s": s.total_token_throughput_tok_s,
        "achieved_concurrency": s.achieved_concurrency,
        "goodput_rps": s.goodput_rps,
        "slo_attainment": s.slo_attainment,
        "error_rate": s.error_rate,
        "target_concurrency": s.target_concurrency,
        "target_rate_rps": s.target_rate_rps,
        "achieved_send_rate_rps": s.achieved_send_rate_rps,
    }


def _slo(metrics: RunMetrics) -> SLOResult | None:
    rep = metrics.slo
    if rep is None:
        return None
    return {
        "passed": rep.passed,
        "attainment": rep.attainment,
        "goodput_rps": rep.goodput_rps,
        "requests_meeting": rep.requests_meeting,
        "requests_total": rep.requests_total,
        "terms": [
            {
                "name": t.name,
                "metric": t.metric,
                "threshold": t.threshold,
                "percentile": t.percentile,
                "attainment": t.attainment,
                "measured": t.measured,
                "passed": t.passed,
            }
            for t in rep.terms
        ],
    }


def full_results(
    meta: dict[str, Any],
    metrics: RunMetrics,
    status: RunOutcome,
    telemetry: Telemetry,
    overrides: dict[str, Any] | None = None,
) -> Results:
    """results.json: metrics, telemetry and the analysis the run's config (or ``overrides``)
    asks for. An override (a flag given now) naming no known GPU or model shape is a
    UsageError; the same in the stored config is a note, so the run stays readable."""
    results = build_results(meta, metrics, status, telemetry)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    cfg = {**(meta.get("config") or {}), **given}
    results["analysis"] = analysis_section(results, metrics, cfg, strict=frozenset(given))
    return results


def flag_error(flag: str, exc: UsageError) -> UsageError:
    """The error as one line that starts with the flag the user gave (not a sibling's)."""
    message = exc.message.split(": ", 1)[-1] if exc.message.startswith("--") else exc.message
    return UsageError(f"{flag}: {message}")


def analysis_section(
    results: Results,
    metrics: RunMetrics,
    cfg: dict[str, Any],
    strict: frozenset[str] = frozenset(),
) -> Analysis:
    """``strict``: the keys of ``cfg`` the user gave just now, whose bad values are errors."""
    notes: list[str] = []
    deployment = None
    hardware = None
    if cfg.get("gpu"):
        try:
            hardware = get_hardware(str(cfg["gpu"]))
        except UsageError as exc:
            if "gpu" in strict:
                raise flag_error("--gpu", exc) from None
            notes.append(f"{flag_error('--gpu', exc).message}; no MBU/MFU or bounds")
    shape = None
    if hardware is not None or "model_shape" in strict:
        served = results["server"]
        shape_name = cfg.get("model_shape") or (served["model"] if served else None)
        try:
            shape = resolve_model(str(shape_name))
        except UsageError as exc:
            if "model_shape" in strict:
                raise flag_error("--model-shape", exc) from None
            if hardware is not None:
                notes.append(
                    f"no model shape for {shape_name!r}: pass --model-shape (a catalogue "
                    "name or a config.json) to get MBU/MFU and bounds"
                )
    if hardware is not None and shape is not None:
        try:
            deployment = Deployment(
                shape,
                hardware,
                gpus=int(cfg.get("gpus") or 1),
                tp=int(cfg.get("tp") or 1),
                weight_dtype=str(cfg.get("weight_dtype") or "bf16"),
            )
        except UsageError as exc:
            if strict & {"gpu", "model_shape", "gpus", "tp", "weight_dtype"}:
                raise
            notes.append(f"{exc.message}; no MBU/MFU or bounds")
    profile = load_profile(str(cfg["profile"])) if cfg.get("profile") else None
    ttft = metrics.requests.ttft_ms
    ttfts = ttft[~np.isnan(ttft)].tolist()
    out = analyze(
        results,
        ttfts,
        deployment=deployment,
        profile=profile,
        gpu_hourly_price=cfg.get("gpu_hourly_price"),
        gpus=int(cfg.get("gpus") or 1),
    )
    out["notes"] = notes
    return out
