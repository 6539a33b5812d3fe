"""llama-server's own log set beside the slot replay that ``fit`` and ``simulate`` lean on.

At verbosity 3 (as ``bench/gpu_study.sh`` runs it) llama-server logs each slot it hands out
(``selected slot by``), each slot it frees (``release: id N``), and with each finished request
a running count of the compute graphs it reused (``graphs reused =``). A pass reuses its
graph only when it has the sizes and the very sequences of the pass before (``allow_reuse``
in src/llama-graph.h), so a step reuses it when it decodes the busy slots of the step before,
in one pass, with no prompt in either. Without a unified KV cache each run of consecutive
busy slot ids is a forward pass of its own (infermeter.predict.slots). So the log says, step
by step, what the replay of the records (infermeter.predict.fit.replay_server) guesses:

- the graphs reused over each run, logged, against the count the replayed slots give and
  the count the server's own layout gives (the second checks the rule above);
- the sets of slots freed together, against the replay's sets freed at the same moment
  (within 4 ms, the log's clock put on the records' by the offset that best matches its
  first releases);
- the passes a decode step took, time-weighted over the run: the server's and the replay's;
- with ``--steps``, the median decode step by batch size, passes and whether the graph was
  kept, read off the server's layout (steps that neither carry a prompt nor follow one);
- with ``--engine-model ENGINE.json``, the passes the simulation's steps took when each run
  is simulated as bench/prediction.py does (same flags and seed, after the runs before it
  on the server: ``prediction.mean_passes``).

Steps are read off the records: every stream's tokens, cut at gaps over ``--step-gap-ms``.

    python bench/graph_reuse.py --slots 64 --logs docs/results/h100-dense-b/server-logs \\
        docs/results/h100-dense-b/predict-fit --steps

The paths (runs or sweeps) must be the runs of one server in the order they ran, the first
on a fresh server, as for bench/slot_replay.py; the server's log is the last one started
before the first run (its name holds the start, in Unix seconds). Nothing here is timed.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import re
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from infermeter.predict.fit import cut_steps, replay_server
from infermeter.predict.model import read_engine_model
from infermeter.records.reader import read_records
from infermeter.records.rundir import RECORDS_FILE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prediction import predict_like
from slot_replay import _load, _runs, busy_at

from infermeter.run.predict import ServerHistory

_STAMP = r"(\d+)\.(\d+)\.(\d+)\.(\d+) "
_REUSED = re.compile(_STAMP + r".*graphs reused =\s+(\d+)")
_RELEASE = re.compile(_STAMP + r".*release: id +(\d+)")
_TAKE = re.compile(_STAMP + r".*get_availabl: id +(\d+) .*selected slot by")
_LOG_NAME = re.compile(r"llama-server-(\d+)\.log$")


def log_lines(log: Path, pattern: re.Pattern[str]) -> list[tuple[float, int]]:
    """(seconds since the server started, the number the line holds) of each line of
    ``log`` that ``pattern`` matches: the graphs reused so far at a finished request
    (``_REUSED``), a slot freed (``_RELEASE``) or handed out (``_TAKE``)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = pattern.match(line)
        if m:
            t = int(m[1]) * 60 + int(m[2]) + int(m[3]) / 1e3 + int(m[4]) / 1e6
            out.append((t, int(m[5])))
    return out


def log_offset(freed: list[tuple[float, int]], free_s: np.ndarray) -> float:
    """What puts the log's clock on the records' (both in seconds): the offset, 0 to 1.5 s
    by the millisecond, that puts most of the first 50 releases within 2 ms of a replayed
    one (the log's zero sits up to a second after its name's whole second)."""
    first = np.array([t for t, _ in freed[:50]])
    ends = np.sort(free_s)

    def near(offset: float) -> int:
        at = np.clip(np.searchsorted(ends, first + offset), 1, ends.size - 1)
        gap = np.minimum(np.abs(ends[at] - first - offset), np.abs(ends[at - 1] - first - offset))
        return int(np.count_nonzero(gap < 0.002))

    return float(max(np.arange(0.0, 1.5, 0.001), key=near))


def freed_together(
    freed: list[tuple[float, int]], offset: float, free_s: np.ndarray, slot: np.ndarray
) -> list[tuple[float, bool]]:
    """Per set of slots the log frees within 2 ms: (its instant on the records' clock,
    whether the replay freed the same set within 4 ms of it)."""
    if not freed:
        return []
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


def server_layout(log: Path) -> Callable[[float], frozenset[int]]:
    """The slots busy on the server at an instant of its log's clock (seconds), from the
    slots it handed out and freed."""
    events = sorted(
        [(t, 1, s) for t, s in log_lines(log, _TAKE)]
        + [(t, -1, s) for t, s in log_lines(log, _RELEASE)]
    )
    times = [t for t, _, _ in events]
    states: list[frozenset[int]] = []
    busy: set[int] = set()
    for _, kind, s in events:
        (busy.add if kind > 0 else busy.discard)(s)
        states.append(frozenset(busy))

    def at(t: float) -> frozenset[int]:
        k = bisect.bisect_right(times, t)
        return states[k - 1] if k else frozenset()

    return at


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
    """Tokens (ms, whether a stream's first) grouped into steps at longer gaps, as ``fit``
    cuts them."""
    tokens = sorted(tokens)
    times = np.array([t for t, _ in tokens])
    firsts = np.array([first for _, first in tokens], dtype=bool)
    if not times.size:
        return []
    starts, ends = cut_steps(times, gap_ms)
    prompt = np.logical_or.reduceat(firsts, starts)
    return [
        Step(float(times[a]), float(times[b]), bool(p))
        for a, b, p in zip(starts, ends, prompt, strict=True)
    ]


def passes(busy: frozenset[int]) -> int:
    """The runs of consecutive ids among the busy slots: one forward pass each."""
    ids = sorted(busy)
    return sum(1 for k, s in enumerate(ids) if k == 0 or s != ids[k - 1] + 1)


@dataclass
class Layouts:
    """One run's steps under one layout (the server's or the replay's)."""

    kept: int = 0  # steps that could keep their graph
    pass_ms: float = 0.0  # passes x step time, over decode steps
    decode_ms: float = 0.0

    def add(self, step_ms: float, n_passes: int) -> None:
        self.pass_ms += n_passes * step_ms
        self.decode_ms += step_ms

    @property
    def mean_passes(self) -> float:
        return self.pass_ms / self.decode_ms if self.decode_ms else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", type=Path, required=True, help="folder of llama-server-*.log")
    ap.add_argument("--slots", type=int, required=True, help="the server's -np")
    ap.add_argument(
        "--budget", type=int, default=2048, help="the server's -b (prompt tokens a step)"
    )
    ap.add_argument("--step-gap-ms", type=float, default=2.0)
    ap.add_argument("--steps", action="store_true", help="the step times by the server's layout")
    ap.add_argument("--engine-model", type=Path, help="also simulate each run on this model")
    ap.add_argument("paths", nargs="+", type=Path, help="runs or sweeps of one server")
    args = ap.parse_args()
    runs = _runs(args.paths)
    loaded = [_load(r) for r in runs]
    history = replay_server(
        [replace(o, origin_ms=t0) for o, t0, _ in loaded], args.slots, args.budget
    )
    first_ms = min(t0 for _, t0, _ in loaded)
    logs = sorted(
        (int(m[1]), p) for p in args.logs.glob("*.log") if (m := _LOG_NAME.search(p.name))
    )
    started = [(e, p) for e, p in logs if e <= first_ms / 1e3]
    if not started:
        sys.exit(f"no llama-server-*.log in {args.logs} started before {runs[0]}")
    epoch, log = started[-1]
    series = log_lines(log, _REUSED)
    freed = log_lines(log, _RELEASE)
    free_s = history.free / 1e3 - epoch
    offset = log_offset(freed, free_s)
    together = freed_together(freed, offset, free_s, history.slot)
    on_server = server_layout(log)
    by_class: dict[tuple[int, int, bool], list[float]] = {}
    model = read_engine_model(args.engine_model) if args.engine_model else None
    simulated = ServerHistory()
    work = Path(tempfile.mkdtemp(prefix="graph-reuse-"))
    print(
        "| run | steps | graphs reused: logged / server's slots / replayed | passes a decode "
        f"step: server / replayed{' / simulated' if model else ''} | "
        "slots freed together, as replayed |"
    )
    print("|---|---|---|---|---|")
    for run, (_, t0, _) in zip(runs, loaded, strict=True):
        recs = [r for r in read_records(run / RECORDS_FILE).records if r.ok and r.chunk_ns]
        tokens = [(t0 + t / 1e6, t == r.t_first_ns) for r in recs for t in r.chunk_ns]
        found = steps(tokens, args.step_gap_ms)
        if len(found) < 2:
            continue
        server, replay = Layouts(), Layouts()
        last: dict[str, frozenset[int]] = {}
        for before, step in itertools.pairwise(found):
            step_ms = step.start_ms - before.start_ms
            layouts = (
                ("server", server, on_server(step.start_ms / 1e3 - epoch - offset - 5e-4)),
                ("replay", replay, frozenset(busy_at(history, step.start_ms - 0.01).tolist())),
            )
            for name, acc, busy in layouts:
                n = passes(busy)
                kept = not step.prompt and not before.prompt and n == 1 and last.get(name) == busy
                acc.kept += kept
                if busy and not step.prompt and not before.prompt:
                    acc.add(step_ms, n)
                    if name == "server":
                        by_class.setdefault((len(busy), n, kept), []).append(step_ms)
                last[name] = busy
        # The name's whole second is at most a second before the log's zero: a window's
        # ends move by under a second, against runs of ten.
        lo, hi = found[0].start_ms / 1e3 - epoch, found[-1].end_ms / 1e3 - epoch
        label = f"{run.parent.parent.name}/{run.name}" if run.parent.name == "points" else run.name
        mine = [same for t, same in together if lo <= t <= hi]
        sim = ""
        if model is not None and args.engine_model is not None:
            doc = predict_like(model, args.engine_model, run, work, simulated)
            sim = f" / {doc['prediction']['mean_passes'][0]:.2f}"
        print(
            f"| {label} | {len(found)} | {reused_between(series, lo - offset, hi - offset)} / "
            f"{server.kept} / {replay.kept} | {server.mean_passes:.2f} / "
            f"{replay.mean_passes:.2f}{sim} | {sum(mine)} of {len(mine)} |"
        )
    if args.steps:
        print("\n| sequences | one pass, graph kept | one pass, rebuilt | 2 passes | 3 | 4 |")
        print("|---|---|---|---|---|---|")
        for b in sorted({k[0] for k in by_class}):
            cells = []
            for key in ((b, 1, True), (b, 1, False), (b, 2, False), (b, 3, False), (b, 4, False)):
                ms = by_class.get(key, [])
                cells.append(f"{statistics.median(ms):.1f} ({len(ms)})" if len(ms) >= 4 else "")
            if any(cells):
                print(f"| {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
