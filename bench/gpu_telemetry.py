"""NVML telemetry against a real GPU workload: do utilisation and memory move with the load?

Runs infermeter's TelemetryRecorder (NVML + host samplers, in its own process, as in every
benchmark run) while this process drives a GPU through phases: idle, a bf16 matrix-product
load that allocates growing buffers, idle again. Prints per-phase means from telemetry.jsonl.

    python bench/gpu_telemetry.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch

    from infermeter.telemetry import HostSampler, NvmlSampler, TelemetryRecorder

    out = Path(tempfile.mkdtemp()) / "telemetry.jsonl"
    t0 = time.perf_counter_ns()
    phases: list[tuple[str, int, int]] = []
    with TelemetryRecorder(out, [NvmlSampler(period_s=0.2), HostSampler(period_s=0.5)], t0) as rec:

        def phase(name: str, seconds: float, work: bool) -> None:
            start = time.perf_counter_ns() - t0
            keep = []
            a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
            end_at = time.perf_counter() + seconds
            while time.perf_counter() < end_at:
                if work:
                    for _ in range(20):
                        a = (a @ a).clamp_(-1, 1)
                    keep.append(torch.empty(512 * 1024 * 1024, dtype=torch.uint8, device="cuda"))
                    torch.cuda.synchronize()
                else:
                    time.sleep(0.05)
            del keep
            torch.cuda.empty_cache()
            phases.append((name, start, time.perf_counter_ns() - t0))

        phase("idle", 3, False)
        phase("load", 6, True)
        phase("idle after", 3, False)
    print("notes:", rec.notes)
    samples = [json.loads(line) for line in out.read_text().splitlines()]
    gpu = [s for s in samples if s["source"] == "gpu"]
    print(f"{len(gpu)} GPU samples; device: {torch.cuda.get_device_name(0)}")
    print("| phase | samples | util mean % | util max % | memory used max GB | power mean W |")
    print("|---|---|---|---|---|---|")
    for name, start, end in phases:
        sel = [s["gpus"][0] for s in gpu if start <= s["t_ns"] <= end]
        if not sel:
            continue
        util = [g["util_percent"] for g in sel]
        mem = [g["memory_used_bytes"] for g in sel]
        power = [g.get("power_w", 0.0) for g in sel]
        print(
            f"| {name} | {len(sel)} | {sum(util) / len(util):.0f} | {max(util)} "
            f"| {max(mem) / 1e9:.1f} | {sum(power) / len(power):.0f} |"
        )
    print("timeline (t s, util %, memory GB):")
    for s in gpu[:: max(len(gpu) // 30, 1)]:
        g = s["gpus"][0]
        print(
            f"  {s['t_ns'] / 1e9:5.1f}  {g['util_percent']:3d}  {g['memory_used_bytes'] / 1e9:6.1f}"
        )


if __name__ == "__main__":
    main()
