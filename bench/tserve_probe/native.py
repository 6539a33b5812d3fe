"""Where the model thread of ``transformers serve`` spends fast and slow steps, down into
torch's C++: reads the two outputs of ``bench/gpu_study.sh tserve-native`` (the first-layer
attention log, one line a step, and the tarball of py-spy's native samples in windows, each
file named NAME-spy-START.txt with START on the attention log's clock), labels each window by
the median step that began in it (fast or slow, split as stacks.py splits), and prints for
each kind of window the model thread's samples a step by innermost frame and, within torch's
attention call, by the innermost ATen operator and the innermost three frames.

    python bench/tserve_probe/native.py tserve-native-default.log.xz tserve-native-spy.txz
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tarfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from stacks import steps, two_levels

#: py-spy's raw (collapsed) line: frames root first, separated by ";", then the sample count
_LINE = re.compile(r"^(?P<stack>.*) (?P<n>\d+)$")
_WINDOW = re.compile(r"-spy-(?P<t0>[0-9.]+)\.txt$")
#: a Python frame of torch's attention call, as the probe and transformers name it
_ATTN = ("_logged", "sdpa_attention_forward")
#: an ATen operator's entry in a native frame: the innermost one says which op the time is in
_OP = re.compile(r"at::(?:_ops|native)::\w+")


def _short(frame: str) -> str:
    """A frame without its address noise: 'name (file:line)' keeps file and line."""
    return frame.strip()[:110]


def windows(path: Path) -> list[tuple[float, list[tuple[list[str], int]]]]:
    """(start, [(frames root first, samples)]) of each window in the tarball."""
    out = []
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            m = _WINDOW.search(member.name)
            f = tar.extractfile(member)
            if not m or f is None:
                continue
            rows = []
            for line in f.read().decode(errors="replace").splitlines():
                lm = _LINE.match(line)
                if lm:
                    rows.append((lm["stack"].split(";"), int(lm["n"])))
            out.append((float(m["t0"]), rows))
    return sorted(out, key=lambda w: w[0])


def model_thread(rows: list[tuple[list[str], int]]) -> str | None:
    """The thread (py-spy's first frame with --threads) whose samples reach the attention."""
    hits: Counter[str] = Counter()
    for frames, n in rows:
        if any(a in f for f in frames for a in _ATTN):
            hits[frames[0]] += n
    return hits.most_common(1)[0][0] if hits else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sdpa", type=Path)
    ap.add_argument("spy", type=Path)
    ap.add_argument("--split", type=float, default=None, help="ms between fast and slow")
    ap.add_argument("--seconds", type=float, default=6.0, help="each window's length")
    ap.add_argument("--top", type=int, default=14)
    ap.add_argument("--decode-q", type=int, default=64, help="as stacks.py")
    args = ap.parse_args()
    decode = [(t, w) for t, w, q in steps(args.sdpa) if 0 < q <= args.decode_q]
    walls = sorted(w for _, w in decode)
    cap = 3 * statistics.median(walls)
    split = args.split or two_levels([w for w in walls if w <= cap])
    print(f"decode steps: {len(decode)}, split at {split:.1f} ms")
    kinds: dict[str, tuple[Counter[str], Counter[str], list[int]]] = {
        k: (Counter(), Counter(), [0]) for k in ("fast", "slow")
    }
    for t0, rows in windows(args.spy):
        inside = [w for t, w in decode if t0 <= t < t0 + args.seconds]
        if len(inside) < 5:
            continue
        med = statistics.median(inside)
        kind = "fast" if med < split else "slow"
        thread = model_thread(rows)
        n_samples = sum(n for f, n in rows if f[0] == thread)
        print(
            f"window {t0:.2f}: {len(inside)} steps, median {med:.1f} ms ({kind}), {n_samples} samples"
        )
        leaf, under, count = kinds[kind]
        count[0] += len(inside)
        for frames, n in rows:
            if frames[0] != thread:
                continue
            leaf[_short(frames[-1])] += n
            at = [i for i, f in enumerate(frames) if any(a in f for a in _ATTN)]
            if at:
                below = frames[at[-1] + 1 :]
                ops = [f for f in below if _OP.search(f)]
                under["op " + (_OP.search(ops[-1])[0] if ops else "(none named)")] += n
                under[" < ".join(_short(f) for f in reversed(below[-3:])) or "(Python)"] += n
    for kind, (leaf, under, count) in kinds.items():
        if not count[0]:
            continue
        total = sum(leaf.values())
        print(f"\n{kind}: {count[0]} steps, {total / count[0]:.1f} samples a step")
        print("  innermost frame:")
        for f, n in leaf.most_common(args.top):
            print(f"    {100 * n / total:5.1f} %  {n / count[0]:6.2f}/step  {f}")
        print("  under the attention call: the innermost ATen op, and the innermost three frames:")
        for f, n in under.most_common(args.top):
            print(f"    {100 * n / total:5.1f} %  {n / count[0]:6.2f}/step  {f}")


if __name__ == "__main__":
    main()
