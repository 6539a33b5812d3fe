"""Replay llama-server's slot hand-out from a run's records, and see what it explains.

llama-server gives a new request the idle slot used least recently (never-used slots first,
the highest id among equals: ``get_available_slot`` in tools/server/server-context.cpp), and
without a unified KV cache it decodes each run of consecutive busy slot ids as a forward pass
of its own (``split_equal(..., sequential=true)`` in src/llama-kv-cache.cpp). The records say
when each request took its slot (the step boundary before its first token) and freed it (its
last token), so the slots can be handed out again here as ``infermeter fit`` does
(infermeter.predict.slots), and checked against the ``/slots`` samples infermeter took during
the runs (the span of busy ids at each sample). Then each run's decode gaps are set beside
the mean number of runs of busy ids over its window.

    python bench/slot_replay.py --slots 64 docs/results/h200-span/span-1-fixed-fresh \\
        docs/results/h200-span/span-2-mix-after docs/results/h200-span/span-3-fixed-after-mix

The paths (runs or sweeps) must be given in the order they ran, all on one server started
fresh before the first. Nothing here is timed.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson

from infermeter.predict.fit import ObservedRun, ServerReplay, replay_server
from infermeter.records.reader import read_records
from infermeter.records.rundir import (
    RECORDS_FILE,
    RUN_FILE,
    TELEMETRY_FILE,
    finished_points,
    is_sweep_dir,
    read_telemetry,
)
from infermeter.run.fit import observed_run


def _runs(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if is_sweep_dir(p):
            out += finished_points(p)
        else:
            out.append(p)
    return out


def _load(run: Path) -> tuple[ObservedRun, float, list[tuple[float, dict]]]:
    """The run's requests (warm-up too) and its /slots samples; its zero on the wall clock
    (ms)."""
    t0 = int(orjson.loads((run / RUN_FILE).read_bytes())["t0_wall_ns"]) / 1e6
    samples = [
        (t0 + int(s["t_ns"]) / 1e6, s["slots"])
        for s in read_telemetry(run / TELEMETRY_FILE)
        if isinstance(s.get("slots"), dict)
    ]
    return observed_run(run.name, run), t0, samples


def busy_at(replayed: ServerReplay, t: float) -> np.ndarray:
    """The slots busy at ``t``."""
    return replayed.slot[(replayed.take <= t) & (replayed.free > t)]


def window(replayed: ServerReplay, lo: float, hi: float) -> tuple[float, float]:
    """The time-weighted mean of busy slots and of their runs over [lo, hi], while any is
    busy."""
    times, runs = replayed.times, replayed.runs
    t1, t2 = np.maximum(times[:-1], lo), np.minimum(times[1:], hi)
    busy = np.searchsorted(np.sort(replayed.take), times[:-1], "right") - np.searchsorted(
        np.sort(replayed.free), times[:-1], "right"
    )
    dt = np.where((t2 > t1) & (busy > 0), t2 - t1, 0.0)
    return float((dt * busy).sum() / dt.sum()), float((dt * runs[:-1]).sum() / dt.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--slots", type=int, required=True, help="the server's -np")
    ap.add_argument(
        "--budget", type=int, default=2048, help="the server's -b (prompt tokens a step)"
    )
    args = ap.parse_args()
    runs = _runs(args.paths)
    loaded = [_load(r) for r in runs]
    history = replay_server(
        [replace(o, origin_ms=t0) for o, t0, _ in loaded], args.slots, args.budget
    )
    print(
        "| run | /slots samples | span: measured / replayed | samples within ±1 | "
        "busy slots | runs of busy ids | ITL p50 (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    for run, (_, t0, samples) in zip(runs, loaded, strict=True):
        busy = [(t, s) for t, s in samples if s.get("active", 0) > 0]
        spans = [
            int(x.max() - x.min() + 1) if x.size else 0
            for x in (busy_at(history, t) for t, _ in busy)
        ]
        agree = sum(abs(a - int(s["span"])) <= 1 for a, (_, s) in zip(spans, busy, strict=True))
        measured = read_records(run / RECORDS_FILE).records
        lo = t0 + min(r.t_send_ns for r in measured) / 1e6
        hi = t0 + max(r.t_end_ns for r in measured) / 1e6
        mean_busy, mean_runs = window(history, lo, hi)
        gaps = [(b - a) / 1e6 for r in measured for a, b in itertools.pairwise(r.chunk_ns)]
        name = f"{run.parent.parent.name}/{run.name}" if run.parent.name == "points" else run.name
        span_m = statistics.fmean(int(s["span"]) for _, s in busy) if busy else float("nan")
        span_r = statistics.fmean(spans) if spans else float("nan")
        print(
            f"| {name} | {len(busy)} | {span_m:.1f} / {span_r:.1f} | {agree}/{len(busy)} | "
            f"{mean_busy:.2f} | {mean_runs:.2f} | "
            f"{statistics.median(gaps):.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
