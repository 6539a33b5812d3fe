"""``infermeter report DIR``: re-render a finished or interrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from infermeter.api import load_run
from infermeter.cli.common import fail
from infermeter.report.formats import to_csv, to_json, to_markdown
from infermeter.report.terminal import print_summary

FORMATS = ("table", "json", "csv", "md")


def emit(results: dict[str, Any], fmt: str) -> None:
    if fmt == "table":
        print_summary(results, Console())
    elif fmt == "json":
        typer.echo(to_json(results))
    elif fmt == "csv":
        typer.echo(to_csv(results), nl=False)
    else:
        typer.echo(to_markdown(results), nl=False)


def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'infermeter bench'."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, csv or md."),
) -> None:
    """Re-render a finished or interrupted run from its records."""
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    emit(load_run(run_dir).results, fmt)
