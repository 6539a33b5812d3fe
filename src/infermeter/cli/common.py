"""What every command shares: error handling, exit codes, cache directory, consoles."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

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


def _cli_exceptions() -> tuple[tuple[type[BaseException], ...], ...]:
    """(usage errors, exits, aborts) of click and of the click copy newer typers vendor."""
    usage: list[type[BaseException]] = []
    exits: list[type[BaseException]] = [typer.Exit]
    aborts: list[type[BaseException]] = [typer.Abort]
    for mod_name in ("click.exceptions", "typer._click.exceptions"):
        try:
            mod = __import__(mod_name, fromlist=["ClickException"])
        except ImportError:
            continue
        usage.append(mod.ClickException)
        for name, bucket in (("Exit", exits), ("Abort", aborts)):
            if hasattr(mod, name):
                bucket.append(getattr(mod, name))
    return tuple(usage), tuple(exits), tuple(aborts)


def run_guarded(app: Any) -> int:
    """Run the click app: user errors become one line and their exit code, never a traceback."""
    usage, exits, aborts = _cli_exceptions()
    try:
        rv = app(standalone_mode=False)
    except InfermeterError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except exits as exc:
        return int(getattr(exc, "exit_code", 0))
    except aborts:
        return EXIT_INTERRUPTED
    except usage as exc:
        # Unknown flag, bad value: click's own one-line message, exit 2.
        message = exc.format_message()  # type: ignore[attr-defined]
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err_console.print("interrupted", style="yellow")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except Exception as exc:
        # A bug, not a user error: still one line, with the way to see the whole story.
        if os.environ.get("INFERMETER_DEBUG"):
            raise
        err_console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {exc} "
            "(set INFERMETER_DEBUG=1 for the traceback, and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return rv if isinstance(rv, int) else 0
