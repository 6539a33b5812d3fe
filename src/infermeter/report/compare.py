"""Runs (or sweeps) side by side, with ratios to a baseline (pure: typed documents in, a
:class:`Comparison` out).

Example (needs a server or files at hand)::

    cmp = build_comparison([("1 slot", results_a), ("4 slots", results_b)])
    [r["ratios"] for r in cmp["rows"] if r["metric"] == "output_token_throughput_tok_s"]
    # -> [[1.0, 3.4]]

Engines and their settings may differ (that is the point of comparing); the workload may not,
unless asked: a faster engine on a lighter workload proves nothing. The comparison document::

    {"baseline": 0,
     "items": [{"label": "1 slot", "path": "runs/a", "kind": "run" | "sweep"}],
     "rows": [{"metric": "output_token_throughput_tok_s", "label": "Output throughput",
               "unit": "tok/s", "better": "higher" | "lower" | None,
               "values": [float | None, ...], "ratios": [float | None, ...]}],
     "differences": ["input_tokens: 128 vs 256"]}

``ratio = value / baseline value``: 11.2 is 11.2 × the baseline's throughput; for latencies a
ratio below 1 is the better one (``better`` says which way is good). Sweep rows also carry
``point`` (e.g. ``"c=4"``), the swept value they compare at; ``metric`` stays the bare key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, cast

from rich.table import Table
from rich.text import Text
from typing_extensions import NotRequired, TypedDict

from infermeter.errors import UsageError
from infermeter.metrics import catalogue
from infermeter.metrics.catalogue import Better
from infermeter.schema.results import Analysis, PromptCache, Results, Telemetry
from infermeter.schema.sweep import Capacity, SweepPoint


class PointWithRun(SweepPoint):
    """A sweep point with its run's results document, where the run started."""

    results: NotRequired[Results]


class SweepWithRuns(TypedDict):
    """sweep.json as compare reads it: the keys it relies on, its directory, and each
    point's run."""

    variable: str
    config: dict[str, Any]
    points: list[PointWithRun]
    capacity: Capacity | None
    path: NotRequired[str]


#: What compare takes: a run's results.json, or a sweep with its runs.
Compared = Results | SweepWithRuns


class ComparisonItem(TypedDict):
    label: str
    path: str | None
    kind: Literal["run", "sweep"]


class ComparisonRow(TypedDict):
    metric: str
    label: str
    unit: str
    better: Better
    values: list[float | None]
    ratios: list[float | None]
    #: A sweep's row: the swept value it compares at (``c=4``).
    point: NotRequired[str]
    #: The capacity row: each sweep's note on how far its capacity holds.
    notes: NotRequired[list[str | None]]
    #: A percentile's row where the baseline gives its 95 % interval: per item, whether its
    #: value lies inside it (its requests cannot tell it from the baseline's), else None.
    within: NotRequired[list[bool | None]]


class Comparison(TypedDict):
    baseline: int
    cautions: list[str]
    items: list[ComparisonItem]
    rows: list[ComparisonRow]
    differences: list[str]


@dataclass(frozen=True)
class Figures:
    """The parts of a run (or of a sweep point with its run) that the rows read."""

    summary: Mapping[str, object]
    distributions: Mapping[str, Mapping[str, object]]
    analysis: Analysis | None = None
    telemetry: Telemetry | None = None
    prompt_cache: PromptCache | None = None
    #: The run's whole distributions where ``distributions`` is a sweep point's digest
    #: (which leaves the percentile intervals out).
    full_distributions: Mapping[str, Mapping[str, object]] | None = None

    @classmethod
    def of(cls, results: Results) -> Figures:
        return cls(
            summary=cast("Mapping[str, object]", results.get("summary") or {}),
            distributions=cast(
                "Mapping[str, Mapping[str, object]]", results.get("distributions") or {}
            ),
            analysis=results.get("analysis"),
            telemetry=results.get("telemetry"),
            prompt_cache=results.get("prompt_cache"),
        )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


Getter = Callable[[Figures], float | None]
Interval = tuple[float | None, float | None]


@dataclass(frozen=True)
class Metric:
    """One comparable figure of a results document."""

    key: str
    label: str
    unit: str
    better: Better
    get: Getter
    #: Shown only where some item has it (goodput needs an SLO, MBU a --gpu, ...).
    optional: bool = False
    #: A percentile's 95 % interval, where the figures give it.
    interval: Callable[[Figures], Interval | None] | None = None


def _summary(key: str) -> Getter:
    return lambda f: _number(f.summary.get(key))


def _pct(dist: str, p: str) -> Getter:
    return lambda f: _number((f.distributions.get(dist) or {}).get(p))


def _pct_interval(dist: str, p: str) -> Callable[[Figures], Interval | None]:
    def get(f: Figures) -> Interval | None:
        source = f.full_distributions if f.full_distributions is not None else f.distributions
        bounds = (source.get(dist) or {}).get("interval95")
        pair = bounds.get(p) if isinstance(bounds, Mapping) else None
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return None
        return _number(pair[0]), _number(pair[1])

    return get


def _mbu(f: Figures) -> float | None:
    return f.analysis.get("mbu") if f.analysis else None


def _mfu(f: Figures) -> float | None:
    return f.analysis.get("mfu") if f.analysis else None


def _cost_per_million_output(f: Figures) -> float | None:
    cost = f.analysis.get("cost") if f.analysis else None
    return cost.get("per_million_output_tokens") if cost else None


def _gpu_memory_peak_gb(f: Figures) -> float | None:
    """Sum over GPUs of each one's peak memory in use during the measured window."""
    gpus = (f.telemetry.get("gpu") if f.telemetry else None) or []
    known = [stats["max"] for g in gpus if (stats := g.get("memory_used_bytes"))]
    return sum(known) / 1e9 if known else None


def _cached_share(f: Figures) -> float | None:
    return f.prompt_cache.get("cached_share") if f.prompt_cache else None


def _latency(dist: str, pcts: Sequence[str]) -> list[Metric]:
    m = catalogue.metric(dist)
    return [
        Metric(
            f"{dist}_{p}",
            f"{m.title} {p}",
            m.unit,
            m.better,
            _pct(dist, p),
            interval=_pct_interval(dist, p),
        )
        for p in pcts
    ]


def _aggregate(key: str, optional: bool = False) -> Metric:
    m = catalogue.metric(key)
    return Metric(key, m.title, m.unit, m.better, _summary(key), optional)


METRICS: tuple[Metric, ...] = (
    _aggregate("request_throughput_rps"),
    _aggregate("output_token_throughput_tok_s"),
    _aggregate("total_token_throughput_tok_s"),
    *_latency("ttft_ms", ("p50", "p95", "p99")),
    *_latency("tpot_ms", ("p50", "p99")),
    *_latency("itl_ms", ("p50", "p99")),
    *_latency("e2e_ms", ("p50", "p99")),
    _aggregate("error_rate"),
    # Neither better nor worse: a confound that must match for the rows above to compare.
    Metric(
        "cached_prompt_share",
        "Prompt tokens from the server's cache",
        "fraction",
        None,
        _cached_share,
        optional=True,
    ),
    _aggregate("goodput_rps", optional=True),
    Metric("mbu", "MBU", "fraction", "higher", _mbu, optional=True),
    Metric("mfu", "MFU", "fraction", "higher", _mfu, optional=True),
    Metric("gpu_memory_peak_gb", "GPU memory peak", "GB", None, _gpu_memory_peak_gb, optional=True),
    Metric(
        "cost_per_million_output_tokens",
        "Cost per 1M output tokens",
        "per 1M tok",
        "lower",
        _cost_per_million_output,
        optional=True,
    ),
)

#: Config fields that define the workload and the load (engine settings and model may differ).
WORKLOAD_CONFIG_KEYS: tuple[str, ...] = (
    "api",
    "input_tokens",
    "output_tokens",
    "dataset",
    "shared_prefix_tokens",
    "ignore_eos",
    "num_requests",
    "duration_s",
    "concurrency",
    "rate",
)
#: Workload facts that describe the server's tokenizer, not what was asked of it.
#: (``overhead_tokens`` is what the server's chat template adds to every prompt.)
#: (``seed`` only picks the random words; runs on different seeds are the same workload.)
_ENGINE_SIDE_WORKLOAD_KEYS = frozenset(
    {"tokenizer", "verified_by", "verified_lengths", "overhead_tokens", "seed"}
)
#: Cached-prompt shares further apart than this make runs unlike, whatever their configs.
CACHE_SHARE_APART = 0.10
_WORKLOAD_META_NAMES = {
    "kind": "workload",
    "path": "dataset",
    "format": "dataset_format",
    "rows": "dataset_rows",
}


def cache_cautions(items: Sequence[tuple[str, Results]]) -> list[str]:
    """Runs whose prompts came from the server's cache in shares far apart are not alike,
    even when configured alike: the cache did part of one run's prefill."""
    shares = [(label, _cached_share(Figures.of(d))) for label, d in items]
    known = [(label, float(s)) for label, s in shares if s is not None]
    if len(known) < 2:
        return []
    lo, hi = min(known, key=lambda x: x[1]), max(known, key=lambda x: x[1])
    if hi[1] - lo[1] <= CACHE_SHARE_APART:
        return []
    listing = ", ".join(f"{label} {100 * s:.0f} %" for label, s in known)
    return [
        f"the server's prefix cache served different shares of the prompts ({listing}): "
        "TTFT and throughput differ for that reason too, not only for the configuration"
    ]


def is_sweep_doc(data: Compared) -> TypeGuard[SweepWithRuns]:
    """A sweep document (``sweep.json``) rather than a run's ``results.json``."""
    return isinstance(data.get("points"), list) and "variable" in data


def workload_spec(results: Results) -> dict[str, object]:
    """The facts about a run's workload and load that must match for a fair comparison."""
    cfg = results.get("config") or {}
    return _spec(cfg, results.get("workload") or {}, open_loop=cfg.get("rate") is not None)


def _spec(
    cfg: Mapping[str, object], workload: Mapping[str, object], open_loop: bool
) -> dict[str, object]:
    spec = {k: cfg.get(k) for k in WORKLOAD_CONFIG_KEYS}
    if open_loop:
        spec["arrival"] = cfg.get("arrival")
        spec["max_concurrency"] = cfg.get("max_concurrency")
        if cfg.get("arrival") == "gamma":
            spec["burstiness"] = cfg.get("burstiness")
    for key, value in workload.items():
        name = _WORKLOAD_META_NAMES.get(key, key)
        if key in _ENGINE_SIDE_WORKLOAD_KEYS or key in spec or name in spec:
            continue
        spec[name] = value
    return spec


def _sweep_spec(sweep: SweepWithRuns) -> dict[str, object]:
    """A sweep's workload: its base config (less the swept load, matched point by point),
    the first point run's workload, and the lengths its points ran."""
    points = sweep.get("points") or []
    first = next((r for p in points if (r := p.get("results"))), None)
    cfg = sweep.get("config") or (first.get("config") if first else None) or {}
    spec: dict[str, object] = {"variable": sweep.get("variable")}
    workload = (first.get("workload") if first else None) or {}
    base = _spec(cfg, workload, open_loop=sweep.get("variable") == "rate")
    spec.update({k: v for k, v in base.items() if k not in ("concurrency", "rate")})
    for key in ("input_tokens", "output_tokens"):
        seen = list(dict.fromkeys(str(p.get(key)) for p in points if p.get(key) is not None))
        if seen:
            spec[key] = ",".join(seen)
    return spec


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def workload_differences(specs: Sequence[Mapping[str, object]]) -> list[tuple[str, list[str]]]:
    """(field, each item's value) for every field whose values are not all equal."""
    out: list[tuple[str, list[str]]] = []
    keys = list(dict.fromkeys(k for spec in specs for k in spec))
    for key in keys:
        values = [spec.get(key) for spec in specs]
        if any(v != values[0] for v in values[1:]):
            out.append((key, [_show(v) for v in values]))
    return out


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base


def _inside(value: float | None, bounds: Interval) -> bool | None:
    if value is None:
        return None
    lo, hi = bounds
    return (lo is None or lo <= value) and (hi is None or value <= hi)


def _row(
    metric: Metric,
    values: Sequence[float | None],
    baseline: int,
    point: str | None,
    interval: Interval | None = None,
) -> ComparisonRow:
    vals = [None if v is None else float(v) for v in values]
    row: ComparisonRow = {
        "metric": metric.key,
        "label": metric.label if point is None else f"{point} {metric.label}",
        "unit": metric.unit,
        "better": metric.better,
        "values": vals,
        "ratios": [_ratio(v, vals[baseline]) for v in vals],
    }
    if point is not None:
        row["point"] = point
    if interval is not None and interval != (None, None):
        row["within"] = [
            None if i == baseline else _inside(v, interval) for i, v in enumerate(vals)
        ]
    return row


def _metric_rows(
    views: Sequence[Figures], baseline: int, point: str | None = None
) -> list[ComparisonRow]:
    rows = []
    for metric in METRICS:
        values = [metric.get(v) for v in views]
        if metric.optional and all(v is None for v in values):
            continue
        interval = metric.interval(views[baseline]) if metric.interval else None
        rows.append(_row(metric, values, baseline, point, interval))
    return rows


# -- sweeps ------------------------------------------------------------------------------


PointKey = tuple[float | None, str | None, str | None]


def _point_key(point: PointWithRun, variable: str) -> PointKey:
    value = cast("Mapping[str, object]", point).get(variable)
    return (
        _number(value),
        point.get("input_tokens"),
        point.get("output_tokens"),
    )


def _comparable_points(sweep: SweepWithRuns) -> dict[PointKey, PointWithRun]:
    """One point per swept value: measured points before probes, the later of equals."""
    variable = str(sweep.get("variable"))
    chosen: dict[PointKey, PointWithRun] = {}
    for point in sweep.get("points") or []:
        if not point.get("summary"):
            continue
        key = _point_key(point, variable)
        if key[0] is None:
            continue
        held = chosen.get(key)
        if held is None or not (point.get("role") == "probe" and held.get("role") != "probe"):
            chosen[key] = point
    return chosen


def _point_view(point: PointWithRun) -> Figures:
    """A sweep point's figures: sweep.json's, with the point run's analysis and telemetry."""
    results = point.get("results")
    run = Figures.of(results) if results else Figures({}, {})
    return Figures(
        summary=cast("Mapping[str, object]", point.get("summary") or run.summary),
        distributions=point.get("latency") or run.distributions,
        analysis=run.analysis,
        telemetry=run.telemetry,
        prompt_cache=run.prompt_cache,
        full_distributions=run.distributions if results else None,
    )


def _point_label(key: PointKey, variable: str, lengths_vary: bool) -> str:
    value = key[0]
    assert value is not None  # (points without the swept value are not comparable)
    text = f"c={value:g}" if variable == "concurrency" else f"rate={value:g}"
    return f"{text} {key[1]}→{key[2]} tok" if lengths_vary else text


def _capacity_row(sweeps: Sequence[SweepWithRuns], baseline: int) -> ComparisonRow | None:
    """The capacities found (highest load meeting the SLA), with each sweep's note on how
    far that holds (e.g. "the capacity may be higher" when no load failed)."""
    caps = [s.get("capacity") for s in sweeps]
    values = [c.get("value") if c else None for c in caps]
    if all(v is None for v in values):
        return None
    variable = next((c["variable"] for c in caps if c and c.get("variable")), sweeps[0]["variable"])
    unit = "req/s" if variable == "rate" else "concurrency"
    row = _row(
        Metric("capacity", "Capacity", unit, "higher", lambda _: None), values, baseline, None
    )
    row["notes"] = [c.get("note") if c else None for c in caps]
    return row


def _sweep_rows(sweeps: Sequence[SweepWithRuns], baseline: int) -> list[ComparisonRow]:
    rows: list[ComparisonRow] = []
    capacity = _capacity_row(sweeps, baseline)
    if capacity is not None:
        rows.append(capacity)
    variable = str(sweeps[0].get("variable"))
    chosen = [_comparable_points(s) for s in sweeps]
    common = [k for k in chosen[0] if all(k in c for c in chosen[1:])]
    common.sort(key=lambda k: (k[0], str(k[1]), str(k[2])))
    lengths_vary = len({k[1:] for k in common}) > 1
    for key in common:
        views = [_point_view(c[key]) for c in chosen]
        rows.extend(_metric_rows(views, baseline, _point_label(key, variable, lengths_vary)))
    if not rows:
        raise UsageError(
            f"the sweeps have no {variable} in common and no capacity to compare: "
            + "; ".join(
                f"{', '.join(f'{k[0]:g}' for k in c if k[0] is not None) or 'no measured points'}"
                for c in chosen
            )
        )
    return rows


# -- the comparison ----------------------------------------------------------------------


def build_comparison(
    items: Sequence[tuple[str, Compared]],
    baseline: int = 0,
    allow_different: bool = False,
) -> Comparison:
    """Compare runs (``results.json`` dicts) or sweeps (``sweep.json`` dicts) to the item at
    index ``baseline``.

    A sweep dict may carry ``path`` (its directory) and, per point, ``results`` (the point
    run's results document: its config joins the workload check, its analysis and telemetry
    the rows). Raises :class:`UsageError` when the items mix runs and sweeps, or when their
    workloads differ and ``allow_different`` is false.
    """
    if not items:
        raise UsageError("nothing to compare")
    if not 0 <= baseline < len(items):
        raise UsageError(f"baseline {baseline} is not one of the {len(items)} items")
    kinds: list[Literal["run", "sweep"]] = []
    sweep_docs: list[SweepWithRuns] = []
    runs: list[Results] = []
    for _, d in items:
        if is_sweep_doc(d):
            kinds.append("sweep")
            sweep_docs.append(d)
        else:
            kinds.append("run")
            runs.append(cast("Results", d))
    if sweep_docs and runs:
        listing = ", ".join(
            f"{label} ({kind})" for (label, _), kind in zip(items, kinds, strict=True)
        )
        raise UsageError(f"compare runs with runs and sweeps with sweeps, not both: {listing}")
    specs = [_sweep_spec(d) for d in sweep_docs] if sweep_docs else [workload_spec(d) for d in runs]
    diffs = workload_differences(specs)
    if diffs and not allow_different:
        what = "; ".join(f"{k} {' vs '.join(vs)}" for k, vs in diffs)
        noun = "sweeps" if sweep_docs else "runs"
        raise UsageError(
            f"{noun} differ in workload: {what} (pass --allow-different to compare anyway)"
        )
    if sweep_docs:
        if len({d.get("variable") for d in sweep_docs}) > 1:
            raise UsageError(
                "the sweeps vary different things: "
                + " vs ".join(str(d.get("variable")) for d in sweep_docs)
            )
        rows = _sweep_rows(sweep_docs, baseline)
        paths = [d.get("path") for d in sweep_docs]
    else:
        rows = _metric_rows([Figures.of(d) for d in runs], baseline)
        paths = [(d.get("run") or {}).get("out_dir") for d in runs]
    labels = [label for label, _ in items]
    return {
        "baseline": baseline,
        "cautions": [] if sweep_docs else cache_cautions(list(zip(labels, runs, strict=True))),
        "items": [
            {"label": label, "path": path, "kind": kind}
            for label, path, kind in zip(labels, paths, kinds, strict=True)
        ],
        "rows": rows,
        "differences": [f"{k}: {' vs '.join(vs)}" for k, vs in diffs],
    }


# -- rendering (terminal and Markdown; HTML lives in report/html.py) ---------------------


#: Marks a ratio whose value lies inside the baseline's percentile interval.
WITHIN_MARK = "≈"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{100 * value:.2f} %" if value >= 1e-4 or value == 0 else f"{100 * value:.2e} %"
    if unit == "per 1M tok":
        return f"{value:,.4f}" if value >= 0.01 else f"{value:.2e}"
    digits = {"ms": 2, "tok/s": 1, "req/s": 3, "GB": 2, "concurrency": 0}.get(unit, 2)
    return f"{value:,.{digits}f}"


def format_ratio(ratio: float | None) -> str:
    """``11.2×``, ``3.40×``, ``0.27×``."""
    if ratio is None:
        return "-"
    if ratio >= 100:
        return f"{ratio:,.0f}×"
    return f"{ratio:.1f}×" if ratio >= 10 else f"{ratio:.2f}×"


def ratio_verdict(ratio: float | None, better: Better, tolerance: float = 0.02) -> str | None:
    """``better``, ``worse`` or None (no preference, no ratio, or within ``tolerance``)."""
    if ratio is None or better is None or abs(ratio - 1) <= tolerance:
        return None
    return "better" if (ratio > 1) == (better == "higher") else "worse"


def _metric_cell(row: ComparisonRow) -> str:
    # Fractions print as percentages, and the cost's label already says what it is per.
    if row["unit"] in ("", "fraction", "per 1M tok"):
        return str(row["label"])
    return f"{row['label']} ({row['unit']})"


def _ratio_headers(comparison: Comparison) -> list[tuple[int, str]]:
    base = comparison["baseline"]
    labels = [it["label"] for it in comparison["items"]]
    return [(i, f"{labels[i]} / {labels[base]}") for i in range(len(labels)) if i != base]


def render_comparison_table(comparison: Comparison) -> Table:
    """A rich table: one column per item, then a ratio column per non-baseline item."""
    base = comparison["items"][comparison["baseline"]]["label"]
    table = Table(
        title=f"compared (ratios: value ÷ {base}'s; green better, red worse; {WITHIN_MARK}: "
        "inside the baseline's 95 % interval)",
        title_justify="left",
    )
    table.add_column("metric")
    for item in comparison["items"]:
        table.add_column(item["label"], justify="right")
    ratio_cols = _ratio_headers(comparison)
    for _, header in ratio_cols:
        table.add_column(header, justify="right")
    last_point: str | None = None
    for row in comparison["rows"]:
        point = row.get("point")
        if point != last_point and last_point is not None:
            table.add_section()
        last_point = point
        cells: list[str | Text] = [_metric_cell(row)]
        cells += [format_value(v, row["unit"]) for v in row["values"]]
        within = row.get("within") or []
        for i, _ in ratio_cols:
            ratio = row["ratios"][i]
            if i < len(within) and within[i]:
                cells.append(Text(f"{format_ratio(ratio)} {WITHIN_MARK}", style="dim"))
                continue
            style = {"better": "green", "worse": "red", None: ""}[
                ratio_verdict(ratio, row["better"])
            ]
            cells.append(Text(format_ratio(ratio), style=style))
        table.add_row(*cells)
    return table


def comparison_notes(comparison: Comparison) -> list[str]:
    """What the table cannot say: each capacity's caveat and any workload differences."""
    labels = [it["label"] for it in comparison["items"]]
    notes = [
        f"{row['label'].lower()} of {label}: {note}"
        for row in comparison["rows"]
        for label, note in zip(labels, row.get("notes") or [], strict=False)
        if note
    ]
    if comparison["differences"]:
        notes.append("workloads differ (compared anyway): " + "; ".join(comparison["differences"]))
    notes.extend(f"not alike: {c}" for c in comparison.get("cautions") or [])
    return notes


def render_comparison_markdown(comparison: Comparison) -> str:
    """| metric | each item | ratio to the baseline, per other item |"""
    labels = [it["label"] for it in comparison["items"]]
    ratio_cols = _ratio_headers(comparison)
    header = ["metric", *labels, *(h for _, h in ratio_cols)]
    lines = [
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "| --- |" + " ---: |" * (len(header) - 1),
    ]
    for row in comparison["rows"]:
        cells = [_md_escape(_metric_cell(row))]
        cells += [format_value(v, row["unit"]) for v in row["values"]]
        within = row.get("within") or []
        cells += [
            format_ratio(row["ratios"][i])
            + (f" {WITHIN_MARK}" if i < len(within) and within[i] else "")
            for i, _ in ratio_cols
        ]
        lines.append("| " + " | ".join(cells) + " |")
    base = labels[comparison["baseline"]]
    lines += [
        "",
        f"Ratios: each value ÷ {_md_escape(base)}'s. Above 1 is better for throughput, goodput, "
        "MBU/MFU and capacity; below 1 for latencies, error rate and cost. "
        f"{WITHIN_MARK}: the value lies inside the 95 % interval of the baseline's percentile "
        "(its requests taken as random draws), so these runs do not tell the two apart.",
    ]
    notes = comparison_notes(comparison)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")
