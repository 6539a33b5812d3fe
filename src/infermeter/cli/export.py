"""``infermeter export RUN_OR_SWEEP``: records or summaries as CSV or Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from infermeter.cli.common import err_console, fail
from infermeter.cli.compare import load_target
from infermeter.errors import UsageError
from infermeter.records.rundir import (
    RECORDS_FILE,
    RUN_FILE,
    SWEEP_FILE,
    is_run_dir,
    is_sweep_dir,
    read_sweep_index,
)
from infermeter.report.export import (
    ExportTable,
    records_file_table,
    require_pyarrow,
    run_summary_table,
    sweep_records_table,
    sweep_summary_table,
    write_csv,
    write_parquet,
)
from infermeter.run.export import Source, write_records_csv
from infermeter.run.rundir import read_run_meta
from infermeter.text import counted

WHAT = ("records", "summary")
FORMATS = ("csv", "parquet")


def _sources(target: Path) -> list[Source]:
    """The records files of a run, or of every point of a sweep with its point."""
    if is_sweep_dir(target):
        index = read_sweep_index(target)
        return [
            (dict(p), target / str(p.get("dir", "")) / RECORDS_FILE)
            for p in index["points"]
            if is_run_dir(target / str(p.get("dir", "")))
        ]
    if not target.is_dir():
        raise UsageError(f"{target}: no such directory")
    if not is_run_dir(target):
        raise UsageError(f"{target} holds neither a run (run.json) nor a sweep ({SWEEP_FILE})")
    read_run_meta(target / RUN_FILE)  # a run.json of the wrong shape is said, as report says it
    return [(None, target / RECORDS_FILE)]


def _records_table(sources: list[Source]) -> ExportTable:
    if sources and sources[0][0] is not None:
        return sweep_records_table([(dict(p or {}), path) for p, path in sources])
    return records_file_table(sources[0][1]) if sources else records_file_table(Path())


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
    table: ExportTable
    if what == "records":
        # the records as they are on disk, a batch at a time: no summary is computed
        sources = _sources(target)
        if fmt == "csv":
            if out is None:
                write_records_csv(sources, sys.stdout)
                return
            with out.open("w", newline="", encoding="utf-8") as f:
                n = write_records_csv(sources, f)
            err_console.print(f"wrote {counted(n, 'row')} to {out}", highlight=False, markup=False)
            return
        table = _records_table(sources)
    else:
        loaded = load_target(target)
        if loaded.results is not None:
            table = run_summary_table(loaded.results)
        else:
            assert loaded.sweep is not None
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
