"""What every command shares: error handling, exit codes, cache directory, consoles, and the
command classes that make every help page read the same."""

from __future__ import annotations

import os
import signal
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from infermeter._startup import EXIT_INTERRUPTED
from infermeter.errors import InfermeterError
from infermeter.lifetime import sigterm_as_interrupt, terminated
from infermeter.report.terminal import make_console

if TYPE_CHECKING:
    from infermeter.predict.simulate import Router

#: How requests are spread over replicas: by simulate and plan, and by the proxy live.
ROUTERS: tuple[Router, ...] = ("least-outstanding", "round-robin")


def router_named(text: str) -> Router:
    """The router ``--router`` names; a usage error otherwise."""
    for router in ROUTERS:
        if text == router:
            return router
    raise fail(f"--router must be {' or '.join(ROUTERS)}, got {text!r}")


#: 128 + SIGTERM: what ``timeout``, ``docker stop``, Kubernetes and CI cancellation send.
EXIT_TERMINATED = 143


def handle_sigterm() -> None:
    """Install the SIGTERM handler (main thread only; every command runs there)."""
    sigterm_as_interrupt()


_interrupt_told = False


def interrupted_exit() -> int:
    """The exit code of a command stopped by a signal: 143 for SIGTERM, 130 for Ctrl-C. A
    command that returns it has told the user what it kept."""
    global _interrupt_told
    _interrupt_told = True
    return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED


def interrupted_word() -> str:
    return "terminated (SIGTERM)" if terminated() else "interrupted"


#: Progress and messages. Emoji codes stay text: ``normal:100:-5`` is a length, not a 💯.
err_console = Console(stderr=True, emoji=False)


def out_console() -> Console:
    """Where reports go (stdout): off a terminal, as wide as the widest table."""
    return make_console()


def print_error(message: str) -> None:
    """``error: MESSAGE`` on stderr, the message verbatim (no markup, no emoji codes: a
    ``pip install 'infermeter[parquet]'`` keeps its brackets)."""
    err_console.print(
        Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )


#: Float flags counted in seconds, by the end of their name.
_SECONDS_SUFFIXES = ("duration", "timeout", "ramp_up", "_s")


def _metavar(param: Any) -> None:
    """The value a flag takes, as help shows it: none for an on/off flag, ``N`` for a count,
    ``S`` for seconds, ``PATH`` for a file, else the flag's last word (``--api-key KEY``).
    A metavar given where the option is declared wins."""
    if isinstance(param, TyperArgument):
        if param.metavar is None:
            param.metavar = param.name.upper()
        # The name says what it is; typer would add a <path> or <str> beside it.
        param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        return
    if param.metavar is not None or not isinstance(param, TyperOption):
        return
    if param.is_flag:
        param.metavar = ""
        return
    desc = param.type_descriptor
    kind = desc.annotation
    if desc.is_list:
        kind = (typing.get_args(kind) or (str,))[0]
    name = param.name or ""
    if kind is int:
        param.metavar = "N"
    elif kind is float:
        param.metavar = (
            "S" if name.endswith(_SECONDS_SUFFIXES) else "MS" if name.endswith("_ms") else "NUM"
        )
    elif desc.is_path or kind is Path:
        param.metavar = "PATH"
    else:
        longs = [o for o in param.opts if o.startswith("--")] or param.opts
        param.metavar = longs[0].lstrip("-").split("-")[-1].upper()


def _polish(command: Any) -> None:
    """Help texts go through Rich markup: escape them, so ``infermeter[hf]`` is not a style."""
    for attr in ("help", "short_help", "epilog"):
        if getattr(command, attr, None):
            setattr(command, attr, escape(getattr(command, attr)))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)
        _metavar(param)


class _Polished:
    """Help conventions shared by commands and groups: texts verbatim, plain metavars."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _polish(self)

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:  # --help is made here, not in __init__
            _metavar(param)
        return params


class Command(_Polished, TyperCommand):
    """A command whose help prints its texts verbatim and names each flag's value plainly."""


class Group(_Polished, TyperGroup):
    """A command group with :class:`Command`'s help conventions."""


#: The help of every --cache-dir.
CACHE_DIR_HELP = "Builds and models live here (default: $INFERMETER_CACHE or ~/.cache/infermeter)."
#: ``--think-tags`` of bench and proxy, which read a stream alike.
THINK_TAGS_HELP = (
    "The model thinks inside its answer's text as <think>…</think> (servers that send "
    "reasoning_content or reasoning deltas need no flag): TTFA counts from the text after it."
)


def default_cache_dir() -> Path:
    """``$INFERMETER_CACHE``, else ``$XDG_CACHE_HOME/infermeter``, else ``~/.cache/infermeter``."""
    if os.environ.get("INFERMETER_CACHE"):
        return Path(os.environ["INFERMETER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "infermeter"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    print_error(message)
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
    handle_sigterm()
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        # From here a Ctrl-C is an exception turned into one line below; until here the
        # entry point's handler ended the process at once (infermeter.__main__).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rv = app(standalone_mode=False)
    except InfermeterError as exc:
        print_error(exc.message)
        return exc.exit_code
    except exits as exc:
        code = int(getattr(exc, "exit_code", 0))
        # click turns an interrupt into Exit(130); a SIGTERM's is 143
        return _interrupted() if code == EXIT_INTERRUPTED else code
    except aborts:
        return interrupted_exit()
    except usage as exc:
        # Unknown flag, bad value: click's own one-line message, exit 2.
        message = exc.format_message()  # type: ignore[attr-defined]
        print_error(message)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err_console.print(interrupted_word(), style="yellow")
        return interrupted_exit()
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except Exception as exc:
        # A bug, not a user error: still one line, with the way to see the whole story.
        if os.environ.get("INFERMETER_DEBUG"):
            raise
        print_error(
            f"unexpected {type(exc).__name__}: {exc} "
            "(set INFERMETER_DEBUG=1 for the traceback, and please report it)"
        )
        return 1
    if not isinstance(rv, int):
        return 0
    # Outside standalone mode click returns an Exit's code; an interrupt's is 130 even
    # when SIGTERM caused it.
    return _interrupted() if rv == EXIT_INTERRUPTED else rv


def _interrupted() -> int:
    """An interrupt's exit code, said in one line where no command said what it kept (typer
    turns an interrupt nothing caught into exit code 130, silently)."""
    if not _interrupt_told:
        err_console.print(interrupted_word(), style="yellow")
    return interrupted_exit()
