"""What the host sampler's core probe takes from a host-bound server (docs/metrics.md).

    python bench/probe_cost.py [--phases 8] [--phase-s 3]

A child process marked as a local engine spins a fixed piece of Python work on one core
and counts how much it gets done in each tenth of a second. The parent samples the host
every 0.5 s as telemetry does, in phases that take turns: no sampler, the sampler with the
probe pinned to the child's core off, and the sampler as shipped (the pinned probe on).
Printed: the child's work rate in each condition (median over its phases) and each
against no sampler. A 2-core VM shares its cores with other work: read the ratios, and
run it twice.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from infermeter.telemetry.host import HostSampler, engine_env

# The child: count units of fixed work per 0.1 s on the shared monotonic clock
# (perf_counter is CLOCK_MONOTONIC on Linux), then print the bins as JSON.
_CHILD = """
import json, sys, time
end = time.perf_counter() + float(sys.argv[1])
bins, n, last = [], 0, time.perf_counter()
while True:
    acc = 0
    for i in range(2_000):
        acc += i * i % 7
    n += 1
    now = time.perf_counter()
    if now - last >= 0.1:
        bins.append((now, n / (now - last)))
        n, last = 0, now
        if now >= end:
            break
print(json.dumps(bins))
"""

CONDITIONS = ("no sampler", "unpinned probe only", "as shipped (pinned probe too)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phases", type=int, default=8, help="turns of each condition")
    ap.add_argument("--phase-s", type=float, default=3.0)
    args = ap.parse_args()
    total = args.phases * len(CONDITIONS) * args.phase_s + 1.0
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(total)], env=engine_env(), stdout=subprocess.PIPE
    )
    sampler = HostSampler()
    sampler.start()
    phases: list[tuple[int, float, float]] = []
    try:
        time.sleep(0.5)
        for _ in range(args.phases):
            for cond in range(len(CONDITIONS)):
                start = time.perf_counter()
                if cond:
                    sampler._pin = cond == 2  # the shipped sampler pins; the other does not
                    while time.perf_counter() - start < args.phase_s:
                        sampler.sample()
                        time.sleep(0.5)
                else:
                    time.sleep(args.phase_s)
                phases.append((cond, start, time.perf_counter()))
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    bins = json.loads(out)
    rates: dict[int, list[float]] = {c: [] for c in range(len(CONDITIONS))}
    for cond, start, end in phases:
        # the phase's own bins, less its first (the switch between conditions)
        inside = [r for t, r in bins if start + 0.2 <= t <= end]
        if inside:
            rates[cond].append(statistics.fmean(inside))
    base = statistics.median(rates[0])
    for cond, name in enumerate(CONDITIONS):
        med = statistics.median(rates[cond])
        print(f"{name:32s} {med:10,.0f} units/s  {med / base:.4f} of no sampler")


if __name__ == "__main__":
    main()
