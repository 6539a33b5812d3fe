"""Bad input of every kind: one line on stderr saying what is wrong and where, with the
documented exit code (2 usage, 3 server), never "unexpected ... please report it"."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import run_cli
from infermeter.clients.discovery import check_tls, discover
from infermeter.config import BenchConfig
from infermeter.errors import OutputError, ServerError
from infermeter.records import JsonlSink, RequestRecord
from infermeter.records.rundir import write_json
from infermeter.report.progress import LiveProgress
from infermeter.sweeps import SweepSpec, run_sweep
from infermeter.telemetry.base import _Recorder
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


@pytest.fixture(scope="module")
def finished_run(server: ThreadedServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "good"
    res = run_cli("bench", "--url", server.url, "-c", "1", *LOAD, "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


def copy_of(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


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


# -- 3. run files of the wrong shape ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "append", "expected"),
    [
        ("run.json", "[1, 2]", False, "run.json holds a list, not a JSON object"),
        ("run.json", '{"config": []}', False, "run.json: 'config' is a list"),
        ("run.json", '{"config": {"slo": 5}}', False, "run.json: config field 'slo'"),
        ("run.json", '{"schema_version": "1"}', False, "'schema_version' is a string"),
        ("results.json", "[1, 2]", False, "results.json holds a list, not a JSON object"),
        ("results.json", '{"run": 7}', False, "results.json: 'run' is an integer"),
        ("records.jsonl", "5\n", True, "records.jsonl:3: an integer, not a record object"),
        ("records.jsonl", "[1]\n", True, "records.jsonl:3: a list, not a record object"),
        ("records.jsonl", '{"id": 9, "n_out": "many"}\n', True, "3: field 'n_out' is a string"),
        ("records.jsonl", '{"id": 9, "chunk_ns": [1, "x"]}\n', True, "3: field 'chunk_ns'"),
        ("records.jsonl", '{"id": 9, "v": "1"}\n', True, "3: field 'v' is a string"),
        ("records.jsonl", '{"ok": true}\n', True, "3: a record without an 'id'"),
    ],
)
def test_report_names_the_file_of_the_wrong_shape(
    finished_run: Path, tmp_path: Path, name: str, content: str, append: bool, expected: str
) -> None:
    run = copy_of(finished_run, tmp_path)
    with open(run / name, "a" if append else "w") as fh:
        fh.write(content)
    res = run_cli("report", str(run))
    assert res.returncode == 2, res.stderr
    line = one_line_error(res.stderr)
    assert str(run / name) in line and expected in line, line


# -- 4. a full disk --------------------------------------------------------------------------


def dev_full_writable() -> bool:
    return os.path.exists("/dev/full") and os.access("/dev/full", os.W_OK)


@pytest.mark.skipif(not dev_full_writable(), reason="needs a writable /dev/full")
@pytest.mark.parametrize("name", ["warmup.jsonl", "run.json.part", "results.json.part"])
def test_full_disk_names_the_file(server: ThreadedServer, tmp_path: Path, name: str) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / name).symlink_to("/dev/full")  # every write there fails with ENOSPC
    res = run_cli(
        "bench", "--url", server.url, "-c", "1", *LOAD, "--warmup", "1", "--out", str(out)
    )
    assert res.returncode == 2, res.stderr
    written = out / name.removesuffix(".part")
    assert one_line_error(res.stderr) == f"error: cannot write {written}: No space left on device"


class _FullDisk(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_sink_on_a_full_disk_names_its_path(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "records.jsonl")
    sink._fh.close()  # type: ignore[union-attr]
    sink._fh = io.BufferedWriter(_FullDisk())
    with pytest.raises(OutputError, match=r"cannot write .*records\.jsonl: No space left"):
        sink.write(RequestRecord(id=0, ok=True))
    with pytest.raises(OutputError, match="No space left"):
        sink.close()  # what the failed write left in the buffer cannot go anywhere either
    sink.close()


def test_write_json_on_a_full_disk_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Path, data: bytes) -> int:
        self.touch()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OutputError, match=r"cannot write .*results\.json: No space left"):
        write_json(tmp_path / "results.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


class _Constant:
    name, period_s = "constant", 0.01

    def start(self) -> str | None:
        return None

    def sample(self) -> dict[str, Any]:
        return {"value": 1}

    def close(self) -> None:
        pass


@pytest.mark.skipif(not dev_full_writable(), reason="needs a writable /dev/full")
def test_telemetry_on_a_full_disk_stops_with_a_note() -> None:
    rec = _Recorder(Path("/dev/full"), [_Constant()], 0)
    with rec:
        time.sleep(0.1)
    assert rec.notes == ["all telemetry stopped: cannot write /dev/full: No space left on device"]


# -- 5. messages that said the wrong thing ---------------------------------------------------


def test_dataset_directory_is_named_not_the_server(server: ThreadedServer, tmp_path: Path) -> None:
    res = run_cli("bench", "--url", server.url, "-c", "1", *LOAD, "--dataset", str(tmp_path))
    assert res.returncode == 2, res.stderr
    line = one_line_error(res.stderr)
    assert f"--dataset {tmp_path} is a directory" in line and "server" not in line


def test_url_path_typo_names_the_404(server: ThreadedServer) -> None:
    res = run_cli("bench", "--url", server.url + "/v2", "-c", "1", *LOAD)
    assert res.returncode == 3, res.stderr
    line = one_line_error(res.stderr)
    assert f"{server.url}/v2/v1/models answered HTTP 404" in line and "--url" in line


def test_https_to_plain_http_says_tls_at_once(server: ThreadedServer) -> None:
    https = server.url.replace("http://", "https://", 1)
    started = time.monotonic()
    res = run_cli("bench", "--url", https, "-c", "1", *LOAD)
    took = time.monotonic() - started
    assert res.returncode == 3, res.stderr
    line = one_line_error(res.stderr)
    assert "TLS handshake" in line and "plain http" in line and f"try {server.url}" in line
    assert took < 8, f"{took:.1f} s: the pre-flight timeout was waited for"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    """A self-signed certificate for a TLS listener (openssl's command line makes it)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    yield "https://127.0.0.1", ctx


async def test_a_tls_server_passes_the_tls_check(tls_server: tuple[str, ssl.SSLContext]) -> None:
    origin, ctx = tls_server

    async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    srv = await asyncio.start_server(idle, "127.0.0.1", 0, ssl=ctx)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        await check_tls(f"{origin}:{port}/v1", f"{origin}:{port}")  # no error


class _Answers:
    """A transport whose every GET answers ``status`` with no body."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def get_json(self, url: str, timeout_s: float = 10.0) -> tuple[int, Any]:
        return self.status, None


async def test_rate_limited_discovery_says_so_not_url() -> None:
    with pytest.raises(ServerError, match=r"/v1/models answered HTTP 429 \(rate-limited\)"):
        await discover(_Answers(429), "http://127.0.0.1:1", None)  # type: ignore[arg-type]


# -- 6. a torn last record -------------------------------------------------------------------


def test_report_notes_a_torn_last_line(finished_run: Path, tmp_path: Path) -> None:
    run = copy_of(finished_run, tmp_path)
    with open(run / "records.jsonl", "ab") as fh:
        fh.write(b'{"id": 99, "ok": tr')
    for fmt in ("json", "table"):
        res = run_cli("report", str(run), "--format", fmt)
        assert res.returncode == 0, res.stderr
        assert res.stderr.strip() == (
            f"note: the last line of {run / 'records.jsonl'} is cut (the run was stopped "
            "while writing it); left out"
        )
    res = run_cli("report", str(finished_run), "--format", "json")
    assert res.returncode == 0 and res.stderr == ""


# -- 7. user text is printed as given, never as emoji ----------------------------------------


def test_usage_error_keeps_emoji_codes_verbatim(server: ThreadedServer) -> None:
    res = run_cli("bench", "--url", server.url, "-c", "1", *LOAD, "--input-tokens", "normal:100:-5")
    assert res.returncode == 2
    line = one_line_error(res.stderr)
    assert "'normal:100:-5'" in line and "💯" not in line


def test_progress_console_keeps_emoji_codes() -> None:
    text = LiveProgress(None, None).console.render_str("normal:100:-5")
    assert text.plain == "normal:100:-5"


def test_sweep_lines_keep_emoji_codes_on_any_console(
    server: ThreadedServer, tmp_path: Path
) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=200)  # a caller's console: emoji codes on
    base = BenchConfig.build(
        url=server.url, concurrency=1, num_requests=2, input_tokens="normal:100:20",
        output_tokens="4", telemetry=False,
    )  # fmt: skip
    run_sweep(base, SweepSpec("concurrency", (1,)), tmp_path / "sw", console=console)
    assert "in normal:100:20" in buf.getvalue() and "💯" not in buf.getvalue()
