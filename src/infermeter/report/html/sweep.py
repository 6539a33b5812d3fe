"""The report of a sweep: latency-throughput curves, the SLA region, the points table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from infermeter.errors import UsageError
from infermeter.records.rundir import REPORT_FILE, RUN_FILE, read_json_object, read_sweep_index
from infermeter.report.charts import (
    BLUE,
    GREEN,
    GREY,
    PERCENTILE_COLORS,
    RED,
    TEAL,
    Axis,
    Chart,
    HLine,
    Layer,
    Line,
    Region,
    Scatter,
    VLine,
    esc,
    format_value,
    render_chart,
)
from infermeter.report.html.page import (
    HALF,
    METRIC_SHORT,
    _card,
    _date,
    _meta,
    _ms,
    _note,
    _num,
    _page,
    _panel,
    _pct,
    _pill,
    _section,
    _table,
)
from infermeter.report.labels import DEFINITIONS
from infermeter.schema.results import ServerInfo
from infermeter.schema.sweep import LatencyLimitDoc, SweepIndex, SweepPoint

# --------------------------------------------------------------------------------------
# sweeps


def point_links(sweep_dir: Path, sweep: SweepIndex) -> dict[int, str]:
    """index -> relative link to the point's own report.html, where one exists."""
    links: dict[int, str] = {}
    for p in sweep.get("points") or []:
        d = p.get("dir")
        if d and (Path(sweep_dir) / str(d) / REPORT_FILE).exists():
            links[int(p.get("index", -1))] = f"{d}/{REPORT_FILE}"
    return links


def render_sweep_html(sweep_dir: Path) -> str:
    """The report of a sweep (or capacity search) directory as one HTML page."""
    sweep = read_sweep_index(Path(sweep_dir))
    return sweep_page(
        sweep,
        point_links(Path(sweep_dir), sweep),
        name=Path(sweep_dir).name,
        server=_first_server(Path(sweep_dir), sweep),
    )


def _first_server(sweep_dir: Path, sweep: SweepIndex) -> ServerInfo | None:
    """What the first measured point talked to (its run.json), to name it on the page."""
    for p in sweep.get("points") or []:
        if not isinstance(p, dict) or not p.get("dir"):
            continue
        try:
            server = read_json_object(sweep_dir / str(p["dir"]) / RUN_FILE).get("server")
        except (OSError, UsageError):
            continue
        if isinstance(server, dict):
            return cast(ServerInfo, server)
    return None


def server_words(server: ServerInfo | None) -> str:
    """``tiny on vllm 0.32.0``: the model and the kind of server (and its version)."""
    if not server:
        return ""
    kind = str(server.get("kind") or "server")
    version = (server.get("details") or {}).get("version")
    return f"{server.get('model') or 'unknown model'} on {kind}" + (
        f" {version}" if isinstance(version, str) else ""
    )


def _pv(p: SweepPoint, variable: str) -> float | None:
    v = p.get(variable)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _lat(p: SweepPoint, metric: str, pct: str) -> float | None:
    v = ((p.get("latency") or {}).get(metric) or {}).get(pct)
    return float(v) if isinstance(v, (int, float)) else None


def _sum(p: SweepPoint, key: str) -> float | None:
    v = (p.get("summary") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _point_label(p: SweepPoint, variable: str) -> str:
    v = _pv(p, variable)
    if v is None:
        return Path(str(p.get("dir") or f"point {p.get('index')}")).name
    return f"concurrency {v:g}" if variable == "concurrency" else f"{v:g} req/s"


def _unit_of(variable: str) -> str:
    return (
        "concurrency (requests in flight)" if variable == "concurrency" else "offered rate (req/s)"
    )


def _sla_limits(sweep: SweepIndex) -> list[LatencyLimitDoc]:
    sla = sweep.get("sla")
    return [
        lim
        for lim in (sla.get("limits") if sla else None) or []
        if isinstance(lim, dict) and lim.get("max") is not None
    ]


def _sweep_metrics(sweep: SweepIndex) -> list[str]:
    metrics = ["ttft_ms", "tpot_ms"]
    for lim in _sla_limits(sweep):
        m = str(lim.get("metric"))
        if m not in metrics and m in METRIC_SHORT:
            metrics.append(m)
    return metrics


def _pcts_for(metric: str, sweep: SweepIndex) -> list[str]:
    pcts = ["p50", "p99"]
    for lim in _sla_limits(sweep):
        pct = lim.get("percentile")
        if lim.get("metric") == metric and pct is not None:
            key = f"p{float(pct):g}"
            if key not in pcts and key in PERCENTILE_COLORS:
                pcts.insert(1, key)
    return pcts


def _sla_layers(
    sweep: SweepIndex, metric: str, data_max: float | None = None
) -> tuple[list[Layer], str]:
    """The SLA limit on ``metric`` as a line over a shaded "within" region; a limit far
    above every point (more than 3 × the highest) is named in a caption instead, so that it
    does not flatten the curves. Returns (layers, caption)."""
    out: list[Layer] = []
    notes: list[str] = []
    for lim in _sla_limits(sweep):
        if lim.get("metric") != metric:
            continue
        pct = lim.get("percentile")
        name = METRIC_SHORT.get(metric, metric)
        limit = float(lim["max"])
        prefix = f"p{float(pct):g} " if pct is not None else ""
        what = f"{prefix}{name} ≤ {format_value(limit)} ms"
        if data_max is not None and data_max > 0 and limit > 3 * data_max:
            notes.append(f"The SLA limit ({what}) is far above every point, off this axis.")
            continue
        out.append(Region(y0=0.0, y1=limit, color=GREEN, label="within the SLA", opacity=0.07))
        out.append(HLine(limit, f"SLA: {what}", GREEN, dash="6 4"))
    return out, " ".join(notes)


def _latency_values(points: Sequence[SweepPoint], metric: str, pcts: Sequence[str]) -> list[float]:
    return [v for p in points for pct in pcts if (v := _lat(p, metric, pct)) is not None]


def _latency_max(points: Sequence[SweepPoint], metric: str, pcts: Sequence[str]) -> float | None:
    vals = _latency_values(points, metric, pcts)
    return max(vals) if vals else None


def _latency_axis(name: str, values: Sequence[float]) -> Axis:
    """Linear from zero, or log when the values span more than 50× (a saturated point's
    seconds would flatten the others' milliseconds)."""
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > 50:
        return Axis(f"{name} (ms, log scale)", log=True)
    return Axis(f"{name} (ms)", include_zero=True, headroom=0.1)


def _var(v: float | None) -> str:
    return "–" if v is None else f"{v:g}"


def _capacity_point(sweep: SweepIndex) -> tuple[int | None, int | None]:
    cap = sweep.get("capacity")
    if not cap:
        return None, None
    pi, fi = cap.get("pass_index"), cap.get("fail_index")
    return (int(pi) if isinstance(pi, int) else None, int(fi) if isinstance(fi, int) else None)


def _curve_layers(
    points: Sequence[SweepPoint],
    xkey: str,
    metric: str,
    pcts: Sequence[str],
    variable: str,
    color_by_pct: bool = True,
    color: str = BLUE,
    name_prefix: str = "",
) -> list[Layer]:
    """One line per percentile through the points (ordered by the swept variable)."""
    ordered = sorted(points, key=lambda p: (_pv(p, variable) is None, _pv(p, variable) or 0.0))
    layers: list[Layer] = []
    for pct in pcts:
        xy: list[tuple[float, float]] = []
        tips: list[str] = []
        for p in ordered:
            xv = _pv(p, variable) if xkey == variable else _sum(p, xkey)
            yv = _lat(p, metric, pct)
            if xv is None or yv is None:
                continue
            xy.append((xv, yv))
            meets = p.get("meets_sla")
            verdict = "" if meets is None else ("meets the SLA" if meets else "misses the SLA")
            tips.append(
                f"{_point_label(p, variable)}: {pct} {METRIC_SHORT.get(metric, metric)} "
                f"{format_value(yv)} ms at "
                f"{format_value(_sum(p, 'output_token_throughput_tok_s'))} tok/s, "
                f"{format_value(_sum(p, 'request_throughput_rps'))} req/s"
                + (f"; {verdict}" if verdict else "")
            )
        if not xy:
            continue
        c = PERCENTILE_COLORS.get(pct, color) if color_by_pct else color
        dash = "5 3" if pct == "p50" else ""
        layers.append(
            Line(
                xy,
                c,
                f"{name_prefix}{pct}",
                width=2.0,
                dash=dash,
                dots=True,
                marker="circle",
                tips=tips,
            )
        )
    return layers


def _highlight(
    sweep: SweepIndex,
    points: Sequence[SweepPoint],
    xkey: str,
    metric: str,
    pcts: Sequence[str],
    variable: str,
) -> list[Layer]:
    pi, fi = _capacity_point(sweep)
    by_index = {int(p.get("index", -1)): p for p in points}
    out: list[Layer] = []
    for idx, color, name in ((pi, GREEN, "capacity point"), (fi, RED, "first point past it")):
        p = by_index.get(idx) if idx is not None else None
        if p is None:
            continue
        xv = _pv(p, variable) if xkey == variable else _sum(p, xkey)
        pts = [
            (xv, y) for pct in pcts if xv is not None and (y := _lat(p, metric, pct)) is not None
        ]
        if pts:
            out.append(Scatter(pts, color, name, marker="ring", size=7.5, tips=None, opacity=1.0))
    return out


def sweep_charts(sweep: SweepIndex) -> str:
    points = [p for p in sweep.get("points") or [] if isinstance(p, dict)]
    variable = str(sweep.get("variable") or "concurrency")
    values = [v for p in points if (v := _pv(p, variable)) is not None and v > 0]
    log_x = variable == "concurrency" and bool(values) and max(values) / min(values) >= 8
    var_ticks = sorted(set(values)) if log_x and len(set(values)) <= 12 else None
    cap = sweep.get("capacity")
    cap_value = cap.get("value") if cap else None
    cap_on_x = (
        cap is not None and cap_value is not None and cap.get("variable", variable) == variable
    )
    panels: list[str] = []
    for xkey in ("output_token_throughput_tok_s", variable):
        for metric in _sweep_metrics(sweep):
            pcts = _pcts_for(metric, sweep)
            name = METRIC_SHORT.get(metric, metric)
            sla_layers, sla_note = _sla_layers(sweep, metric, _latency_max(points, metric, pcts))
            layers = sla_layers + _curve_layers(points, xkey, metric, pcts, variable)
            layers += _highlight(sweep, points, xkey, metric, pcts, variable)
            if xkey == variable:
                xa = Axis(
                    _unit_of(variable) + (", log scale" if log_x else ""),
                    log=log_x,
                    ticks=var_ticks,
                    include_zero=not log_x,
                )
                if cap_on_x and cap_value is not None:
                    layers.append(
                        VLine(
                            float(cap_value),
                            f"capacity {_var(float(cap_value))}",
                            GREEN,
                            dash="3 3",
                        )
                    )
                title = f"{name} vs {variable}"
                caption = ""
            else:
                xa = Axis("output throughput (tok/s)", include_zero=True)
                title = f"{name} vs output throughput"
                caption = f"One dot per point; the lines join them in order of {esc(variable)}. "
            chart = render_chart(
                Chart(
                    f"sw-{metric}-{'load' if xkey == variable else 'tput'}",
                    xa,
                    _latency_axis(name, _latency_values(points, metric, pcts)),
                    layers,
                    width=HALF,
                    height=320,
                    empty_note="no points with latency figures",
                )
            )
            doc = metric if metric in DEFINITIONS else "per_request"
            panels.append(_panel(title, chart, caption + esc(sla_note), doc))
    # throughput against load
    ordered = sorted(points, key=lambda p: _pv(p, variable) or 0.0)
    tput = [
        (v, y)
        for p in ordered
        if (v := _pv(p, variable)) is not None
        and (y := _sum(p, "output_token_throughput_tok_s")) is not None
    ]
    rps = [
        (v, y)
        for p in ordered
        if (v := _pv(p, variable)) is not None
        and (y := _sum(p, "request_throughput_rps")) is not None
    ]
    xa = Axis(
        _unit_of(variable) + (", log scale" if log_x else ""),
        log=log_x,
        ticks=var_ticks,
        include_zero=not log_x,
    )
    t_layers: list[Layer] = [
        Line(
            tput,
            BLUE,
            "output tok/s",
            width=2.0,
            dots=True,
            tips=[f"{format_value(y)} tok/s at {variable} {v:g}" for v, y in tput],
        )
    ]
    r_layers: list[Layer] = [
        Line(
            rps,
            TEAL,
            "completed req/s",
            width=2.0,
            dots=True,
            tips=[f"{format_value(y)} req/s at {variable} {v:g}" for v, y in rps],
        )
    ]
    if variable == "rate" and rps:
        top = max(max(v for v, _ in rps), max(y for _, y in rps))
        r_layers.insert(
            0, Line([(0.0, 0.0), (top, top)], GREY, "achieved = offered", width=1.2, dash="4 4")
        )
    if cap_on_x and cap_value is not None:
        for ls in (t_layers, r_layers):
            ls.append(
                VLine(float(cap_value), f"capacity {_var(float(cap_value))}", GREEN, dash="3 3")
            )
    panels.append(
        _panel(
            "Output throughput vs " + variable,
            render_chart(
                Chart(
                    "sw-tput",
                    xa,
                    Axis("output throughput (tok/s)", include_zero=True),
                    t_layers,
                    width=HALF,
                    height=300,
                )
            ),
            "",
            "output_token_throughput_tok_s",
        )
    )
    panels.append(
        _panel(
            "Request throughput vs " + variable,
            render_chart(
                Chart(
                    "sw-rps",
                    xa,
                    Axis("request throughput (req/s)", include_zero=True),
                    r_layers,
                    width=HALF,
                    height=300,
                )
            ),
            "",
            "request_throughput_rps",
        )
    )
    return f'<div class="grid2">{"".join(panels)}</div>'


def sweep_table(sweep: SweepIndex, links: dict[int, str]) -> str:
    points = [p for p in sweep.get("points") or [] if isinstance(p, dict)]
    variable = str(sweep.get("variable") or "concurrency")
    pi, _ = _capacity_point(sweep)
    head = [
        "point",
        esc(variable),
        "status",
        "req/s",
        "output tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "TPOT p99",
        "errors",
        "SLA",
    ]
    rows, classes = [], []
    for p in points:
        idx = int(p.get("index", -1))
        name = esc(Path(str(p.get("dir") or idx)).name)
        if idx in links:
            name = f'<a href="{esc(links[idx])}">{name}</a>'
        role = str(p.get("role") or "point")
        if role != "point":
            name += f' <span class="pill na">{esc(role)}</span>'
        if idx == pi:
            name += ' <span class="pill pass">capacity</span>'
        status = str(p.get("status") or "ok")
        err = _sum(p, "error_rate")
        rows.append(
            [
                name,
                _var(_pv(p, variable)),
                '<span class="pill pass">ok</span>'
                if status == "ok"
                else f'<span class="pill warn">{esc(status)}</span>',
                _num(_sum(p, "request_throughput_rps")),
                _num(_sum(p, "output_token_throughput_tok_s")),
                _ms(_lat(p, "ttft_ms", "p50")),
                _ms(_lat(p, "ttft_ms", "p99")),
                _ms(_lat(p, "tpot_ms", "p50")),
                _ms(_lat(p, "tpot_ms", "p99")),
                "–" if err is None else f"{100 * err:.1f} %",
                _pill(p.get("meets_sla"), "meets", "misses", "–"),
            ]
        )
        classes.append("hl" if idx == pi else "")
    if not rows:
        return _note("This sweep has no points yet.")
    return _table(head, rows, classes)


def sweep_page(
    sweep: SweepIndex,
    links: dict[int, str],
    name: str = "",
    server: ServerInfo | None = None,
) -> str:
    """The sweep report from its sweep.json (pure): table, curves, SLA region, capacity.
    ``server``: what the points talked to (a run.json's ``server``), named on the page."""
    variable = str(sweep.get("variable") or "concurrency")
    kind = str(sweep.get("kind") or "sweep")
    points = [p for p in sweep.get("points") or [] if isinstance(p, dict)]
    sla = sweep.get("sla")
    stopped = sweep.get("stopped")
    cap = sweep.get("capacity")
    first = points[0] if points else None
    meta = [
        (
            "kind",
            esc("capacity search" if kind == "search" else "sweep") + f" over {esc(variable)}",
        ),
        *((("server", esc(server_words(server))),) if server else ()),
        ("started", _date(sweep.get("started_at"))),
        ("points", f"{len(points)}"),
        (
            "workload",
            f"{esc(first.get('input_tokens', '?'))} in / "
            f"{esc(first.get('output_tokens', '?'))} out tokens"
            if first
            else "",
        ),
        (
            "SLA",
            (
                esc(sla.get("criterion") or sla.get("text") or "")
                + (
                    f" · at least {_pct(sla.get('min_attainment'), 0)} of requests"
                    if sla.get("min_attainment") is not None
                    else ""
                )
                + f" ({esc(sla.get('source') or '')})"
            )
            if sla
            else "none",
        ),
        (
            "stopped",
            esc((stopped.get("reason") if stopped else None) or "ran to the end")
            + (f": {esc(stopped.get('detail'))}" if stopped and stopped.get("detail") else ""),
        ),
        ("infermeter", esc(sweep.get("infermeter_version") or "")),
    ]
    cards: list[str] = []
    cap_value = cap.get("value") if cap else None
    if cap and cap_value is not None:
        unit = "req/s" if cap.get("variable", variable) == "rate" else "in flight"
        cards.append(
            _card(
                "Capacity",
                _var(float(cap_value)),
                unit,
                esc(cap.get("note") or cap.get("criterion") or ""),
                tone="good",
            )
        )
    elif sweep.get("capacity") is None and sla:
        cards.append(
            _card(
                "Capacity", "–", "", "no point met the SLA" if points else "no points", tone="bad"
            )
        )
    tputs = [(y, p) for p in points if (y := _sum(p, "output_token_throughput_tok_s")) is not None]
    if tputs:
        best, bp = max(tputs, key=lambda t: t[0])
        cards.append(
            _card(
                "Peak output throughput",
                format_value(best),
                "tok/s",
                f"at {esc(_point_label(bp, variable))}",
                "output_token_throughput_tok_s",
            )
        )
    rpss = [(y, p) for p in points if (y := _sum(p, "request_throughput_rps")) is not None]
    if rpss:
        best, bp = max(rpss, key=lambda t: t[0])
        cards.append(
            _card(
                "Peak request throughput",
                format_value(best),
                "req/s",
                f"at {esc(_point_label(bp, variable))}",
                "request_throughput_rps",
            )
        )
    lows = [(y, p) for p in points if (y := _lat(p, "ttft_ms", "p50")) is not None]
    if lows:
        best, bp = min(lows, key=lambda t: t[0])
        cards.append(
            _card(
                "Lowest TTFT p50",
                format_value(best),
                "ms",
                f"at {esc(_point_label(bp, variable))}",
                "ttft_ms",
            )
        )
    sections = [
        ("points", "Points", sweep_table(sweep, links)),
        (
            "curves",
            "Latency and throughput",
            sweep_charts(sweep) if points else _note("No points yet."),
        ),
    ]
    body = _meta(meta) + (
        f'<div class="cards" style="margin-top:18px">{"".join(cards)}</div>' if cards else ""
    )
    body += "".join(_section(sid, title, html) for sid, title, html in sections)
    title = f"infermeter {kind} {name}".strip()
    heading = f"{'Capacity search' if kind == 'search' else 'Sweep'} over {esc(variable)}" + (
        f' <span style="color:#64748b;font-weight:500">{esc(name)}</span>' if name else ""
    )
    return _page(title, heading, f"{kind} report", [(s, t) for s, t, _ in sections], body)
