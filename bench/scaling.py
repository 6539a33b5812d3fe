"""Does load generation scale with worker processes? The real CLI against emulators.

E ground-truth emulator processes share one port (SO_REUSEPORT) on their own cores; then
`infermeter bench --workers N` (the shipped command, records and all) runs on N other cores
at N × S concurrent streams, closed loop, 128 tokens per request, TTFT exactly 50 ms and one
token every 10 ms (ideal: 100 chunks/s per stream). Reported per N: token chunks per second in
the steady part of the run (arrivals from 1.5 s after the first send to the last send), the
scaling against N = 1, and TTFT p50 / p99 (the truth is 50 ms plus the emulator's own timer
lateness, so both columns read as "50 + error").

    python bench/scaling.py --emulators 4 --workers 1 2 4 --streams-per-worker 400
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def start_emulators(n: int, port: int, cores: list[int]) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        cmd = [
            sys.executable,
            "-m",
            "infermeter",
            "serve-ground-truth",
            "--port",
            str(port),
            "--ttft-ms",
            "50",
            "--itl-ms",
            "10",
            "--reuse-port",
        ]
        procs.append(
            subprocess.Popen(["taskset", "-c", str(cores[i]), *cmd], stderr=subprocess.DEVNULL)
        )
    time.sleep(2.0)
    return procs


def run(n_workers: int, streams: int, seconds: float, port: int, cores: list[int]) -> dict:
    out = Path(tempfile.mkdtemp()) / "run"
    cpu_list = ",".join(str(c) for c in cores[:n_workers])
    cmd = [
        "taskset",
        "-c",
        cpu_list,
        sys.executable,
        "-m",
        "infermeter",
        "bench",
        "--url",
        f"http://127.0.0.1:{port}",
        "--concurrency",
        str(streams),
        "--duration",
        str(seconds),
        "--workers",
        str(n_workers),
        "--input-tokens",
        "8",
        "--output-tokens",
        "128",
        "--quiet",
        "--format",
        "json",
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    results = json.loads(res.stdout)
    sends, arrivals = [], []
    with open(out / "records.jsonl", "rb") as fh:
        for line in fh:
            r = json.loads(line)
            sends.append(r["t_send_ns"])
            arrivals.extend(r["chunk_ns"])
    lo, hi = min(sends) + 1.5e9, max(sends)
    arr = np.asarray(arrivals)
    steady = ((arr >= lo) & (arr <= hi)).sum() / ((hi - lo) / 1e9)
    ttft = results["distributions"]["ttft_ms"]
    workers = results["client"]["per_worker"]
    return {
        "workers": n_workers,
        "streams": streams,
        "chunks_per_s": float(steady),
        "ideal": streams * 100.0,
        "ttft_p50": ttft["p50"],
        "ttft_p99": ttft["p99"],
        "failed": results["summary"]["requests_failed"],
        "busiest_cpu": max(w["cpu_util"] for w in workers),
        "loop_lag_p99": max(w["loop_lag_p99_ms"] for w in workers),
        "exit": res.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulators", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--streams-per-worker", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--port", type=int, default=9411)
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    emu_cores, client_cores = cores[: args.emulators], cores[args.emulators :]
    emulators = start_emulators(args.emulators, args.port, emu_cores)
    try:
        print(f"{len(cores)} cores: emulators on {emu_cores}, client workers on {client_cores}")
        print(
            "| workers | streams | chunks/s steady (ideal) | × N=1 | TTFT p50 / p99 ms (truth 50) "
            "| busiest worker CPU | loop lag p99 ms | failed |"
        )
        print("|---|---|---|---|---|---|---|---|")
        base = None
        for n in args.workers:
            r = run(n, n * args.streams_per_worker, args.seconds, args.port, client_cores)
            base = base or r["chunks_per_s"] / n
            print(
                f"| {n} | {r['streams']} | {r['chunks_per_s']:,.0f} ({r['ideal']:,.0f}) "
                f"| {r['chunks_per_s'] / base:.2f} | {r['ttft_p50']:.1f} / {r['ttft_p99']:.1f} "
                f"| {100 * r['busiest_cpu']:.0f} % | {r['loop_lag_p99']:.1f} | {r['failed']} |",
                flush=True,
            )
    finally:
        for p in emulators:
            p.terminate()
        for p in emulators:
            p.wait(10)


if __name__ == "__main__":
    main()
