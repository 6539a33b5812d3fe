"""Where the model thread of ``transformers serve`` spends its steps, fast and slow: reads
the two logs of ``bench/gpu_study.sh tserve-stacks`` (the first-layer attention calls, one
a step, and the sampled stacks, on one clock), splits the decode steps at --split ms
(default: where two levels part best, the split of the step times with the most variance
between its two sides), and prints, for the fast steps
and the slow ones, the share of stack samples by the innermost frame outside torch and by
the innermost frame of all, each with its count of samples per step.

    python bench/tserve_probe/stacks.py SDPA_LOG STACK_LOG [--split MS] [--top N]

(.xz logs are read as they are.)"""

from __future__ import annotations

import argparse
import bisect
import itertools
import lzma
import re
import statistics
from collections import Counter
from pathlib import Path

#: frames in these files are the framework's plumbing, not what the server asked it to do
PLUMBING = re.compile(r"^(module|linear|functional|activation|sparse|normalization)\.py:")


def lines(path: Path) -> list[str]:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt") as f:
        return f.read().splitlines()


def steps(path: Path) -> list[tuple[float, float, int]]:
    """(start, wall ms, query tokens) of every step, from one first-layer call to the next."""
    calls = []
    for line in lines(path):
        q = re.search(r"q=\(1, \d+, (\d+), \d+\)", line)
        calls.append((float(line.split()[0]), int(q[1]) if q else -1))
    return [(t, (u - t) * 1e3, q) for (t, q), (u, _) in itertools.pairwise(calls)]


def two_levels(walls: list[float]) -> float:
    """The step time that parts sorted ``walls`` into the two groups whose means lie
    furthest apart for their sizes (Otsu's split): the slow level's lowest step."""
    best, at = -1.0, walls[-1]
    total, n = sum(walls), len(walls)
    low = 0.0
    for i in range(1, n):
        low += walls[i - 1]
        m0, m1 = low / i, (total - low) / (n - i)
        spread = i * (n - i) * (m1 - m0) ** 2
        if spread > best:
            best, at = spread, walls[i]
    return at


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("sdpa", type=Path)
    ap.add_argument("stacks", type=Path)
    ap.add_argument(
        "--split", type=float, default=None, help="ms: a decode step at or past it is slow"
    )
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument(
        "--decode-q",
        type=int,
        default=64,
        help="a step of at most this many query tokens is a decode step",
    )
    args = ap.parse_args()
    all_steps = steps(args.sdpa)
    decode = [s for s in all_steps if 0 < s[2] <= args.decode_q]
    walls = sorted(w for _, w, _ in decode)
    # the longest steps (a first compile, a stall) would make a level of their own
    cap = 3 * statistics.median(walls)
    split = args.split or two_levels([w for w in walls if w <= cap])
    starts = [t for t, _, _ in all_steps]
    kind = {
        i: ("slow" if w >= split else "fast")
        for i, (t, w, q) in enumerate(all_steps)
        if 0 < q <= args.decode_q
    }
    per: dict[str, tuple[Counter[str], Counter[str]]] = {
        "fast": (Counter(), Counter()),
        "slow": (Counter(), Counter()),
    }
    for line in lines(args.stacks):
        t, _, stack = line.partition(" ")
        i = bisect.bisect_right(starts, float(t)) - 1
        if i not in kind:
            continue
        frames = stack.split("<")
        own = next((f for f in frames if not PLUMBING.match(f)), frames[0])
        per[kind[i]][0][own] += 1
        per[kind[i]][1][frames[0]] += 1
    print(f"decode steps: {len(decode)}, split at {split:.1f} ms")
    for k in ("fast", "slow"):
        n_steps = sum(1 for v in kind.values() if v == k)
        ws = [w for i, (_, w, _) in enumerate(all_steps) if kind.get(i) == k]
        total = sum(per[k][0].values())
        if not n_steps or not total:
            print(f"\n{k}: no steps sampled")
            continue
        print(
            f"\n{k}: {n_steps} steps, median {statistics.median(ws):.1f} ms, {total} samples ({total / n_steps:.1f} a step)"
        )
        for title, counts in (
            ("innermost frame outside torch's plumbing", per[k][0]),
            ("innermost frame", per[k][1]),
        ):
            print(f"  {title}:")
            for frame, c in counts.most_common(args.top):
                print(f"    {100 * c / total:5.1f} %  {c / n_steps:5.2f}/step  {frame}")


if __name__ == "__main__":
    main()
