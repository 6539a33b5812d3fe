"""How many of a llama-server's decode steps replayed a CUDA graph, run by run.

llama.cpp's CUDA backend replays a captured graph only when a step's tensors have the shapes
and addresses of the step before under the same key; any change (another batch size, another
split into passes, a prompt between) runs the kernels one by one, and the next unchanged step
captures anew (``ggml_backend_cuda_graph_compute`` in ggml-cuda.cu). The server logs, with
each finished request, a counter of the graphs it reused so far (``graphs reused =`` in
``print_timing``, verbosity 3, as ``bench/gpu_study.sh`` runs it). Its growth over a run's
window, against the steps the run's records show (its streams' tokens, grouped into steps at
gaps of more than ``--step-gap-ms``), is the share of steps that reused their graph.

The graph is reused only by a pass with the sequences of the pass before (``allow_reuse`` in
src/llama-graph.h compares the ubatch's sizes and sequence ids), so a step reuses it when it
decodes the busy slots of the step before, in one pass, with no prompt in either. The slots
handed out again from the records (infermeter.predict.slots, as ``infermeter fit`` does) say
which steps those were: the count they give beside the server's is a check of the replay
that the fit and the simulation lean on. The log also names each slot freed (``release: id
N``): the sets freed together, against the replay's sets freed at the same moment (within
4 ms, the log's clock set on the records' by the offset that best matches its first
releases), are a second check.

    python bench/graph_reuse.py --slots 64 --logs docs/results/h100-dense-b/server-logs \\
        docs/results/h100-dense-b/predict-fit

The paths (runs or sweeps) must be the runs of one server in the order they ran, the first
on a fresh server, as for bench/slot_replay.py; the server's log is the last one started
before the first run (its name holds the start, in Unix seconds). Nothing here is timed.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from infermeter.predict.fit import replay_server
from infermeter.records.reader import read_records
from infermeter.records.rundir import RECORDS_FILE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slot_replay import _load, _runs, busy_at

_STAMP = r"(\d+)\.(\d+)\.(\d+)\.(\d+) "
_LINE = re.compile(_STAMP + r".*graphs reused =\s+(\d+)")
_RELEASE = re.compile(_STAMP + r".*release: id +(\d+)")
_LOG_NAME = re.compile(r"llama-server-(\d+)\.log$")


def log_lines(log: Path, pattern: re.Pattern[str]) -> list[tuple[float, int]]:
    """(seconds since the server started, the number the line holds) of each line of
    ``log`` that ``pattern`` matches: the graphs reused so far at each finished request
    (``_LINE``), or the slot freed (``_RELEASE``)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = pattern.match(line)
        if m:
            t = int(m[1]) * 60 + int(m[2]) + int(m[3]) / 1e3 + int(m[4]) / 1e6
            out.append((t, int(m[5])))
    return out


def freed_together(
    freed: list[tuple[float, int]], free_s: np.ndarray, slot: np.ndarray
) -> list[tuple[float, bool]]:
    """Per set of slots the log frees within 2 ms: (its instant on the records' clock,
    whether the replay freed the same set within 4 ms of it)."""
    if not freed or not free_s.size:
        return []
    # the offset (0 to 1.5 s, by the millisecond) that puts most of the first releases
    # within 2 ms of a replayed one
    first = np.array([t for t, _ in freed[:50]])
    ends = np.sort(free_s)

    def near(offset: float) -> int:
        at = np.clip(np.searchsorted(ends, first + offset), 1, ends.size - 1)
        gap = np.minimum(np.abs(ends[at] - first - offset), np.abs(ends[at - 1] - first - offset))
        return int(np.count_nonzero(gap < 0.002))

    offset = max(np.arange(0.0, 1.5, 0.001), key=near)
    groups: list[list[tuple[float, int]]] = [[freed[0]]]
    for a, b in itertools.pairwise(freed):
        if b[0] - a[0] < 0.002:
            groups[-1].append(b)
        else:
            groups.append([b])
    out = []
    for g in groups:
        lo, hi = g[0][0] + offset - 0.004, g[-1][0] + offset + 0.004
        replayed = set(slot[(free_s >= lo) & (free_s <= hi)].tolist())
        out.append((g[0][0] + offset, replayed == {s for _, s in g}))
    return out


def reused_between(series: list[tuple[float, int]], lo: float, hi: float) -> int:
    """Graphs reused between two moments: the counter's last value before ``hi`` less its
    last value before ``lo`` (it is printed only as requests finish)."""
    before = [n for t, n in series if t <= lo]
    upto = [n for t, n in series if t <= hi]
    return (upto[-1] if upto else 0) - (before[-1] if before else 0)


@dataclass
class Step:
    start_ms: float
    end_ms: float
    prompt: bool  # a stream's first token came with it: the step carried its prompt


def steps(tokens: list[tuple[float, bool]], gap_ms: float) -> list[Step]:
    """Tokens (wall ms, whether a stream's first) grouped into steps at longer gaps."""
    out: list[Step] = []
    for t, first in sorted(tokens):
        if out and t - out[-1].end_ms <= gap_ms:
            out[-1].end_ms = t
            out[-1].prompt |= first
        else:
            out.append(Step(t, t, first))
    return out


def runs_of(busy: np.ndarray) -> int:
    """Runs of consecutive ids among the busy slots: the step's forward passes."""
    ids = np.sort(busy)
    return int(ids.size and 1 + np.count_nonzero(np.diff(ids) > 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", type=Path, required=True, help="folder of llama-server-*.log")
    ap.add_argument("--slots", type=int, required=True, help="the server's -np")
    ap.add_argument("--step-gap-ms", type=float, default=2.0)
    ap.add_argument("paths", nargs="+", type=Path, help="runs or sweeps of one server")
    args = ap.parse_args()
    runs = _runs(args.paths)
    loaded = [_load(r) for r in runs]
    history = replay_server([replace(o, origin_ms=t0) for o, t0, _ in loaded], args.slots)
    first_ms = min(t0 for _, t0, _ in loaded)
    logs = sorted(
        (int(m[1]), p) for p in args.logs.glob("*.log") if (m := _LOG_NAME.search(p.name))
    )
    started = [(e, p) for e, p in logs if e <= first_ms / 1e3]
    if not started:
        sys.exit(f"no llama-server-*.log in {args.logs} started before {runs[0]}")
    epoch, log = started[-1]
    series = log_lines(log, _LINE)
    # the log's zero sits up to a second after its name's whole second: the offset is
    # taken from the releases themselves
    together = freed_together(log_lines(log, _RELEASE), history.free / 1e3 - epoch, history.slot)
    print(
        "| run | steps | graphs reused, logged | reused, replayed slots | "
        "one-pass repeats / other steps, median ms | slots freed together, as replayed |"
    )
    print("|---|---|---|---|---|---|")
    for run, (_, t0, _) in zip(runs, loaded, strict=True):
        recs = [r for r in read_records(run / RECORDS_FILE).records if r.ok and r.chunk_ns]
        tokens = [(t0 + t / 1e6, t == r.t_first_ns) for r in recs for t in r.chunk_ns]
        found = steps(tokens, args.step_gap_ms)
        if len(found) < 2:
            continue
        replayed = 0
        fast: list[float] = []
        slow: list[float] = []
        prev: tuple[frozenset[int], bool] | None = None
        for before, step in itertools.pairwise(found):
            busy = busy_at(history, step.start_ms - 0.01)
            key = frozenset(busy.tolist())
            again = (
                prev is not None
                and not step.prompt
                and not prev[1]
                and prev[0] == key
                and runs_of(busy) == 1
            )
            replayed += again
            if not step.prompt and not before.prompt:
                (fast if again else slow).append(step.start_ms - before.start_ms)
            prev = (key, step.prompt)
        # The name's whole second is at most a second before the log's zero: a window's
        # ends move by under a second, against runs of ten.
        lo, hi = found[0].start_ms / 1e3 - epoch, found[-1].end_ms / 1e3 - epoch
        reused = reused_between(series, lo, hi)
        label = f"{run.parent.parent.name}/{run.name}" if run.parent.name == "points" else run.name
        ms = " / ".join(f"{statistics.median(x):.1f}" if x else "-" for x in (fast, slow))
        mine = [same for t, same in together if lo <= t <= hi]
        print(
            f"| {label} | {len(found)} | {reused} | {replayed} | {ms} | "
            f"{sum(mine)} of {len(mine)} |"
        )


if __name__ == "__main__":
    main()
