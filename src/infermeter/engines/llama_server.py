"""Start and stop a local ``llama-server``: free loopback port, wait for ``/health``, keep the
log, and always stop it (context manager; the child also dies with its parent on Linux)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from infermeter.errors import EngineError
from infermeter.lifetime import die_with_parent
from infermeter.telemetry.host import engine_env


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _engine_child() -> None:  # pragma: no cover - runs in the child
    # SIGTERM, not SIGKILL: llama-server shuts down cleanly on it.
    die_with_parent(signal.SIGTERM)


@dataclass
class LlamaServerConfig:
    binary: Path
    model: Path
    alias: str = "model"
    #: Context per slot; llama-server is given ``ctx_per_slot * slots``.
    ctx_per_slot: int = 2048
    slots: int = 4
    threads: int = 1
    host: str = "127.0.0.1"
    port: int | None = None
    log_path: Path | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def command(self, port: int) -> list[str]:
        return [
            str(self.binary),
            "-m",
            str(self.model),
            "-a",
            self.alias,
            "--host",
            self.host,
            "--port",
            str(port),
            "-c",
            str(self.ctx_per_slot * self.slots),
            "-np",
            str(self.slots),
            "-t",
            str(self.threads),
            "-tb",
            str(self.threads),
            "--metrics",
            "--no-webui",
            *self.extra_args,
        ]


class LlamaServer:
    """``with LlamaServer(cfg) as server: ... server.url ...``"""

    def __init__(self, config: LlamaServerConfig, startup_timeout_s: float = 120.0) -> None:
        self.config = config
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = config.log_path or Path(os.devnull)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> LlamaServer:
        cfg = self.config
        if not cfg.binary.exists():
            raise EngineError(f"llama-server binary {cfg.binary} does not exist")
        if not cfg.model.exists():
            raise EngineError(f"model {cfg.model} does not exist")
        # LLAMA_ARG_* variables would silently change the server's flags.
        # Marked as a server infermeter started: its CPU is the server's, not the client's.
        env = engine_env({k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")})
        for attempt in range(3):
            self.port = cfg.port or free_port(cfg.host)
            if cfg.log_path:
                cfg.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            try:
                self.proc = subprocess.Popen(
                    cfg.command(self.port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_engine_child,
                )
            finally:
                log.close()
            try:
                healthy = self._wait_healthy()
            except BaseException:  # Ctrl-C or SIGTERM while it starts: no server left behind
                self.stop()
                raise
            if healthy:
                return self
            code = self.proc.poll()
            self.stop()
            if cfg.port is not None or attempt == 2 or code is None:
                break
        raise EngineError(
            f"llama-server did not become healthy on port {self.port}: {self._log_tail()}"
        )

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.url}/health"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        try:
            lines = [x for x in self.log_path.read_text(errors="replace").splitlines() if x]
        except OSError:
            return "no log"
        errors = [x for x in lines if "error" in x.lower()]
        tail = (errors or lines)[-1:] or ["no output"]
        return f"{tail[0][:200]} (log: {self.log_path})"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def kill(self) -> None:
        """Kill -9 without waiting for a clean shutdown (fault tests)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
