"""``infermeter sweep``: many load points (or a capacity search) with bench's flags."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from infermeter.analysis.capacity import sweep_sla
from infermeter.cli import bench
from infermeter.cli.common import err_console, fail, interrupted_exit, out_console
from infermeter.errors import UsageError
from infermeter.load.strategies import Variable, parse_values
from infermeter.records.rundir import REPORT_FILE
from infermeter.report.terminal import print_sweep
from infermeter.run.rundir import Run
from infermeter.sweeps import SweepSpec, run_sweep

FORMATS = ("table", "json", "md", "html")

#: bench flags that mean something else in a sweep (lists instead of one value).
_REPLACED = ("concurrency", "rate", "input_tokens", "output_tokens", "out", "output_format")


def _opt(default: Any, *names: str, help: str) -> Any:
    return typer.Option(default, *names, help=help)


_SWEEP_PARAMS: list[tuple[str, Any, Any]] = [
    (
        "concurrency",
        str | None,
        _opt(
            None,
            "--concurrency",
            "-c",
            help="Closed-loop concurrencies: 1,2,4,8 or a range 1:64 (doubling), 1:64:x4, 4:32:+4.",
        ),
    ),
    (
        "rate",
        str | None,
        _opt(
            None,
            "--rate",
            "-r",
            help="Open-loop rates (req/s): 1,2,4 or a range, or auto (probe the saturation throughput, then --points rates up to it).",
        ),
    ),
    (
        "input_tokens",
        str,
        _opt(
            "512",
            "--input-tokens",
            help="Prompt tokens; a comma list sweeps them too (each: N or a distribution).",
        ),
    ),
    (
        "output_tokens",
        str,
        _opt("128", "--output-tokens", help="Output tokens; a comma list sweeps them too."),
    ),
    ("points", int, _opt(6, "--points", help="With --rate auto: how many rates.")),
    (
        "probe_concurrency",
        int | None,
        _opt(
            None,
            "--probe-concurrency",
            help="With --rate auto: closed-loop concurrency of the saturation probe (default: 32).",
        ),
    ),
    (
        "find_max",
        bool,
        _opt(
            False,
            "--find-max",
            help="Search the highest load meeting the SLA (--slo or --profile) within the given range.",
        ),
    ),
    (
        "min_attainment",
        float,
        _opt(
            0.9,
            "--min-attainment",
            help="--slo without percentiles: share of requests that must meet it (goodput).",
        ),
    ),
    (
        "tolerance",
        float,
        _opt(0.1, "--tolerance", help="--find-max over rates: stop when fail/pass <= 1 + this."),
    ),
    ("max_runs", int, _opt(12, "--max-runs", help="--find-max: at most this many runs.")),
    (
        "stop_error_rate",
        float,
        _opt(0.1, "--stop-error-rate", help="Stop the sweep when more requests than this fail."),
    ),
    (
        "keep_going",
        bool,
        _opt(False, "--keep-going", help="Do not stop early when the server saturates."),
    ),
    (
        "out",
        Path | None,
        _opt(None, "--out", "-o", help="Sweep directory (default: runs/sweep-TIMESTAMP)."),
    ),
    (
        "output_format",
        str,
        _opt(
            "table",
            "--format",
            help="Summary on stdout: table, json or md; html also writes report.html files.",
        ),
    ),
]


def sweep(**flags: Any) -> int:
    """Run many load points, or search the highest load that meets an SLA (--find-max)."""
    fmt = flags.pop("output_format")
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if flags.get("trace") is not None:
        raise UsageError(
            "a trace brings its own schedule: replay it with bench --trace (and --time-scale "
            "for other loads)"
        )
    conc, rate = flags.pop("concurrency"), flags.pop("rate")
    if (conc is None) == (rate is None):
        raise UsageError("give exactly one of --concurrency LIST or --rate LIST|auto")
    variable: Variable = "concurrency" if conc is not None else "rate"
    text = conc if conc is not None else rate
    values = None if text.strip() == "auto" else tuple(parse_values(text, variable))
    inputs = tuple(x.strip() for x in flags.pop("input_tokens").split(",") if x.strip())
    outputs = tuple(x.strip() for x in flags.pop("output_tokens").split(",") if x.strip())
    sla = sweep_sla(
        flags["slo"], flags["profile"], flags.pop("min_attainment"), flags["max_error_rate"]
    )
    spec = SweepSpec(
        variable=variable,
        values=values,
        input_tokens=inputs,
        output_tokens=outputs,
        auto_points=flags.pop("points"),
        probe_concurrency=flags.pop("probe_concurrency"),
        stop_on_saturation=not flags.pop("keep_going"),
        stop_error_rate=flags.pop("stop_error_rate"),
        sla=sla,
        find_max=flags.pop("find_max"),
        rel_tol=flags.pop("tolerance"),
        max_runs=flags.pop("max_runs"),
    )
    out = flags.pop("out")
    quiet = flags.pop("quiet")
    first = values[0] if values else 1.0  # rate auto: a placeholder, the probe decides
    base = bench.config_from_flags(
        {
            **flags,
            "concurrency": int(first) if variable == "concurrency" else None,
            "rate": float(first) if variable == "rate" else None,
            "input_tokens": inputs[0] if inputs else "512",
            "output_tokens": outputs[0] if outputs else "128",
            "out": None,
            "output_format": fmt,
            "quiet": quiet,
        }
    )
    on_run = _write_report if fmt == "html" else None
    result = run_sweep(base, spec, out, console=None if quiet else err_console, on_run=on_run)
    if fmt == "html":
        from infermeter.report.html import render_sweep_html

        page = result.path / REPORT_FILE
        page.write_text(render_sweep_html(result.path), encoding="utf-8")
        err_console.print(f"sweep report: {page}", highlight=False, markup=False)
    if fmt == "json":
        from infermeter.report.formats import to_json

        typer.echo(to_json(result.index))
    elif fmt == "md":
        from infermeter.report.formats import sweep_markdown

        typer.echo(sweep_markdown(result.index), nl=False)
    else:
        print_sweep(result.index, out_console())
    if result.interrupted:
        return interrupted_exit()
    return 0


def _write_report(run: Run) -> None:
    from infermeter.report.html import render_run_html

    (run.path / REPORT_FILE).write_text(render_run_html(run), encoding="utf-8")


def _signature() -> inspect.Signature:
    params = [
        p
        for name, p in inspect.signature(bench.bench, eval_str=True).parameters.items()
        if name not in _REPLACED
    ]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, ann, default in _SWEEP_PARAMS
    ]
    kw_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    return inspect.Signature(kw_only, return_annotation=int)


sweep.__signature__ = _signature()  # type: ignore[attr-defined]
