"""``infermeter estimate``: the speed-of-light bounds for a model on some GPUs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from infermeter.analysis.efficiency import calibration_point
from infermeter.cli.common import fail, out_console
from infermeter.errors import UsageError
from infermeter.text import counted
from infermeter.theory import (
    HARDWARE,
    MODELS,
    Deployment,
    Estimate,
    batch_sweep,
    get_hardware,
    get_model,
    resolve_model,
)
from infermeter.theory.calibration import Point
from infermeter.theory.calibration import Profile as CalibrationProfile
from infermeter.theory.calibration import calibrate as calibrate_engine
from infermeter.theory.calibration import check as check_profile


def _gb(x: float) -> str:
    return f"{x / 1e9:,.2f} GB"


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
        _print_list(console, as_json)
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
        prof = _calibrate(d, engine, calibrate)
        data = prof.to_dict()
        if out is not None:
            out.write_text(json.dumps(data, indent=2))
        if as_json:
            typer.echo(json.dumps(data, indent=2))
        else:
            _print_calibration(console, prof, out)
        return
    if check:
        if profile is None:
            raise UsageError("--check needs --profile FILE (the profile to test)")
        checked = check_profile(_load_profile(profile), d, _points(check))
        if as_json:
            typer.echo(json.dumps(checked, indent=2))
        else:
            _print_errors(console, "held-out check (points the profile was not fitted on)", checked)
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
        _predict(d, profile, batch, input_tokens, output_tokens) if profile is not None else None
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
    _print_estimate(console, result, rows)
    if calibrated is not None:
        c = calibrated
        console.print(
            f"calibrated ({c['engine']}, fitted on {counted(c['fitted_points'], 'point')}): "
            f"TPOT {c['tpot_ms']:,.2f} ms, TTFT {c['ttft_ms']:,.1f} ms "
            f"(bandwidth efficiency {_pct(c['bandwidth_efficiency'])}, "
            f"compute efficiency {_pct(c['compute_efficiency'])}, "
            f"decode compute efficiency {_pct(c['decode_compute_efficiency'])})",
            highlight=False,
            markup=False,
        )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _points(paths: list[Path]) -> list[Point]:
    from infermeter.api import load_run
    from infermeter.records.rundir import is_sweep_dir, read_sweep_index

    points: list[Point] = []
    for path in paths:
        if is_sweep_dir(path):
            dirs = [
                (f"{path.name}/{p['dir']}", path / p["dir"])
                for p in read_sweep_index(path)["points"]
                if p["status"] == "ok"
            ]
        else:
            dirs = [(path.name, path)]
        for label, run_dir in dirs:
            point = calibration_point(label, load_run(run_dir).results)
            if point is not None:
                points.append(point)
    return points


def _calibrate(d: Deployment, engine: str, paths: list[Path]) -> CalibrationProfile:
    points = _points(paths)
    if len(points) < 3:
        raise UsageError(
            f"--calibrate: {len(points)} usable runs; at least 3 with completed requests are needed"
        )
    return calibrate_engine(engine, d, points)


def _load_profile(path: Path) -> CalibrationProfile:
    try:
        return CalibrationProfile.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--profile {path}: not a calibration profile ({exc})") from None


def _predict(
    d: Deployment, path: Path, batch: int, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    prof = _load_profile(path)
    point = Point("estimate", batch, input_tokens + output_tokens // 2, input_tokens, 1.0, 1.0)
    tpot, ttft = prof.predict(d, point)
    return {
        "engine": prof.engine,
        "fitted_points": len(prof.points),
        "fitted_on": {"model": prof.model, "gpu": prof.gpu, "weight_dtype": prof.weight_dtype},
        "tpot_ms": tpot,
        "ttft_ms": ttft,
        "e2e_ms": ttft + tpot * (output_tokens - 1),
        "bandwidth_efficiency": prof.bandwidth_efficiency,
        "compute_efficiency": prof.compute_efficiency,
        "decode_compute_efficiency": prof.decode_compute_efficiency,
    }


def _print_calibration(console: Console, prof: CalibrationProfile, out: Path | None) -> None:
    console.print(
        f"[bold]{escape(prof.engine)}[/] on {escape(f'{prof.gpu}, {prof.model} ({prof.weight_dtype})')}: "
        f"bandwidth efficiency {_pct(prof.bandwidth_efficiency)}, "
        f"compute efficiency {_pct(prof.compute_efficiency)}, "
        f"decode compute efficiency {_pct(prof.decode_compute_efficiency)}, "
        f"prefill overhead {prof.prefill_coef[0]:.1f} ms, "
        f"prompt queue factor {prof.prefill_coef[2]:.2f}",
        highlight=False,
    )
    _print_errors(
        console, "leave-one-out prediction error (each point predicted without it)", prof.loo
    )
    if out is not None:
        console.print(f"profile written to {out}", highlight=False, markup=False)


def _print_errors(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for col in ("point", "batch", "TPOT ms", "predicted", "error", "TTFT ms", "predicted", "error"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            Text(str(r["label"])),
            str(r["batch"]),
            f"{r['tpot_ms']:.2f}",
            f"{r['tpot_pred_ms']:.2f}",
            f"{r['tpot_error']:+.1%}",
            f"{r['ttft_ms']:.1f}",
            f"{r['ttft_pred_ms']:.1f}",
            f"{r['ttft_error']:+.1%}",
        )
    console.print(table)


def _print_list(console: Console, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"models": list(MODELS), "gpus": list(HARDWARE)}, indent=2))
        return
    t = Table(title="models")
    for col in ("name", "total params", "active params", "KV / token (bf16)"):
        t.add_column(col, justify="left" if col == "name" else "right")
    for name in MODELS:
        m = get_model(name)
        kv = Deployment(m, HARDWARE["h100-sxm"]).kv_bytes_per_token
        t.add_row(
            name,
            f"{m.total_params / 1e9:,.2f} B",
            f"{m.active_params / 1e9:,.2f} B",
            f"{kv / 1024:,.1f} KiB",
        )
    console.print(t)
    g = Table(title="GPUs (dense peaks)")
    for col in ("name", "GB/s", "BF16 TFLOP/s", "FP8", "memory GB", "source"):
        g.add_column(col, justify="left" if col in ("name", "source") else "right")
    for h in HARDWARE.values():
        g.add_row(
            h.name,
            f"{h.memory_bandwidth_gb_s:,.0f}",
            f"{h.bf16_tflops:,.0f}",
            f"{h.fp8_tflops:,.0f}" if h.fp8_tflops else "-",
            f"{h.memory_gb:,.0f}",
            h.source[:60],
        )
    console.print(g)


def _print_estimate(console: Console, r: dict[str, Any], rows: list[dict[str, Any]] | None) -> None:
    plan = r["memory_plan"]
    t = Table(
        title=f"speed of light · {escape(str(r['model']))} on {r['gpus']} × {r['gpu']} "
        f"(tp {r['tp']}, pp {r['pp']}, {r['weight_dtype']} weights, "
        f"{r['kv_dtype']} KV, {r['compute_dtype']} compute)",
        show_header=False,
        title_justify="left",
    )
    t.add_column(style="bold")
    t.add_column(justify="right")
    add = t.add_row
    add(
        "parameters (total / active)",
        f"{r['total_params'] / 1e9:,.2f} B / {r['active_params'] / 1e9:,.2f} B",
    )
    add("weights (all / per GPU)", f"{_gb(r['weights_bytes'])} / {_gb(r['weights_bytes_per_gpu'])}")
    add(
        "KV cache per token (replica / per GPU)",
        f"{r['kv_bytes_per_token'] / 1024:,.1f} KiB / {r['kv_bytes_per_token_per_gpu'] / 1024:,.1f} KiB",
    )
    add("KV per sequence at full context, per GPU", _gb(plan["kv_bytes_per_sequence_per_gpu"]))
    add(
        "activation peak / runtime overhead, per GPU",
        f"{_gb(plan['activation_peak_bytes_per_gpu'])} / {_gb(plan['runtime_overhead_bytes_per_gpu'])}",
    )
    fits = (
        "yes"
        if plan["shortfall_bytes_per_gpu"] == 0
        else f"NO: short by {_gb(plan['shortfall_bytes_per_gpu'])} per GPU"
    )
    add(f"batch {r['batch']} fits in memory", fits)
    add("max concurrency (all replicas)", f"{r['max_concurrency']:,}")
    add("TTFT lower bound (1 prompt)", f"{r['ttft_lower_bound_ms']:,.2f} ms")
    add(
        f"TTFT lower bound ({counted(r['batch'], 'prompt')} at once)",
        f"{r['ttft_lower_bound_batch_ms']:,.2f} ms",
    )
    add(
        "TPOT lower bound (first / last / mean step)",
        f"{r['tpot_lower_bound_ms']:,.3f} / {r['tpot_lower_bound_last_ms']:,.3f} / {r['tpot_lower_bound_mean_ms']:,.3f} ms",
    )
    terms = r["decode_step_terms_ms"]
    add(
        "  decode step: memory / compute / all-reduce",
        f"{terms['memory_s']:,.3f} / {terms['compute_s']:,.3f} / {terms['allreduce_s']:,.3f} ms",
    )
    add(
        "E2E lower bound",
        f"{r['e2e_lower_bound_ms']:,.1f} ms  (b {r['seed_line']['b_ms']:,.1f} + k {r['seed_line']['k_ms']:,.3f} × (n_out − 1))",
    )
    add("output throughput upper bound", f"{r['output_throughput_upper_bound_tok_s']:,.0f} tok/s")
    cb = r["compute_bound_batch"]
    add(
        "decode turns compute-bound at batch",
        f"{cb:,}" if cb else "never (KV reads grow with the batch)",
    )
    roof = r["roofline"]
    add(
        "roofline: ridge / decode / prefill intensity",
        f"{roof['ridge_flops_per_byte']:,.0f} / {roof['decode_intensity_flops_per_byte']:,.1f} / {roof['prefill_intensity_flops_per_byte']:,.0f} FLOP/B",
    )
    console.print(t)
    if rows:
        s = Table(title="against batch size (mid-sequence context)", title_justify="left")
        for col in ("batch", "TPOT bound ms", "throughput bound tok/s", "bound by", "fits"):
            s.add_column(col, justify="right")
        for row in rows:
            s.add_row(
                str(row["batch"]),
                f"{row['tpot_lower_bound_ms']:,.3f}",
                f"{row['output_throughput_upper_bound_tok_s']:,.0f}",
                row["bound_by"],
                "yes" if row["fits"] else "no",
            )
        console.print(s)
    console.print(
        "Peaks are datasheet ceilings, dense (no sparsity); real engines reach part of "
        "them (see docs/theory.md).",
        style="dim",
    )
