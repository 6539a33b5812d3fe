"""``infermeter export RUN_OR_SWEEP``: records or summaries as CSV or Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from infermeter.cli.common import err_console, fail
from infermeter.cli.compare import load_target
from infermeter.errors import UsageError
from infermeter.report.export import (
    ExportTable,
    records_table,
    require_pyarrow,
    run_summary_table,
    sweep_records_table,
    sweep_summary_table,
    write_csv,
    write_parquet,
)
from infermeter.text import counted

WHAT = ("records", "summary")
FORMATS = ("csv", "parquet")


def export(
    target: Path = typer.Argument(
        ..., metavar="RUN_OR_SWEEP", help="A run directory, or a sweep directory (sweep.json)."
    ),
    what: str = typer.Option(
        "records",
        "--what",
        help="records: one row per request (every sweep point's, for a sweep); summary: one row for a run, one per point for a sweep.",
    ),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv or parquet."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="File to write (csv: default stdout; parquet: required)."
    ),
) -> None:
    """Export a run's or a sweep's records or summary for pandas, polars, DuckDB or a
    spreadsheet."""
    if what not in WHAT:
        raise fail(f"--what must be one of {', '.join(WHAT)}, got {what!r}")
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        if out is None:
            raise UsageError("--format parquet writes a file: give --out FILE")
        require_pyarrow()
    loaded = load_target(target)
    table: ExportTable
    if loaded.run is not None:
        run = loaded.run
        table = records_table(run.records) if what == "records" else run_summary_table(run.results)
    else:
        assert loaded.sweep is not None
        if what == "records":
            points = loaded.sweep["points"]
            table = sweep_records_table(
                [(p, r.records) for p, r in zip(points, loaded.points, strict=True) if r]
            )
        else:
            table = sweep_summary_table(loaded.sweep)
    if fmt == "parquet":
        assert out is not None
        n = write_parquet(table, out)
    elif out is None:
        write_csv(table, sys.stdout)
        return
    else:
        with out.open("w", newline="", encoding="utf-8") as f:
            n = write_csv(table, f)
    err_console.print(f"wrote {counted(n, 'row')} to {out}", highlight=False, markup=False)
