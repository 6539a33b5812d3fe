"""Large runs made from a small measured one, to test and benchmark analysis at scale.

A test instrument: the records of a template run directory (a committed H200 run, say) are
replayed in a seeded order, each cycle shifted in time by the template's span, so that a run
of N requests keeps the template's concurrency, token counts and chunk timing. Every record is
written as infermeter writes records today (every field present), and nothing is sent to any
server. A sweep is made the same way, one replayed run per point under one ``sweep.json``.

    from infermeter.testing.replay import replay_run
    replay_run(Path("docs/results/h200/llamacpp-f16-steady/points/08-c64"), Path("/tmp/r"), 10**6)
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from infermeter.records.rundir import POINTS_DIR, RECORDS_FILE, RUN_FILE, SWEEP_FILE, write_json
from infermeter.records.schema import RequestRecord

_SHIFTED = ("t_sched_ns", "t_send_ns", "t_first_ns", "t_last_ns", "t_end_ns")


def replay_run(template: Path, out: Path, n: int, seed: int = 1) -> Path:
    """Write a run directory of ``n`` records replayed from ``template``'s; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    meta = orjson.loads((template / RUN_FILE).read_bytes())
    meta["config"]["num_requests"] = n
    meta["config"]["duration_s"] = None
    meta["config"]["out"] = str(out)
    write_json(out / RUN_FILE, meta)
    measured = [
        RequestRecord.from_dict(orjson.loads(line)).to_dict()
        for line in (template / RECORDS_FILE).read_bytes().splitlines()
        if line.strip()
    ]
    measured = [r for r in measured if r["phase"] == "measure"]
    start = min(r["t_send_ns"] for r in measured)
    span = max(r["t_end_ns"] for r in measured) - start
    rng = np.random.default_rng(seed)
    count = len(measured)
    written = 0
    with (out / RECORDS_FILE).open("wb") as fh:
        for cycle in range(-(-n // count)):
            shift = cycle * span
            lines = []
            for j in rng.permutation(count)[: n - written].tolist():
                rec = dict(measured[j])
                rec["id"] = written
                for key in _SHIFTED:
                    if rec.get(key) is not None:
                        rec[key] += shift
                rec["chunk_ns"] = [t + shift for t in rec["chunk_ns"]]
                lines.append(orjson.dumps(rec) + b"\n")
                written += 1
            fh.writelines(lines)
    return out


def replay_sweep(template: Path, out: Path, points: int, per_point: int, seed: int = 1) -> Path:
    """Write a sweep directory of ``points`` points, each a run of ``per_point`` records
    replayed from the template sweep's points in turn; returns ``out``."""
    index: dict[str, Any] = orjson.loads((template / SWEEP_FILE).read_bytes())
    source = [p for p in index["points"] if (template / str(p.get("dir", ""))).is_dir()]
    out.mkdir(parents=True, exist_ok=True)
    (out / POINTS_DIR).mkdir(exist_ok=True)
    made = []
    for i in range(points):
        entry = copy.deepcopy(source[i % len(source)])
        entry["index"] = i
        entry["dir"] = f"{POINTS_DIR}/{i:02d}-c{entry.get('concurrency')}"
        entry["concurrency"] = (entry.get("concurrency") or 1) + i  # points differ
        replay_run(template / str(source[i % len(source)]["dir"]), out / entry["dir"], per_point,
                   seed + i)  # fmt: skip
        made.append(entry)
    index["points"] = made
    index["capacity"] = None
    write_json(out / SWEEP_FILE, index)
    return out


def replay_proxy(template: Path, out: Path, n: int, rotate_bytes: int, seed: int = 1) -> Path:
    """Write a proxy recording of ``n`` replayed records as ``infermeter proxy --records``
    leaves it: ``out`` holds the first segment, ``out/0001``... the next ones, each started
    once the one before passed ``rotate_bytes``; returns ``out``."""
    whole = replay_run(template, out / ".whole", n, seed)
    meta = orjson.loads((whole / RUN_FILE).read_bytes())
    meta["config"] = {"mode": "proxy", "sample": 1.0}
    meta["server"] = {"kind": "proxy", "model": "live traffic", "url": "http://replayed"}
    meta["workload"] = {"source": "live traffic (infermeter proxy)"}
    segment, size = 0, 0
    sink = None
    with (whole / RECORDS_FILE).open("rb") as src:
        for line in src:
            if sink is None or size >= rotate_bytes:
                if sink is not None:
                    sink.close()
                    segment += 1
                where = out if segment == 0 else out / f"{segment:04d}"
                where.mkdir(parents=True, exist_ok=True)
                write_json(where / RUN_FILE, {**meta, "proxy": {"segment": segment}})
                sink = (where / RECORDS_FILE).open("wb")
                size = 0
            sink.write(line)
            size += len(line)
    if sink is not None:
        sink.close()
    shutil.rmtree(whole)
    return out
