"""What every command shares: error handling, exit codes, cache directory, consoles."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
import typer
from rich.console import Console

from infermeter.errors import InfermeterError

EXIT_INTERRUPTED = 130

err_console = Console(stderr=True)


def default_cache_dir() -> Path:
    """``$INFERMETER_CACHE``, else ``$XDG_CACHE_HOME/infermeter``, else ``~/.cache/infermeter``."""
    if os.environ.get("INFERMETER_CACHE"):
        return Path(os.environ["INFERMETER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "infermeter"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_guarded(app: Any) -> int:
    """Run the click app: user errors become one line and their exit code, never a traceback."""
    try:
        rv = app(standalone_mode=False)
    except InfermeterError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        # Usage errors (unknown flag, bad value): click's own one-line message, exit 2.
        err_console.print(
            f"[bold red]error:[/] {exc.format_message()}", highlight=False, soft_wrap=True
        )
        return exc.exit_code
    except click.exceptions.Abort:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        err_console.print("interrupted", style="yellow")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    return rv if isinstance(rv, int) else 0
