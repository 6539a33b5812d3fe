"""The ``infermeter`` command. Thin: parse flags, build one config, call the library."""

from __future__ import annotations

import sys

import typer

from infermeter._startup import EXIT_INTERRUPTED
from infermeter.cli import (
    analyze,
    bench,
    compare,
    demo,
    emulator,
    engine,
    estimate,
    export,
    predict,
    proxy,
    report,
    sweep,
)
from infermeter.cli.common import EXIT_TERMINATED, Command, Group, run_guarded

app = typer.Typer(
    name="infermeter",
    help="How fast your LLM inference really is, why, and how far from the hardware's limit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
    cls=Group,
)
app.command("bench", cls=Command)(bench.bench)
app.command("sweep", cls=Command)(sweep.sweep)
app.command("report", cls=Command)(report.report)
app.command("compare", cls=Command)(compare.compare)
app.command("export", cls=Command)(export.export)
app.command("analyze", cls=Command)(analyze.analyze)
app.command("demo", cls=Command)(demo.demo)
app.command("estimate", cls=Command)(estimate.estimate)
app.command("fit", cls=Command)(predict.fit)
app.command("simulate", cls=Command)(predict.simulate)
app.command("plan", cls=Command)(predict.plan)
app.command("proxy", cls=Command)(proxy.proxy)
app.command("serve-ground-truth", cls=Command)(emulator.serve_ground_truth)
app.add_typer(engine.app, name="engine")


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        from infermeter import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


def main() -> None:
    code = run_guarded(app)
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        # CPython marks a KeyboardInterrupt that escapes code run from a string (dataclasses
        # and namedtuples build their methods so while the command's modules import) as
        # unhandled even where run_guarded caught it further out, and `python -m` then ends
        # the process by SIGINT (status -2) instead of with this code: running a string
        # again clears the mark.
        exec("None")
    sys.exit(code)
