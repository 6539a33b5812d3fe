"""``infermeter bench``: measure a running OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from infermeter.cli import flags
from infermeter.cli.common import (
    THINK_TAGS_HELP,
    err_console,
    fail,
    interrupted_exit,
    print_error,
)
from infermeter.config import BenchConfig
from infermeter.errors import UsageError
from infermeter.run.rundir import Run
from infermeter.text import counted


def _headers(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header: expected 'Name: value', got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _percentiles(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(x.strip().lstrip("p")) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--percentiles: cannot read {text!r}; e.g. 99.9,99.99") from None


def _workers(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--workers: expected a number or auto, got {text!r}") from None


def finish(run: Run, max_error_rate: float) -> int:
    """Exit code of a finished run: 130 interrupted (143 by SIGTERM), 1 aborted or too many failures, else 0."""
    s = run.results["summary"]
    if run.interrupted:
        return interrupted_exit()
    if run.aborted:
        print_error(run.aborted)
        return 1
    if s["requests_sent"] and s["error_rate"] > max_error_rate:
        kinds = ", ".join(f"{k} ×{v}" for k, v in run.results["errors"]["by_kind"].items())
        print_error(
            f"{s['requests_failed']} of {counted(s['requests_sent'], 'request')} failed "
            f"({kinds}); allowed error rate {max_error_rate:g}"
        )
        return 1
    return 0


#: bench flags that are the CLI's own business, not the run's.
CLI_ONLY = ("output_format", "quiet")
#: Flags whose config field carries a unit suffix.
RENAMED = {
    "duration": "duration_s",
    "ramp_up": "ramp_up_s",
    "request_timeout": "request_timeout_s",
    "stall_timeout": "stall_timeout_s",
    "connect_timeout": "connect_timeout_s",
    "trace_start": "trace_start_s",
    "trace_duration": "trace_duration_s",
}


#: Flags whose absence means something (a dataset's own answer lengths, a conversation's
#: own number of turns): None on the command line, left out of the config unless given.
MEANINGFUL_ABSENCE = ("output_tokens", "turns")


def config_from_flags(flags: dict[str, Any]) -> BenchConfig:
    """The run config from ``bench``'s flags (``sweep`` shares them)."""
    values = {
        RENAMED.get(k, k): v
        for k, v in flags.items()
        if k not in CLI_ONLY and (k not in MEANINGFUL_ABSENCE or v is not None)
    }
    extra = values.pop("extra_body")
    try:
        body = json.loads(extra) if extra else {}
    except json.JSONDecodeError as exc:
        raise UsageError(f"--extra-body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise UsageError("--extra-body must be a JSON object")
    values["extra_body"] = body
    values["headers"] = _headers(values.pop("header"))
    values["percentiles"] = _percentiles(values["percentiles"])
    values["workers"] = _workers(values["workers"])
    values["telemetry"] = not values.pop("no_telemetry")
    return BenchConfig.build(**values)


def bench(
    url: str = typer.Option(
        ...,
        "--url",
        "--target",
        help="Server base URL, e.g. http://127.0.0.1:8080 (or .../v1); or hf:MODEL_DIR to run a Hugging Face model in this process (infermeter[hf]).",
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model name to request; default: the one the server lists."
    ),
    api: str = typer.Option(
        "chat", "--api", help="chat (/v1/chat/completions) or completions (/v1/completions)."
    ),
    concurrency: int | None = flags.CONCURRENCY,
    rate: float | None = flags.RATE,
    arrival: str = flags.ARRIVAL,
    burstiness: float = flags.BURSTINESS,
    max_concurrency: int | None = flags.MAX_CONCURRENCY,
    num_requests: int | None = flags.NUM_REQUESTS,
    duration: float | None = flags.DURATION,
    warmup: int = flags.WARMUP,
    ramp_up: float = flags.RAMP_UP,
    input_tokens: str = flags.INPUT_TOKENS,
    output_tokens: str | None = typer.Option(
        None,
        "--output-tokens",
        help="Output tokens (max_tokens), same forms as --input-tokens (default: 128, or a dataset's reference answers).",
    ),
    dataset: Path | None = typer.Option(
        None, "--dataset", help="Prompts from a JSONL or ShareGPT file instead of synthetic ones."
    ),
    dataset_format: str = typer.Option("auto", "--dataset-format", help="auto, jsonl or sharegpt."),
    tokenizer: Path | None = typer.Option(
        None,
        "--tokenizer",
        help="tokenizer.json or HF folder for exact prompt lengths (default: the server's /tokenize).",
    ),
    shared_prefix_tokens: int = typer.Option(
        0,
        "--shared-prefix-tokens",
        help="Give every prompt the same first N tokens (to measure prefix caching).",
    ),
    sessions: int | None = typer.Option(
        None,
        "--sessions",
        help="Multi-turn chat: run N sessions (closed loop: --concurrency sessions at a time; open loop: --rate sessions a second), each turn sending the conversation so far with the server's real answers.",
    ),
    turns: str | None = typer.Option(
        None,
        "--turns",
        help="Turns per session: N or a distribution, as --input-tokens (default: 4, or each dataset conversation's own, at most N when given).",
    ),
    think_time: str = typer.Option(
        "0",
        "--think-time",
        help="Seconds from an answer to the user's next turn: S, uniform:MIN:MAX or exponential:MEAN.",
    ),
    trace: Path | None = typer.Option(
        None,
        "--trace",
        help="Replay a trace: each request at its own time, of its own lengths, sharing the prefixes it shares (Mooncake JSONL, BurstGPT CSV, Azure CSV, plain JSONL, or a run directory).",
    ),
    trace_format: str = flags.TRACE_FORMAT,
    time_scale: float = flags.TIME_SCALE,
    trace_start: float = flags.TRACE_START,
    trace_duration: float | None = flags.TRACE_DURATION,
    skip_bad_rows: bool = typer.Option(
        False,
        "--skip-bad-rows",
        help="Leave out (and count) trace rows that cannot be replayed instead of refusing the trace.",
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        help="Seed for prompts, lengths and arrivals (default: a fresh one per run, printed and "
        "kept in run.json, so a rerun never meets its own prompts in the server's prefix cache).",
    ),
    ignore_eos: bool = typer.Option(
        False,
        "--ignore-eos",
        help="Send ignore_eos=true (vLLM, llama.cpp) so outputs run to max_tokens.",
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", help="Sampling temperature to send (default: the server's)."
    ),
    think_tags: bool = typer.Option(
        False,
        "--think-tags",
        help=THINK_TAGS_HELP,
    ),
    extra_body: str | None = typer.Option(
        None, "--extra-body", help="JSON object merged into every request body."
    ),
    header: list[str] = typer.Option(
        [], "--header", "-H", help="Extra HTTP header 'Name: value' (never written to disk)."
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="OPENAI_API_KEY",
        show_envvar=True,
        help="Bearer token (never written to disk or logs).",
    ),
    slo: str | None = flags.SLO,
    percentiles: str | None = flags.PERCENTILES,
    request_timeout: float = typer.Option(
        600.0, "--request-timeout", help="Seconds a whole request may take."
    ),
    stall_timeout: float = typer.Option(
        120.0, "--stall-timeout", help="Seconds of silence after which a stream counts as stalled."
    ),
    connect_timeout: float = typer.Option(30.0, "--connect-timeout", help="Seconds to connect."),
    client_priority: bool = typer.Option(
        True,
        "--client-priority/--no-client-priority",
        help="Run the load at nice -10 where permitted (root or CAP_SYS_NICE), so other busy "
        "processes do not keep the client from reading its streams.",
    ),
    workers: str = typer.Option(
        "auto",
        "--workers",
        help="Client processes: N, or auto (one per 128 streams, up to the cores available).",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Run the workers as Ray actors: a Ray address (auto, ray://HOST:PORT, HOST:PORT) or local. Needs infermeter[ray].",
    ),
    hf_device: str = typer.Option(
        "auto", "--hf-device", help="hf: targets: cuda, cuda:N or cpu (default: cuda if present)."
    ),
    hf_dtype: str = typer.Option(
        "auto", "--hf-dtype", help="hf: targets: bfloat16, float16, float32 (default: bf16 on GPU)."
    ),
    hf_max_batch: int | None = typer.Option(
        None, "--hf-max-batch", help="hf: targets: largest static batch (default: the concurrency)."
    ),
    hf_cache: str = typer.Option(
        "dynamic", "--hf-cache", help="hf: targets: KV cache, dynamic (eager) or static."
    ),
    hf_compile: bool = typer.Option(
        False, "--hf-compile", help="hf: targets: torch.compile the static-cache decode step."
    ),
    hf_compile_mode: str = typer.Option(
        "auto",
        "--hf-compile-mode",
        help="hf: targets: torch.compile mode: auto (transformers' choice, CUDA graphs), default (no CUDA graphs) or max-autotune.",
    ),
    gpu: str | None = typer.Option(
        None,
        "--gpu",
        help="The server's GPU (catalogue name or JSON file): MBU/MFU and speed-of-light bounds in the analysis.",
    ),
    model_shape: str | None = typer.Option(
        None,
        "--model-shape",
        help="The served model's shape for the analysis: a catalogue name or a config.json (default: the served model's name, if the catalogue knows it).",
    ),
    gpus: int = typer.Option(1, "--gpus", help="GPUs serving the model (analysis and cost)."),
    tp: int = typer.Option(1, "--tp", help="The server's tensor-parallel size (analysis)."),
    weight_dtype: str = typer.Option(
        "bf16",
        "--weight-dtype",
        help="The served weights' type (analysis): bf16, fp16, fp8, int8, int4.",
    ),
    profile: str | None = flags.PROFILE,
    gpu_hourly_price: float | None = flags.GPU_HOURLY_PRICE,
    no_telemetry: bool = typer.Option(
        False, "--no-telemetry", help="Do not sample the host, GPUs and the server's /metrics."
    ),
    transport: str = typer.Option(
        "raw", "--transport", help="Stream client: raw (lean asyncio, default) or aiohttp."
    ),
    max_error_rate: float = typer.Option(
        0.0, "--max-error-rate", help="Exit non-zero when more than this share of requests fail."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory (default: runs/TIMESTAMP)."
    ),
    output_format: str = typer.Option(
        "table",
        "--format",
        help="Summary on stdout: table, json, csv or md; html also writes OUT/report.html.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress."),
) -> int:
    """Drive load against a running server and measure every request."""
    flags = dict(locals())
    if output_format not in ("table", "json", "csv", "md", "html"):
        raise fail(f"--format must be table, json, csv, md or html, got {output_format!r}")
    config = config_from_flags(flags)
    # The load generator (aiohttp and the workers) is imported by the commands that send
    # load, so reading a run starts without it.
    from infermeter.run.benchmark import run_benchmark

    run = run_benchmark(config, console=None if quiet else err_console)
    from infermeter.cli.report import emit, write_html

    emit(run.results, "table" if output_format == "html" else output_format)
    if output_format == "html":
        write_html(run.path)
    return finish(run, config.max_error_rate)
