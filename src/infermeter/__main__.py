"""``infermeter`` and ``python -m infermeter``: the command, with Ctrl-C safe from the start.

The command's imports (typer, rich, pydantic, numpy) take half a second. A Ctrl-C that
raised inside them would print the traceback of whichever import it landed in, or leave a
half-initialised extension module to crash the interpreter on its way out; nothing has
started yet that needs stopping, so until they are done a Ctrl-C ends the process at once,
with the command's one line and exit status. Only this module is imported before that.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

#: Exit status of a command stopped by SIGINT (128 + 2), as the command itself returns.
_EXIT_INTERRUPTED = 130


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(_EXIT_INTERRUPTED)


def main() -> None:
    # A process started with SIGINT ignored (a shell's background job, nohup) keeps it so.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupted_while_starting)
    from infermeter.cli import main as cli_main

    # the command puts Python's own handler back once its guard is up (run_guarded)
    cli_main()


if __name__ == "__main__":
    main()
