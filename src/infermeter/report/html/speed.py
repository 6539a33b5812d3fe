"""The run report's speed-of-light section: each figure beside the bound no engine can beat on
the hardware, and MBU/MFU (pure)."""

from __future__ import annotations

from infermeter.report.charts import (
    BLUE,
    GREEN,
    ORANGE,
    PURPLE,
    TEAL,
    Axis,
    DotRow,
    VLine,
    esc,
    format_tick,
    format_value,
    render_dot_rows,
)
from infermeter.report.html.page import (
    HALF,
    _panel,
)
from infermeter.report.labels import DEFINITIONS
from infermeter.schema.results import (
    Efficiency,
    Results,
)


def _speed_of_light(eff: Efficiency, results: Results) -> tuple[str, str | None]:
    rows: list[DotRow] = []
    tb, tx = eff.get("tpot_lower_bound_ms"), eff.get("tpot_x_bound")
    if tb is not None and tx is not None:
        rows.append(
            DotRow(
                "TPOT (mean)",
                float(tx),
                BLUE,
                f"measured mean TPOT {format_value(tx * tb)} ms; lower bound {format_value(tb)} ms",
                f"{format_value(tx)}×",
                f"{format_value(tx * tb)} ms vs {format_value(tb)} ms",
            )
        )
    fb, fx = eff.get("ttft_lower_bound_ms"), eff.get("ttft_x_bound")
    if fb is not None and fx is not None:
        rows.append(
            DotRow(
                "TTFT (p50)",
                float(fx),
                ORANGE,
                f"measured TTFT p50 {format_value(fx * fb)} ms; lower bound {format_value(fb)} ms",
                f"{format_value(fx)}×",
                f"{format_value(fx * fb)} ms vs {format_value(fb)} ms",
            )
        )
    ub, share = eff.get("output_throughput_upper_bound_tok_s"), eff.get("throughput_share_of_bound")
    if ub is not None and share:
        measured = float(share) * float(ub)
        rows.append(
            DotRow(
                "Output throughput",
                1 / float(share),
                TEAL,
                f"measured {format_value(measured)} tok/s; upper bound {format_value(ub)} tok/s",
                f"{format_value(1 / float(share))}×",
                f"{format_value(measured)} vs {format_value(ub)} tok/s",
            )
        )
    util_rows = [
        DotRow(
            label,
            100 * value,
            color,
            f"{label}: {100 * value:.4g} % of peak",
            f"{100 * value:.3g} %",
        )
        for value, label, color in (
            (eff.get("mbu"), "MBU (decode)", PURPLE),
            (eff.get("mfu_decode"), "MFU (decode)", BLUE),
            (eff.get("mfu_prefill"), "MFU (prefill)", ORANGE),
        )
        if value is not None and value > 0
    ]
    if share:
        util_rows.append(
            DotRow(
                "Output throughput",
                100 * float(share),
                TEAL,
                f"output throughput: {100 * float(share):.4g} % of its bound",
                f"{100 * float(share):.3g} %",
                "share of its bound",
            )
        )

    def xfmt(v: float) -> str:
        return f"{format_tick(v, v)}×"

    def pfmt(v: float) -> str:
        return f"{format_tick(v, v)} %"

    dist = render_dot_rows(
        "sol-x",
        rows,
        Axis("× the speed-of-light bound (1 = the bound; log scale)", log=True, fmt=xfmt),
        base=1.0,
        refs=[VLine(1.0, "speed of light", GREEN, dash="4 3")],
        width=HALF,
        title="measured vs bound",
    )
    util = render_dot_rows(
        "sol-util",
        util_rows,
        Axis("share of the hardware's peak (%, log scale)", log=True, hi=100, fmt=pfmt),
        refs=[VLine(100.0, "peak", GREEN, dash="4 3")],
        width=HALF,
        title="utilisation",
    )
    hw = (
        f"{eff.get('gpus', 1)} × {esc(eff.get('gpu'))} (tp {eff.get('tp', 1)}), model "
        f"{esc(eff.get('model'))}, at {esc(eff.get('batch_per_replica'))} sequences per replica "
        f"and {esc(eff.get('context_tokens'))} tokens of context"
    )
    body = (
        '<div class="grid2">'
        + _panel(
            "Measured vs the speed-of-light bound",
            dist,
            "How many times slower than the bound no engine can beat (hover a dot for values).",
            "x_bound",
        )
        + _panel(
            "Hardware utilisation",
            util,
            f"MBU: {esc(DEFINITIONS['mbu'].formula)}; MFU: {esc(DEFINITIONS['mfu'].formula)}.",
            "mbu",
        )
        + f'</div><p class="cap" style="color:#64748b;font-size:12.5px">{hw}. '
        "Bounds: see docs/theory.md.</p>"
    )
    return body, "analysis"
