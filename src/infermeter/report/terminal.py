"""The terminal summary of a run (rich)."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from infermeter.metrics.catalogue import DISTRIBUTION_NAMES
from infermeter.metrics.intervals import samples_to_bound
from infermeter.report.labels import (
    DIST_LABELS,
    TURN_COLUMNS,
    p99_bounds_note,
    sessions_line,
    sessions_load,
    simulated_replicas,
    trace_load,
    trace_reuse,
    turn_rows,
)
from infermeter.schema.results import (
    Analysis,
    LimitVerdict,
    Results,
    RunOutcome,
    RunStatus,
    ServerTelemetry,
    Telemetry,
)
from infermeter.schema.sweep import SweepIndex, SweepPoint
from infermeter.telemetry.host import SLOW_CORE, SLOW_CORE_SHARE
from infermeter.text import counted

#: Wide enough for any table: where a table is measured for the width it needs.
UNBOUNDED_WIDTH = 100_000
#: Off a terminal, text wraps at this width, or wider where a table's cells need it.
PLAIN_WIDTH = 100


class _FittingConsole(Console):
    """Off a terminal: each thing printed gets the width its unbreakable cells need (at least
    ``PLAIN_WIDTH``), so no number is cut (``1,746.…``) while long text still wraps."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for obj in objects:
            if isinstance(obj, str):
                self.width = PLAIN_WIDTH
            else:
                wide = self.options.update_width(UNBOUNDED_WIDTH)
                need = Measurement.get(self, wide, obj).minimum
                self.width = max(PLAIN_WIDTH, need)
            super().print(obj, **kwargs)


def make_console(*, stderr: bool = False) -> Console:
    """A console for reports. In a terminal, the terminal's width; off one (a pipe, a file, a
    CI log) the width each table needs instead of 80 columns. Emoji codes stay text
    (``normal:100:-5`` is a length spec)."""
    console = Console(stderr=stderr, emoji=False)
    if not console.is_terminal:
        console = _FittingConsole(stderr=stderr, emoji=False, width=PLAIN_WIDTH)
    return console


def readable(value: float) -> str:
    """A measured value as a person reads it: ``9,712``, ``260``, ``12.5``, ``5.56``, ``0.85``."""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def sla_verdict(v: LimitVerdict) -> str:
    """One SLA limit's verdict in words: ``FAIL: measured 9,712, 48.6× the limit``."""
    if v.get("passed") is None or v.get("measured") is None:
        return "not measured"
    measured = readable(float(v["measured"] or 0.0))
    margin = v.get("margin")
    if margin is None:
        return f"{'pass' if v['passed'] else 'FAIL'}: measured {measured}"
    if v["passed"]:
        return f"pass: measured {measured}, {100 * margin:.0f} % headroom"
    is_max = re.search(r"\s<\s*\S+$", str(v.get("limit", ""))) is not None
    # margin = (limit - measured) / limit for a maximum, (measured - limit) / limit for a minimum
    if is_max and margin <= -1:
        return f"FAIL: measured {measured}, {1 - margin:.1f}× the limit"
    side = "over" if is_max else "under"
    return f"FAIL: measured {measured}, {100 * -margin:.0f} % {side} the limit"


def _n(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def render_summary(results: Results) -> Group:
    s = results["summary"]
    run: RunStatus | None = results.get("run")
    server = results.get("server")
    model, url = (server.get("model", "?"), server.get("url", "?")) if server else ("?", "?")
    title = escape(f"infermeter · {model} @ {url}")
    if results.get("predicted"):
        title = escape(f"infermeter · {model} · PREDICTED by simulation, not measured")
        replicas = simulated_replicas(results.get("prediction"))
        if replicas:
            title += escape(f" · {replicas}")
    cfg = results.get("config") or {}
    replay = trace_load(results.get("workload"), cfg.get("max_concurrency")) or sessions_load(
        results.get("workload"), cfg
    )
    if replay is not None:
        load = replay
    elif s.get("target_rate_rps") is not None:
        achieved = _n(s.get("achieved_send_rate_rps"))
        load = f"rate {s['target_rate_rps']:g} req/s (achieved send rate {achieved})"
    else:
        load = f"concurrency {s.get('target_concurrency')}"
    head = Table(title=title, show_header=False, box=None, padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_column(style="bold")
    head.add_column(justify="right")
    window = "simulated window" if results.get("predicted") else "measured window"
    head.add_row("load", load, window, f"{_n(s['duration_s'])} s")
    head.add_row(
        "requests",
        f"{s['requests_completed']}/{s['requests_sent']} ok, {s['requests_failed']} failed",
        "achieved concurrency",
        _n(s["achieved_concurrency"]),
    )
    head.add_row(
        "request throughput",
        f"{_n(s['request_throughput_rps'], 3)} req/s ({_n(s['request_throughput_rpm'], 1)}/min)",
        "output tokens/s",
        _n(s["output_token_throughput_tok_s"], 1),
    )
    head.add_row(
        "total tokens/s",
        _n(s["total_token_throughput_tok_s"], 1),
        "input tokens/s",
        _n(s["input_token_throughput_tok_s"], 1),
    )
    if s.get("goodput_rps") is not None:
        head.add_row(
            "goodput",
            f"{_n(s['goodput_rps'], 3)} req/s",
            "SLO attainment",
            f"{100 * (s['slo_attainment'] or 0.0):.1f} %",
        )

    lat = Table(title="latency (completed requests)", title_justify="left")
    lat.add_column("metric")
    for col in ("count", "mean", "p50", "p90", "p95", "p99", "max"):
        lat.add_column(col, justify="right")
    for name in DISTRIBUTION_NAMES:
        d = results["distributions"].get(name)
        if not d or not d["count"]:
            continue
        digits = 0 if name.endswith("_tokens") else 2
        lat.add_row(
            DIST_LABELS[name],
            str(d["count"]),
            *(_n(d[c], digits) for c in ("mean", "p50", "p90", "p95", "p99", "max")),
        )

    parts: list[Any] = [head, lat]
    errors = results.get("errors")
    if errors and errors["by_kind"]:
        err = Table(title="failed requests", title_justify="left")
        err.add_column("kind")
        err.add_column("count", justify="right")
        err.add_column("example")
        for kind, count in sorted(errors["by_kind"].items(), key=lambda kv: -kv[1]):
            example = errors["examples"].get(kind, "")[:90]
            err.add_row(Text(kind), str(count), Text(example))
        parts.append(err)
    slo = results.get("slo")
    if slo:
        t = Table(title="SLO", title_justify="left")
        for col in ("term", "limit", "met by", "measured", "verdict"):
            t.add_column(col, justify="left" if col == "term" else "right")
        for term in slo["terms"]:
            verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "-"}[term["passed"]]
            t.add_row(
                Text(term["name"]),
                f"≤ {term['threshold']:g}",
                f"{100 * term['attainment']:.1f} %",
                _n(term["measured"]),
                verdict,
            )
        parts.append(t)
    sessions = results.get("sessions")
    if sessions:
        turns = Table(
            title=f"by turn: {sessions_line(sessions)}", title_justify="left", show_lines=False
        )
        for col in TURN_COLUMNS:
            turns.add_column(col, justify="left" if col == "turn" else "right")
        for row in turn_rows(sessions):
            turns.add_row(*row)
        parts.append(turns)
    resources = _resources(results.get("telemetry") or Telemetry())
    if resources is not None:
        parts.append(resources)
    analysis = results.get("analysis")
    table = _analysis(analysis) if analysis else None
    if table is not None:
        parts.append(table)
    parts.extend(_notes(results, run or RunOutcome()))
    return Group(*parts)


def _analysis(a: Analysis) -> Table | None:
    """Speed of light, SLA verdicts, TTFT perception, findings and cost."""
    t = Table(title="analysis", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    eff = a.get("efficiency")
    if eff:
        t.add_row(
            "hardware / model",
            f"{eff['gpus']} × {eff['gpu']} (tp {eff['tp']}), {eff['model']}; "
            f"at batch {eff['batch_per_replica']} and {eff['context_tokens']} tokens of context",
        )
        mbu, mfu = eff.get("mbu"), eff.get("mfu_decode")
        if mbu is not None and mfu is not None:
            t.add_row("MBU / MFU (decode)", f"{100 * mbu:.1f} % / {100 * mfu:.2f} %")
        if eff.get("server_mfu") is not None or eff.get("server_mbu") is not None:
            mbu_s, mfu_s = eff.get("server_mbu"), eff.get("server_mfu")
            t.add_row(
                "MBU / MFU by the server",
                f"{'-' if mbu_s is None else f'{100 * mbu_s:.1f} %'} / "
                f"{'-' if mfu_s is None else f'{100 * mfu_s:.2f} %'} (its own FLOP and byte "
                "counts, all phases)",
            )
        tpot_x, tpot_bound = eff.get("tpot_x_bound"), eff.get("tpot_lower_bound_ms")
        if tpot_x is not None and tpot_bound is not None:
            t.add_row("TPOT vs speed of light", f"{tpot_x:.1f} × the {tpot_bound:.3f} ms bound")
        ttft_x, ttft_bound = eff.get("ttft_x_bound"), eff.get("ttft_lower_bound_ms")
        if ttft_x is not None and ttft_bound is not None:
            t.add_row(
                "TTFT p50 vs speed of light",
                f"{ttft_x:.1f} × the {ttft_bound:.2f} ms bound (prefill MFU {100 * eff.get('mfu_prefill', 0.0):.2f} %)",
            )
        share, bound = (
            eff.get("throughput_share_of_bound"),
            eff.get("output_throughput_upper_bound_tok_s"),
        )
        if share is not None and bound is not None:
            t.add_row("output throughput", f"{100 * share:.1f} % of the {bound:,.0f} tok/s bound")
    sla = a.get("sla")
    if sla:
        verdict_style = {True: "green", False: "red", None: "dim"}
        for v in sla["limits"]:
            t.add_row(
                Text(f"SLA {sla['profile']}: {v['limit']}"),
                Text(sla_verdict(v), style=verdict_style[v["passed"]]),
            )
    bands = a.get("ttft_bands")
    if bands:
        shares = (
            ("instant", bands.get("instant", 0.0)),
            ("fast", bands.get("fast", 0.0)),
            ("slow", bands.get("slow", 0.0)),
            ("sluggish", bands.get("sluggish", 0.0)),
        )
        t.add_row("TTFT as users feel it", ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares))
    for f in a.get("findings") or []:
        style = {"high": "red", "medium": "yellow"}.get(f["severity"], "dim")
        t.add_row(Text(f"finding: {f['rule']}"), Text(f["message"], style=style))
    c = a.get("cost")
    if c:

        def money(x: float | None) -> str:
            if x is None:
                return "-"
            return f"{x:,.4f}" if x >= 0.01 else f"{x:.2e}"

        t.add_row(
            "cost",
            f"{money(c['per_million_output_tokens'])} per 1M output tokens, "
            f"{money(c['per_million_total_tokens'])} per 1M total, {money(c['per_request'])} per request "
            f"({c['gpus']} GPU × {c['gpu_hourly_price']:g}/h)",
        )
    for note in a.get("notes") or []:
        t.add_row("note", Text(note, style="dim"))
    return t if t.row_count else None


def _resources(tel: Telemetry) -> Table | None:
    """Host, GPU and server figures over the measured window, where they were sampled."""
    t = Table(title="resources (measured window)", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    host = tel.get("host")
    c = host.get("cpu_percent") if host else None
    if host and c:
        cl = host.get("client_cpu_percent")
        t.add_row("host CPU", f"mean {c['mean']:.0f} %, p95 {c['p95']:.0f} % (all cores)")
        if cl:
            t.add_row(
                "infermeter CPU",
                f"mean {cl['mean']:.0f} %, max {cl['max']:.0f} % of one core (the client's "
                "processes only)",
            )
        local = host.get("local_server_cpu_percent")
        if local:
            t.add_row(
                "local server CPU",
                f"mean {local['mean']:.0f} %, max {local['max']:.0f} % of one core",
            )
        other = host.get("busiest_other")
        if other:
            t.add_row(
                "busiest other process",
                Text(
                    f"{other['name']} (pid {other['pid']}), mean {other['cpu_percent_mean']:.0f} "
                    "% of one core"
                ),
            )
        probes = (
            ("host core speed", host.get("core_speed"), ""),
            ("server's core", host.get("server_core_speed"), " on the CPU of its busiest thread"),
        )
        for name, speed, where in probes:
            if speed:
                t.add_row(
                    name,
                    f"probe p50 {speed['p50_us']:,.0f} µs, p95 {speed['p95_us']:,.0f} µs, "
                    f"fast level (p10) {speed['fast_us']:,.0f} µs; slow in "
                    f"{speed['slow_share'] * 100:.0f} % of samples (the same work each "
                    f"sample{where}: longer = a slower core)",
                )
        steal = host.get("steal_percent")
        if steal and steal["max"] >= 1:
            t.add_row(
                "CPU steal",
                f"mean {steal['mean']:.1f} %, max {steal['max']:.0f} % (time the hypervisor "
                "gave to someone else)",
            )
        mem = host.get("memory_used_bytes")
        if mem:
            t.add_row(
                "host memory",
                f"max {mem['max'] / 1e9:,.1f} of {host['memory_total_bytes'] / 1e9:,.1f} GB",
            )
    for g in tel.get("gpu") or []:
        u, m, power = g["util_percent"], g["memory_used_bytes"], g["power_w"]
        extra = f", power mean {power['mean']:.0f} W" if power else ""
        t.add_row(
            f"GPU {g['index']}",
            f"util mean {u['mean'] if u else 0:.0f} % (p95 {u['p95'] if u else 0:.0f} %), "
            f"memory max {(m['max'] if m else 0) / 1e9:,.1f} GB "
            f"({100 * (g.get('memory_util') or 0):.0f} %){extra}",
        )
    srv = tel.get("server")
    if srv:
        bits = []
        for stats, label in (
            (srv.get("requests_running"), "running"),
            (srv.get("requests_waiting"), "waiting"),
        ):
            if stats:
                bits.append(f"{label} mean {stats['mean']:.1f} / max {stats['max']:.0f}")
        kv = srv.get("kv_cache_usage")
        if kv:
            bits.append(f"KV cache max {100 * kv['max']:.0f} %")
        hit_share = srv.get("prefix_cache_hit_share")
        if hit_share is not None:
            bits.append(f"prefix-cache hits {100 * hit_share:.0f} %")
        for value, label in (
            (srv.get("ttft_mean_ms"), "server TTFT"),
            (srv.get("tpot_mean_ms"), "server TPOT"),
        ):
            if value is not None:
                bits.append(f"{label} mean {value:.1f} ms")
        t.add_row(Text(f"server ({srv.get('kind')})"), "; ".join(bits) or "sampled")
        own = server_own_times(srv)
        if own:
            t.add_row("server per request", own)
    for note in tel.get("notes") or []:
        t.add_row("note", Text(note, style="dim"))
    return t if t.row_count else None


def server_own_times(srv: ServerTelemetry) -> str:
    """The server's own per-request times and scheduling events over the window (vLLM's
    histograms and counters), in one line; "" where it keeps none."""
    times = [
        f"{label} {value:,.1f} ms"
        for value, label in (
            (srv.get("queue_mean_ms"), "queue"),
            (srv.get("prefill_mean_ms"), "prefill"),
            (srv.get("decode_mean_ms"), "decode"),
        )
        if value is not None
    ]
    bits = [f"mean {', '.join(times)}"] if times else []
    preempted = srv.get("preemptions")
    if preempted is not None:
        bits.append(counted(int(preempted), "preemption"))
    capacity = srv.get("requests_waiting_capacity")
    if capacity and capacity["max"]:
        bits.append(f"up to {capacity['max']:,.0f} waiting for KV-cache room")
    per_step = srv.get("tokens_per_step_mean")
    if per_step is not None:
        bits.append(f"{per_step:,.1f} tokens per engine step")
    return "; ".join(bits)


def _notes(results: Results, run: RunOutcome) -> list[Text]:
    notes: list[Text] = []
    src = (results.get("token_sources") or {}).get("n_out") or {}
    if src:
        notes.append(
            Text(
                "output token counts from: " + ", ".join(f"{k} ×{v}" for k, v in src.items()),
                style="dim",
            )
        )
    mm = results.get("input_tokens_mismatch") or {}
    if mm.get("mismatched"):
        differ = "differs" if mm["mismatched"] == 1 else "differ"
        notes.append(
            Text(
                f"input length: {mm['mismatched']:,} of {counted(int(mm['compared']), 'prompt')} "
                f"{differ} from the target by up to "
                f"{counted(int(mm.get('max_abs_difference_tokens') or 0), 'token')} "
                "(server count vs requested)",
                style="yellow",
            )
        )
    reported = results.get("server_reported")
    agreement = reported["tpot_agreement"] if reported else None
    if agreement and agreement["requests"]:
        notes.append(
            Text(
                f"TPOT vs the server's own, per request: median ratio "
                f"{agreement['median_ratio'] or 0.0:.4f}, "
                f"{100 * (agreement['share_within_1pct'] or 0.0):.0f} % "
                f"of {counted(agreement['requests'], 'request')} within 1 %",
                style="dim",
            )
        )
    cache = results.get("prompt_cache")
    reuse = trace_reuse(results.get("workload"))
    asked = f" (the trace reuses {100 * reuse:.1f} %)" if reuse is not None else ""
    if cache and cache["cached_share"] is not None:
        notes.append(
            Text(
                f"prompt tokens served from the server's prefix cache: "
                f"{100 * cache['cached_share']:.1f} %{asked}",
                style="yellow" if cache.get("flattered") else "dim",
            )
        )
    elif reuse:
        notes.append(
            Text(
                f"the trace reuses {100 * reuse:.1f} % of its prompt tokens from earlier "
                "requests; the server did not say how many it served from a cache",
                style="dim",
            )
        )
    shared = results.get("shared_first_stamp")
    if shared and shared["of_requests"]:
        notes.append(
            Text(
                f"first token read with later ones: {shared['requests']:,} of "
                f"{counted(shared['of_requests'], 'request')}",
                style="yellow" if shared.get("requests") else "dim",
            )
        )
    if not_streamed := results.get("not_streamed"):
        notes.append(
            Text(
                f"answered whole, not streamed: {not_streamed:,} of "
                f"{counted(int(results['summary']['requests_completed']), 'request')} "
                "(in E2E only; left out of TTFT, TPOT and ITL)",
                style="yellow",
            )
        )
    client = results.get("client")
    workers = client["per_worker"] if client else []
    if workers:
        busiest = max(workers, key=lambda w: w["cpu_util"])
        sources = sorted({w["arrival_stamps"] for w in workers if w.get("arrival_stamps")})
        stamps = f"; arrivals stamped by the {' and '.join(sources)}" if sources else ""
        nices = sorted({n for w in workers if (n := w.get("nice")) is not None})
        stamps += f"; ran at nice {', '.join(map(str, nices))}" if nices else ""
        notes.append(
            Text(
                f"client: {counted(len(workers), 'worker process', 'worker processes')}; "
                "busiest used "
                f"{100 * busiest['cpu_util']:.0f} % of a core, event-loop lag p99 "
                f"{max(w.get('loop_lag_p99_ms', 0.0) for w in workers):.2f} ms{stamps}",
                style="dim",
            )
        )
    for warning in results.get("warnings") or []:
        notes.append(Text(f"warning: {warning}", style="yellow"))
    if bounds := p99_bounds_note(results.get("distributions") or {}):
        notes.append(Text(bounds, style="yellow"))
    if run.get("interrupted"):
        notes.append(
            Text("run interrupted: figures cover the requests that finished", style="yellow")
        )
    if run.get("aborted"):
        notes.append(Text(f"run aborted: {run['aborted']}", style="red"))
    seed = (results.get("config") or {}).get("seed")
    if seed is not None:
        drawn = " (drawn for this run: --seed repeats its prompts)" if run.get("seed_drawn") else ""
        notes.append(Text(f"seed {seed}{drawn}", style="dim"))
    if run.get("out_dir"):
        notes.append(Text(f"run directory: {run['out_dir']}", style="dim"))
    return notes


def print_summary(results: Results, console: Console | None = None) -> None:
    (console or make_console()).print(render_summary(results))


def _sweep_rows(index: SweepIndex) -> tuple[list[str], list[list[str]]]:
    """The columns and rows shared by the terminal and Markdown sweep tables."""
    var = index.get("variable", "concurrency")
    many = len({(p["input_tokens"], p["output_tokens"]) for p in index["points"]}) > 1
    cols = ["#", "role", var]
    if many:
        cols += ["in", "out"]
    cols += ["req/s", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "E2E p99"]
    cols += ["errors"]
    if index.get("sla"):
        cols.append("SLA")
    rows = []
    for p in index["points"]:
        s, lat = p["summary"], p["latency"]
        value = p["concurrency"] if p["concurrency"] is not None else p["rate"]
        unit = "" if p["concurrency"] is not None else "/s"
        if p["role"] == "probe" or (p["concurrency"] is not None and var == "rate"):
            value, unit = None, f"c={p['concurrency']}"
        shown = (
            unit
            if value is None
            else f"{value:g}{unit}"
            if isinstance(value, float)
            else f"{value}{unit}"
        )
        row = [str(p["index"]), p["role"], shown]
        if many:
            row += [p["input_tokens"], p["output_tokens"]]
        row += [
            _n(s["request_throughput_rps"], 2),
            _n(s["output_token_throughput_tok_s"], 0),
            _n(lat["ttft_ms"]["p50"], 1),
            _n(lat["ttft_ms"]["p99"], 1),
            _n(lat["tpot_ms"]["p50"], 2),
            _n(lat["tpot_ms"]["p99"], 2),
            _n(lat["e2e_ms"]["p99"], 0),
            f"{s['error_rate']:.0%}",
        ]
        if index.get("sla"):
            ok = p.get("meets_sla")
            row.append("-" if ok is None else "pass" if ok else "fail")
        rows.append(row)
    return cols, rows


def sweep_notes(index: SweepIndex) -> list[str]:
    """The lines under a sweep table: why it stopped, the SLA and the capacity found."""
    lines = []
    per_point = index.get("server_per_point")
    if per_point == "fresh":
        lines.append("each point ran on a server started afresh for it")
    elif per_point == "shared":
        lines.append(
            "all points ran on one server: its state (prompt cache, slot history) carried "
            "from point to point"
        )
    sat = index.get("saturation")
    if sat:
        lines.append(
            f"saturation probe: concurrency {sat['concurrency']} gave "
            f"{sat['request_throughput_rps']:.3g} req/s, "
            f"{sat['output_token_throughput_tok_s']:,.0f} output tok/s"
        )
    stopped = index.get("stopped")
    if stopped and stopped["reason"] not in (None, "done"):
        lines.append(f"stopped early ({stopped['reason']}): {stopped['detail']}")
    sla = index.get("sla")
    if sla:
        lines.append(f"SLA ({sla['source']} {sla['text']}): {sla['criterion']}")
    cap = index.get("capacity")
    if cap:
        lines.append(f"capacity: {cap['note']}")
    lines += _core_notes(index["points"])
    bound = samples_to_bound(0.99)
    done = [
        int((p.get("summary") or {}).get("requests_completed") or 0)
        for p in index["points"]
        if p.get("summary")
    ]
    few = [n for n in done if 0 < n < bound]
    if few:
        of = "every point" if len(few) == len(done) else f"{len(few)} of {len(done)} points"
        lines.append(
            f"p99 of {of} rests on fewer than {bound} requests ({min(few)}-{max(few)}): "
            "a floor of the server's p99, not a bound on it"
        )
    return lines


def _core_notes(points: list[SweepPoint]) -> list[str]:
    """Where the host's cores changed speed during the sweep (telemetry's core probe): a
    host-bound server's points then differ by the host's speed as well as by their load."""
    told = [p for p in points if p.get("core_speed")]
    slow = [p for p in told if p["core_speed"]["slow_share"] >= SLOW_CORE_SHARE]
    medians = [p["core_speed"]["p50_us"] for p in told]
    apart = max(medians) / min(medians) if medians else 1.0
    if not slow and apart < SLOW_CORE:
        return []
    said = []
    if slow:
        said.append(f"the core probe read slow in part of {len(slow)} of {len(told)} points")
    if apart >= SLOW_CORE:
        said.append(f"its median ran {min(medians):,.0f}-{max(medians):,.0f} µs by point")
    return [
        "the host's cores changed speed during the sweep: "
        + "; ".join(said)
        + " (each point's report says which): a server whose steps are host-bound differs "
        "from point to point by its host's speed as well as by its load"
    ]


def print_sweep(index: SweepIndex, console: Console) -> None:
    cols, rows = _sweep_rows(index)
    kind = "capacity search" if index.get("kind") == "search" else "sweep"
    table = Table(title=f"infermeter {kind} over {index.get('variable')}", title_justify="left")
    for c in cols:
        table.add_column(c, justify="left" if c in ("role",) else "right")
    cap = index.get("capacity")
    for p, row in zip(index["points"], rows, strict=True):
        chosen = cap is not None and cap["pass_index"] == p["index"]
        table.add_row(*row, style="bold green" if chosen else None)
    console.print(table)
    for line in sweep_notes(index):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
