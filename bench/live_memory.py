"""Memory of a long live run: a bench of many requests against the ground-truth emulator, the
client's resident memory sampled as it goes. A client that kept anything per request after
writing its record would grow with the run; one that keeps nothing stays flat after warm-up.

    python bench/live_memory.py --requests 1000000 --concurrency 64 --workers 2

The run sends ``-n`` requests with ``--duration`` set far away, so that it cycles a pool of
1,000 prompts (as any run with a duration does) instead of building one per request first.

The emulator runs in its own process (instant answers of a few tokens, so the run is as many
requests a second as the client can send); the client's process tree (the parent and its
workers) is sampled every second from /proc. Printed: the RSS of the tree and of its largest
process at 10 %, 25 %, 50 %, 75 % and 100 % of the requests finished, the range and growth
while sending from the 10 % mark on, and the peak of the summary that follows (the run read
back from disk).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _records(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--output-tokens", type=int, default=2)
    args = ap.parse_args()
    port = _free_port()
    emu = subprocess.Popen(
        [sys.executable, "-m", "infermeter", "serve-ground-truth", "--port", str(port),
         "--ttft-ms", "0", "--itl-ms", "0"],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.5)
    work = Path(tempfile.mkdtemp(prefix="live-memory-"))
    out = work / "run"
    cmd = [
        sys.executable, "-m", "infermeter", "bench", "--url", f"http://127.0.0.1:{port}",
        "-c", str(args.concurrency), "-n", str(args.requests), "--workers", str(args.workers),
        "--duration", "1000000",  # with -n: a pool of 1,000 prompts, cycled, not one a request
        "--input-tokens", "8", "--output-tokens", str(args.output_tokens), "--quiet",
        "--no-telemetry", "--out", str(out),
    ]  # fmt: skip
    t0 = time.monotonic()
    bench = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int, int, int]] = []  # (s, records, tree KiB, largest KiB)
    try:
        while bench.poll() is None:
            time.sleep(1.0)
            rss = [_rss_kib(p) for p in _tree(bench.pid)]
            if not any(rss):
                continue  # the run has ended between the poll and the sample
            samples.append(
                (
                    time.monotonic() - t0,
                    _records(out / "records.jsonl"),
                    sum(rss),
                    max(rss, default=0),
                )
            )
    finally:
        emu.terminate()
        emu.wait()
    err = bench.stderr.read().decode() if bench.stderr else ""
    wall = time.monotonic() - t0
    done = _records(out / "records.jsonl")
    print(
        f"host: {os.cpu_count()} cores; {done:,} records in {wall:.0f} s ({done / wall:,.0f} req/s); exit {bench.returncode}"
    )
    if bench.returncode:
        print(err[-2000:])
    print("| finished | elapsed (s) | tree RSS (MiB) | largest process (MiB) |")
    print("|---|---|---|---|")
    marks = {}
    for share in (0.10, 0.25, 0.50, 0.75, 1.00):
        target = share * args.requests
        hit = next((s for s in samples if s[1] >= target), samples[-1] if samples else None)
        if hit is None:
            continue
        marks[share] = hit
        print(f"| {100 * share:.0f} % | {hit[0]:.0f} | {hit[2] / 1024:.0f} | {hit[3] / 1024:.0f} |")
    # While sending (records still growing) against after it (the run read back from disk
    # for its summary: the report's own memory, measured by bench/analysis_scale.py).
    sending = [x for x in samples if x[1] < args.requests]
    after = [x for x in samples if x[1] >= args.requests]
    if 0.10 in marks and sending:
        load = [x[2] for x in sending if x[1] >= marks[0.10][1]]
        print(
            f"while sending, from the 10 % mark on: tree RSS {min(load) / 1024:.0f}-"
            f"{max(load) / 1024:.0f} MiB (growth {100 * (load[-1] / load[0] - 1):+.1f} % "
            f"from {marks[0.10][1]:,} to {sending[-1][1]:,} records)"
        )
    if after:
        print(
            f"summarising the run afterwards: peak tree RSS {max(x[2] for x in after) / 1024:.0f} MiB"
        )
    print(
        f"records: {out / 'records.jsonl'} ({(out / 'records.jsonl').stat().st_size / 2**30:.2f} GiB)"
    )


if __name__ == "__main__":
    main()
