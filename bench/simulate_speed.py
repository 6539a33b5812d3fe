"""How fast ``simulate`` runs: one hour of 100 requests a second (360,000 requests, 512 → 128
tokens) on replicas of the engine fitted from the committed H200 llama.cpp sweep, on one core,
the simulation alone (no run directory), then the same load written as a run directory.

    taskset -c 0 python bench/simulate_speed.py [--rate 100] [--hours 1] [--replicas 12]

``--kv-tokens N [--kv-block B]`` runs the same steps as vLLM's scheduler would: continuous
batching over a KV cache of N tokens in blocks of B, sequences preempted when it is full.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from infermeter.config import BenchConfig
from infermeter.load.arrivals import schedule
from infermeter.predict.simulate import Fleet, SimLoad, simulate
from infermeter.run.fit import fit_runs
from infermeter.run.predict import simulate_run

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--replicas", type=int, default=12)
    ap.add_argument("--write", type=int, default=36_000, help="requests of the run-directory case")
    ap.add_argument("--kv-tokens", type=int, default=0, help="vLLM-like, this KV cache")
    ap.add_argument("--kv-block", type=int, default=16)
    args = ap.parse_args()
    model = fit_runs([ROOT / "docs/results/h200/llamacpp-f16-steady"])
    if args.kv_tokens:
        model = model.model_copy(
            update={
                "scheduler": "continuous",
                "kv_tokens": args.kv_tokens,
                "kv_block_tokens": args.kv_block,
            }
        )
    due = schedule(args.rate, None, args.hours * 3600.0, seed=1) * 1000.0
    n = due.size
    load = SimLoad(np.full(n, 512), np.full(n, 128), due_ms=due, seed=1)
    t0 = time.perf_counter()
    res = simulate(model, load, fleet=Fleet(args.replicas))
    wall = time.perf_counter() - t0
    steps = sum(s.size for s in res.steps)
    print(f"simulation: {n:,} requests, {steps:,} steps on {args.replicas} replicas, "
          f"{res.sim_end_ms / 1000:,.0f} s simulated in {wall:.2f} s "
          f"({res.sim_end_ms / 1000 / wall:,.0f}× real time), all served: {bool(res.finished.all())}, "
          f"preempted {sum(res.preemptions):,} times")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "engine.json"
        path.write_text(model.model_dump_json())
        config = BenchConfig.build(
            url="http://predicted.invalid", rate=args.rate, num_requests=args.write, seed=1,
            ignore_eos=True,
        )  # fmt: skip
        t0 = time.perf_counter()
        simulate_run(model, path, config, out=Path(tmp) / "run", fleet=Fleet(args.replicas))
        wall = time.perf_counter() - t0
        size = (Path(tmp) / "run" / "records.jsonl").stat().st_size
    print(
        f"run directory: {args.write:,} requests simulated, written ({size / 1e6:,.0f} MB of "
        f"records) and read back into results.json in {wall:.2f} s"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
