"""Replay llama-server's slot hand-out from a run's records, and see what it explains.

llama-server gives a new request the idle slot used least recently (never-used slots first,
the highest id among equals: ``get_available_slot`` in tools/server/server-context.cpp), and
without a unified KV cache it decodes each run of consecutive busy slot ids as a forward pass
of its own (``split_equal(..., sequential=true)`` in src/llama-kv-cache.cpp). The records hold
when every request was sent and ended, so the slots can be handed out again here, request by
request, and checked against the ``/slots`` samples infermeter took during the runs (the span
of busy ids at each sample). Then each run's decode gaps are set beside the mean number of
runs of busy ids over its window.

    python bench/slot_replay.py --slots 64 docs/results/h200-span/span-1-fixed-fresh \\
        docs/results/h200-span/span-2-mix-after docs/results/h200-span/span-3-fixed-after-mix

The paths (runs or sweeps) must be given in the order they ran, all on one server started
fresh before the first. Nothing here is timed.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import statistics
import sys
from pathlib import Path

import orjson

from infermeter.records.rundir import (
    RECORDS_FILE,
    RUN_FILE,
    TELEMETRY_FILE,
    WARMUP_FILE,
    is_sweep_dir,
    read_sweep_index,
    read_telemetry,
)


def _runs(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if is_sweep_dir(p):
            out += [p / q["dir"] for q in read_sweep_index(p)["points"] if q["status"] == "ok"]
        else:
            out.append(p)
    return out


def _load(run: Path) -> tuple[list[tuple[int, int, dict]], list[tuple[int, dict]]]:
    """The run's requests (send, end, record) and /slots samples, on the wall clock (ns)."""
    t0 = int(orjson.loads((run / RUN_FILE).read_bytes())["t0_wall_ns"])
    reqs = []
    for name in (WARMUP_FILE, RECORDS_FILE):
        if (run / name).exists():
            for line in (run / name).read_bytes().splitlines():
                r = orjson.loads(line)
                if r.get("t_send_ns") is not None and r.get("t_end_ns") is not None:
                    reqs.append((t0 + r["t_send_ns"], t0 + r["t_end_ns"], r))
    samples = [
        (t0 + int(s["t_ns"]), s["slots"])
        for s in read_telemetry(run / TELEMETRY_FILE)
        if isinstance(s.get("slots"), dict)
    ]
    return reqs, samples


def _count_runs(busy: list[int]) -> int:
    ids = sorted(busy)
    return sum(1 for k, b in enumerate(ids) if k == 0 or b != ids[k - 1] + 1)


def replay(reqs: list[tuple[int, int, dict]], slots: int) -> list[tuple[int, tuple[int, ...]]]:
    """The busy slot ids after every send and end, in time order (an end first at a tie)."""
    events = sorted(
        [(s, 1, i) for i, (s, _, _) in enumerate(reqs)]
        + [(e, 0, i) for i, (_, e, _) in enumerate(reqs)]
    )
    idle = [(-1, -s) for s in range(slots)]  # (last used, -id): LRU, then the highest id
    heapq.heapify(idle)
    slot_of: dict[int, int] = {}
    waiting: list[int] = []
    out = []
    for t, kind, i in events:
        if kind:
            if idle:
                slot_of[i] = -heapq.heappop(idle)[1]
            else:
                waiting.append(i)
        elif i in slot_of:
            heapq.heappush(idle, (t, -slot_of.pop(i)))
            if waiting:
                slot_of[waiting.pop(0)] = -heapq.heappop(idle)[1]
        out.append((t, tuple(sorted(slot_of.values()))))
    return out


def _at(history: list[tuple[int, tuple[int, ...]]], t: int) -> tuple[int, ...]:
    lo, hi = 0, len(history)
    while lo < hi:
        mid = (lo + hi) // 2
        if history[mid][0] <= t:
            lo = mid + 1
        else:
            hi = mid
    return history[lo - 1][1] if lo else ()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--slots", type=int, required=True, help="the server's -np")
    args = ap.parse_args()
    runs = _runs(args.paths)
    loaded = [_load(r) for r in runs]
    history = replay([q for reqs, _ in loaded for q in reqs], args.slots)
    print(
        "| run | /slots samples | span: measured / replayed | samples within ±1 | "
        "busy slots | runs of busy ids | ITL p50 (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    for run, (reqs, samples) in zip(runs, loaded, strict=True):
        busy = [(t, s) for t, s in samples if s.get("active", 0) > 0]
        replayed = [_at(history, t) for t, _ in busy]
        spans = [(max(x) - min(x) + 1) if x else 0 for x in replayed]
        agree = sum(abs(a - int(s["span"])) <= 1 for a, (_, s) in zip(spans, busy, strict=True))
        measured = [(s, e, r) for s, e, r in reqs if r.get("phase") == "measure"]
        lo, hi = min(s for s, _, _ in measured), max(e for _, e, _ in measured)
        total = weighted_runs = weighted_batch = 0.0
        for (t1, ids), (t2, _) in itertools.pairwise(history):
            a, b = max(t1, lo), min(t2, hi)
            if b > a and ids:
                total += b - a
                weighted_runs += (b - a) * _count_runs(list(ids))
                weighted_batch += (b - a) * len(ids)
        gaps = [
            (b - a) / 1e6
            for _, _, r in measured
            for a, b in itertools.pairwise(r.get("chunk_ns") or [])
        ]
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
