"""``infermeter estimate``: the speed-of-light bounds for a model on some GPUs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from infermeter.cli.common import fail, out_console
from infermeter.errors import UsageError
from infermeter.report.estimate import (
    print_calibrated,
    print_calibration,
    print_catalogue,
    print_errors,
    print_estimate,
)
from infermeter.run.calibrate import (
    calibrate_from_runs,
    calibration_points,
    load_calibration_profile,
    predict_from_profile,
)
from infermeter.theory import (
    HARDWARE,
    MODELS,
    Deployment,
    Estimate,
    batch_sweep,
    get_hardware,
    resolve_model,
)
from infermeter.theory.calibration import check as check_profile


def estimate(
    model: str = typer.Option(
        None, "--model", "-m", help="A catalogue name (see --list) or a config.json / HF folder."
    ),
    gpu: str = typer.Option(
        "h100-sxm", "--gpu", help="A catalogue GPU (see --list) or a JSON/YAML file describing one."
    ),
    gpus: int = typer.Option(1, "--gpus", help="GPUs in all (replicas × tp × pp)."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel size."),
    pp: int = typer.Option(1, "--pp", help="Pipeline-parallel size."),
    batch: int = typer.Option(1, "--batch", help="Concurrent sequences per replica."),
    input_tokens: int = typer.Option(1024, "--input-tokens", help="Prompt tokens per sequence."),
    output_tokens: int = typer.Option(256, "--output-tokens", help="Output tokens per sequence."),
    dtype: str = typer.Option("bf16", "--dtype", help="Weights: bf16, fp16, fp8, int8, int4."),
    kv_dtype: str = typer.Option("bf16", "--kv-dtype", help="KV cache: bf16, fp16, fp8, int8."),
    act_dtype: str | None = typer.Option(
        None, "--act-dtype", help="Activations (default: fp8/int8 for W8A8 weights, else bf16)."
    ),
    memory_utilization: float = typer.Option(
        0.9, "--gpu-memory-utilization", help="Share of GPU memory the engine may use."
    ),
    sweep: str | None = typer.Option(
        None, "--sweep-batch", help="Batch sizes to tabulate, e.g. 1,2,4,8,16,32,64,128."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    list_all: bool = typer.Option(False, "--list", help="List catalogue models and GPUs."),
    calibrate: list[Path] = typer.Option(
        [],
        "--calibrate",
        help="Fit this engine's efficiency factors from measured runs or sweeps (repeat); writes --out.",
    ),
    engine: str = typer.Option("engine", "--engine", help="--calibrate: the engine's name."),
    out: Path | None = typer.Option(
        None, "--out", help="--calibrate: where to write the profile (JSON)."
    ),
    profile: Path | None = typer.Option(
        None, "--profile", help="A calibration profile: predicted TPOT/TTFT beside the bounds."
    ),
    check: list[Path] = typer.Option(
        [],
        "--check",
        help="With --profile: predict these measured runs or sweeps (repeat) and print the error of each point (held-out check; --model may differ from the profile's).",
    ),
) -> None:
    """Lower bounds on TTFT, TPOT and E2E, an upper bound on throughput, and the memory plan."""
    console = out_console()
    if list_all:
        if as_json:
            typer.echo(json.dumps({"models": list(MODELS), "gpus": list(HARDWARE)}, indent=2))
        else:
            print_catalogue(console)
        return
    if not model:
        raise fail("--model is required (or --list)")
    d = Deployment(
        resolve_model(model),
        get_hardware(gpu),
        gpus=gpus,
        tp=tp,
        pp=pp,
        weight_dtype=dtype,
        kv_dtype=kv_dtype,
        act_dtype=act_dtype,
        gpu_memory_utilization=memory_utilization,
    )
    if calibrate:
        prof = calibrate_from_runs(d, engine, calibrate)
        data = prof.to_dict()
        if out is not None:
            out.write_text(json.dumps(data, indent=2))
        if as_json:
            typer.echo(json.dumps(data, indent=2))
        else:
            print_calibration(console, prof, out)
        return
    if check:
        if profile is None:
            raise UsageError("--check needs --profile FILE (the profile to test)")
        checked = check_profile(load_calibration_profile(profile), d, calibration_points(check))
        if as_json:
            typer.echo(json.dumps(checked, indent=2))
        else:
            print_errors(console, "held-out check (points the profile was not fitted on)", checked)
        return
    for name, value in (
        ("--batch", batch),
        ("--input-tokens", input_tokens),
        ("--output-tokens", output_tokens),
    ):
        if value < 1:
            raise UsageError(f"{name} must be at least 1")
    result: dict[str, Any] = Estimate(d, batch, input_tokens, output_tokens).to_dict()
    calibrated = (
        predict_from_profile(d, profile, batch, input_tokens, output_tokens)
        if profile is not None
        else None
    )
    if calibrated is not None:
        result["calibrated"] = calibrated
    rows = None
    if sweep:
        try:
            batches = [int(x) for x in sweep.split(",") if x.strip()]
        except ValueError:
            raise UsageError(f"--sweep-batch: cannot read {sweep!r}") from None
        rows = batch_sweep(d, batches, input_tokens, output_tokens)
        result["batch_sweep"] = rows
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    print_estimate(console, result, rows)
    if calibrated is not None:
        print_calibrated(console, calibrated)
