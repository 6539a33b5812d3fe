"""An engine model carried to other hardware by the roofline, regime by regime: a step that
reads more bytes than it computes (decode below the ridge batch, the step's fixed cost, the
KV reads) scales with memory bandwidth; prompt tokens and decode steps past the ridge scale
with compute. The engine's efficiency is assumed to carry over, which no fit can show."""

from __future__ import annotations

from typing import Literal

from infermeter.predict.model import EngineModel, StepPoint
from infermeter.theory.hardware import Hardware

#: Bytes per weight the ridge batch is reckoned with (16-bit weights).
WEIGHT_BYTES = 2.0


#: How steps are scaled: by the roofline per regime, or every part by one ratio (the two
#: brackets of the roofline's answer, for the uncertainty a what-if states).
Scaling = Literal["roofline", "bandwidth", "compute"]


def carry(
    model: EngineModel, source: Hardware, target: Hardware, scaling: Scaling = "roofline"
) -> EngineModel:
    bw = source.bandwidth / target.bandwidth
    flops = source.peak_flops("bf16") / target.peak_flops("bf16")
    if scaling != "roofline":
        bw = flops = bw if scaling == "bandwidth" else flops
    # A decode step does 2 FLOPs per weight per sequence and reads each weight once:
    # its intensity is about batch × 2 / WEIGHT_BYTES FLOP/byte.
    ridge = source.peak_flops("bf16") / source.bandwidth * WEIGHT_BYTES / 2
    points = [
        StepPoint(
            batch=p.batch,
            step_ms=p.step_ms * (bw if p.batch < ridge else flops),
            ctx_tokens=p.ctx_tokens,
            samples=p.samples,
        )
        for p in model.decode
    ]
    how = (
        f"{source.name} → {target.name} by the roofline: decode steps below batch "
        f"{ridge:.0f}, extra ubatches and KV reads × {bw:.2f} (bandwidth "
        f"{source.memory_bandwidth_gb_s:,.0f} → {target.memory_bandwidth_gb_s:,.0f} GB/s), "
        f"prompt tokens × {flops:.2f} (bf16 "
        f"{source.bf16_tflops:,.0f} → {target.bf16_tflops:,.0f} TFLOP/s); assumes the engine "
        f"is as efficient on {target.name} as measured on {source.name}, the host-side "
        "overheads unchanged and the same sequence limit: an estimate, not a fit"
    )
    return model.model_copy(
        update={
            "decode": points,
            "ctx_ms_per_token": model.ctx_ms_per_token * bw,
            "ubatch_ms": model.ubatch_ms * bw,
            "prefill_ms_per_token": model.prefill_ms_per_token * flops,
            "step_floor_ms": model.step_floor_ms * bw,
            "hardware": target.name,
            "extrapolated": how if scaling == "roofline" else f"{how} (every step × {bw:.2f})",
        }
    )
