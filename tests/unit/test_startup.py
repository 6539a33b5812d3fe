"""The Ctrl-C guard of the command's start: installed when infermeter is the command being run,
never when a program imports the package."""

from __future__ import annotations

import signal
import subprocess
import sys

_PROBE = (
    "import signal, sys; import infermeter; "
    "h = signal.getsignal(signal.SIGINT); "
    "print('python' if h is signal.default_int_handler else getattr(h, '__name__', h))"
)


def _sigint_default() -> None:
    # as a terminal starts it: a background job (CI's) would hand SIGINT down ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _handler_after_import(argv0: str) -> str:
    code = f"import sys; sys.argv[0] = {argv0!r}; " + _PROBE
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_sigint_default,
    ).stdout.strip()


def test_a_program_importing_the_package_keeps_pythons_handler() -> None:
    assert _handler_after_import("-c") == "python"
    assert _handler_after_import("/srv/my-infermeter-tool") == "python"


def test_the_infermeter_script_is_guarded_from_its_first_import() -> None:
    assert _handler_after_import("/usr/local/bin/infermeter") == "interrupted_while_starting"


def test_python_dash_m_is_recognised_from_its_original_command_line(monkeypatch) -> None:
    from infermeter import _startup

    monkeypatch.setattr(sys, "argv", ["-m"])
    for orig, expected in (
        ([sys.executable, "-m", "infermeter", "bench"], True),
        ([sys.executable, "-minfermeter"], True),
        ([sys.executable, "-m", "pytest", "infermeter"], False),
        ([sys.executable, "-m", "mytool"], False),
    ):
        monkeypatch.setattr(sys, "orig_argv", orig, raising=False)
        assert _startup.run_as_command() is expected, orig


def test_an_ignored_sigint_stays_ignored() -> None:
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "from infermeter import _startup; _startup.guard_startup(); "
        "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_ctrl_c_caught_inside_generated_code_still_exits_130(tmp_path: object) -> None:
    # A Ctrl-C that lands while a dataclass builds its methods (an exec of a string, as
    # the command's modules import) is caught and told by run_guarded, but CPython marks
    # it unhandled, and under `python -m` the process would then end by SIGINT (-2) rather
    # than with the command's 130. Landed there on purpose, as a module run with -m:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "ctrl_c_in_exec.py").write_text(
        "import infermeter.cli as cli\n"
        "def guarded(app):\n"
        "    try:\n"
        "        exec('raise KeyboardInterrupt')\n"
        "    except KeyboardInterrupt:\n"
        "        return 130\n"
        "cli.run_guarded = guarded\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "ctrl_c_in_exec"],
        cwd=root,
        capture_output=True,
        text=True,
        preexec_fn=_sigint_default,
    )
    assert done.returncode == 130, done.stderr
