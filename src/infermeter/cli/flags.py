"""Flags that mean the same in every command that takes them (bench, sweep's shared ones,
simulate): one definition each, so their names, defaults and help cannot drift apart."""

from __future__ import annotations

import typer

CONCURRENCY = typer.Option(
    None, "--concurrency", "-c", help="Closed loop: keep N requests in flight."
)
RATE = typer.Option(
    None, "--rate", "-r", help="Open loop: start R requests per second on a schedule."
)
ARRIVAL = typer.Option(
    "poisson", "--arrival", help="Open-loop arrivals: poisson, gamma or constant."
)
BURSTINESS = typer.Option(
    1.0, "--burstiness", help="Gamma shape: 1 = Poisson, < 1 burstier, > 1 smoother."
)
MAX_CONCURRENCY = typer.Option(
    None, "--max-concurrency", help="Cap in-flight requests of an open-loop run."
)
NUM_REQUESTS = typer.Option(None, "--num-requests", "-n", help="Stop after K measured requests.")
DURATION = typer.Option(None, "--duration", help="Stop sending after S seconds.")
INPUT_TOKENS = typer.Option(
    "512",
    "--input-tokens",
    help="Prompt tokens: N, uniform:MIN:MAX, normal:MEAN:STD[:MIN:MAX], lognormal:MEDIAN:SIGMA[:MIN:MAX].",
)
TRACE_FORMAT = typer.Option(
    "auto", "--trace-format", help="auto, mooncake, burstgpt, azure, jsonl or run."
)
PERCENTILES = typer.Option(None, "--percentiles", help="Extra percentiles, e.g. 99.9.")
PROFILE = typer.Option(
    None, "--profile", help="SLA profile: chat, batch, realtime, or a JSON file."
)
GPU_HOURLY_PRICE = typer.Option(
    None,
    "--gpu-hourly-price",
    help="Price of one GPU-hour: cost per request and per 1M tokens.",
)
TIME_SCALE = typer.Option(
    1.0, "--time-scale", help="Multiply the trace's gaps by F (0.5 replays twice as fast)."
)
TRACE_START = typer.Option(0.0, "--trace-start", help="Replay from S seconds into the trace.")
TRACE_DURATION = typer.Option(
    None, "--trace-duration", help="Replay S seconds of the trace (its own seconds)."
)
RAMP_UP = typer.Option(
    0.0,
    "--ramp-up",
    help="Closed loop: start the N streams evenly over S seconds instead of all at once (requests of the ramp are measured).",
)
WARMUP = typer.Option(0, "--warmup", help="Requests sent first and left out of the metrics.")
SLO = typer.Option(
    None, "--slo", help="e.g. ttft_ms=200,tpot_ms=50,p95_e2e_ms=4000: goodput and verdicts."
)
REPLICAS_PER_GPU = typer.Option(
    1,
    "--replicas-per-gpu",
    help="Replicas packed onto each GPU: their steps take turns on it (1: each its own).",
)
