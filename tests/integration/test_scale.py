"""A run past the parallel threshold, read back as a user would: report, the column cache,
export, a proxy recording's segments, and Ctrl-C in the middle of a parallel fold."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from conftest import run_cli
from infermeter.records.rundir import COLUMNS_DIR
from infermeter.run.fold import PARALLEL_BYTES
from infermeter.testing.replay import replay_proxy, replay_run

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "docs/results/h200/llamacpp-f16-steady/points/08-c64"
# records of ~3 KB: enough of them to pass the threshold for reading in parallel
LARGE = PARALLEL_BYTES // 2900 + 500


@pytest.fixture(scope="module")
def large_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = replay_run(TEMPLATE, tmp_path_factory.mktemp("scale") / "run", LARGE, seed=3)
    assert (run / "records.jsonl").stat().st_size > PARALLEL_BYTES
    return run


def _sequential_results(run: Path) -> bytes:
    """results.json as one process computes it, with no cache: the reference."""
    code = (
        "import sys; import infermeter.run.fold as f; f.PARALLEL_BYTES = 1 << 60\n"
        "from infermeter.api import load_run\n"
        "from infermeter.report.formats import to_json\n"
        "sys.stdout.write(to_json(load_run(sys.argv[1]).results))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(run)], capture_output=True, check=True
    ).stdout
    return out


def _strip_volatile(doc: bytes) -> dict[str, object]:
    data = orjson.loads(doc)
    data.get("run", {}).pop("out_dir", None)
    return data


def test_report_folds_in_parallel_then_reads_the_cache(large_run: Path) -> None:
    first = run_cli("report", str(large_run), "--format", "json")
    assert first.returncode == 0 and first.stderr == "", first.stderr
    assert (large_run / COLUMNS_DIR / "meta.json").exists()
    again = run_cli("report", str(large_run), "--format", "json")
    assert again.returncode == 0 and again.stdout == first.stdout
    reference = _sequential_results(large_run)
    assert _strip_volatile(first.stdout.encode()) == _strip_volatile(reference)
    summary = orjson.loads(first.stdout)["summary"]
    assert summary["requests_sent"] == LARGE and summary["requests_failed"] == 0


def test_export_in_parallel_writes_every_row_once(large_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "records.csv"
    res = run_cli("export", str(large_run), "--format", "csv", "--out", str(out))
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == LARGE + 1
    ids = [int(line.split(",", 1)[0]) for line in lines[1:]]
    assert ids == list(range(LARGE))  # file order, each once


def test_ctrl_c_in_a_parallel_fold_ends_cleanly(large_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("run.json", "records.jsonl"):
        (run / name).write_bytes((large_run / name).read_bytes())
    # The fold lasts a fraction of a second, so a Ctrl-C sent once its readers are seen
    # could land after the work on a busy machine. The group is frozen first: the signal is
    # sent only while a reader is provably still at work, else the attempt starts over.
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "infermeter", "report", str(run), "--format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not _children(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert _children(proc.pid), "the fold never started its reader processes"
        os.killpg(proc.pid, signal.SIGSTOP)
        working = _children(proc.pid, working=True)
        if working:
            os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: to the whole process group
        os.killpg(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=30)
        if working:
            break
        assert proc.returncode == 0, err
        for p in run.iterdir():  # the finished fold's cache, so the next attempt folds again
            if p.name not in ("run.json", "records.jsonl"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert working, "the fold ended before it could be interrupted in five attempts"
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    assert len(err.decode().strip().splitlines()) == 1
    assert not _group_alive(proc.pid)
    assert sorted(p.name for p in run.iterdir()) == ["records.jsonl", "run.json"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_a_sweeps_readers_leaves_no_half_written_cache(
    large_run: Path, tmp_path: Path, sig: int
) -> None:
    """Readers that fold and cache whole points are stopped mid-way (Ctrl-C reaches the
    whole group; SIGTERM, the parent alone): each removes the cache it was writing."""
    points = []
    for k in range(3):
        point = tmp_path / f"p{k}"
        point.mkdir()
        for name in ("run.json", "records.jsonl"):
            (point / name).write_bytes((large_run / name).read_bytes())
        points.append(point)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = (  # SIGTERM ends the caller as the CLI's handler does: by unwinding
        "import signal, sys; from pathlib import Path;"
        "from infermeter.run.rundir import load_results;"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143));"
        "load_results([Path(p) for p in sys.argv[1:]])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, points)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    deadline = time.monotonic() + 30
    while not _children(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert _children(proc.pid), "no reader process started"
    time.sleep(0.3)  # inside the first points' folds
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert b"_Stopped" not in err and b"ignored due to race" not in err
    assert not _group_alive(proc.pid)
    for point in points:
        assert not list(point.glob(f"{COLUMNS_DIR}.tmp-*")), sorted(point.iterdir())
    assert not list(scratch.iterdir())


def test_a_proxy_recording_is_read_whole(tmp_path: Path) -> None:
    rec = replay_proxy(TEMPLATE, tmp_path / "prod", 3000, rotate_bytes=2_000_000, seed=5)
    segments = sorted(p.name for p in rec.iterdir() if p.is_dir())
    assert len(segments) >= 3
    whole = run_cli("report", str(rec), "--format", "json")
    assert whole.returncode == 0, whole.stderr
    assert orjson.loads(whole.stdout)["summary"]["requests_sent"] == 3000
    assert f"{len(segments)} later segment(s)" in whole.stderr
    one = run_cli("report", str(rec / segments[0]), "--format", "json")
    assert one.returncode == 0 and one.stderr == ""
    assert orjson.loads(one.stdout)["summary"]["requests_sent"] < 3000


def _children(pid: int, working: bool = False) -> list[int]:
    """Children of ``pid``; ``working``: only those that have not exited (a zombie's work
    is done)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) == pid and not (working and state == "Z"):
                out.append(int(d.name))
    return out


def _group_alive(pgid: int, grace_s: float = 5.0) -> bool:
    """Whether a process of the group outlives its leader by ``grace_s``: a helper that ends
    when it sees its parent gone (multiprocessing's resource tracker) takes a moment to."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
