"""Samplers behind one small Protocol, each on its own timer, all in a separate process: a
sampler parsing a /metrics page in the client's process would hold the interpreter lock and
delay the client's event loop (measured: ~10 ms of loop lag at p99), so none runs there. Every
sample is a JSON line in ``telemetry.jsonl`` stamped on the run's monotonic clock (``t_ns``
since the run origin, carried to the telemetry process by a wall-clock anchor)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from infermeter.errors import OutputError
from infermeter.lifetime import die_with_parent


class Sampler(Protocol):
    """``start`` returns None when ready or a one-line note why it cannot sample here."""

    name: str
    period_s: float

    def start(self) -> str | None: ...

    def sample(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class _Recorder:
    """Runs the samplers on threads of the current process (inside the telemetry process)."""

    def __init__(self, path: Path, samplers: list[Sampler], t0_ns: int) -> None:
        self.path = path
        self.samplers = samplers
        self.t0_ns = t0_ns
        self.notes: list[str] = []
        self.errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._running: list[Sampler] = []
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> _Recorder:
        try:
            self._fh = open(self.path, "ab")
        except OSError as exc:
            self.notes.append(f"no telemetry: {OutputError.writing(self.path, exc).message}")
            return self
        for s in self.samplers:
            note = s.start()
            if note:
                self.notes.append(note)
                continue
            # The first sample is taken before the load is let go, the last after it ends
            # (``__exit__``): a run shorter than a sampler's period is still bracketed, so
            # the counters' growth covers all of it and every chart has its two ends.
            if not self._sample(s):
                continue
            self._running.append(s)
            t = threading.Thread(
                target=self._loop, args=(s,), name=f"telemetry-{s.name}", daemon=True
            )
            t.start()
            self._threads.append(t)
        return self

    def _write(self, line: dict[str, Any]) -> None:
        with self._lock:
            if self._fh is None:
                return
            try:
                self._fh.write(orjson.dumps(line) + b"\n")
                self._fh.flush()
            except OSError as exc:
                # A full disk ends the telemetry, with a note; the run's own records go on.
                self.errors["all"] = OutputError.writing(self.path, exc).message
                self._discard()

    def _discard(self) -> None:
        """Close the file, dropping what a failed write left in its buffer."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            with contextlib.suppress(OSError):
                fh.close()

    def _sample(self, s: Sampler) -> bool:
        """Take one sample of ``s`` and write it; False once ``s`` has broken."""
        if s.name in self.errors:
            return False
        try:
            values = s.sample()
        except Exception as exc:  # a sampler that breaks mid-run stops, noted, quietly
            self.errors[s.name] = f"{type(exc).__name__}: {exc}"
            return False
        if values:
            self._write({"t_ns": time.perf_counter_ns() - self.t0_ns, "source": s.name, **values})
        return True

    def _loop(self, s: Sampler) -> None:
        due = time.perf_counter() + s.period_s
        while not self._stop.wait(max(due - time.perf_counter(), 0.0)):
            if not self._sample(s):
                return
            due += s.period_s

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        if not any(t.is_alive() for t in self._threads):
            for s in self._running:
                self._sample(s)
        for s in self.samplers:
            try:
                s.close()
            except Exception:  # closing is best effort
                pass
        for name, err in self.errors.items():
            self.notes.append(f"{name} telemetry stopped: {err}")
        with self._lock:
            self._discard()


def _telemetry_main(
    path: Path, samplers: list[Sampler], wall0_ns: int, stop: Any, notes: Any, parent_pid: int
) -> None:
    die_with_parent(parent_pid=parent_pid)
    # Ctrl-C (or a SIGINT to the process group) is the parent's to handle: it stops this
    # child through ``stop``, after the run's last record, and nothing prints a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # So is a SIGTERM to the whole group (timeout, systemd): dying inside ``stop.wait()``
    # would leave the parent's ``stop.set()`` waiting forever for a sleeper that is gone.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    t0 = time.perf_counter_ns() - (time.time_ns() - wall0_ns)
    rec = _Recorder(path, samplers, t0)
    with rec:
        notes.put(("started", list(rec.notes)))
        stop.wait()
    notes.put(("stopped", list(rec.notes)))


class TelemetryRecorder:
    """``with TelemetryRecorder(path, samplers, t0_ns) as rec: ...``; ``rec.notes`` after.

    The samplers run in a child process, started before the load and stopped after it.
    """

    def __init__(self, path: Path, samplers: list[Sampler], t0_ns: int) -> None:
        self.path = path
        self.samplers = samplers
        self.notes: list[str] = []
        # The run's origin as a wall-clock instant, for the child's own monotonic clock.
        self.wall0_ns = time.time_ns() - (time.perf_counter_ns() - t0_ns)
        self._proc: Any = None

    def __enter__(self) -> TelemetryRecorder:
        if not self.samplers:
            return self
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._notes = ctx.Queue()
        self._proc = ctx.Process(
            target=_telemetry_main,
            name="infermeter-telemetry",
            daemon=True,
            args=(self.path, self.samplers, self.wall0_ns, self._stop, self._notes, os.getpid()),
        )
        self._proc.start()
        try:
            _kind, notes = self._notes.get(timeout=30)  # samplers started (or said why not)
            self.notes = list(notes)
        except Exception:
            self.notes = ["telemetry did not start in time"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        # An Event's set() waits for every sleeper to wake: a child that died asleep would
        # hold it forever. A dead child needs no stop.
        if self._proc.is_alive():
            self._stop.set()
        try:
            _kind, notes = self._notes.get(timeout=15)
            self.notes = list(notes)
        except Exception:
            self.notes.append("telemetry did not stop cleanly")
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
