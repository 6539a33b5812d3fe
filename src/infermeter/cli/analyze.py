"""``infermeter analyze RUN_DIR``: (re)analyse a stored run offline."""

from __future__ import annotations

from pathlib import Path

import typer

from infermeter.api import full_results, load_run, save_results
from infermeter.cli.common import fail
from infermeter.cli.report import FORMATS, emit


def analyze(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'infermeter bench'."),
    gpu: str | None = typer.Option(None, "--gpu", help="GPU (catalogue name or JSON file)."),
    model_shape: str | None = typer.Option(
        None, "--model-shape", help="Catalogue name or config.json."
    ),
    gpus: int | None = typer.Option(None, "--gpus"),
    tp: int | None = typer.Option(None, "--tp"),
    weight_dtype: str | None = typer.Option(None, "--weight-dtype"),
    profile: str | None = typer.Option(
        None, "--profile", help="chat, batch, realtime, or a JSON file."
    ),
    gpu_hourly_price: float | None = typer.Option(None, "--gpu-hourly-price"),
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
