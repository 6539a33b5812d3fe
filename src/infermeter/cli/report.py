"""``infermeter report DIR``: re-render a finished or interrupted run (or, as HTML, a sweep)."""

from __future__ import annotations

from pathlib import Path

import typer

from infermeter.cli.common import err_console, fail, out_console
from infermeter.records.rundir import RECORDS_FILE, REPORT_FILE, is_sweep_dir
from infermeter.report.formats import to_csv, to_json, to_markdown
from infermeter.report.terminal import print_summary
from infermeter.run.rundir import Run, load_run
from infermeter.schema.results import Results

FORMATS = ("table", "json", "csv", "md", "html")


def emit(results: Results, fmt: str) -> None:
    if fmt == "table":
        print_summary(results, out_console())
    elif fmt == "json":
        typer.echo(to_json(results))
    elif fmt == "csv":
        typer.echo(to_csv(results), nl=False)
    else:
        typer.echo(to_markdown(results), nl=False)


def note_torn(run: Run) -> None:
    """Say on stderr that a torn last record was left out (the run's counts are one short of
    what it sent, and the reader should know why), and which segments of a proxy recording
    were read together."""
    if len(run.segments) > 1:
        later = [d.name for d in run.segments[1:]]
        # A recording of days has hundreds of segments: the first and last name them.
        names = ", ".join(later) if len(later) <= 4 else f"{later[0]} … {later[-1]}"
        err_console.print(
            f"note: {run.path} and its {len(run.segments) - 1} later segment(s) ({names}) "
            "are read together as one recording; give a segment's directory to read it alone",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    if run.status.get("torn_last_record"):
        err_console.print(
            f"note: the last line of {run.path / RECORDS_FILE} is cut (the run was stopped "
            "while writing it); left out",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def write_html(run_dir: Path, out: Path | None = None) -> Path:
    """Render a run (or a sweep directory, one with sweep.json) to ``out`` (default
    DIR/report.html) and say where on stderr."""
    from infermeter.report.html import render_run_html, render_sweep_html

    if is_sweep_dir(run_dir):
        page = render_sweep_html(run_dir)
    else:
        run = load_run(run_dir)
        note_torn(run)
        page = render_run_html(run)
    target = out if out is not None else run_dir / REPORT_FILE
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise fail(f"--out {target}: cannot write it ({exc.strerror})") from None
    err_console.print(f"HTML report: {target}", highlight=False, soft_wrap=True, markup=False)
    return target


def report(
    run_dir: Path = typer.Argument(
        ..., help="A run directory written by 'infermeter bench' (html: or a sweep directory)."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, csv, md or html."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Where --format html writes the page (default: DIR/report.html)."
    ),
) -> None:
    """Re-render a finished or interrupted run from its records."""
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "html":
        write_html(run_dir, out)
        return
    run = load_run(run_dir)
    note_torn(run)
    emit(run.results, fmt)
