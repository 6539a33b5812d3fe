"""Ctrl-C while the command is still starting: its one line and exit status, at once.

The command's imports (typer, rich, pydantic, numpy) take half a second, more on a busy
machine. A Ctrl-C that raised inside them would print the traceback of whichever import it
landed in, or leave a half-initialised extension module to crash the interpreter on its way
out; nothing has started that needs stopping, so until the command's own guard is up
(``cli.common.run_guarded``) a Ctrl-C ends the process at once. The package installs this
first thing when it is the command being run (``python -m infermeter``, the ``infermeter``
script), so that the window before it is the interpreter's own start only; imported as a
library it changes nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

#: Exit status of a command stopped by SIGINT (128 + 2), as the command itself returns.
EXIT_INTERRUPTED = 130


def interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def run_as_command() -> bool:
    """Whether this process is the infermeter command, not a program importing the package."""
    argv = list(getattr(sys, "orig_argv", ()))
    as_module = any(
        a == "-minfermeter" or (a == "-m" and argv[i + 1 : i + 2] == ["infermeter"])
        for i, a in enumerate(argv)
    )
    return as_module or os.path.basename(sys.argv[0] if sys.argv else "") == "infermeter"


def guard_startup() -> None:
    """Install the starting handler in place of Python's own (a process started with SIGINT
    ignored, a shell's background job or nohup, keeps it ignored; an embedding program's own
    handler is left alone)."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return
    try:
        signal.signal(signal.SIGINT, interrupted_while_starting)
    except ValueError:  # not the main thread: not the command starting
        pass
