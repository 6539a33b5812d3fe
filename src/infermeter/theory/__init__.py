"""The speed-of-light model: model shapes, hardware, precision and the bounds every
measurement is compared against. Depends on nothing else in infermeter but its errors."""

from infermeter.theory.bounds import (
    Deployment,
    Estimate,
    batch_sweep,
    compute_rate_tok_s,
    expected_distinct_experts,
    mbu,
    memory_time_s,
    mfu,
)
from infermeter.theory.catalogue import MODELS, get_model, resolve_model
from infermeter.theory.hardware import HARDWARE, Hardware, get_hardware, load_hardware
from infermeter.theory.shape import ModelShape, from_hf_config, load_config

__all__ = [
    "HARDWARE",
    "MODELS",
    "Deployment",
    "Estimate",
    "Hardware",
    "ModelShape",
    "batch_sweep",
    "compute_rate_tok_s",
    "expected_distinct_experts",
    "from_hf_config",
    "get_hardware",
    "get_model",
    "load_config",
    "load_hardware",
    "mbu",
    "memory_time_s",
    "mfu",
    "resolve_model",
]
