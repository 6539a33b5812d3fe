"""``infermeter demo``: the main job on the embedded default.

Builds llama-server if needed (or, with ``--engine vllm``, installs vLLM's CPU build), generates
the demo model, serves it on loopback, benchmarks it at concurrency 1 and 4, prints the
summaries and a comparison, and stops the server.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from infermeter.cli.common import (
    CACHE_DIR_HELP,
    default_cache_dir,
    err_console,
    interrupted_exit,
    out_console,
)
from infermeter.cli.engine import (
    ENGINE_HELP,
    check_engine,
    default_threads,
    ensure_model,
    ensure_server_binary,
    vllm_server,
)
from infermeter.config import BenchConfig
from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig
from infermeter.engines.process import ServerProcess
from infermeter.engines.vllm_cpu import cpu_list
from infermeter.errors import UsageError
from infermeter.records.rundir import is_run_dir
from infermeter.report.terminal import print_summary
from infermeter.run.rundir import Run
from infermeter.schema.results import Results


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--levels: cannot read {text!r}; e.g. 1,4") from None
    if not levels or min(levels) < 1:
        raise UsageError("--levels: give positive concurrencies, e.g. 1,4")
    return levels


def demo(
    size: str = typer.Option(
        "demo", "--model-size", help="Model shape to generate (tiny, demo, ...)."
    ),
    levels: str = typer.Option("1,4", "--levels", help="Concurrency levels to measure."),
    input_tokens: int = typer.Option(128, "--input-tokens", help="Prompt tokens per request."),
    output_tokens: int = typer.Option(
        128, "--output-tokens", help="Output tokens per request (max_tokens)."
    ),
    requests: int | None = typer.Option(
        None, "--requests-per-level", help="Default: 8 or 4 × concurrency, whichever is more."
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="Server CPU threads (default: cores - 1)."
    ),
    engine: str = typer.Option("llama.cpp", "--engine", help=ENGINE_HELP),
    out: Path = typer.Option(
        Path("infermeter-demo"), "--out", help="Run directories go here (c1/, c4/, ...)."
    ),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=CACHE_DIR_HELP),
) -> int:
    """Benchmark a local llama-server (or vLLM) serving a generated model at concurrency 1
    and 4."""
    conc = _levels(levels)
    engine = check_engine(engine)
    cache = cache_dir or default_cache_dir()
    ctx = input_tokens + output_tokens + 64
    for c in conc:
        d = out / f"c{c}"
        if is_run_dir(d):
            shutil.rmtree(d)
    out.mkdir(parents=True, exist_ok=True)
    if engine == "vllm":
        servers = _vllm_levels(size, cache, conc, ctx, threads, out / "vllm.log")
    else:
        servers = _llama_levels(size, cache, conc, ctx, threads, out / "llama-server.log")
    from infermeter.run.benchmark import run_benchmark  # only commands that send load need it

    runs: list[tuple[int, Run]] = []
    t_start = time.monotonic()
    # However the loop ends (an interrupt, an error), the server is stopped.
    with contextlib.closing(servers):
        for c, server in zip(conc, servers, strict=False):
            n = requests or max(8, 4 * c)
            config = BenchConfig.build(
                url=server.url,
                concurrency=c,
                num_requests=n,
                warmup=min(c, 4),
                input_tokens=str(input_tokens),
                output_tokens=str(output_tokens),
                out=out / f"c{c}",
            )
            err_console.print(
                f"[bold]concurrency {c}[/]: {n} requests of {input_tokens} → {output_tokens} tokens"
            )
            run = run_benchmark(config, console=err_console)
            print_summary(run.results, out_console())
            runs.append((c, run))
            if run.interrupted:
                break
    if runs and runs[-1][1].interrupted:
        return interrupted_exit()
    if len(runs) > 1:
        out_console().print(_comparison(runs))
    err_console.print(
        f"demo finished in {time.monotonic() - t_start:.0f} s; runs in {out}/", markup=False
    )
    failed = sum(r.results["summary"]["requests_failed"] for _, r in runs)
    return 1 if failed else 0


def _llama_levels(
    size: str, cache: Path, conc: list[int], ctx: int, threads: int | None, log: Path
) -> Generator[ServerProcess, None, None]:
    """A fresh llama-server for each level: a server that has run keeps its slots' prompts
    (a prefix cache) and hands out slots least recently used first, so one level would carry
    its state into the next."""
    binary = ensure_server_binary(cache)
    model = ensure_model(size, cache, hf=False)
    cfg = LlamaServerConfig(
        binary,
        model.gguf,
        alias=f"infermeter-{size}",
        ctx_per_slot=ctx,
        slots=max(conc),
        threads=threads or default_threads(),
        log_path=log,
    )
    if log.exists():
        log.unlink()
    for i, _c in enumerate(conc):
        with LlamaServer(cfg) as server:
            if i == 0:
                err_console.print(
                    f"llama-server: {model.shape.name} model ({model.shape.total_params / 1e6:,.1f}M "
                    f"params, {model.dtype}) at {server.url}, {cfg.slots} slots, "
                    f"{cfg.threads} thread(s); started afresh for each level"
                )
            yield server


def _vllm_levels(
    size: str, cache: Path, conc: list[int], ctx: int, threads: int | None, log: Path
) -> Generator[ServerProcess, None, None]:
    """One vLLM server for every level: it takes a minute or more to start, and has no
    slots to age; each level draws prompts of its own, so its prefix cache flatters none
    (the cached share is shown with every run)."""
    if log.exists():
        log.unlink()
    vllm = vllm_server(
        size, cache, name=f"infermeter-{size}", ctx=ctx, slots=max(conc), threads=threads,
        log_path=log,
    )  # fmt: skip
    with vllm as server:
        cfg = vllm.config
        err_console.print(
            f"vLLM: {size} model at {server.url}, KV cache {cfg.kv_space_gib} GiB, on cores "
            f"{cpu_list(cfg.cpus or ())}; one server for every level",
            markup=False,
        )
        for _c in conc:
            yield server


def _comparison(runs: list[tuple[int, Run]]) -> Table:
    base = runs[0][1].results
    t = Table(title=f"concurrency compared (ratios to c={runs[0][0]})", title_justify="left")
    t.add_column("metric")
    for c, _ in runs:
        t.add_column(f"c={c}", justify="right")
    rows: list[tuple[str, Callable[[Results], Any]]] = [
        ("output tok/s", lambda r: r["summary"]["output_token_throughput_tok_s"]),
        ("request/s", lambda r: r["summary"]["request_throughput_rps"]),
        ("TTFT p50 (ms)", lambda r: r["distributions"]["ttft_ms"]["p50"]),
        ("TPOT p50 (ms)", lambda r: r["distributions"]["tpot_ms"]["p50"]),
        ("E2E p50 (ms)", lambda r: r["distributions"]["e2e_ms"]["p50"]),
    ]
    for label, get in rows:
        ref = get(base)
        cells = []
        for _, run in runs:
            v = get(run.results)
            ratio = (
                f" ({v / ref:.2f}×)" if ref and v is not None and run.results is not base else ""
            )
            cells.append("-" if v is None else f"{v:,.1f}{ratio}")
        t.add_row(label, *cells)
    return t
