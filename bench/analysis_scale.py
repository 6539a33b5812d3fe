"""Analysis at scale: how long reading a run back takes, and how much memory, at 10k, 100k
and 1M requests, beside the floor of reading the same records.jsonl line by line with orjson.

The runs are made from a seed (no large file in the repository): the records of a committed
H200 run (llama.cpp, 64 concurrent streams, 512 prompt and 128 output tokens) are replayed
in a seeded order, each cycle shifted in time by the template's span, so a run of N requests
keeps the template's concurrency, token counts and chunk timing.

    python bench/analysis_scale.py --sizes 10000,100000,1000000 --work /tmp/scale

Every command runs in its own process under ``/usr/bin/time`` (wall seconds, peak RSS); the
floor is one process that parses every line with orjson and sums every chunk stamp. Each
command runs twice: the first reads records.jsonl (and leaves the column cache beside it),
the second reads the cache. Pass ``--no-cache`` to measure reading records.jsonl each time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from infermeter.records.schema import RequestRecord

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "docs/results/h200/llamacpp-f16-steady/points/08-c64"
SHIFTED = ("t_sched_ns", "t_send_ns", "t_first_ns", "t_last_ns", "t_end_ns")

FLOOR = """
import sys, orjson
total = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        d = orjson.loads(line)
        total += d["t_send_ns"] + sum(d["chunk_ns"])
print(total)
"""


def generate(out: Path, n: int, seed: int) -> None:
    """A run directory of ``n`` records replayed from the template."""
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads((TEMPLATE / "run.json").read_text())
    meta["config"]["num_requests"] = n
    meta["config"]["duration_s"] = None
    meta["config"]["out"] = str(out)
    (out / "run.json").write_text(json.dumps(meta, indent=2))
    lines = (TEMPLATE / "records.jsonl").read_bytes().splitlines()
    # as infermeter writes records today: every field present
    templates = [
        RequestRecord.from_dict(orjson.loads(line)).to_dict() for line in lines if line.strip()
    ]
    measured = [t for t in templates if t["phase"] == "measure"]
    start = min(t["t_send_ns"] for t in measured)
    span = max(t["t_end_ns"] for t in measured) - start
    rng = np.random.default_rng(seed)
    t_count = len(measured)
    with (out / "records.jsonl").open("wb") as fh:
        for cycle in range((n + t_count - 1) // t_count):
            shift = cycle * span
            order = rng.permutation(t_count)
            batch = []
            for j in order[: n - cycle * t_count]:
                rec = dict(measured[j])
                rec["id"] = cycle * t_count + len(batch)
                for key in SHIFTED:
                    if rec.get(key) is not None:
                        rec[key] += shift
                rec["chunk_ns"] = [t + shift for t in rec["chunk_ns"]]
                batch.append(orjson.dumps(rec) + b"\n")
            fh.writelines(batch)


def timed(cmd: list[str], stdout: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of ``cmd``, and its stderr's last line."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        sink = stdout.open("wb") if stdout else subprocess.DEVNULL
        try:
            proc = subprocess.run(
                ["/usr/bin/time", "-o", tf.name, "-f", "%e %M", *cmd],
                stdout=sink,
                stderr=subprocess.PIPE,
                check=False,
            )
        finally:
            if stdout:
                sink.close()  # type: ignore[union-attr]
        wall, rss_kib = tf.read().split()[-2:]
    tail = proc.stderr.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {tail[-1:]}")
    return float(wall), int(rss_kib) / 1024, tail[-1] if tail else ""


def commands(run: Path, twin: Path, scratch: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "infermeter"]
    return {
        "report --format json": [*cli, "report", str(run), "--format", "json"],
        "report --format html": [
            *cli, "report", str(run), "--format", "html", "--out", str(scratch / "r.html")
        ],
        "analyze --format json": [*cli, "analyze", str(run), "--format", "json"],
        "compare (2 runs)": [*cli, "compare", str(run), str(twin), "--format", "json"],
        "export --format csv": [
            *cli, "export", str(run), "--format", "csv", "--out", str(scratch / "r.csv")
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "infermeter-scale")
    ap.add_argument("--only", default="", help="comma-separated command names to run")
    ap.add_argument("--no-cache", action="store_true", help="remove the column cache each time")
    ap.add_argument("--keep", action="store_true", help="keep the generated runs")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, str, float, float, float]] = []
    for n in (int(s) for s in args.sizes.split(",")):
        run, twin = args.work / f"run-{n}", args.work / f"twin-{n}"
        for d in (run, twin):
            shutil.rmtree(d, ignore_errors=True)
        t = time.perf_counter()
        generate(run, n, args.seed)
        shutil.copytree(run, twin)
        size = (run / "records.jsonl").stat().st_size
        print(f"{n:,} requests: records.jsonl {size / 2**30:.2f} GiB, made in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        floor_cmd = [sys.executable, "-c", FLOOR, str(run / "records.jsonl")]
        floor_wall, floor_rss, _ = timed(floor_cmd)
        rows.append((f"{n:,}", "orjson line read (floor)", floor_wall, floor_rss, 1.0))
        print(f"  floor: {floor_wall:.2f} s, {floor_rss:.0f} MiB", flush=True)
        wanted = {s.strip() for s in args.only.split(",") if s.strip()}
        for name, cmd in commands(run, twin, args.work).items():
            if wanted and not any(w in name for w in wanted):
                continue
            for attempt in ("", " (cached)"):
                if args.no_cache:
                    for d in (run, twin):
                        for f in d.glob("records.cols*"):
                            f.unlink()
                    if attempt:
                        continue
                wall, rss, _ = timed(cmd)
                rows.append((f"{n:,}", name + attempt, wall, rss, wall / floor_wall))
                print(f"  {name}{attempt}: {wall:.2f} s ({wall / floor_wall:.2f}x floor), "
                      f"{rss:.0f} MiB", flush=True)
        if not args.keep:
            shutil.rmtree(run)
            shutil.rmtree(twin)
    print("\n| requests | command | wall (s) | peak RSS (MiB) | × floor |")
    print("|---|---|---|---|---|")
    for n_s, name, wall, rss, ratio in rows:
        print(f"| {n_s} | {name} | {wall:.2f} | {rss:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
