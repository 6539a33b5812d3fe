"""Several client processes: same counts as one, records safe when a worker dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import start_cli, wait_for_records
from infermeter import BenchConfig, run_benchmark
from infermeter.clients import sockio
from infermeter.records import read_records

pytestmark = pytest.mark.integration


def counts(run) -> tuple[int, int, int, int]:
    recs = [r for r in run.records if r.phase == "measure"]
    return (
        len(recs),
        sum(r.ok for r in recs),
        sum(r.n_out for r in recs),
        sum(r.n_in or 0 for r in recs),
    )


def test_two_workers_match_one(llama_server, tmp_path: Path) -> None:
    common = dict(
        url=llama_server.url,
        concurrency=4,
        num_requests=16,
        warmup=2,
        input_tokens="48",
        output_tokens="24",
        seed=2,
    )
    one = run_benchmark(BenchConfig.build(**common, workers=1, out=tmp_path / "one"))
    two = run_benchmark(BenchConfig.build(**common, workers=2, out=tmp_path / "two"))
    assert counts(one) == counts(two) == (16, 16, 16 * 24, 16 * 48)
    assert {r.worker for r in two.records} == {0, 1}
    assert len({r.id for r in two.records}) == 16
    assert two.results["client"]["workers"] == 2
    assert one.results["client"]["workers"] == 1
    # Every process says where its arrival stamps came from (the real llama-server, plain HTTP).
    stamps = "kernel" if sockio.kernel_stamps_supported() else "loop"
    for run in (one, two):
        assert {w["arrival_stamps"] for w in run.results["client"]["per_worker"]} == {stamps}
    # two warm-up requests and the pre-flight one
    assert len((tmp_path / "two" / "warmup.jsonl").read_text().splitlines()) == 3
    # Both workers' requests sit on one timeline: they overlap in time.
    by_worker = {w: [r for r in two.records if r.worker == w] for w in (0, 1)}
    assert min(r.t_send_ns for r in by_worker[0]) < max(r.t_end_ns for r in by_worker[1])
    assert min(r.t_send_ns for r in by_worker[1]) < max(r.t_end_ns for r in by_worker[0])


def test_open_loop_rate_with_workers(emulator, tmp_path: Path) -> None:
    with emulator(ttft_ms=5, itl_ms=2) as srv:
        run = run_benchmark(
            BenchConfig.build(
                url=srv.url,
                rate=40.0,
                num_requests=120,
                workers=3,
                input_tokens="8",
                output_tokens="8",
                out=tmp_path / "r",
                seed=3,
            )
        )
    s = run.results["summary"]
    assert s["requests_completed"] == 120
    assert s["achieved_send_rate_rps"] == pytest.approx(40.0, rel=0.05)
    assert {r.worker for r in run.records} == {0, 1, 2}


def test_a_dead_worker_loses_no_other_records(emulator, tmp_path: Path) -> None:
    out = tmp_path / "r"
    with emulator(ttft_ms=5, itl_ms=5) as srv:
        proc = start_cli(
            [
                "bench",
                "--url",
                srv.url,
                "-c",
                "4",
                "-n",
                "80",
                "--workers",
                "2",
                "--input-tokens",
                "8",
                "--output-tokens",
                "30",
                "--quiet",
                # Keep the telemetry process out: the test kills a worker by its spawn line.
                "--no-telemetry",
                "--out",
                str(out),
            ],
        )
        wait_for_records(out / "records.jsonl", 6)
        deadline = time.monotonic() + 60
        victim = None
        while time.monotonic() < deadline and victim is None:
            found = subprocess.run(
                ["pgrep", "-f", "infermeter-worker|multiprocessing.spawn"],
                capture_output=True,
                text=True,
            ).stdout.split()
            kids = [int(p) for p in found if _parent(int(p)) == proc.pid]
            victim = kids[0] if kids else None
            time.sleep(0.05)
        assert victim is not None, "no worker process found"
        os.kill(victim, signal.SIGKILL)
        _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "died" in stderr
    recs = read_records(out / "records.jsonl")
    assert not recs.torn_last_line
    workers = {r.worker for r in recs.records}
    assert workers == {0, 1} and all(r.ok for r in recs.records)
    # The surviving worker finished its whole share of 40 requests.
    per_worker = {w: sum(1 for r in recs.records if r.worker == w) for w in workers}
    assert max(per_worker.values()) == 40
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["worker_failures"]


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1
