"""Resources observed while a run goes: the host and the client processes, NVIDIA GPUs
(NVML), and the server's own Prometheus metrics; joined with the run at analysis time."""

from infermeter.telemetry.base import Sampler, TelemetryRecorder
from infermeter.telemetry.gpu import NvmlSampler
from infermeter.telemetry.host import HostSampler
from infermeter.telemetry.prometheus import (
    MAPPINGS,
    PrometheusSampler,
    detect_kind,
    map_families,
    parse_exposition,
)

__all__ = [
    "MAPPINGS",
    "HostSampler",
    "NvmlSampler",
    "PrometheusSampler",
    "Sampler",
    "TelemetryRecorder",
    "detect_kind",
    "map_families",
    "parse_exposition",
]
