"""Start and stop a local ``llama-server``: free loopback port, wait for ``/health``, keep the
log, and always stop it (context manager; the child also dies with its parent on Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from infermeter.engines.process import ServerProcess, StartProgress, free_port
from infermeter.errors import EngineError
from infermeter.telemetry.host import engine_env

__all__ = ["LlamaServer", "LlamaServerConfig", "free_port"]


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


class LlamaServer(ServerProcess):
    """``with LlamaServer(cfg) as server: ... server.url ...``"""

    name = "llama-server"

    def __init__(
        self,
        config: LlamaServerConfig,
        startup_timeout_s: float = 120.0,
        progress: StartProgress | None = None,
    ) -> None:
        super().__init__(config.host, config.port, config.log_path, startup_timeout_s, progress)
        self.config = config

    def check(self) -> None:
        if not self.config.binary.exists():
            raise EngineError(f"llama-server binary {self.config.binary} does not exist")
        if not self.config.model.exists():
            raise EngineError(f"model {self.config.model} does not exist")

    def command(self, port: int) -> list[str]:
        return self.config.command(port)

    def env(self) -> dict[str, str]:
        # LLAMA_ARG_* variables would silently change the server's flags.
        # Marked as a server infermeter started: its CPU is the server's, not the client's.
        return engine_env({k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")})

    def __enter__(self) -> LlamaServer:
        self.start()
        return self
