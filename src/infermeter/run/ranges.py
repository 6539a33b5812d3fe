"""Jobs over byte ranges of records files, a few processes each taking a run of them, in
file order.

A file is cut at line starts into about equal ranges (:func:`file_tasks`); the ranges of one
or many files are shared out among the processes in consecutive runs of about equal bytes
(forked where this process has one thread, else spawned); each job writes what it makes to
its own file; the answers come back in task order. A child ends with this process however
it ends (:func:`~infermeter.lifetime.die_with_parent`); Ctrl-C ends them all. A bad line is
reported with its line number in the whole file, whichever range met it.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from infermeter.errors import UsageError
from infermeter.lifetime import die_with_parent
from infermeter.memory import avoid_stalling_huge_pages, keep_freed_memory
from infermeter.records.reader import RecordError

#: The most processes one job uses.
MAX_PROCESSES = 8

#: A job: (records.jsonl, start, end or None for the file's end, the file to write) -> an
#: answer (bytes, sent back to the parent). A top-level function, so a spawned child finds it.
Job = Callable[[Path, int, "int | None", Path], bytes]


def copy_rest(src: IO[bytes], out: IO[bytes]) -> None:
    """The rest of file ``src`` (from its position) written at ``out``'s: by the kernel
    (sendfile) where ``out`` is a file or pipe it takes, else by hand. ``out`` is flushed
    first, so that its buffer does not land after what the kernel wrote."""
    out.flush()
    at = src.tell()
    size = os.fstat(src.fileno()).st_size
    with contextlib.suppress(OSError, AttributeError, ValueError):  # not a file: by hand
        target = out.fileno()
        while at < size:
            done = os.sendfile(target, src.fileno(), at, size - at)
            if done == 0:
                break
            at += done
    src.seek(at)
    shutil.copyfileobj(src, out, 1 << 22)


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


#: One job to run: (records.jsonl, start, end or None, the file it writes).
Task = tuple[Path, int, "int | None", Path]


def file_tasks(path: Path, n: int, out: Callable[[int], Path]) -> list[Task]:
    """``path`` cut into ``n`` ranges (fewer where it has fewer lines), the i-th to write
    ``out(i)``."""
    size = path.stat().st_size if path.exists() else 0
    starts = cuts(path, size, n) if size else [0]
    ends: list[int | None] = [*starts[1:], None]
    return [(path, a, b, out(i)) for i, (a, b) in enumerate(zip(starts, ends, strict=True))]


def task_bytes(task: Task) -> int:
    """The bytes of the file a task reads."""
    path, start, end, _ = task
    stop = end if end is not None else (path.stat().st_size if path.exists() else start)
    return stop - start


def _shares(tasks: list[Task], n: int) -> list[list[int]]:
    """The tasks' indices in ``n`` runs of consecutive tasks of about equal bytes."""
    sizes = [max(task_bytes(t), 1) for t in tasks]
    total = sum(sizes)
    shares: list[list[int]] = [[] for _ in range(n)]
    done = 0
    for i, size in enumerate(sizes):
        # the share whose slice of the bytes this task's middle falls in
        k = min(n - 1, (done + size // 2) * n // total)
        shares[k].append(i)
        done += size
    return [s for s in shares if s]


def run_tasks(tasks: list[Task], n: int, job: Job) -> list[bytes]:
    """``job`` over every task in at most ``n`` processes, each running a share of
    consecutive tasks one after the other (one process a file range where there are as
    many ranges as processes; a few processes for the many files of a sweep or of a proxy
    recording, not one each); the answers in task order."""
    shares = _shares(tasks, max(1, min(n, len(tasks))))
    # fork is fast and safe while this process has one thread; otherwise start afresh
    method = "fork" if threading.active_count() == 1 and sys.platform == "linux" else "spawn"
    ctx: Any = mp.get_context(method)
    pipes = []
    procs = []
    finished = False
    try:
        for i, share in enumerate(shares):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker,
                args=(job, [tasks[t] for t in share], send, os.getpid()),
                name=f"infermeter-read-{i}",
                daemon=True,
            )
            # Blocked until the reader has its own handlers (one inherited from this process
            # would raise in it before it could clean up) and is in the list this process
            # waits for when stopped.
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
            try:
                proc.start()
                procs.append(proc)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
            send.close()
            pipes.append(recv)
        answers: list[bytes] = []
        for share, conn, proc in zip(shares, pipes, procs, strict=True):
            try:
                kind, payload = conn.recv()
            except EOFError:
                proc.join()
                if proc.exitcode in (-signal.SIGINT, -signal.SIGTERM):
                    raise KeyboardInterrupt from None  # Ctrl-C (or a stop) reached it first
                path = tasks[share[0]][0]
                raise UsageError(
                    f"reading {path} failed: a reader process ended ({proc.exitcode})"
                    + (", likely out of memory" if proc.exitcode == -signal.SIGKILL else "")
                ) from None
            if kind != "ok":
                at, detail = payload
                path, start, _, _ = tasks[share[at]]
                _raise(path, kind, detail, start)
            answers.extend(payload)
        finished = True
        return answers
    finally:
        # Stopped early, a reader removes what it had begun to write (a job may write beside
        # the records, e.g. a cache on its way in); one that does not, is killed. Readers
        # that answered are ending by themselves.
        for proc in procs:
            if proc.is_alive() and not finished:
                proc.terminate()
        deadline = time.monotonic() + STOP_S
        for proc in procs:
            proc.join(max(deadline - time.monotonic(), 0.0))
            if proc.is_alive():
                proc.kill()
                proc.join()


#: The signals that stop a reader (Ctrl-C reaches the whole process group).
_STOPS = {signal.SIGINT, signal.SIGTERM}
#: Seconds a reader is given to clean up after its parent stops, before it is killed.
STOP_S = 5.0


class _Stopped(BaseException):
    """SIGINT or SIGTERM reached a reader: unwind (its jobs' ``finally`` clean up), then end
    by the signal, as the parent expects."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: Whether a reader is already stopping: the parent's own request to stop follows Ctrl-C,
#: and must not cut the clean-up short (the handler stays, doing nothing: a handler changed
#: while a signal is pending makes Python raise instead).
_stopping: list[int] = []


def _stop(signum: int, _frame: object) -> None:
    if not _stopping:
        _stopping.append(signum)
        raise _Stopped(signum)


def _end_by(signum: int) -> None:
    """End this process by ``signum``'s default action, whatever else is pending (the
    signals are blocked)."""
    for sig in _STOPS:
        signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


def _worker(job: Job, share: list[Task], conn: Any, parent: int) -> None:
    for sig in _STOPS:  # the parent says what happened
        signal.signal(sig, _stop)
    # Made while the signals wait, and removed whole at the end however it ends: a stop
    # that lands between a scratch directory's making and its noting leaves nothing behind.
    tempfile.tempdir = tempfile.mkdtemp(prefix="infermeter-read-")
    answers: list[bytes] = []  # the task that fails is the one after these
    stopped = 0
    try:
        # set up whole (these may run a helper process of their own), then take the signals
        die_with_parent(parent_pid=parent)
        avoid_stalling_huge_pages()
        keep_freed_memory()
        gc.disable()  # a job reads records into lists and arrays, never a cycle: scan nothing
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        for task in share:
            answers.append(job(*task))
        conn.send(("ok", answers))
    except _Stopped as e:
        stopped = e.signum
    except RecordError as e:
        conn.send(("record", (len(answers), (e.line, e.problem))))
    except UsageError as e:
        conn.send(("usage", (len(answers), str(e))))
    except MemoryError:
        conn.send(("memory", (len(answers), "")))
    except BaseException as e:
        failed = share[len(answers)][0]
        conn.send(("usage", (len(answers), f"reading {failed} failed: {e}")))
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        shutil.rmtree(tempfile.tempdir, ignore_errors=True)
        conn.close()
        if stopped:
            _end_by(stopped)


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
