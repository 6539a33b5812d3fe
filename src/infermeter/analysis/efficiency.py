"""How far a run is from the speed of light: MBU, MFU and each figure beside its bound."""

from __future__ import annotations

from typing import Literal

from infermeter.schema.results import Efficiency, Results, ServerTelemetry
from infermeter.theory.bounds import Deployment
from infermeter.theory.calibration import Point


def efficiency(results: Results, d: Deployment) -> Efficiency | None:
    """MBU and MFU of the measured run, using the bounds' own byte and FLOP counts at the run's
    achieved concurrency and mean context (metrics spec section 5)."""
    s, dist = results["summary"], results["distributions"]
    n_in, n_out = dist["input_tokens"].get("mean"), dist["output_tokens"].get("mean")
    if not n_in or not n_out:
        return None
    # The batch the server says it ran is the truth; the client's Little's-law concurrency
    # also counts requests queued in front of the server, not in its batch.
    server: ServerTelemetry = results["telemetry"].get("server") or {"kind": None, "samples": 0}
    running = server["requests_running"]["mean"] if "requests_running" in server else None
    batch_source: Literal["server", "client"]
    if running:
        batch, batch_source = max(1, round(running / max(d.replicas, 1))), "server"
    else:
        batch = max(1, round(s["achieved_concurrency"] / max(d.replicas, 1)))
        batch_source = "client"
    ctx = int(n_in + n_out / 2)
    out: Efficiency = {
        "model": d.model.name,
        "gpu": d.hardware.name,
        "gpus": d.gpus,
        "tp": d.tp,
        "batch_per_replica": batch,
        #: "server": the mean running batch from its /metrics; "client": achieved concurrency.
        "batch_source": batch_source,
        "context_tokens": ctx,
    }
    tpot = dist["tpot_ms"].get("mean")
    if tpot:
        step = d.decode_step(batch, ctx)
        out["mbu"] = d.measured_mbu(tpot / 1e3, batch, ctx)
        out["mfu_decode"] = d.measured_decode_mfu(tpot / 1e3, batch, ctx)
        out["tpot_lower_bound_ms"] = 1e3 * step["bound_s"]
        out["tpot_x_bound"] = tpot / (1e3 * step["bound_s"])
        bound_tput = batch * d.replicas / step["bound_s"]
        out["output_throughput_upper_bound_tok_s"] = bound_tput
        measured = s["output_token_throughput_tok_s"]
        out["throughput_share_of_bound"] = measured / bound_tput if bound_tput else None
    # vLLM's own count of the work it did (per GPU), over the same window: its MFU and MBU,
    # shown beside ours (theirs counts what its kernels did, ours what the model needs).
    flops_s = server.get("estimated_flops_per_s")
    if flops_s:
        out["server_mfu"] = flops_s / d.peak_flops
    read_s = server.get("estimated_read_bytes_per_s")
    if read_s:
        out["server_mbu"] = read_s / d.bandwidth
    ttft = dist["ttft_ms"].get("p50")
    if ttft:
        bound = d.ttft_bound_s(int(n_in))["bound_s"]
        out["ttft_lower_bound_ms"] = 1e3 * bound
        out["ttft_x_bound"] = ttft / (1e3 * bound)
        out["mfu_prefill"] = d.measured_prefill_mfu(ttft / 1e3, int(n_in))
    return out


def calibration_point(label: str, results: Results) -> Point | None:
    """A run as a calibration point (p50 TPOT and TTFT at its achieved batch), or None when
    it has no completed multi-token requests."""
    s, dist = results["summary"], results["distributions"]
    n_in, n_out = dist["input_tokens"].get("mean"), dist["output_tokens"].get("mean")
    tpot, ttft = dist["tpot_ms"].get("p50"), dist["ttft_ms"].get("p50")
    if not (n_in and n_out and tpot and ttft):
        return None
    return Point(
        label=label,
        batch=max(1, round(s["achieved_concurrency"])),
        context=int(n_in + n_out / 2),
        prompt_tokens=int(n_in),
        tpot_ms=float(tpot),
        ttft_ms=float(ttft),
    )
