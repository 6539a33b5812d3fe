"""Accelerators: datasheet peaks (dense, never sparse), kept apart from attainable fractions.

Units: bandwidth GB/s (1e9 bytes), compute TFLOP/s (1e12), memory GB (1e9). Every entry
names its source. ``interconnect_gb_s`` is the GPU-to-GPU bandwidth in one direction (NVLink
or PCIe), used for tensor-parallel all-reduce time.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from infermeter.errors import UsageError


@dataclass(frozen=True)
class Hardware:
    name: str
    memory_bandwidth_gb_s: float
    bf16_tflops: float
    memory_gb: float
    fp8_tflops: float | None = None
    int8_tops: float | None = None
    interconnect_gb_s: float = 32.0
    source: str = ""
    note: str = ""
    #: Optional measured fractions of the peaks (calibration); peaks are never changed.
    attainable_bandwidth: float | None = None
    attainable_compute: float | None = None

    def peak_flops(self, compute_dtype: str) -> float:
        """Peak FLOP/s for operands of ``compute_dtype`` (FP8/INT8 only where the part has them)."""
        if compute_dtype == "fp8":
            if self.fp8_tflops is None:
                raise UsageError(f"{self.name} has no FP8 tensor cores; use --act-dtype bf16")
            return self.fp8_tflops * 1e12
        if compute_dtype == "int8":
            if self.int8_tops is None:
                raise UsageError(f"{self.name} has no INT8 figure in the catalogue")
            return self.int8_tops * 1e12
        return self.bf16_tflops * 1e12

    @property
    def bandwidth(self) -> float:
        return self.memory_bandwidth_gb_s * 1e9


_NV = "NVIDIA datasheet"
HARDWARE: dict[str, Hardware] = {
    h.name: h
    for h in (
        Hardware(
            "a100-40gb-sxm",
            1555,
            312,
            40,
            None,
            624,
            300,
            f"{_NV}: A100 Tensor Core GPU (2021), SXM4 40GB; NVLink 600 GB/s bidirectional",
        ),
        Hardware(
            "a100-80gb-sxm",
            2039,
            312,
            80,
            None,
            624,
            300,
            f"{_NV}: A100 Tensor Core GPU (2021), SXM4 80GB; NVLink 600 GB/s bidirectional",
        ),
        Hardware(
            "a100-80gb-pcie",
            1935,
            312,
            80,
            None,
            624,
            32,
            f"{_NV}: A100 Tensor Core GPU (2021), PCIe 80GB; PCIe Gen4 x16",
        ),
        Hardware(
            "h100-sxm",
            3350,
            989,
            80,
            1979,
            1979,
            450,
            f"{_NV}: H100 Tensor Core GPU (2023), SXM5; dense figures (the sheet's are "
            "with sparsity, halved here); NVLink 900 GB/s bidirectional",
        ),
        Hardware(
            "h100-pcie",
            2000,
            756,
            80,
            1513,
            1513,
            64,
            f"{_NV}: H100 Tensor Core GPU (2023), PCIe; dense; PCIe Gen5 x16",
        ),
        Hardware(
            "h200-sxm",
            4800,
            989,
            141,
            1979,
            1979,
            450,
            f"{_NV}: H200 Tensor Core GPU (2024), SXM; dense; NVLink 900 GB/s bidirectional",
        ),
        Hardware(
            "h20",
            4000,
            148,
            96,
            296,
            296,
            450,
            f"{_NV}: H20 (2024) product brief; dense; NVLink 900 GB/s bidirectional",
        ),
        Hardware(
            "l40s",
            864,
            362,
            48,
            733,
            733,
            32,
            f"{_NV}: L40S datasheet (2023); dense; PCIe Gen4 x16",
        ),
        Hardware(
            "l4",
            300,
            121,
            24,
            242,
            242,
            32,
            f"{_NV}: L4 Tensor Core GPU datasheet (2023); dense; PCIe Gen4 x16",
        ),
        Hardware(
            "rtx-4090",
            1008,
            165,
            24,
            330,
            660,
            32,
            "NVIDIA Ada Lovelace architecture whitepaper (2022), RTX 4090; PCIe Gen4 x16",
            note="BF16/FP16 165 TFLOP/s with FP16 accumulate; 82.6 with FP32 accumulate",
        ),
        Hardware(
            "rtx-3090",
            936,
            71,
            24,
            None,
            284,
            32,
            "NVIDIA Ampere GA102 whitepaper (2020), RTX 3090; PCIe Gen4 x16",
            note="FP16 tensor 71 TFLOP/s with FP32 accumulate (142 with FP16 accumulate)",
        ),
        Hardware(
            "mi300x",
            5300,
            1307,
            192,
            2615,
            2615,
            448,
            "AMD Instinct MI300X datasheet (2023); dense; Infinity Fabric ~896 GB/s "
            "aggregate bidirectional",
        ),
        Hardware(
            "ascend-910b",
            1600,
            295,
            64,
            None,
            590,
            196,
            "Huawei Ascend 910B (B3) public specifications; varies by SKU; HCCS 392 GB/s",
        ),
    )
}

ALIASES = {
    "h200": "h200-sxm",
    "h100": "h100-sxm",
    "a100": "a100-80gb-sxm",
    "4090": "rtx-4090",
    "a100-40gb": "a100-40gb-sxm",
    "a100-80gb": "a100-80gb-sxm",
    "3090": "rtx-3090",
}


def get_hardware(name: str) -> Hardware:
    key = name.lower().replace("_", "-").replace(" ", "-")
    key = ALIASES.get(key, key)
    if key in HARDWARE:
        return HARDWARE[key]
    path = Path(name)
    if path.suffix in (".json", ".yaml", ".yml") or path.exists():
        return load_hardware(path)
    close = difflib.get_close_matches(key, [*HARDWARE, *ALIASES], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(
        f"unknown GPU {name!r}{hint} (see 'infermeter estimate --list', or pass a "
        "JSON/YAML file describing it)"
    )


def load_hardware(path: Path) -> Hardware:
    """A user-defined accelerator from JSON or YAML with Hardware's field names."""
    if not path.exists():
        raise UsageError(f"--gpu: {path} does not exist")
    text = path.read_text()
    data: Any
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UsageError(
                "YAML hardware files need PyYAML (pip install pyyaml); or use JSON"
            ) from None
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of fields")
    known = {f.name for f in fields(Hardware)}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{path}: unknown field {sorted(unknown)[0]!r}")
    for key in ("name", "memory_bandwidth_gb_s", "bf16_tflops", "memory_gb"):
        if key not in data:
            raise UsageError(f"{path}: field {key!r} is required")
    for key in ("memory_bandwidth_gb_s", "bf16_tflops", "memory_gb"):
        if not isinstance(data[key], int | float) or data[key] <= 0:
            raise UsageError(f"{path}: field {key!r} must be a positive number")
    return Hardware(**data)
