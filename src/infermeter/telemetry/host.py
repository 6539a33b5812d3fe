"""The host's CPU and memory, and the infermeter processes' own (so a saturated client
shows up next to the server's figures)."""

from __future__ import annotations

import os
from typing import Any


class HostSampler:
    name = "host"

    def __init__(self, period_s: float = 0.5, client_pid: int | None = None) -> None:
        self.period_s = period_s
        #: The process to account as "the client" (with its children, the workers).
        self.client_pid = client_pid or os.getpid()
        self._procs: dict[int, Any] = {}

    def start(self) -> str | None:
        try:
            import psutil
        except ImportError:
            return "host telemetry off: psutil is not installed"
        self._psutil = psutil
        psutil.cpu_percent(interval=None)  # the first reading only starts the interval
        self._me = psutil.Process(self.client_pid)
        self._me.cpu_percent(interval=None)
        return None

    def sample(self) -> dict[str, Any]:
        ps = self._psutil
        mem = ps.virtual_memory()
        # This process and its children (worker processes), each with its own interval.
        client_cpu = self._me.cpu_percent(interval=None)
        client_rss = self._me.memory_info().rss
        for child in self._me.children(recursive=True):
            if child.pid == os.getpid():
                continue  # the telemetry process itself
            proc = self._procs.get(child.pid)
            try:
                if proc is None:
                    proc = self._procs[child.pid] = child
                    proc.cpu_percent(interval=None)
                    continue
                client_cpu += proc.cpu_percent(interval=None)
                client_rss += proc.memory_info().rss
            except ps.Error:
                self._procs.pop(child.pid, None)
        return {
            "cpu_percent": ps.cpu_percent(interval=None),
            "cpu_count": ps.cpu_count(),
            "memory_used_bytes": mem.total - mem.available,
            "memory_total_bytes": mem.total,
            "client_cpu_percent": client_cpu,
            "client_rss_bytes": client_rss,
        }

    def close(self) -> None:
        self._procs.clear()
