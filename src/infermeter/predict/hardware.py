"""An engine model carried to other hardware by the roofline, regime by regime.

Where the runs told the model's shape, each step is split at its speed of light: the bytes it
must read (the weights, the batch's KV cache) over the source's bandwidth scale with memory
bandwidth, and the rest of the measured step (launches, host work, and the arithmetic past
the ridge batch) stays as it was below the ridge and scales with compute past it. Without a
shape a step below the ridge scales with bandwidth whole, which claims the engine reads as
close to the speed of light on the target as it did on the source, and over-states the gain
of a faster memory: llama.cpp's 7B decode step at 1 to 4 sequences took 8-19 % less time on
an H200 than on an H100, not the 30 % of their bandwidths (docs/results/prediction.md).
Prompt tokens scale with compute. The engine's efficiency is assumed to carry over, which no
fit can show."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

from infermeter.errors import UsageError
from infermeter.predict.model import EngineModel, PrefillPoint, StepPoint
from infermeter.theory.bounds import Deployment
from infermeter.theory.catalogue import resolve_model
from infermeter.theory.hardware import Hardware

#: Bytes per weight the ridge batch is reckoned with (16-bit weights).
WEIGHT_BYTES = 2.0


#: How steps are scaled: by the roofline per regime, or every part by one ratio (the two
#: brackets of the roofline's answer, for the uncertainty a what-if states).
Scaling = Literal["roofline", "bandwidth", "compute"]


def told_deployment(shape: str | None, dtype: str | None, gpu: Hardware) -> Deployment | None:
    """The model the runs were told, on ``gpu``, for the bytes a step reads; None where they
    told no shape (or one the catalogue no longer resolves)."""
    if shape is None:
        return None
    try:
        return Deployment(resolve_model(shape), gpu, weight_dtype=dtype or "bf16")
    except UsageError:
        return None


def weights_once_ms(d: Deployment) -> float:
    """What a forward pass takes at the least: every weight read once at the GPU's bandwidth
    (a step with no decode, or llama.cpp's pass beyond a step's first)."""
    return d.prefill_weights_read(1) / d.hardware.bandwidth * 1e3


def step_least_ms(d: Deployment, p: StepPoint) -> float:
    """What a decode step of this table entry takes at the least: its batch's weights and
    KV cache read once at the GPU's bandwidth."""
    read = d.weights_read_per_step(p.batch) + d.kv_bytes_per_token * p.ctx_tokens
    return read / d.hardware.bandwidth * 1e3


#: Past this share of every fitted step beyond its least memory time (a step four times
#: its speed of light even at the smallest batch), the what-if says its answer rests on the
#: host: the launches and host work it carries unchanged follow the CPU, not the GPU
#: (transformers serve, eager: 82-93 % of a step on an H100, and no quicker on an H200; as
#: shipped much of it is cuDNN building attention graphs on the host; docs/results/prediction.md).
HOST_BOUND = 0.75


def host_share(points: list[StepPoint], least: Callable[[StepPoint], float], ridge: float) -> str:
    """How much of the fitted decode steps below the ridge lies beyond their least memory
    time, which a what-if keeps as measured: a clause of the extrapolation's note ("" where
    no step lies below the ridge)."""
    shares = [
        1 - min(p.step_ms, least(p)) / p.step_ms
        for p in points
        if p.batch < ridge and p.step_ms > 0
    ]
    if not shares:
        return ""
    lo, hi = round(min(shares) * 100), round(max(shares) * 100)
    span = f"{lo} %" if lo == hi else f"{lo}-{hi} %"
    kept = f" ({span} of each fitted step lies beyond that time and is kept as measured"
    if min(shares) >= HOST_BOUND:
        # even the smallest batch's step, whose arithmetic is least, is mostly something
        # other than reading memory: launches and host work
        return f"{kept}: mostly launches and host work, so the answer rests on this host's CPU too)"
    return f"{kept})"


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
    told = (
        told_deployment(model.model_shape, model.weight_dtype, source)
        if scaling == "roofline"
        else None
    )

    def split(step_ms: float, memory_ms: float, past_ridge: bool) -> float:
        """A step's least memory time on the source scaled by bandwidth, its rest kept
        (below the ridge) or scaled by compute (past it)."""
        memory_ms = min(step_ms, memory_ms)
        return memory_ms * bw + (step_ms - memory_ms) * (flops if past_ridge else 1.0)

    def step(p: StepPoint) -> float:
        if told is None:
            return p.step_ms * (bw if p.batch < ridge else flops)
        return split(p.step_ms, step_least_ms(told, p), p.batch >= ridge)

    points = [
        StepPoint(batch=p.batch, step_ms=step(p), ctx_tokens=p.ctx_tokens, samples=p.samples)
        for p in model.decode
    ]
    prefill = [
        PrefillPoint(batch=p.batch, ms_per_token=p.ms_per_token * flops, samples=p.samples)
        for p in model.prefill
    ]
    if told is not None:
        # a step with no decode, and a forward pass beyond a step's first, read the weights once
        weights = weights_once_ms(told)
        floor = split(model.step_floor_ms, weights, False)
        ubatch = split(model.ubatch_ms, weights, False)
        steps = (
            f"each step's least memory time ({model.model_shape}, {model.weight_dtype}: weights "
            f"and KV cache over {source.memory_bandwidth_gb_s:,.0f} GB/s) × {bw:.2f}, the rest of "
            f"it kept below batch {ridge:.0f} and × {flops:.2f} past it"
            f"{host_share(model.decode, partial(step_least_ms, told), ridge)}"
        )
    else:
        floor, ubatch = model.step_floor_ms * bw, model.ubatch_ms * bw
        steps = f"decode steps below batch {ridge:.0f} and extra ubatches × {bw:.2f}"
    how = (
        f"{source.name} → {target.name} by the roofline: {steps}; KV reads × {bw:.2f} "
        f"(bandwidth {source.memory_bandwidth_gb_s:,.0f} → {target.memory_bandwidth_gb_s:,.0f} "
        f"GB/s), prompt tokens × {flops:.2f} (bf16 {source.bf16_tflops:,.0f} → "
        f"{target.bf16_tflops:,.0f} TFLOP/s); assumes the engine is as efficient on "
        f"{target.name} as measured on {source.name}, the host-side overheads unchanged and "
        "the same sequence limit: an estimate, not a fit"
    )
    return model.model_copy(
        update={
            "decode": points,
            "prefill": prefill,
            "ctx_ms_per_token": model.ctx_ms_per_token * bw,
            "ubatch_ms": ubatch,
            "prefill_ms_per_token": model.prefill_ms_per_token * flops,
            "step_floor_ms": floor,
            "hardware": target.name,
            "extrapolated": how if scaling == "roofline" else f"{how} (every step × {bw:.2f})",
        }
    )


def carry_to(
    model: EngineModel, gpu: str, scaling: Scaling = "roofline", name: str = "the engine model"
) -> EngineModel:
    """``model`` (called ``name`` in an error) carried from the GPU it was fitted on to the
    catalogue's ``gpu``."""
    from infermeter.theory.hardware import get_hardware

    if model.hardware is None:
        raise UsageError(
            f"{name} does not say which GPU it was measured on, so it cannot be carried to "
            f"{gpu} (fit it on runs measured with --gpu)"
        )
    return carry(model, get_hardware(model.hardware), get_hardware(gpu), scaling)
