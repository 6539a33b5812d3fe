"""``infermeter`` and ``python -m infermeter``: the command, with Ctrl-C safe from the start.

The command's imports (typer, rich, pydantic) take half a second; a Ctrl-C in that time
would otherwise print the traceback of whichever import it landed in. Only this module
is imported before the guard is up.
"""

from __future__ import annotations

import sys

#: Exit status of a command stopped by SIGINT (128 + 2), as the command itself returns.
_EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from infermeter.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(_EXIT_INTERRUPTED)
    cli_main()


if __name__ == "__main__":
    main()
