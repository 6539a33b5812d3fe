"""Analysis at scale: how long reading a run back takes, and how much memory, at 10k, 100k
and 1M requests, beside the floor of reading the same records.jsonl line by line with orjson.
Also a sweep of many points and a proxy recording of many segments.

The runs are made from a seed (no large file in the repository) by
:mod:`infermeter.testing.replay`: the records of a committed H200 run (llama.cpp, 64
concurrent streams, 512 prompt and 128 output tokens) are replayed in a seeded order, each
cycle shifted in time by the template's span.

    python bench/analysis_scale.py --sizes 10000,100000,1000000 --work /tmp/scale
    python bench/analysis_scale.py --sizes 0 --sweep 50x20000 --proxy 1000000 --work /tmp/scale

Every command runs in its own process under ``/usr/bin/time`` (wall seconds, peak RSS of the
largest process; the fold's children are sampled too, see ``--tree``); the floor is one
process that parses every line with orjson and sums every chunk stamp. Each command runs
twice: the first reads records.jsonl (and leaves the column cache beside it), the second
reads the cache. ``--no-cache`` measures reading records.jsonl each time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from infermeter.records.rundir import COLUMNS_DIR
from infermeter.testing.replay import replay_proxy, replay_run, replay_sweep

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "docs/results/h200/llamacpp-f16-steady/points/08-c64"
SWEEP_TEMPLATE = ROOT / "docs/results/h200/llamacpp-f16-steady"

FLOOR = """
import sys, orjson
total = 0
for path in sys.argv[1:]:
    with open(path, "rb") as fh:
        for line in fh:
            d = orjson.loads(line)
            total += d["t_send_ns"] + sum(d["chunk_ns"])
print(total)
"""


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids.extend(int(k) for k in task.read_text().split())
        except (OSError, ValueError):
            continue
    return kids


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process below it. Only that tree is read (its
    processes' ``children`` lists), not all of /proc: the sampler must not take the CPU the
    measured command's processes use."""
    tree, todo = [pid], [pid]
    while todo:
        kids = _children(todo.pop())
        tree.extend(kids)
        todo.extend(kids)
    return sum(_rss(p) for p in tree)


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS of the largest process (MiB, /usr/bin/time) and peak RSS of
    the whole process tree (MiB, sampled every 100 ms). Written files are flushed to disk
    first, so that no write-back of a generated run runs beside the command."""
    os.sync()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.Popen(
            ["/usr/bin/time", "-o", tf.name, "-f", "%e %M", *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        peak = [0]

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                time.sleep(0.1)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        _, err = proc.communicate()
        watcher.join()
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-1:]
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {tail}")
        wall, rss_kib = tf.read().split()[-2:]
    return float(wall), int(rss_kib) / 1024, peak[0] / 2**20


def _uncache(dirs: list[Path]) -> None:
    for d in dirs:
        for found in d.rglob(COLUMNS_DIR):
            shutil.rmtree(found, ignore_errors=True)


def measure(
    label: str,
    files: list[Path],
    commands: dict[str, list[str]],
    dirs: list[Path],
    no_cache: bool,
    rows: list[tuple[str, str, float, float, float, float]],
    twice: tuple[str, ...] = (),
) -> None:
    """Each command, beside the floor of reading ``files`` (twice over for the commands
    named in ``twice``, which read two copies of the data: comparisons). The floor is read
    again right before each command: on a shared host the speed drifts by more than the
    differences measured."""
    for name, cmd in commands.items():
        _uncache(dirs)
        floor_wall, floor_rss, _ = timed([sys.executable, "-c", FLOOR, *map(str, files)])
        rows.append((label, f"floor before {name}", floor_wall, floor_rss, floor_rss, 1.0))
        print(f"  floor: {floor_wall:.2f} s", flush=True)
        floor = floor_wall * (2 if name in twice else 1)
        for attempt in ("", " (cached)"):
            if attempt and no_cache:
                continue
            wall, rss, tree = timed(cmd)
            rows.append((label, name + attempt, wall, rss, tree, wall / floor))
            print(
                f"  {name}{attempt}: {wall:.2f} s ({wall / floor:.2f}x), "
                f"{rss:.0f} MiB (tree {tree:.0f})",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="run sizes (0: none)")
    ap.add_argument("--sweep", default="", help="POINTSxREQUESTS, e.g. 50x20000")
    ap.add_argument("--proxy", type=int, default=0, help="records of a proxy recording")
    ap.add_argument("--rotate-mb", type=float, default=64.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "infermeter-scale")
    ap.add_argument("--only", default="", help="comma-separated command names to run")
    ap.add_argument("--no-cache", action="store_true", help="measure without the column cache")
    ap.add_argument("--keep", action="store_true", help="keep the generated runs")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "infermeter"]
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}

    def pick(commands: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: v for k, v in commands.items() if not wanted or any(w in k for w in wanted)}

    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, str, float, float, float, float]] = []
    scratch = args.work / "out"
    scratch.mkdir(exist_ok=True)
    for n in (int(s) for s in args.sizes.split(",") if int(s)):
        run, twin = args.work / f"run-{n}", args.work / f"twin-{n}"
        for d in (run, twin):
            shutil.rmtree(d, ignore_errors=True)
        t = time.perf_counter()
        replay_run(TEMPLATE, run, n, args.seed)
        shutil.copytree(run, twin)
        size = (run / "records.jsonl").stat().st_size
        print(
            f"{n:,} requests: records.jsonl {size / 2**30:.2f} GiB, made in "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
        commands = pick({
            "report --format json": [*cli, "report", str(run), "--format", "json"],
            "report --format html": [*cli, "report", str(run), "--format", "html",
                                     "--out", str(scratch / "r.html")],
            "analyze --format json": [*cli, "analyze", str(run), "--format", "json"],
            "compare (2 runs)": [*cli, "compare", str(run), str(twin), "--format", "json"],
            "export --format csv": [*cli, "export", str(run), "--format", "csv",
                                    "--out", str(scratch / "r.csv")],
        })  # fmt: skip
        measure(
            f"{n:,}",
            [run / "records.jsonl"],
            commands,
            [run, twin],
            args.no_cache,
            rows,
            twice=("compare (2 runs)",),
        )
        if not args.keep:
            shutil.rmtree(run)
            shutil.rmtree(twin)
    if args.sweep:
        points, per_point = (int(x) for x in args.sweep.split("x"))
        sweep, twin = args.work / "sweep", args.work / "sweep-twin"
        for d in (sweep, twin):
            shutil.rmtree(d, ignore_errors=True)
        t = time.perf_counter()
        replay_sweep(SWEEP_TEMPLATE, sweep, points, per_point, args.seed)
        shutil.copytree(sweep, twin)
        files = sorted(sweep.rglob("records.jsonl"))
        print(
            f"sweep of {points} points x {per_point:,} requests, made in "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
        commands = pick({
            "compare (2 sweeps)": [*cli, "compare", str(sweep), str(twin), "--format", "json"],
            "report --format html (sweep)": [*cli, "report", str(sweep), "--format", "html",
                                             "--out", str(scratch / "s.html")],
            "export --format csv (sweep)": [*cli, "export", str(sweep), "--format", "csv",
                                            "--out", str(scratch / "s.csv")],
        })  # fmt: skip
        label = f"{points} x {per_point:,}"
        measure(
            label,
            files,
            commands,
            [sweep, twin],
            args.no_cache,
            rows,
            twice=("compare (2 sweeps)",),
        )
        if not args.keep:
            shutil.rmtree(sweep)
            shutil.rmtree(twin)
    if args.proxy:
        rec = args.work / "proxy"
        shutil.rmtree(rec, ignore_errors=True)
        t = time.perf_counter()
        replay_proxy(TEMPLATE, rec, args.proxy, int(args.rotate_mb * 2**20), args.seed)
        files = [rec / "records.jsonl", *sorted(rec.glob("[0-9]*/records.jsonl"))]
        print(
            f"proxy recording of {args.proxy:,} requests in {len(files)} segments, made in "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
        commands = pick({
            "report --format json (proxy, all segments)": [*cli, "report", str(rec),
                                                           "--format", "json"],
        })  # fmt: skip
        measure(f"{args.proxy:,} proxy", files, commands, [rec], args.no_cache, rows)
        if not args.keep:
            shutil.rmtree(rec)
    print(
        "\n| requests | command | wall (s) | peak RSS (MiB) | tree RSS (MiB) | × floor (compare: of both) |"
    )
    print("|---|---|---|---|---|---|")
    for label, name, wall, rss, tree, ratio in rows:
        print(f"| {label} | {name} | {wall:.2f} | {rss:.0f} | {tree:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
