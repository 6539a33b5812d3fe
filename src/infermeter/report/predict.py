"""What ``fit`` and ``plan`` print: an engine model's tables, and a capacity plan (as a
table, or the JSON document ``plan --format json`` gives)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infermeter.predict.model import SELF_MISS, EngineModel
from infermeter.predict.slots import SLOT_SIMILARITY
from infermeter.predict.summary import LATENCIES
from infermeter.schema.plan import PlanDoc, SlowerDoc
from infermeter.text import signed_percent


def print_engine_model(console: Console, m: EngineModel, path: Path) -> None:
    f, q = m.fitted_on, m.quality
    console.print(
        f"[bold]engine model[/] {escape(str(path))}: {escape(m.engine)} serving "
        f"{escape(m.model or '?')} on {escape(m.hardware or 'unknown hardware')}, fitted on "
        f"{len(f.runs)} runs"
    )
    title = "decode step by batch (median of the token gaps measured at it)"
    if m.follows_slots:
        title = "decode step by batch in one forward pass (median gap, extra passes taken off)"
    t = Table(title=title, box=None)
    for col in ("batch", "step (ms)", "context held (tokens)", "gaps"):
        t.add_column(col, justify="right")
    for p in m.decode:
        t.add_row(str(p.batch), f"{p.step_ms:,.3f}", f"{p.ctx_tokens:,.0f}", f"{p.samples:,}")
    console.print(t)
    rows = [
        ("scheduler", f"{m.scheduler}: up to {m.max_seqs} sequences ({m.max_seqs_source})"),
        ("step token budget", f"{m.token_budget:,} ({m.token_budget_source})"),
        ("context per sequence", f"{m.ctx_per_seq:,}" if m.ctx_per_seq else "not told"),
        (
            "KV cache",
            f"{m.kv_tokens:,} tokens in blocks of {m.kv_block_tokens} ({m.kv_tokens_source})"
            if m.kv_tokens
            else "not told",
        ),
        ("step growth per context token", f"{m.ctx_ms_per_token * 1000:,.4f} µs"),
        (
            "each forward pass beyond the first",
            (
                "a one-pass step of its own sequences"
                if m.pass_cost == "sum"
                else f"{m.ubatch_ms:,.3f} ms"
            )
            + " (a run of consecutive busy slots each: llama.cpp's slots followed"
            f"{_assumed(m.ubatch_source)})"
            if m.follows_slots
            else "not followed",
        ),
        ("cost per prompt token", _prompt_cost(m)),
        ("step with no decode", f"{m.step_floor_ms:,.3f} ms"),
        ("per request, outside the steps", _outside(m)),
        (
            "a step's tokens",
            f"written {m.emit_ms_per_seq:,.3f} ms apart, one sequence after another",
        ),
        ("joins the next step", _admit(m)),
        ("sent together to an idle server", _wake(m)),
        ("last token to end of answer", f"{m.tail_ms:,.3f} ms"),
        *(
            [("slot by similarity", _similar(m))]
            if m.follows_slots and (m.cached_prefix_tokens or m.probe_tokens)
            else []
        ),
        (
            "fitted on",
            f"prompts {f.input_tokens_min}-{f.input_tokens_max} tokens, answers "
            f"{f.output_tokens_min}-{f.output_tokens_max}, batches up to {f.batch_max}",
        ),
        (
            "evidence",
            f"{q.decode_gaps:,} decode gaps, {q.mixed_gaps:,} gaps with a prompt, "
            f"{q.solo_requests:,} requests to an idle server; median gap off its table entry by "
            f"{100 * q.decode_gap_mad:.1f} %",
        ),
    ]
    k = Table(show_header=False, box=None)
    k.add_column(style="bold")
    k.add_column()
    for name, value in rows:
        k.add_row(name, escape(value))
    console.print(k)
    if q.self_check:
        console.print(_self_check_table(m))
    for note in q.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")


def _self_check_table(m: EngineModel) -> Table:
    """Each fitted run simulated on the model: where it does not hold its own evidence."""
    t = Table(
        title="its own runs, simulated as bench drove them (predicted vs measured; not a "
        f"held-out error: past {100 * SELF_MISS:.0f} % the model cannot hold loads near them)",
        title_justify="left",
        box=None,
    )
    for col in ("run", "mean batch", "TPOT p50", "E2E p50", "TTFT p50", "output tok/s"):
        t.add_column(col, justify="left" if col == "run" else "right")
    for c in m.quality.self_check:
        style = "yellow" if c.worst() > SELF_MISS else ""
        t.add_row(
            escape(c.label),
            f"{c.mean_batch:.1f}",
            signed_percent(c.tpot_p50_error),
            signed_percent(c.e2e_p50_error),
            signed_percent(c.ttft_p50_error),
            signed_percent(c.output_tok_s_error),
            style=style,
        )
    return t


def _similar(m: EngineModel) -> str:
    """Which prompts llama-server gives a slot by similarity, and the pre-flight request."""
    shared = (
        f"prompts under {round(m.cached_prefix_tokens / SLOT_SIMILARITY)} tokens (the "
        f"{m.cached_prefix_tokens} every prompt shares with a cached one pass the server's "
        f"{SLOT_SIMILARITY:.0%})"
    )
    probe = (
        f"; bench's pre-flight request ({m.probe_tokens} tokens) is simulated first"
        if m.probe_tokens
        else ""
    )
    return shared + probe


def _admit(m: EngineModel) -> str:
    """When a request still joins the step after the one under way."""
    window = f"arriving up to {m.admit_ms:,.3f} ms after the step's tokens are written"
    return f"{window} ({m.admit_source})" if m.admit_source else window


def _wake(m: EngineModel) -> str:
    """How much of a wave of requests an idle server's first step takes."""
    if m.wake_share is None:
        return "the first in its first step, the rest in the next"
    return (
        f"the first and {m.wake_share:.0%} of the rest in its first step (from the fitted "
        "runs' waves; the rest in the next)"
    )


def _prompt_cost(m: EngineModel) -> str:
    """The pooled cost, and by the decodes beside the prompt where the fit found it varies
    (0: a prompt alone; linear between the sizes shown, flat past them)."""
    pooled = f"{m.prefill_ms_per_token * 1000:,.3f} µs"
    if not m.prefill:
        return pooled

    def us(ms: float) -> str:
        return f"{ms * 1000:,.0f}" if ms >= 0.1 else f"{ms * 1000:.1f}"

    points = m.prefill
    if len(points) <= 4:
        by = ", ".join(f"{p.batch} → {us(p.ms_per_token)}" for p in points)
        return f"{pooled} pooled; by decodes beside it: {by} µs"
    costs = [p.ms_per_token for p in points]
    return (
        f"{pooled} pooled; {us(min(costs))}-{us(max(costs))} µs by the decodes beside it "
        f"({len(points)} sizes, {points[0].batch}-{points[-1].batch})"
    )


def _outside(m: EngineModel) -> str:
    told = m.quality.told_requests
    source = (
        f" (TTFT less the server's own prompt time, {told} requests)"
        if told
        else " (TTFT less the fitted prompt step)"
    )
    return f"{m.ttft_overhead_ms:,.3f} ms{source}"


#: Load past this at a count that meets the limits is the router's doing, not a shortfall:
#: a line says so (a little past 100 % is the search's own tolerance and the traffic's
#: draw; a quarter more is pooling).
POOLED_LOAD = 1.25


def _ms(v: float | None) -> str:
    # (a tenth of a ms past a second says nothing and costs the column its fit on a pipe)
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(round(v, 1)) >= 1000 else f"{v:,.1f}"


def print_plan(console: Console, d: PlanDoc) -> None:
    tr = d["traffic"]
    console.print(
        f"[bold]capacity plan[/] (predicted by simulating {escape(d['engine_model'])}: "
        f"{escape(d['engine'])}, {escape(d['model'] or '?')}, "
        f"{escape(d['hardware'] or 'unknown hardware')})"
    )
    console.print(
        f"traffic: {tr['rate_rps']:,.3g} req/s, {int(tr['requests']):,} requests, "
        f"{tr['mean_input_tokens']:,.0f} → {tr['mean_output_tokens']:,.0f} tokens on average; "
        f"limits: {escape(', '.join(d['limits']))}"
    )
    packed = d["replicas_per_gpu"]
    gpus = f"{d['gpus']} GPU" + ("s" if d["gpus"] != 1 else "")
    on = f" ({packed} per GPU: {gpus})" if packed > 1 else ""
    console.print(
        f"[bold green]replicas: {d['replicas']}[/]{on}   one replica alone sustains "
        f"up to {d['max_rate_per_replica_rps']:,.3g} req/s within the limits"
    )
    # One space between columns, headers folded by hand and figures that never wrap (a
    # column that may not wrap cuts a long header instead): the table fits 80 columns with
    # no figure cut to an ellipsis.
    t = Table(box=None, padding=(0, 0, 0, 1), pad_edge=False)
    t.add_column("replicas", justify="right", no_wrap=True)
    if packed > 1:
        t.add_column("GPUs", justify="right", no_wrap=True)
    t.add_column("meets\nlimits", no_wrap=True)
    for m in LATENCIES:
        for p in ("p50", "p99"):
            t.add_column(
                f"{m.removesuffix('_ms').upper()}\n{p}\n(ms)", justify="right", no_wrap=True
            )
    t.add_column("mean\nbatch", justify="right", no_wrap=True)
    t.add_column("busy", justify="right", no_wrap=True)
    t.add_column("load", justify="right", no_wrap=True)
    for trial in (d["at_replicas"], d["one_fewer"]):
        if trial is None:
            continue
        cells = [str(trial["replicas"])]
        if packed > 1:
            cells.append(str(trial["gpus"]))
        cells.append("yes" if trial["passed"] else "no")
        for m in LATENCIES:
            cells += [
                _ms(trial["latency_ms"][m].get("p50")),
                _ms(trial["latency_ms"][m].get("p99")),
            ]
        cells += [
            f"{trial['mean_batch']:,.1f}",
            f"{100 * trial['busy_share']:.0f} %",
            f"{100 * trial['load_share']:.0f} %",
        ]
        t.add_row(*cells)
    console.print(t)
    for trial in (d["at_replicas"], d["one_fewer"]):
        if trial is None:
            continue
        failed = [str(lim["limit"]) for lim in trial["limits"] if not lim["passed"]]
        if trial["unstable"]:
            console.print(
                f"{trial['replicas']} replicas: [red]unstable[/]: {escape(trial['unstable'])}"
            )
        elif failed:
            console.print(f"{trial['replicas']} replicas miss {escape(', '.join(failed))}")
    console.print(
        "busy: the share of the time each replica has a step running (one sequence is "
        "enough: time in use, not capacity); load: the traffic over the highest rate one "
        "replica alone sustains, times the "
        + ("GPUs (one replica alone on each)" if packed > 1 else "replicas")
    )
    at = d["at_replicas"]
    if at["passed"] and at["load_share"] > POOLED_LOAD:
        units = f"{at['gpus']} GPUs" if packed > 1 else f"{at['replicas']} replicas"
        console.print(
            f"pooled: {units} carry {at['load_share']:,.1f}× what one replica alone "
            "sustains within the limits, each: the router spreads the requests over them, "
            "and one alone meets the limits only while its requests seldom overlap"
        )
    # measured: two llama.cpp servers on one H100 decoded at half speed each, no capacity
    # gained (docs/results/prediction.md), so a replica is counted as hardware, not a process
    if packed > 1:
        console.print(
            f"replica: one more server, {packed} to a GPU, their steps taking turns on it"
        )
    else:
        where = f"GPUs ({d['hardware']})" if d["hardware"] else "hardware"
        console.print(
            f"replica: one more server with {where} of its own; servers sharing a GPU take "
            "turns on it (--replicas-per-gpu)"
        )
    c = d["cost"]
    if c is not None:
        console.print(
            f"cost: {c['per_hour']:,.2f}/hour ({d['gpus']} GPU × "
            f"{c['gpu_hourly_price']:g}); {c['per_request']:,.6f} per request; "
            f"{c['per_million_output_tokens']:,.3f} per 1M output tokens "
            f"({c['per_million_tokens']:,.3f} per 1M tokens in and out); at the highest rate "
            f"one replica sustains: {c['per_million_output_tokens_at_max_rate']:,.3f} per 1M "
            "output tokens"
        )
    if d["extrapolated"]:
        console.print(f"[yellow]extrapolated:[/] {escape(d['extrapolated'])}")
    bracket = d.get("bracket")
    if bracket is not None:
        lo, hi = bracket["replicas"]
        rlo, rhi = bracket["max_rate_per_replica_rps"]
        console.print(
            f"[yellow]uncertainty:[/] with every step scaled by bandwidth alone or by compute "
            f"alone, {lo}-{hi} replicas, one replica up to {rlo:,.3g}-{rhi:,.3g} req/s"
        )
    slower = d.get("at_runs_spread")
    if slower is not None:
        console.print(
            f"[yellow]if every step were {100 * slower['spread']:.1f} % slower[/] (the "
            f"fitted runs' spread, slowest over fastest; note below): {_slower(slower)}"
        )
    slow_core = d.get("at_slow_core")
    if slow_core is not None:
        console.print(
            f"[yellow]if the server's core stayed slow[/] (steps about "
            f"{100 * slow_core['spread']:.1f} % slower at the median batch size, each size by "
            f"its own measure of the fit's steps against its core; note below): "
            f"{_slower(slow_core)}"
        )
    for note in d["notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}")


def _slower(doc: SlowerDoc) -> str:
    if doc["replicas"] is None:
        return escape(doc["failed"] or "no plan")
    return f"{doc['replicas']} replicas, one up to {doc['max_rate_per_replica_rps']:,.3g} req/s"


def _assumed(source: str | None) -> str:
    """A value's source where it was not fitted, as a clause."""
    return f"; {source}" if source and source != "fitted" else ""
