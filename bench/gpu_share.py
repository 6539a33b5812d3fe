"""How one GPU runs two processes' steps: one after the other, or interleaved.

Two llama-server replicas on one H100 decoded at about the sum of their step times
(docs/results/prediction.md, "On one GPU"); `simulate --replicas-per-gpu` lets a step wait
for the other replica's step and then hold the GPU whole. This checks that rule without the
engines: two processes each time a "decode step" (reading a large fp16 tensor,
bandwidth-bound like a decode step's weight read). A steps back to back; B steps with random
idle gaps, so B's steps begin at every phase of A's. Per B step, by A's rest when it began:

- run one after the other (the simulation's model): B takes A's rest, then its own step;
- interleaved (time slices): B shares the GPU with A's next step too, about two steps
  whatever the rest.

    python bench/gpu_share.py [--seconds 12] [--gb 16] [--kernels 1] [--out share.json]

Needs a CUDA GPU and PyTorch; prints a table, writes every step's stamps to --out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import random
import statistics
import time
from pathlib import Path


def worker(
    name: str,
    gb: float,
    kernels: int,
    start_ns: int,
    stop_ns: int,
    gap_ms: float,
    device: str,
    q: mp.Queue,
) -> None:
    import torch

    x = torch.ones(int(gb * 1e9 / 2), dtype=torch.float16, device=device)
    parts = x.chunk(kernels)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(5):  # warm the kernels before the shared clock starts
        for part in parts:
            part.sum()
    sync()
    rng = random.Random(name)
    steps: list[tuple[int, int]] = []
    while time.monotonic_ns() < start_ns:
        time.sleep(0.001)
    while (now := time.monotonic_ns()) < stop_ns:
        for part in parts:  # an engine's step is many kernels, a layer's each
            part.sum()
        sync()
        steps.append((now, time.monotonic_ns()))
        if gap_ms:
            time.sleep(rng.uniform(0, gap_ms) / 1000)
    q.put((name, steps))


def _overlap(x: tuple[int, int], steps: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The step of ``steps`` running when ``x`` began."""
    for y in steps:
        if y[0] <= x[0] < y[1]:
            return y
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--alone", type=float, default=3.0, help="seconds of A alone first")
    ap.add_argument("--gb", type=float, default=16.0, help="tensor each step reads")
    ap.add_argument("--kernels", type=int, default=1, help="kernels a step launches")
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to allocate in")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the script")
    ap.add_argument("--gap-ms", type=float, default=12.0, help="B's idle gap, up to")
    ap.add_argument("--out", type=Path, default=Path("share.json"))
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    t0 = time.monotonic_ns() + int(args.settle * 1e9)  # both have their tensors by then
    end = t0 + int((args.alone + args.seconds) * 1e9)
    alone_end = t0 + int(args.alone * 1e9)
    procs = [
        ctx.Process(target=worker, args=("A", args.gb, args.kernels, t0, end, 0.0, args.device, q)),
        ctx.Process(
            target=worker,
            args=("B", args.gb, args.kernels, alone_end, end, args.gap_ms, args.device, q),
        ),
    ]
    for p in procs:
        p.start()
    got = dict(q.get() for _ in procs)
    for p in procs:
        p.join()
    a, b = got["A"], got["B"]
    solo = statistics.median((e - s) / 1e6 for s, e in a if e <= alone_end)
    print(f"A alone: median step {solo:.2f} ms")
    both = [(e - s) / 1e6 for s, e in a if s >= alone_end]
    print(f"A beside B: median step {statistics.median(both):.2f} ms ({len(both)} steps)")
    # Each B step began inside an A step (A never idles): one after the other, B takes A's
    # rest and then its own step (B − rest ≈ solo, whatever the rest); interleaved with A's
    # next step, B takes about two steps whatever the rest.
    rows = []
    for step in b:
        found = _overlap(step, a)
        if found is not None:
            rows.append(((found[1] - step[0]) / 1e6, (step[1] - step[0]) / 1e6))
    print(f"B steps begun inside an A step: {len(rows)}")
    print("| A's rest when B began (ms) | n | B's step (ms) | B − rest (ms) |")
    print("|---|---|---|---|")
    edges = [0, 0.25, 0.5, 0.75, 1.01]
    for lo, hi in itertools.pairwise(edges):
        sel = [r for r in rows if lo * solo <= r[0] < hi * solo]
        if sel:
            db = statistics.median(r[1] for r in sel)
            dr = statistics.median(r[1] - r[0] for r in sel)
            print(f"| {lo * solo:.1f}-{hi * solo:.1f} | {len(sel)} | {db:.2f} | {dr:.2f} |")
    if any(r[0] < 1.01 * solo for r in rows):
        # whole steps one after the other: these cluster at 1 and 2 (plus the switch);
        # interleaved steps spread between
        ratios = sorted((r[1] - r[0]) / solo for r in rows if r[0] < 1.01 * solo)
        tenths = [ratios[int(q * (len(ratios) - 1))] for q in (0.1, 0.25, 0.5, 0.75, 0.9)]
        print("(B − rest) / A's solo step, deciles 10/25/50/75/90:",
              " ".join(f"{v:.2f}" for v in tenths))  # fmt: skip
    args.out.write_text(json.dumps({"A": a, "B": b, "alone_end_ns": alone_end}))


if __name__ == "__main__":
    main()
