"""``infermeter analyze RUN_DIR``: (re)analyse a stored run offline."""

from __future__ import annotations

from pathlib import Path

import typer

from infermeter.cli.common import fail
from infermeter.cli.report import FORMATS, emit
from infermeter.results.build import full_results
from infermeter.run.rundir import load_run, save_results


def analyze(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'infermeter bench'."),
    gpu: str | None = typer.Option(None, "--gpu", help="GPU (catalogue name or JSON file)."),
    model_shape: str | None = typer.Option(
        None, "--model-shape", help="Catalogue name or config.json."
    ),
    gpus: int | None = typer.Option(
        None, "--gpus", help="GPUs serving the model (default: the run's)."
    ),
    tp: int | None = typer.Option(
        None, "--tp", help="The server's tensor-parallel size (default: the run's)."
    ),
    weight_dtype: str | None = typer.Option(
        None, "--weight-dtype", help="The served weights' type: bf16, fp16, fp8, int8, int4."
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="chat, batch, realtime, or a JSON file."
    ),
    gpu_hourly_price: float | None = typer.Option(
        None,
        "--gpu-hourly-price",
        help="Price of one GPU-hour: cost per request and per 1M tokens.",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, csv or md."),
) -> None:
    """Recompute a run's analysis with new hardware, model, SLA profile or price; the run's
    results.json is updated."""
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run = load_run(run_dir)
    overrides = {
        "gpu": gpu,
        "model_shape": model_shape,
        "gpus": gpus,
        "tp": tp,
        "weight_dtype": weight_dtype,
        "profile": profile,
        "gpu_hourly_price": gpu_hourly_price,
    }
    run.results = full_results(run.meta, run.metrics, run.status, run.telemetry, overrides)
    save_results(run)
    emit(run.results, fmt)
