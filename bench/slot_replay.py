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
import bisect
import itertools
import statistics
import sys
from pathlib import Path

import numpy as np
import orjson

from infermeter.predict.fit import ObservedRun, admitted
from infermeter.predict.slots import replay_runs
from infermeter.records.reader import read_records
from infermeter.records.rundir import (
    RECORDS_FILE,
    RUN_FILE,
    TELEMETRY_FILE,
    is_sweep_dir,
    read_sweep_index,
    read_telemetry,
)
from infermeter.run.fit import observed_run


def _runs(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if is_sweep_dir(p):
            out += [p / q["dir"] for q in read_sweep_index(p)["points"] if q["status"] == "ok"]
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


def _count_runs(busy: list[int]) -> int:
    ids = sorted(busy)
    return sum(1 for k, b in enumerate(ids) if k == 0 or b != ids[k - 1] + 1)


def replay(obs: list[tuple[ObservedRun, float]], slots: int) -> list[tuple[float, tuple[int, ...]]]:
    """The busy slot ids after every take and free, in time order, as the fit replays them."""
    take = np.concatenate([admitted(o) + t0 for o, t0 in obs])
    free = np.concatenate([o.t_last + t0 for o, t0 in obs])
    _, _, slot = replay_runs(take, free, slots)
    n = take.size
    times = np.concatenate([free, take])
    kinds = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    busy: set[int] = set()
    out = []
    for e in np.lexsort((kinds, times)).tolist():
        i = e % n
        if kinds[e]:
            busy.add(int(slot[i]))
        else:
            busy.discard(int(slot[i]))
        out.append((float(times[e]), tuple(sorted(busy))))
    return out


def _at(history: list[tuple[float, tuple[int, ...]]], t: float) -> tuple[int, ...]:
    k = bisect.bisect_right([h[0] for h in history], t) - 1
    return history[k][1] if k >= 0 else ()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--slots", type=int, required=True, help="the server's -np")
    args = ap.parse_args()
    runs = _runs(args.paths)
    loaded = [_load(r) for r in runs]
    history = replay([(o, t0) for o, t0, _ in loaded], args.slots)
    print(
        "| run | /slots samples | span: measured / replayed | samples within ±1 | "
        "busy slots | runs of busy ids | ITL p50 (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    for run, (_, t0, samples) in zip(runs, loaded, strict=True):
        busy = [(t, s) for t, s in samples if s.get("active", 0) > 0]
        spans = [(max(x) - min(x) + 1) if x else 0 for x in (_at(history, t) for t, _ in busy)]
        agree = sum(abs(a - int(s["span"])) <= 1 for a, (_, s) in zip(spans, busy, strict=True))
        measured = read_records(run / RECORDS_FILE).records
        lo = t0 + min(r.t_send_ns for r in measured) / 1e6
        hi = t0 + max(r.t_end_ns for r in measured) / 1e6
        total = weighted_runs = weighted_batch = 0.0
        for (t1, ids), (t2, _) in itertools.pairwise(history):
            a, b = max(t1, lo), min(t2, hi)
            if b > a and ids:
                total += b - a
                weighted_runs += (b - a) * _count_runs(list(ids))
                weighted_batch += (b - a) * len(ids)
        gaps = [(b - a) / 1e6 for r in measured for a, b in itertools.pairwise(r.chunk_ns)]
        name = f"{run.parent.parent.name}/{run.name}" if run.parent.name == "points" else run.name
        span_m = statistics.fmean(int(s["span"]) for _, s in busy) if busy else float("nan")
        span_r = statistics.fmean(spans) if spans else float("nan")
        print(
            f"| {name} | {len(busy)} | {span_m:.1f} / {span_r:.1f} | {agree}/{len(busy)} | "
            f"{weighted_batch / total:.2f} | {weighted_runs / total:.2f} | "
            f"{statistics.median(gaps):.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
