"""One job over a large records.jsonl, a byte range per process, in file order.

The file is cut at line starts into about equal ranges; each range's job runs in its own
process (forked where this process has one thread, else spawned) and writes what it makes to
its own file; the answers come back in range order. A child ends with this process however
it ends (:func:`~infermeter.lifetime.die_with_parent`); Ctrl-C ends them all. A bad line is
reported with its line number in the whole file, whichever range met it.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infermeter.errors import UsageError
from infermeter.lifetime import die_with_parent
from infermeter.memory import avoid_stalling_huge_pages
from infermeter.records.reader import RecordError

#: The most processes one job uses.
MAX_PROCESSES = 8

#: A job: (records.jsonl, start, end or None for the file's end, the file to write) -> an
#: answer (bytes, sent back to the parent). A top-level function, so a spawned child finds it.
Job = Callable[[Path, int, "int | None", Path], bytes]


def processes() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_PROCESSES))


def cuts(path: Path, size: int, parts: int) -> list[int]:
    """Line starts cutting the file into ``parts`` ranges of about equal size."""
    cuts = [0]
    with path.open("rb") as fh:
        for i in range(1, parts):
            fh.seek(max(size * i // parts - 1, cuts[-1]))
            fh.readline()
            at = fh.tell()
            if at >= size:
                break
            if at > cuts[-1]:
                cuts.append(at)
    return cuts


def run_ranges(path: Path, n: int, job: Job, out: Callable[[int], Path]) -> list[bytes]:
    """``job`` over ``n`` ranges of ``path`` (fewer where the file has fewer lines), the
    i-th writing ``out(i)``; the answers in range order."""
    size = path.stat().st_size
    starts = cuts(path, size, n)
    ranges = list(zip(starts, [*starts[1:], None], strict=True))
    if len(ranges) == 1:
        return [job(path, 0, None, out(0))]
    # fork is fast and safe while this process has one thread; otherwise start afresh
    method = "fork" if threading.active_count() == 1 and sys.platform == "linux" else "spawn"
    ctx: Any = mp.get_context(method)
    pipes = []
    procs = []
    try:
        for i, (a, b) in enumerate(ranges):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker,
                args=(job, path, a, b, out(i), send, os.getpid()),
                name=f"infermeter-read-{i}",
                daemon=True,
            )
            proc.start()
            send.close()
            pipes.append(recv)
            procs.append(proc)
        answers: list[bytes] = []
        for i, (conn, proc) in enumerate(zip(pipes, procs, strict=True)):
            try:
                kind, payload = conn.recv()
            except EOFError:
                proc.join()
                if proc.exitcode in (-signal.SIGINT, -signal.SIGTERM):
                    raise KeyboardInterrupt from None  # Ctrl-C (or a stop) reached it first
                raise UsageError(
                    f"reading {path} failed: a reader process ended ({proc.exitcode})"
                    + (", likely out of memory" if proc.exitcode == -signal.SIGKILL else "")
                ) from None
            if kind != "ok":
                _raise(path, kind, payload, ranges[i][0])
            answers.append(payload)
        return answers
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        for proc in procs:
            proc.join()


def _worker(
    job: Job, path: Path, start: int, end: int | None, out: Path, conn: Any, parent: int
) -> None:
    die_with_parent(parent_pid=parent)
    avoid_stalling_huge_pages()
    gc.disable()  # a job reads records into lists and arrays, never a cycle: scan nothing
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent says what happened
    try:
        conn.send(("ok", job(path, start, end, out)))
    except RecordError as e:
        conn.send(("record", (e.line, e.problem)))
    except UsageError as e:
        conn.send(("usage", str(e)))
    except MemoryError:
        conn.send(("memory", ""))
    except BaseException as e:
        conn.send(("usage", f"reading {path} failed: {e}"))
    finally:
        conn.close()


def _raise(path: Path, kind: str, payload: Any, start: int) -> None:
    if kind == "record":
        line, problem = payload
        # the lines before this range: count them (only now that there is an error)
        before = _lines_before(path, start)
        raise RecordError(path, before + line, problem)
    if kind == "memory":
        raise UsageError(f"reading {path} ran out of memory")
    raise UsageError(str(payload))


def _lines_before(path: Path, offset: int) -> int:
    count = 0
    with path.open("rb") as fh:
        left = offset
        while left > 0:
            block = fh.read(min(left, 1 << 22))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count
