"""The CLI's own words: help texts, metavars and error lines print exactly what they say."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from infermeter.cli import app
from infermeter.cli.common import fail, run_guarded
from infermeter.errors import UsageError
from infermeter.report.export import PARQUET_MISSING


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = [path for path, _ in _commands(typer.main.get_command(app))]


def _help(path: tuple[str, ...]) -> str:
    res = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    )
    assert res.exit_code == 0, res.output
    return res.output


def test_every_command_is_listed() -> None:
    assert ("bench",) in COMMANDS and ("engine", "build") in COMMANDS and () in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "infermeter")
def test_help_shows_no_python_types_for_metavars(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert not re.search(r"<(bool|str|int|float|path|list\[[^]]*\])>", text), text


def test_help_keeps_bracketed_extras() -> None:
    text = _help(("bench",))
    assert "infermeter[hf]" in text and "infermeter[ray]" in text, text
    assert "normal:MEAN:STD[:MIN:MAX]" in text


def test_flags_show_sensible_metavars() -> None:
    text = _help(("bench",))
    line = next(x for x in text.splitlines() if "--ignore-eos" in x)
    assert re.search(r"--ignore-eos\s+Send ignore_eos", line), line  # a flag takes no value
    line = next(x for x in text.splitlines() if "--concurrency" in x)
    assert re.search(r"-c\s+N\s+Closed loop", line), line
    line = next(x for x in text.splitlines() if "--url" in x)
    assert re.search(r"\s+URL\s+Server base URL", line), line


def test_every_option_and_argument_has_help() -> None:
    missing = []
    for path, cmd in _commands(typer.main.get_command(app)):
        for param in cmd.params:
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{' '.join(path)} {param.opts[0] if param.opts else param.name}")
    assert not missing, missing


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "infermeter")
def test_rendered_option_rows_carry_text(path: tuple[str, ...]) -> None:
    """Each option row in the help panel has words after the flag and its metavar."""
    rows = [
        x.strip("│ ").strip() for x in _help(path).splitlines() if re.match(r"^│\s+(\*\s+)?-", x)
    ]
    assert rows
    for row in rows:
        # typer's own additions are not a description
        words = re.sub(r"\[(default|required|env var)[^]]*\]", "", row).split()
        while words and (words[0] == "*" or words[0].startswith("-")):
            words.pop(0)  # the flag's names
        if words and re.fullmatch(r"<.*>|[A-Z][A-Z_:|.]*(\.\.\.)?", words[0]):
            words.pop(0)  # its metavar
        assert re.search(r"[a-z]{2}", " ".join(words)), row


def _errors(capsys: pytest.CaptureFixture[str], exc: Exception) -> str:
    cli = typer.Typer(pretty_exceptions_enable=False)

    @cli.command()
    def boom() -> None:
        raise exc

    code = run_guarded(cli)
    assert code != 0
    return capsys.readouterr().err


def test_error_lines_print_brackets_and_colons_verbatim(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["infermeter"])
    err = _errors(capsys, UsageError(PARQUET_MISSING))
    assert "pip install 'infermeter[parquet]'" in err, err
    err = _errors(capsys, UsageError("--input-tokens: cannot read 'normal:100:-5'"))
    assert "'normal:100:-5'" in err, err
    err = _errors(capsys, RuntimeError("[bold]x[/] :100:"))
    assert "[bold]x[/] :100:" in err, err
    fail("--format: 'infermeter[parquet]' normal:100:-5")
    err = capsys.readouterr().err
    assert "'infermeter[parquet]' normal:100:-5" in err, err


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "infermeter")
def test_every_help_text_prints_verbatim(path: tuple[str, ...]) -> None:
    """No help loses a ``[word]`` to markup or a ``:code:`` to an emoji."""
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]

    def flat(text: str) -> str:
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())

    shown = flat(_help(path))
    raw = {p.name: p.help for p in cmd.params if p.help}  # escaped for markup by now
    for name, text in raw.items():
        plain = flat(text.replace("\\[", "["))
        assert plain in shown, (name, plain)
