"""Bad input and broken servers: one clear line, a meaningful exit code, nothing lost."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from conftest import run_cli, start_cli, wait_for_records
from infermeter.records import read_records

pytestmark = pytest.mark.integration

BASE = [
    "--concurrency",
    "2",
    "--num-requests",
    "6",
    "--input-tokens",
    "16",
    "--output-tokens",
    "8",
    "--quiet",
]


def one_line_error(stderr: str) -> str:
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), stderr
    return lines[0]


def test_unreachable_url(tmp_path: Path) -> None:
    res = run_cli("bench", "--url", "http://127.0.0.1:9", *BASE, "--out", str(tmp_path / "r"))
    assert res.returncode == 3
    assert "cannot reach http://127.0.0.1:9" in one_line_error(res.stderr)
    assert not (tmp_path / "r").exists()  # nothing measured, no half-made run directory


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    res = run_cli(
        "bench",
        "--url",
        "http://127.0.0.1:9",
        "--concurrency",
        "2",
        "--rate",
        "3",
        "--num-requests",
        "4",
    )
    assert res.returncode == 2
    assert "exactly one of --concurrency" in one_line_error(res.stderr)
    res = run_cli("bench", "--url", "http://127.0.0.1:9", "--concurrency", "2")
    assert res.returncode == 2 and "--num-requests" in one_line_error(res.stderr)
    res = run_cli("bench", "--url", "http://127.0.0.1:9", "-c", "1", "-n", "1", "--slo", "fast=1")
    assert res.returncode == 2 and "--slo" in one_line_error(res.stderr)
    res = run_cli("bench", "--no-such-flag")
    assert res.returncode == 2 and "no-such-flag" in res.stderr and "Traceback" not in res.stderr


def test_http_500_at_preflight(emulator, tmp_path: Path) -> None:
    with emulator(fault="http_500") as srv:
        res = run_cli("bench", "--url", srv.url, *BASE, "--out", str(tmp_path / "r"))
    assert res.returncode == 3
    assert "HTTP 500: emulated HTTP 500" in one_line_error(res.stderr)


def test_wrong_model_names_the_served_ones(emulator, tmp_path: Path) -> None:
    with emulator() as srv:
        res = run_cli("bench", "--url", srv.url, "--model", "gpt-9", *BASE)
    assert res.returncode == 2
    assert "it serves: ground-truth" in one_line_error(res.stderr)


@pytest.mark.parametrize(
    ("fault", "kind", "extra"),
    [
        ("http_429", "http_429", []),
        ("malformed", "protocol", []),
        ("drop", "incomplete_stream", []),
        ("no_finish", "incomplete_stream", []),
        ("stall", "timeout", ["--stall-timeout", "0.5"]),
        # a chunk-size line that is not hexadecimal: one failed request, not a crashed run
        ("bad_chunk_size", "protocol", []),
        ("bad_chunk_size", "protocol", ["--transport", "aiohttp"]),
    ],
)
def test_faults_mid_run_are_recorded(
    emulator, tmp_path: Path, fault: str, kind: str, extra: list[str]
) -> None:
    out = tmp_path / "r"
    # Every 2nd stream misbehaves (the pre-flight probe is the 1st, so it passes).
    with emulator(ttft_ms=2, itl_ms=1, fault=fault, fault_every=2) as srv:
        res = run_cli(
            "bench", "--url", srv.url, *BASE, *extra, "--out", str(out), "--format", "json"
        )
        completed = srv.server.completed
    assert res.returncode == 1, res.stderr
    line = one_line_error(res.stderr)
    assert "requests failed" in line and kind in line
    results = json.loads(res.stdout)
    s = results["summary"]
    assert s["requests_sent"] == 6 and s["requests_failed"] >= 1
    assert s["requests_completed"] + s["requests_failed"] == 6
    assert results["errors"]["by_kind"].get(kind) == s["requests_failed"]
    recs = read_records(out / "records.jsonl")
    assert not recs.torn_last_line and len(recs.records) == 6
    bad = [r for r in recs.records if not r.ok]
    assert bad and all(r.error_kind and r.error_message for r in bad)
    # every stream the server finished has its record (the pre-flight request aside)
    assert sum(r.ok for r in recs.records) == completed - 1
    assert (out / "results.json").exists()


def test_missing_done_is_fine(emulator, tmp_path: Path) -> None:
    with emulator(ttft_ms=2, itl_ms=1, fault="no_done") as srv:
        res = run_cli("bench", "--url", srv.url, *BASE, "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr


def test_bad_dataset_row(emulator, tmp_path: Path) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "hello"}\n{"prompt": 3}\n')
    with emulator() as srv:
        res = run_cli(
            "bench",
            "--url",
            srv.url,
            "-c",
            "1",
            "-n",
            "2",
            "--dataset",
            str(data),
            "--output-tokens",
            "4",
            "--out",
            str(tmp_path / "r"),
        )
    assert res.returncode == 2
    assert "prompts.jsonl:2: needs a non-empty string" in one_line_error(res.stderr)


def test_input_longer_than_the_context(llama_server, tmp_path: Path) -> None:
    res = run_cli(
        "bench",
        "--url",
        llama_server.url,
        "-c",
        "1",
        "-n",
        "1",
        "--input-tokens",
        "1000",
        "--output-tokens",
        "100",
        "--out",
        str(tmp_path / "r"),
    )
    assert res.returncode == 2
    assert "context is 1024 tokens (context per slot)" in one_line_error(res.stderr)


def test_dataset_prompts_longer_than_the_context(llama_server, tmp_path: Path) -> None:
    """Sized by the server's own count before any load: none can fit, so none is sent."""
    data = tmp_path / "long.jsonl"
    row = {"prompt": "the river runs north " * 300, "max_tokens": 16}
    data.write_text(json.dumps(row) + "\n" + json.dumps({"prompt": "short", "max_tokens": 8}))
    res = run_cli(
        "bench", "--url", llama_server.url, "-c", "1", "-n", "4", "--dataset", str(data),
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    message = one_line_error(res.stderr)
    assert "need more tokens" in message and "context of 1024 tokens" in message
    assert not (tmp_path / "r" / "records.jsonl").exists()


def test_secrets_never_reach_disk_or_output(emulator, tmp_path: Path) -> None:
    out = tmp_path / "r"
    with emulator(ttft_ms=1, itl_ms=1) as srv:
        res = run_cli(
            "bench",
            "--url",
            srv.url,
            *BASE,
            "--out",
            str(out),
            "-H",
            "X-Secret: hdr-s3cr3t",
            env={"OPENAI_API_KEY": "sk-env-s3cr3t"},
        )
    assert res.returncode == 0, res.stderr
    blob = res.stdout + res.stderr + "".join(p.read_text() for p in out.iterdir())
    assert "sk-env-s3cr3t" not in blob and "hdr-s3cr3t" not in blob
    assert json.loads((out / "run.json").read_text())["config"]["api_key_set"] is True


def test_server_killed_mid_run(llama_binary, tiny_model, tmp_path: Path) -> None:
    from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig

    cfg = LlamaServerConfig(
        llama_binary,
        tiny_model.gguf,
        alias="tiny",
        ctx_per_slot=512,
        slots=2,
        threads=1,
        log_path=tmp_path / "server.log",
    )
    out = tmp_path / "r"
    with LlamaServer(cfg) as server:
        proc = start_cli(
            [
                "bench",
                "--url",
                server.url,
                "-c",
                "2",
                "-n",
                "60",
                "--input-tokens",
                "32",
                "--output-tokens",
                "200",
                # A stream the dead server leaves silent ends after 5 s, not the default 120.
                "--stall-timeout",
                "5",
                "--quiet",
                "--out",
                str(out),
            ],
        )
        wait_for_records(out / "records.jsonl", 3)
        server.kill()
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    recs = read_records(out / "records.jsonl")
    assert not recs.torn_last_line
    ok = [r for r in recs.records if r.ok]
    bad = [r for r in recs.records if not r.ok]
    assert len(ok) >= 3 and bad
    assert all(
        r.error_kind in ("connection", "incomplete_stream", "timeout") and r.error_message
        for r in bad
    )
    results = json.loads((out / "results.json").read_text())
    assert results["summary"]["requests_failed"] == len(bad)
    assert results["summary"]["requests_completed"] == len(ok)
    # The run stopped early instead of hammering a dead server for all 60 requests.
    assert results["run"]["aborted"] and len(recs.records) < 60
    assert "requests failed" in stdout + stderr or "consecutive connection failures" in stderr


def test_ctrl_c_keeps_finished_records(emulator, tmp_path: Path) -> None:
    out = tmp_path / "r"
    with emulator(ttft_ms=5, itl_ms=5) as srv:
        proc = start_cli(
            [
                "bench",
                "--url",
                srv.url,
                "-c",
                "2",
                "-n",
                "500",
                "--input-tokens",
                "8",
                "--output-tokens",
                "20",
                "--quiet",
                "--out",
                str(out),
            ],
        )
        wait_for_records(out / "records.jsonl", 5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["interrupted"] is True
    n = len(read_records(out / "records.jsonl").records)
    assert results["summary"]["requests_sent"] == n >= 5
    assert "interrupted" in stdout


def test_ctrl_c_at_any_moment_is_one_line(tmp_path: Path) -> None:
    # A long simulation (about 12 s alone on one core), stopped while the command still
    # imports its libraries (up to about 0.5 s), as it parses its flags and mid-simulation
    # (2.5 s): each time one line and 130, never the traceback of wherever it landed nor
    # an interpreter killed by the signal (a Ctrl-C raised inside an import once left one
    # run in ten ending -2, and one crashing).
    model = Path(__file__).resolve().parents[2] / "docs/results/replicas/engine.json"
    for delay in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 2.5):
        out = tmp_path / f"sim-{delay}"
        args = ["simulate", "-e", str(model), "--rate", "0.5", "-n", "100000"]
        proc = start_cli([*args, "--input-tokens", "64", "--output-tokens", "32", "-o", str(out)])
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, (delay, stderr)
        assert stderr.strip() == "interrupted", (delay, stderr)
        # nothing of a simulation cut short is a result: no run directory
        assert not out.exists(), delay
