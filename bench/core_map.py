"""How fast each of this host's cores runs, and what makes one slow (docs/metrics.md).

    python bench/core_map.py [--idle-s 8] [--json FILE]

Times the host sampler's core probe (a fixed pure-Python loop, thread CPU time) pinned to
each CPU in turn, in four parts:

- idle: every CPU, pass after pass, with nothing of this script's running: whether one
  core is slower than the others (a neighbour on its physical core), or all of them at
  once over time (the host's clock);
- load: CPU 0 probed while k other CPUs each spin a Python loop, k = 0 … all: whether a
  core slows as more of the host's cores are busy (a shared clock or power limit);
- pairs: CPU 0 probed while each other CPU alone spins: a pair that slows it shares a
  physical core that the guest's topology (``lscpu``) does not show;
- again: the idle pass once more, so a change of speed during the script shows.

Printed: each part's medians in µs and as ratios to the fastest reading. Ratios near 1
everywhere but across time mean the host's clock moved; a ratio that rises with k means
this host's own load sets its cores' speed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

from infermeter.telemetry.host import pinned_probe_us


def _probe_on(cpu: int) -> float:
    # best of 3: nothing of a server's is slowed by it here
    probe = pinned_probe_us(cpu, runs=3)
    if probe is None:
        raise SystemExit(f"core_map: cannot pin a thread to CPU {cpu}")
    return probe


def _spin(cpu: int, go: mp.synchronize.Event, stop: mp.synchronize.Event) -> None:
    os.sched_setaffinity(0, {cpu})
    while not stop.is_set():
        if not go.wait(0.05):
            continue
        acc = 0
        while go.is_set():
            for i in range(2_000):
                acc += i * i % 7


def _idle(cpus: list[int], seconds: float) -> list[list[float]]:
    passes: list[list[float]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        passes.append([_probe_on(c) for c in cpus])
        time.sleep(0.1)
    return passes


def _under(target: int, busy: list[int], gos: dict[int, mp.synchronize.Event]) -> float:
    for c in busy:
        gos[c].set()
    time.sleep(0.3)  # a clock that follows load takes a moment to settle
    try:
        return statistics.median(_probe_on(target) for _ in range(5))
    finally:
        for c in busy:
            gos[c].clear()
        time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle-s", type=float, default=8.0)
    ap.add_argument("--json", help="write every reading here")
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("core_map: needs two CPUs or more", file=sys.stderr)
        return 2
    target, others = cpus[0], cpus[1:]

    idle = _idle(cpus, args.idle_s)
    stop = mp.Event()
    gos = {c: mp.Event() for c in others}
    procs = [mp.Process(target=_spin, args=(c, gos[c], stop), daemon=True) for c in others]
    for p in procs:
        p.start()
    try:
        n = len(others)
        ks = sorted(k for k in {0, 1, 2, 4, n // 4, n // 2, n} if k <= n)
        load = {k: _under(target, others[:k], gos) for k in ks}
        # every neighbour on a host of up to 32 CPUs, an even sample of 31 beyond, so the
        # map ends in about 20 s however many there are
        step = max(1, -(-len(others) // 31))
        pairs = {c: _under(target, [c], gos) for c in others[::step]}
    finally:
        stop.set()
        for p in procs:
            p.join(2)
            if p.is_alive():
                p.kill()
    again = _idle(cpus, min(args.idle_s, 4.0))

    floor = min(min(min(p) for p in idle), min(load.values()), min(min(p) for p in again))
    print(f"core map over CPUs {cpus[0]}-{cpus[-1]} ({len(cpus)}); fastest probe {floor:.0f} µs")
    per_cpu = {c: statistics.median(p[i] for p in idle) for i, c in enumerate(cpus)}
    print("idle, per CPU (median over passes, ratio to fastest):")
    print("  " + "  ".join(f"{c}:{v / floor:.2f}" for c, v in per_cpu.items()))
    over_time = [statistics.median(p) for p in idle]
    print(
        f"idle, per pass (median over CPUs): {len(idle)} passes, ratio "
        f"{min(over_time) / floor:.2f}-{max(over_time) / floor:.2f}"
    )
    print(
        f"load, CPU {target} while k others spin: "
        + "  ".join(f"k={k}:{v / floor:.2f}" for k, v in load.items())
    )
    print(
        f"pairs, CPU {target} while one other spins: "
        + "  ".join(f"{c}:{v / floor:.2f}" for c, v in pairs.items())
    )
    again_time = [statistics.median(p) for p in again]
    print(
        f"idle again: {len(again)} passes, ratio "
        f"{min(again_time) / floor:.2f}-{max(again_time) / floor:.2f}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "cpus": cpus,
                    "floor_us": floor,
                    "idle": idle,
                    "load": load,
                    "pairs": pairs,
                    "again": again,
                },
                fh,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
