"""The estimate command's tables: speed-of-light figures, a calibration profile and its
errors, and the model and GPU catalogues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from infermeter.text import counted
from infermeter.theory import HARDWARE, MODELS, Deployment, get_model
from infermeter.theory.calibration import Profile as CalibrationProfile


def _gb(x: float) -> str:
    return f"{x / 1e9:,.2f} GB"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def print_calibration(console: Console, prof: CalibrationProfile, out: Path | None) -> None:
    console.print(
        f"[bold]{escape(prof.engine)}[/] on {escape(f'{prof.gpu}, {prof.model} ({prof.weight_dtype})')}: "
        f"bandwidth efficiency {_pct(prof.bandwidth_efficiency)}, "
        f"compute efficiency {_pct(prof.compute_efficiency)}, "
        f"decode compute efficiency {_pct(prof.decode_compute_efficiency)}, "
        f"prefill overhead {prof.prefill_coef[0]:.1f} ms, "
        f"prompt queue factor {prof.prefill_coef[2]:.2f}",
        highlight=False,
    )
    print_errors(
        console, "leave-one-out prediction error (each point predicted without it)", prof.loo
    )
    if out is not None:
        console.print(f"profile written to {out}", highlight=False, markup=False)


def print_errors(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
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


def print_catalogue(console: Console) -> None:
    """The models and GPUs the theory knows."""
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


def print_estimate(console: Console, r: dict[str, Any], rows: list[dict[str, Any]] | None) -> None:
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


def print_calibrated(console: Console, c: dict[str, Any]) -> None:
    """A calibration profile's prediction beside the bounds."""
    console.print(
        f"calibrated ({c['engine']}, fitted on {counted(c['fitted_points'], 'point')}): "
        f"TPOT {c['tpot_ms']:,.2f} ms, TTFT {c['ttft_ms']:,.1f} ms "
        f"(bandwidth efficiency {_pct(c['bandwidth_efficiency'])}, "
        f"compute efficiency {_pct(c['compute_efficiency'])}, "
        f"decode compute efficiency {_pct(c['decode_compute_efficiency'])})",
        highlight=False,
        markup=False,
    )
