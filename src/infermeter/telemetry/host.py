"""The host's CPU and memory, the benchmark's own processes apart from everything else (so a
saturated client shows up next to the server's figures, and a busy host is not blamed on it).

Three buckets: the client (the benchmark's process and its worker processes), a local server
that infermeter started itself (``engine serve``, ``demo``, the tests: marked by
``ENGINE_ROLE_ENV`` in its environment, inherited by its own children), and the busiest other
process on the host (what else competes for the cores). Beside them, how fast a core is (the
same small piece of work timed each sample) and the share of time a hypervisor stole: a
slower host is not a busier one, and no count of busy processes shows it.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

#: Set in the environment of every server process infermeter starts; its children inherit it.
ENGINE_ROLE_ENV = "INFERMETER_ROLE"
ENGINE_ROLE = "engine"
#: Scan all the host's processes for the busiest other one every this many samples.
OTHERS_EVERY = 4
#: The core probe's fixed work (loop turns) and how many times it runs per sample (the
#: fastest counts: an interrupt handled on the thread's time would add to one run only).
PROBE_TURNS = 10_000
PROBE_RUNS = 3
#: A probe this many times the window's fast level (its 10th percentile) is a slow sample:
#: the probe's own scatter on a quiet core stays under 1.15 (this project's hosts).
SLOW_CORE = 1.3
#: A window with this share of slow samples or more had slow cores for part of it.
SLOW_CORE_SHARE = 0.1


def core_probe_us(turns: int = PROBE_TURNS, runs: int = PROBE_RUNS) -> float:
    """CPU time (µs, the fastest of ``runs``) this thread spends on a fixed piece of pure
    Python work. Thread CPU time leaves out waiting (for the interpreter lock, for a core,
    time the hypervisor stole), so a rise means each core ran slower: its clock, a neighbour
    on the same physical core or cache. A host-bound server (Python's transformers, a
    scheduler loop) slows by the same factor, which no count of busy processes shows."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.thread_time_ns()
        acc = 0
        for i in range(turns):
            acc += i * i % 7
        best = min(best, (time.thread_time_ns() - t0) / 1e3)
    return best


class CpuTimes(Protocol):
    """What :func:`cpu_shares` reads of ``psutil.cpu_times()``: named seconds per state
    (a named tuple whose fields the platform decides; ``idle`` is always there)."""

    _fields: tuple[str, ...]
    idle: float


def cpu_shares(before: CpuTimes, after: CpuTimes) -> tuple[float, float | None]:
    """The host's busy and stolen share of CPU time (percent, to 0.1) between two
    ``psutil.cpu_times()`` readings. Worked out here, not by psutil's ``cpu_percent`` with
    no interval, because psutil keeps that call's last reading per thread: the sampler's
    first sample on its own thread read 0 % busy, and its last, back on the starting
    thread, the whole run's average. As psutil does: each field's growth held at 0 or more
    (Linux's idle and iowait can step back), guest time left out of the total (it is inside
    user time already), iowait counted idle, steal busy; steal None where the platform has
    no such field."""
    grew = {name: max(getattr(after, name) - getattr(before, name), 0.0) for name in after._fields}
    span = sum(grew.values()) - grew.get("guest", 0.0) - grew.get("guest_nice", 0.0)
    if span <= 0:
        return 0.0, (0.0 if "steal" in grew else None)
    idle = grew["idle"] + grew.get("iowait", 0.0)
    busy = round(min(max(100.0 * (span - idle) / span, 0.0), 100.0), 1)
    steal = round(min(100.0 * grew["steal"] / span, 100.0), 1) if "steal" in grew else None
    return busy, steal


class PinLost(Exception):
    """The thread could not be let go of the CPU it was pinned to."""


def pinned_probe_us(cpu: int, runs: int = 1) -> float | None:
    """:func:`core_probe_us` on one CPU (the calling thread pinned to it, then let go): the
    speed of the core a server's busiest thread runs on, which another core's need not share
    (a neighbour on the same physical core slows one, not all). Once by default, not the
    best of several, because it takes that time from the server's own core. None where the
    thread cannot be pinned there; :class:`PinLost` where it cannot be let go."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        was = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError):
        return None
    try:
        return core_probe_us(runs=runs)
    finally:
        try:
            os.sched_setaffinity(0, was)
        except OSError as exc:  # e.g. the cpuset shrank: the thread stays on `cpu`
            raise PinLost(str(exc)) from exc


def last_cpu(pid: int, tid: int) -> int | None:
    """The CPU a thread last ran on (Linux: field 39 of its ``stat``), None where unread."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name may hold spaces and brackets: fields resume after its last ")"
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[36])  # field 39, counted from field 3
    except (IndexError, ValueError):
        return None


def engine_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a server process infermeter starts (so its CPU is the server's)."""
    env = dict(os.environ if base is None else base)
    env[ENGINE_ROLE_ENV] = ENGINE_ROLE
    return env


class HostSampler:
    name = "host"

    def __init__(
        self, period_s: float = 0.5, client_pid: int | None = None, server_port: int | None = None
    ) -> None:
        self.period_s = period_s
        #: A loopback server's port: the process listening on it (and its children) is the
        #: server's, even when infermeter did not start it.
        self.server_port = server_port
        self._server_root: Any = None
        #: The process to account as "the client" (with its children, the workers).
        self.client_pid = client_pid or os.getpid()
        self._procs: dict[int, Any] = {}
        #: pid -> True for a process of a local server infermeter started.
        self._engine: dict[int, bool] = {}
        self._others: dict[int, Any] = {}
        #: (pid, thread id) -> CPU seconds at the last sample, for the server's threads.
        self._thread_s: dict[tuple[int, int], float] = {}
        #: Whether the probe may still be pinned to the server's core (off once a pin could
        #: not be undone).
        self._pin = True
        self._n = 0
        #: The host's CPU times at the last sample (``cpu_shares`` works from them).
        self._cpu_times: CpuTimes | None = None

    def start(self) -> str | None:
        try:
            import psutil
        except ImportError:
            return "host telemetry off: psutil is not installed"
        self._psutil = psutil
        self._cpu_times = psutil.cpu_times()
        self._me = psutil.Process(self.client_pid)
        self._me.cpu_percent(interval=None)
        if self.server_port is not None:
            self._server_root = self._listener(self.server_port)
        return None

    def _listener(self, port: int) -> Any:
        ps = self._psutil
        try:
            for conn in ps.net_connections(kind="tcp"):
                listens = conn.status == ps.CONN_LISTEN and conn.laddr and conn.laddr.port == port
                if listens and conn.pid and conn.pid != self.client_pid:
                    return ps.Process(conn.pid)
        except (ps.Error, OSError):  # not allowed to see other users' sockets: no matter
            return None
        return None

    def _server_procs(self) -> list[Any]:
        root = self._server_root
        if root is None:
            return []
        try:
            return [root, *root.children(recursive=True)]
        except self._psutil.Error:
            self._server_root = None
            return []

    def _is_engine(self, proc: Any) -> bool:
        """A process of a server infermeter started: marked in its environment, or a
        descendant of one. The environment alone does not tell: a process that renames itself
        (vLLM's engine core and workers, by setproctitle) overwrites it, and a server may
        start its workers with an environment of their own."""
        known = self._engine.get(proc.pid)
        if known is None:
            try:
                known = proc.environ().get(ENGINE_ROLE_ENV) == ENGINE_ROLE
                if not known:
                    parent = proc.parent()
                    ours = (self.client_pid, os.getpid())
                    known = (
                        parent is not None and parent.pid not in ours and self._is_engine(parent)
                    )
            except self._psutil.Error:  # gone, or not ours to read: not an engine we started
                known = False
            self._engine[proc.pid] = known
        return known

    def sample(self) -> dict[str, Any]:
        ps = self._psutil
        mem = ps.virtual_memory()
        client_cpu = self._me.cpu_percent(interval=None)
        client_rss = self._me.memory_info().rss
        server_cpu = 0.0
        server_rss = 0
        servers = 0
        engines: list[Any] = []
        mine = {self.client_pid, os.getpid()}
        children = self._me.children(recursive=True)
        own = {c.pid for c in children} | mine
        outside = [p for p in self._server_procs() if p.pid not in own]
        for proc in outside:  # a local server that is not the benchmark's child
            self._engine[proc.pid] = True
        for child in [*children, *outside]:
            mine.add(child.pid)
            if child.pid == os.getpid():
                continue  # the telemetry process itself
            proc = self._procs.get(child.pid)
            try:
                if proc is None:
                    proc = self._procs[child.pid] = child
                    proc.cpu_percent(interval=None)
                    continue
                cpu = proc.cpu_percent(interval=None)
                rss = proc.memory_info().rss
                if self._is_engine(proc):
                    server_cpu += cpu
                    server_rss += rss
                    servers += 1
                    engines.append(proc)
                else:
                    client_cpu += cpu
                    client_rss += rss
            except ps.Error:
                self._procs.pop(child.pid, None)
        now = ps.cpu_times()
        busy, steal = cpu_shares(self._cpu_times or now, now)
        self._cpu_times = now
        out: dict[str, Any] = {
            "cpu_percent": busy,
            "cpu_count": ps.cpu_count(),
            "memory_used_bytes": mem.total - mem.available,
            "memory_total_bytes": mem.total,
            "client_cpu_percent": client_cpu,
            "client_rss_bytes": client_rss,
            "core_probe_us": core_probe_us(),
        }
        if steal is not None:  # Linux only: the share of time a hypervisor ran someone else
            out["steal_percent"] = steal
        if servers:
            out["local_server_cpu_percent"] = server_cpu
            out["local_server_rss_bytes"] = server_rss
        cpu_num = self._busiest_thread_cpu(engines) if self._pin else None
        if cpu_num is not None:
            try:
                probe = pinned_probe_us(cpu_num)
            except PinLost:
                # pinned for good: every later probe would run on that one CPU
                self._pin = False
                probe = None
            if probe is not None:
                out["server_cpu"] = cpu_num
                out["server_core_probe_us"] = probe
        self._n += 1
        if self._n % OTHERS_EVERY == 1:
            top = self._busiest_other(mine)
            if top is not None:
                out["busiest_other"] = top
        return out

    def _busiest_thread_cpu(self, engines: list[Any]) -> int | None:
        """The CPU the local server's busiest thread (the most CPU time since the last
        sample) last ran on: a host-bound engine's steps are that thread's work."""
        seen: dict[tuple[int, int], float] = {}
        best: tuple[int, int] | None = None
        most = 0.0
        for proc in engines:
            try:
                threads = proc.threads()
            except self._psutil.Error:
                continue
            for t in threads:
                key, total = (proc.pid, t.id), t.user_time + t.system_time
                seen[key] = total
                if key not in self._thread_s:
                    continue  # first sight: its life so far says nothing of now
                used = total - self._thread_s[key]
                if used > most:
                    best, most = key, used
        self._thread_s = seen
        return None if best is None else last_cpu(*best)

    def _busiest_other(self, mine: set[int]) -> dict[str, Any] | None:
        """The process outside the benchmark (and its local server) using the most CPU since
        the previous scan."""
        ps = self._psutil
        best: dict[str, Any] | None = None
        seen: set[int] = set()
        for proc in ps.process_iter():
            pid = proc.pid
            if pid in mine:
                continue
            seen.add(pid)
            known = self._others.get(pid)
            try:
                if known is None:
                    self._others[pid] = proc
                    proc.cpu_percent(interval=None)
                    continue
                cpu = known.cpu_percent(interval=None)
                if best is None or cpu > best["cpu_percent"]:
                    best = {"pid": pid, "name": known.name(), "cpu_percent": cpu}
            except ps.Error:
                self._others.pop(pid, None)
        for pid in set(self._others) - seen:
            del self._others[pid]
        return best

    def close(self) -> None:
        self._procs.clear()
        self._others.clear()
