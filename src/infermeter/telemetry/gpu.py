"""NVIDIA GPUs through NVML (``nvidia-ml-py``, the ``gpu`` extra): utilisation, memory,
power and SM clock per GPU. Without an NVIDIA GPU or driver it says so and stays off."""

from __future__ import annotations

from typing import Any


class NvmlSampler:
    name = "gpu"

    def __init__(self, period_s: float = 0.5) -> None:
        self.period_s = period_s
        self._handles: list[Any] = []

    def start(self) -> str | None:
        try:
            import pynvml
        except ImportError:
            return (
                "GPU telemetry off: nvidia-ml-py is not installed (pip install 'infermeter[gpu]')"
            )
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            return f"GPU telemetry off: no NVIDIA GPU or driver here ({exc})"
        self._nvml = pynvml
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        if not self._handles:
            return "GPU telemetry off: NVML sees no GPU"
        self.names = [str(pynvml.nvmlDeviceGetName(h)) for h in self._handles]
        return None

    def sample(self) -> dict[str, Any]:
        nv = self._nvml
        gpus = []
        for i, h in enumerate(self._handles):
            util = nv.nvmlDeviceGetUtilizationRates(h)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            entry: dict[str, Any] = {
                "index": i,
                "util_percent": util.gpu,
                "memory_util_percent": util.memory,
                "memory_used_bytes": mem.used,
                "memory_total_bytes": mem.total,
            }
            try:
                entry["power_w"] = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
                entry["sm_clock_mhz"] = nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)
            except nv.NVMLError:
                pass
            gpus.append(entry)
        return {"gpus": gpus}

    def close(self) -> None:
        if self._handles:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
