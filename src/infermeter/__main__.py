"""``infermeter`` and ``python -m infermeter``: the command, with Ctrl-C safe from the start
(``infermeter._startup``: until the command's guard is up, a Ctrl-C ends the process at once
with the command's one line and exit status). Only the package's own small modules are
imported before that.
"""

from __future__ import annotations

from infermeter._startup import guard_startup


def main() -> None:
    # The package did this already when it was imported as the command; a caller that
    # imported it another way (a test, an embedding script) gets it here.
    guard_startup()
    from infermeter.cli import main as cli_main

    # the command puts Python's own handler back once its guard is up (run_guarded)
    cli_main()


if __name__ == "__main__":
    main()
