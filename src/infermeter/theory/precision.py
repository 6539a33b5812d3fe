"""Bytes per number by data type, and which type the arithmetic runs in."""

from __future__ import annotations

from infermeter.errors import UsageError

#: Bytes per stored weight. int4 carries a 16-bit scale and a 4-bit zero point per group of
#: 128 weights (GPTQ/AWQ layout): 0.5 + 2.5/128 bytes.
WEIGHT_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5 + 2.5 / 128,
}
KV_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}


def weight_bytes(dtype: str) -> float:
    try:
        return WEIGHT_BYTES[dtype]
    except KeyError:
        raise UsageError(
            f"--dtype must be one of {', '.join(WEIGHT_BYTES)}, got {dtype!r}"
        ) from None


def kv_bytes(dtype: str) -> float:
    try:
        return KV_BYTES[dtype]
    except KeyError:
        raise UsageError(
            f"--kv-dtype must be one of {', '.join(KV_BYTES)}, got {dtype!r}"
        ) from None


def compute_dtype(weight_dtype: str, act_dtype: str | None) -> str:
    """The operand type of the matrix products: W8A8 FP8/INT8 run in FP8/INT8; weight-only
    quantisation (int4, or int8 with 16-bit activations) dequantises and runs in 16 bits."""
    act = act_dtype or (weight_dtype if weight_dtype in ("fp8", "int8") else "bf16")
    if act not in ("bf16", "fp16", "fp8", "int8", "fp32"):
        raise UsageError(f"--act-dtype must be bf16, fp16, fp8 or int8, got {act!r}")
    if act in ("fp8", "int8") and weight_dtype != act:
        return "bf16"
    return {"fp16": "bf16", "fp32": "bf16"}.get(act, act)
