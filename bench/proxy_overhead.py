"""What does ``infermeter proxy`` add to latency? Direct vs through the proxy, against the
ground-truth emulator, measured by infermeter's own benchmark both ways.

Three processes: the emulator (``infermeter serve-ground-truth``), the proxy
(``infermeter proxy``) and the benchmark (this one, ``run_benchmark``). Per concurrency level
N it runs a closed-loop benchmark straight at the emulator, then the same through the proxy,
and prints p50/p99 TTFT and ITL both ways and the difference (what the proxy added). With
``--soak S`` it then keeps ``--soak-streams`` streams going through the proxy for S seconds
and samples the proxy's RSS every second (psutil).

    python bench/proxy_overhead.py --streams 1 100 500 --seconds 20
    python bench/proxy_overhead.py --streams --soak 180 --soak-streams 500
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from infermeter.api import run_benchmark
from infermeter.config import BenchConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "infermeter", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{args[0]} did not start")


def bench(
    url: str,
    streams: int,
    seconds: float,
    tokens: int,
    out: Path,
    pid: int | None = None,
    ramp_up: float = 0.0,
) -> dict[str, float]:
    proxy = psutil.Process(pid) if pid is not None else None
    cpu0 = sum(proxy.cpu_times()[:2]) if proxy is not None else 0.0
    cfg = BenchConfig(
        url=url,
        model="ground-truth",
        concurrency=streams,
        duration_s=seconds,
        warmup=min(streams, 20),
        ramp_up_s=ramp_up,
        input_tokens="32",
        output_tokens=str(tokens),
        telemetry=False,
        out=out,
    )
    run = run_benchmark(cfg)
    cpu = sum(proxy.cpu_times()[:2]) - cpu0 if proxy is not None else 0.0
    d = run.metrics.distributions
    # token chunks seen (warm-up ones included, as the proxy carried them too)
    chunks = sum(len(r.chunk_ns) for r in run.records) * (1 + min(streams, 20) / len(run.records))
    return {
        "proxy_cpu_us_per_chunk": cpu / chunks * 1e6 if proxy is not None and chunks else 0.0,
        "ok": float(run.metrics.summary.requests_completed),
        "failed": float(run.metrics.summary.requests_failed),
        "ttft_p50": d["ttft_ms"].p50 or 0.0,
        "ttft_p99": d["ttft_ms"].p99 or 0.0,
        "itl_p50": d["itl_ms"].p50 or 0.0,
        "itl_p99": d["itl_ms"].p99 or 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, nargs="*", default=[1, 100, 500])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--ttft-ms", type=float, default=50.0)
    ap.add_argument("--itl-ms", type=float, default=20.0)
    ap.add_argument("--soak", type=float, default=0.0, help="seconds of the RSS soak (0: none)")
    ap.add_argument("--soak-streams", type=int, default=500)
    ap.add_argument(
        "--ramp-up",
        type=float,
        default=0.0,
        help="spread the streams' first requests over S seconds (0: all at once, lock-step)",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="proxy on the last CPU; emulator and benchmark on the others (needs 2+ CPUs)",
    )
    args = ap.parse_args()

    emu_port, proxy_port = free_port(), free_port()
    emu_url, proxy_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{proxy_port}"
    emu = start(
        [
            "serve-ground-truth",
            "--port",
            str(emu_port),
            "--ttft-ms",
            str(args.ttft_ms),
            "--itl-ms",
            str(args.itl_ms),
        ],
        emu_url + "/health",
    )
    proxy = start(
        ["proxy", "--upstream", emu_url, "--listen", f"127.0.0.1:{proxy_port}"],
        proxy_url + "/metrics",
    )
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        rest = set(cpus[:-1])
        psutil.Process(proxy.pid).cpu_affinity([cpus[-1]])
        psutil.Process(emu.pid).cpu_affinity(sorted(rest))
        os.sched_setaffinity(0, rest)
    print(
        f"# emulator TTFT {args.ttft_ms} ms, ITL {args.itl_ms} ms, {args.tokens} tokens/request; "
        f"{args.seconds:.0f} s per run; {os.cpu_count()} CPUs"
        + ("; proxy pinned to its own CPU, emulator and benchmark on the rest" if args.pin else ""),
        flush=True,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for n in args.streams:
                ramp = args.ramp_up
                direct = bench(
                    emu_url, n, args.seconds, args.tokens, Path(tmp, f"d{n}"), None, ramp
                )
                via = bench(
                    proxy_url, n, args.seconds, args.tokens, Path(tmp, f"p{n}"), proxy.pid, ramp
                )
                rows.append((n, direct, via))
                print(f"# done {n} streams", file=sys.stderr, flush=True)
            head = (
                "| streams | path | requests ok/failed | TTFT p50 ms | TTFT p99 ms "
                "| ITL p50 ms | ITL p99 ms |"
            )
            print(head)
            print("|---:|---|---:|---:|---:|---:|---:|")
            keys = ("ttft_p50", "ttft_p99", "itl_p50", "itl_p99")
            for n, direct, via in rows:
                for name, r in (("direct", direct), ("proxy", via)):
                    cells = " | ".join(f"{r[k]:.2f}" for k in keys)
                    print(f"| {n} | {name} | {r['ok']:.0f}/{r['failed']:.0f} | {cells} |")
                delta = " | ".join(f"{via[k] - direct[k]:+.2f}" for k in keys)
                print(f"| {n} | **added** | | {delta} |")
            for n, _direct, via in rows:
                cpu = via["proxy_cpu_us_per_chunk"]
                print(f"proxy CPU at {n} streams: {cpu:.0f} µs per token chunk (all its work)")
            if args.soak > 0:
                soak(proxy.pid, proxy_url, args, Path(tmp, "soak"))
    finally:
        for p in (proxy, emu):
            p.terminate()
            p.wait(10)


def soak(pid: int, url: str, args: argparse.Namespace, out: Path) -> None:
    proc = psutil.Process(pid)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(1.0):
            samples.append((time.monotonic() - t0, proc.memory_info().rss / 2**20))

    thread = threading.Thread(target=sample, daemon=True)
    rss0 = proc.memory_info().rss / 2**20
    thread.start()
    r = bench(url, args.soak_streams, args.soak, args.tokens, out)
    stop.set()
    thread.join()
    print(
        f"\nsoak: {args.soak_streams} streams for {args.soak:.0f} s through the proxy, "
        f"{r['ok']:.0f} requests ok, {r['failed']:.0f} failed; proxy RSS MiB before {rss0:.1f}"
    )
    step = max(len(samples) // 10, 1)
    print("| t (s) | proxy RSS (MiB) |\n|---:|---:|")
    for t, rss in samples[::step] + samples[-1:]:
        print(f"| {t:.0f} | {rss:.1f} |")


if __name__ == "__main__":
    main()
