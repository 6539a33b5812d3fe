"""Runs (or sweeps) side by side, with ratios to a baseline (pure: results dicts in, dict out).

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
from typing import Any

from rich.table import Table
from rich.text import Text

from infermeter.errors import UsageError
from infermeter.metrics import catalogue
from infermeter.metrics.catalogue import Better

Getter = Callable[[Mapping[str, Any]], Any]


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


def _summary(key: str) -> Getter:
    return lambda r: (r.get("summary") or {}).get(key)


def _pct(dist: str, p: str) -> Getter:
    return lambda r: ((r.get("distributions") or {}).get(dist) or {}).get(p)


def _analysis(key: str) -> Getter:
    return lambda r: (r.get("analysis") or {}).get(key)


def _cost_per_million_output(r: Mapping[str, Any]) -> Any:
    return ((r.get("analysis") or {}).get("cost") or {}).get("per_million_output_tokens")


def _gpu_memory_peak_gb(r: Mapping[str, Any]) -> float | None:
    """Sum over GPUs of each one's peak memory in use during the measured window."""
    gpus = (r.get("telemetry") or {}).get("gpu") or []
    peaks = [(g.get("memory_used_bytes") or {}).get("max") for g in gpus]
    known = [p for p in peaks if p is not None]
    return sum(known) / 1e9 if known else None


def _cached_share(r: Mapping[str, Any]) -> Any:
    return (r.get("prompt_cache") or {}).get("cached_share")


def _latency(dist: str, pcts: Sequence[str]) -> list[Metric]:
    m = catalogue.metric(dist)
    return [Metric(f"{dist}_{p}", f"{m.title} {p}", m.unit, m.better, _pct(dist, p)) for p in pcts]


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
    Metric("mbu", "MBU", "fraction", "higher", _analysis("mbu"), optional=True),
    Metric("mfu", "MFU", "fraction", "higher", _analysis("mfu"), optional=True),
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


def cache_cautions(items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Runs whose prompts came from the server's cache in shares far apart are not alike,
    even when configured alike: the cache did part of one run's prefill."""
    shares = [(label, _cached_share(d)) for label, d in items]
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


def is_sweep_doc(data: Mapping[str, Any]) -> bool:
    """A sweep document (``sweep.json``) rather than a run's ``results.json``."""
    return isinstance(data.get("points"), list) and "variable" in data


def workload_spec(results: Mapping[str, Any]) -> dict[str, Any]:
    """The facts about a run's workload and load that must match for a fair comparison."""
    cfg = results.get("config") or {}
    return _spec(cfg, results.get("workload") or {}, open_loop=cfg.get("rate") is not None)


def _spec(cfg: dict[str, Any], workload: Mapping[str, Any], open_loop: bool) -> dict[str, Any]:
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


def _sweep_spec(sweep: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep's workload: its base config (less the swept load, matched point by point),
    the first point run's workload, and the lengths its points ran."""
    points = sweep.get("points") or []
    first: dict[str, Any] = next((p["results"] for p in points if p.get("results")), {})
    cfg = sweep.get("config") or first.get("config") or {}
    spec: dict[str, Any] = {"variable": sweep.get("variable")}
    base = _spec(cfg, first.get("workload") or {}, open_loop=sweep.get("variable") == "rate")
    spec.update({k: v for k, v in base.items() if k not in ("concurrency", "rate")})
    for key in ("input_tokens", "output_tokens"):
        seen = list(dict.fromkeys(str(p.get(key)) for p in points if p.get(key) is not None))
        if seen:
            spec[key] = ",".join(seen)
    return spec


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def workload_differences(specs: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """(field, each item's value) for every field whose values are not all equal."""
    out: list[tuple[str, list[str]]] = []
    keys = list(dict.fromkeys(k for spec in specs for k in spec))
    for key in keys:
        values = [spec.get(key) for spec in specs]
        if any(v != values[0] for v in values[1:]):
            out.append((key, [_show(v) for v in values]))
    return out


def _ratio(value: Any, base: Any) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return float(value) / float(base)


def _row(metric: Metric, values: list[Any], baseline: int, point: str | None) -> dict[str, Any]:
    vals = [None if v is None else float(v) for v in values]
    row: dict[str, Any] = {
        "metric": metric.key,
        "label": metric.label if point is None else f"{point} {metric.label}",
        "unit": metric.unit,
        "better": metric.better,
        "values": vals,
        "ratios": [_ratio(v, vals[baseline]) for v in vals],
    }
    if point is not None:
        row["point"] = point
    return row


def _metric_rows(
    views: Sequence[Mapping[str, Any]], baseline: int, point: str | None = None
) -> list[dict[str, Any]]:
    rows = []
    for metric in METRICS:
        values = [metric.get(v) for v in views]
        if metric.optional and all(v is None for v in values):
            continue
        rows.append(_row(metric, values, baseline, point))
    return rows


# -- sweeps ------------------------------------------------------------------------------


def _point_key(point: dict[str, Any], variable: str) -> tuple[Any, ...]:
    value = point.get(variable)
    return (
        None if value is None else float(value),
        point.get("input_tokens"),
        point.get("output_tokens"),
    )


def _comparable_points(sweep: Mapping[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """One point per swept value: measured points before probes, the later of equals."""
    variable = str(sweep.get("variable"))
    chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
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


def _point_view(point: dict[str, Any]) -> dict[str, Any]:
    """A results-like view of a sweep point: sweep.json's figures, the point run's analysis."""
    results = point.get("results") or {}
    return {
        **results,
        "summary": point.get("summary") or results.get("summary") or {},
        "distributions": point.get("latency") or results.get("distributions") or {},
    }


def _point_label(key: tuple[Any, ...], variable: str, lengths_vary: bool) -> str:
    value = key[0]
    text = f"c={value:g}" if variable == "concurrency" else f"rate={value:g}"
    return f"{text} {key[1]}→{key[2]} tok" if lengths_vary else text


def _capacity_row(sweeps: Sequence[Mapping[str, Any]], baseline: int) -> dict[str, Any] | None:
    """The capacities found (highest load meeting the SLA), with each sweep's note on how
    far that holds (e.g. "the capacity may be higher" when no load failed)."""
    caps = [s.get("capacity") or {} for s in sweeps]
    values = [c.get("value") for c in caps]
    if all(v is None for v in values):
        return None
    variable = next((c["variable"] for c in caps if c.get("variable")), sweeps[0].get("variable"))
    unit = "req/s" if variable == "rate" else "concurrency"
    row = _row(
        Metric("capacity", "Capacity", unit, "higher", lambda _: None), values, baseline, None
    )
    row["notes"] = [c.get("note") for c in caps]
    return row


def _sweep_rows(sweeps: Sequence[Mapping[str, Any]], baseline: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
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
                f"{', '.join(f'{k[0]:g}' for k in c) or 'no measured points'}" for c in chosen
            )
        )
    return rows


# -- the comparison ----------------------------------------------------------------------


def build_comparison(
    items: Sequence[tuple[str, Mapping[str, Any]]],
    baseline: int = 0,
    allow_different: bool = False,
) -> dict[str, Any]:
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
    kinds = ["sweep" if is_sweep_doc(data) else "run" for _, data in items]
    if len(set(kinds)) > 1:
        listing = ", ".join(
            f"{label} ({kind})" for (label, _), kind in zip(items, kinds, strict=True)
        )
        raise UsageError(f"compare runs with runs and sweeps with sweeps, not both: {listing}")
    sweeps = kinds[0] == "sweep"
    specs = [_sweep_spec(d) if sweeps else workload_spec(d) for _, d in items]
    diffs = workload_differences(specs)
    if diffs and not allow_different:
        what = "; ".join(f"{k} {' vs '.join(vs)}" for k, vs in diffs)
        noun = "sweeps" if sweeps else "runs"
        raise UsageError(
            f"{noun} differ in workload: {what} (pass --allow-different to compare anyway)"
        )
    data = [d for _, d in items]
    if sweeps:
        if len({d.get("variable") for d in data}) > 1:
            raise UsageError(
                "the sweeps vary different things: "
                + " vs ".join(str(d.get("variable")) for d in data)
            )
        rows = _sweep_rows(data, baseline)
    else:
        rows = _metric_rows(data, baseline)
    return {
        "baseline": baseline,
        "cautions": [] if sweeps else cache_cautions(items),
        "items": [
            {
                "label": label,
                "path": d.get("path") if sweeps else (d.get("run") or {}).get("out_dir"),
                "kind": kind,
            }
            for (label, d), kind in zip(items, kinds, strict=True)
        ],
        "rows": rows,
        "differences": [f"{k}: {' vs '.join(vs)}" for k, vs in diffs],
    }


# -- rendering (terminal and Markdown; HTML lives in report/html.py) ---------------------


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


def _metric_cell(row: dict[str, Any]) -> str:
    # Fractions print as percentages, and the cost's label already says what it is per.
    if row["unit"] in ("", "fraction", "per 1M tok"):
        return str(row["label"])
    return f"{row['label']} ({row['unit']})"


def _ratio_headers(comparison: dict[str, Any]) -> list[tuple[int, str]]:
    base = comparison["baseline"]
    labels = [it["label"] for it in comparison["items"]]
    return [(i, f"{labels[i]} / {labels[base]}") for i in range(len(labels)) if i != base]


def render_comparison_table(comparison: dict[str, Any]) -> Table:
    """A rich table: one column per item, then a ratio column per non-baseline item."""
    base = comparison["items"][comparison["baseline"]]["label"]
    table = Table(
        title=f"compared (ratios: value ÷ {base}'s; green better, red worse)",
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
        for i, _ in ratio_cols:
            ratio = row["ratios"][i]
            style = {"better": "green", "worse": "red", None: ""}[
                ratio_verdict(ratio, row["better"])
            ]
            cells.append(Text(format_ratio(ratio), style=style))
        table.add_row(*cells)
    return table


def comparison_notes(comparison: dict[str, Any]) -> list[str]:
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


def render_comparison_markdown(comparison: dict[str, Any]) -> str:
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
        cells += [format_ratio(row["ratios"][i]) for i, _ in ratio_cols]
        lines.append("| " + " | ".join(cells) + " |")
    base = labels[comparison["baseline"]]
    lines += [
        "",
        f"Ratios: each value ÷ {_md_escape(base)}'s. Above 1 is better for throughput, goodput, "
        "MBU/MFU and capacity; below 1 for latencies, error rate and cost.",
    ]
    notes = comparison_notes(comparison)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")
