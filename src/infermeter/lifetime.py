"""Child processes end with their parent, however the parent ends.

A worker, the telemetry sampler or an engine left running after the benchmark died keeps
loading the server (or appending to a run's files) with nobody to record it. Linux can tie a
child's life to its parent's (``PR_SET_PDEATHSIG``); elsewhere the child polls for a parent
that changed. Every child infermeter starts calls :func:`die_with_parent` first thing.

SIGTERM (``timeout``, ``docker stop``, Kubernetes, CI cancellation; ``timeout`` and systemd
send it to every process of the group) stops a process as Ctrl-C does: what finished is
kept and summarised. :func:`sigterm_as_interrupt` installs that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any

_PR_SET_PDEATHSIG = 1
#: How often a child without ``PR_SET_PDEATHSIG`` looks for its parent.
_POLL_S = 1.0


def die_with_parent(sig: int = signal.SIGKILL, parent_pid: int | None = None) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies.

    ``parent_pid``: the pid that started this process; when it is no longer the parent (it
    died before this call), exit at once. Safe in a ``preexec_fn`` (no threads on Linux).
    """
    expected = os.getppid() if parent_pid is None else parent_pid
    armed = False
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    if os.getppid() != expected:
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(expected,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:  # pragma: no cover - non-Linux only
    while os.getppid() == parent_pid:
        threading.Event().wait(_POLL_S)
    os._exit(1)


_terminated = False


def _on_sigterm(signum: int, frame: Any) -> None:
    global _terminated
    _terminated = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _on_sigterm:
        handler(signal.SIGINT, frame)  # asyncio's own: cancels the main task
    else:
        raise KeyboardInterrupt


def sigterm_as_interrupt() -> None:
    """Handle SIGTERM as SIGINT (main thread only)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def terminated() -> bool:
    """Whether this process was stopped by SIGTERM."""
    return _terminated
