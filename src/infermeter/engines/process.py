"""One local engine server as a child process: a free loopback port, its log kept, ``/health``
waited for, and the whole process group stopped on any exit (context manager; the child also
dies with its parent on Linux, and takes its own children with it by the group).

:class:`ServerProcess` is what every engine recipe shares; a recipe says how to build the
command and environment, and what its log lines mean while it starts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from infermeter.errors import EngineError
from infermeter.lifetime import die_with_parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on the port: one listens there already, not merely a
    closed connection lingering in TIME_WAIT (servers bind with SO_REUSEADDR, so a port
    restarted on within the minute is free to them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _engine_child(cpus: frozenset[int] | None) -> None:  # pragma: no cover - in the child
    # SIGTERM, not SIGKILL: the server shuts down cleanly on it, and stops its own children.
    die_with_parent(signal.SIGTERM)
    if cpus and hasattr(os, "sched_setaffinity"):
        # Inherited by every process and thread the server starts.
        os.sched_setaffinity(0, cpus)


#: Called while a server starts, with a short phase read from its log (or "").
StartProgress = Callable[[str], None]


class ServerProcess:
    """Base of ``with Engine(cfg) as server: ... server.url ...``.

    Subclasses give :attr:`name`, :meth:`command` and :meth:`env`; :meth:`phase` may turn a
    log line into a start-up phase for progress.
    """

    name = "server"

    def __init__(
        self,
        host: str,
        port: int | None,
        log_path: Path | None,
        startup_timeout_s: float,
        progress: StartProgress | None = None,
    ) -> None:
        self.host = host
        self.fixed_port = port
        self.startup_timeout_s = startup_timeout_s
        self.progress = progress
        self.proc: subprocess.Popen[bytes] | None = None
        #: Cores the server and all its processes are confined to (None: no confinement).
        self.cpus: tuple[int, ...] | None = None
        self.port = 0
        self.log_path = log_path or Path(os.devnull)
        self._log_path_given = log_path is not None

    # -- what a recipe provides -----------------------------------------------------------

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def check(self) -> None:
        """Refuse to start, with an EngineError, when something it needs is missing."""

    def phase(self, line: str) -> str | None:
        """The start-up phase a log line announces, if any."""
        return None

    # -- shared -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerProcess:
        self.check()
        if self.fixed_port is not None and not port_is_free(self.host, self.fixed_port):
            raise EngineError(f"port {self.fixed_port} on {self.host} is taken; choose another")
        env = self.env()
        code: int | None = None
        for attempt in range(3):
            self.port = self.fixed_port or free_port(self.host)
            if self._log_path_given:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
            start_at = self._log_size()
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            try:
                self.proc = subprocess.Popen(
                    self.command(self.port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                    preexec_fn=functools.partial(
                        _engine_child, frozenset(self.cpus) if self.cpus else None
                    ),
                )
            finally:
                log.close()
            try:
                healthy = self._wait_healthy(start_at)
            except BaseException:  # Ctrl-C or SIGTERM while it starts: no server left behind
                self.stop()
                raise
            if healthy:
                return self
            code = self.proc.poll()
            self.stop()
            if code is None:  # still running but never healthy: the start-up timed out
                raise EngineError(
                    f"{self.name} did not become healthy within {self.startup_timeout_s:.0f} s "
                    f"on port {self.port}: {self._log_tail()}"
                )
            # Another process may have taken the free port first: try another one.
            if self.fixed_port is not None or attempt == 2:
                break
        raise EngineError(
            f"{self.name} did not become healthy on port {self.port} (it exited with code "
            f"{code}): {self._log_tail()}"
        )

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size if self._log_path_given else 0
        except OSError:
            return 0

    def _wait_healthy(self, log_offset: int) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.url}/health"
        reader = _LogPhases(self.log_path, log_offset, self.phase) if self.progress else None
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            if reader is not None and self.progress is not None:
                for phase in reader.new_phases():
                    self.progress(phase)
            time.sleep(0.05 if reader is None else 0.25)
        return False

    def _log_tail(self, lines_wanted: int = 1) -> str:
        try:
            lines = [x for x in self.log_path.read_text(errors="replace").splitlines() if x]
        except OSError:
            return "no log"
        errors = [x for x in lines if "error" in x.lower()]
        tail = (errors or lines)[-lines_wanted:] or ["no output"]
        return f"{' | '.join(t.strip()[:200] for t in tail)} (log: {self.log_path})"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        # The server's own children (an engine core, workers) are in its group: none stays.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def kill(self) -> None:
        """Kill -9 the whole group without waiting for a clean shutdown (fault tests)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _LogPhases:
    """New phases announced in a log since ``offset`` (read incrementally)."""

    def __init__(self, path: Path, offset: int, phase: Callable[[str], str | None]) -> None:
        self.path, self.offset, self.phase = path, offset, phase
        self._rest = b""
        self._last: str | None = None

    def new_phases(self) -> list[str]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        self.offset += len(data)
        *lines, self._rest = (self._rest + data).split(b"\n")
        out: list[str] = []
        for raw in lines:
            p = self.phase(raw.decode("utf-8", "replace"))
            if p and p != self._last:
                self._last = p
                out.append(p)
        return out
