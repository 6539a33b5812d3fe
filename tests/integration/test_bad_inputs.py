"""Bad input of every kind: one line on stderr saying what is wrong and where, with the
documented exit code (2 usage, 3 server), never "unexpected ... please report it"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_cli
from infermeter.testing.emulator import EmulatorConfig, ThreadedServer

pytestmark = pytest.mark.integration

LOAD = ["-n", "2", "--input-tokens", "8", "--output-tokens", "4", "--quiet"]


def one_line_error(stderr: str) -> str:
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), stderr
    assert "unexpected" not in lines[0], stderr
    return lines[0]


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    """One emulator for the tests that only need something to answer."""
    with ThreadedServer(EmulatorConfig(ttft_ms=1, itl_ms=1)) as srv:
        yield srv


# -- 1. values no flag can mean --------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (["--rate", "inf"], "--rate"),
        (["--rate", "1e400"], "--rate"),
        (["-c", "1", "--duration", "nan"], "--duration"),
        (["-c", "1", "--seed", "-1"], "--seed"),
    ],
)
def test_non_finite_or_negative_values_are_usage_errors(
    server: ThreadedServer, tmp_path: Path, flags: list[str], flag: str
) -> None:
    res = run_cli("bench", "--url", server.url, *LOAD, *flags, "--out", str(tmp_path / "r"))
    assert res.returncode == 2, res.stderr
    assert one_line_error(res.stderr).startswith(f"error: {flag}")
    assert not (tmp_path / "r").exists()


def test_negative_weight_seed_is_a_usage_error(tmp_path: Path) -> None:
    res = run_cli("engine", "model", "--seed", "-1", "--out", str(tmp_path / "m"))
    assert res.returncode == 2, res.stderr
    assert "--seed" in one_line_error(res.stderr)
    assert not (tmp_path / "m").exists()


# -- 2. header injection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["X-A: b\r\nX-Injected: 1", "X-A: b\nX-Injected: 1", "X-A: b\rc", "X\nA: b"]
)
def test_header_with_a_line_break_is_refused(
    server: ThreadedServer, tmp_path: Path, header: str
) -> None:
    seen = server.server.requests_seen
    res = run_cli("bench", "--url", server.url, "-c", "1", *LOAD, "-H", header)
    assert res.returncode == 2, res.stderr
    assert one_line_error(res.stderr).startswith("error: --header")
    assert server.server.requests_seen == seen  # nothing was sent with it


# -- 5. messages that said the wrong thing ---------------------------------------------------


def test_dataset_directory_is_named_not_the_server(server: ThreadedServer, tmp_path: Path) -> None:
    res = run_cli("bench", "--url", server.url, "-c", "1", *LOAD, "--dataset", str(tmp_path))
    assert res.returncode == 2, res.stderr
    line = one_line_error(res.stderr)
    assert f"--dataset {tmp_path} is a directory" in line and "server" not in line
