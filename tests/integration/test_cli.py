"""The command line as a user runs it: bench, report in every format, and the demo."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

RESULT_KEYS = {
    "requests_sent",
    "requests_completed",
    "requests_failed",
    "duration_s",
    "request_throughput_rps",
    "output_token_throughput_tok_s",
    "total_token_throughput_tok_s",
    "achieved_concurrency",
    "goodput_rps",
}
DIST_KEYS = {
    "ttft_ms",
    "tpot_ms",
    "itl_ms",
    "e2e_ms",
    "inter_chunk_ms",
    "queue_delay_ms",
    "input_tokens",
    "output_tokens",
}
STAT_KEYS = {"count", "mean", "std", "min", "p50", "p90", "p95", "p99", "max"}


def test_bench_then_report_in_every_format(llama_server, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli(
        "bench",
        "--url",
        llama_server.url,
        "--model",
        "tiny",
        "--concurrency",
        "2",
        "--num-requests",
        "6",
        "--input-tokens",
        "40",
        "--output-tokens",
        "12",
        "--slo",
        "ttft_ms=5000,p90_e2e_ms=10000",
        "--percentiles",
        "99.9",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    assert "TTFT" in res.stdout and "TPOT" in res.stdout and "goodput" in res.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1
    assert set(results["summary"]) >= RESULT_KEYS
    assert set(results["distributions"]) >= DIST_KEYS
    for name in DIST_KEYS:
        assert set(results["distributions"][name]) >= STAT_KEYS
    assert "p99_9" in results["distributions"]["ttft_ms"]
    assert results["summary"]["goodput_rps"] > 0 and results["slo"]["passed"] is True
    assert results["percentile_method"] == "linear"

    as_json = run_cli("report", str(out), "--format", "json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["summary"] == results["summary"]
    as_csv = run_cli("report", str(out), "--format", "csv")
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert float(rows["requests_completed"]["value"]) == 6
    assert float(rows["ttft_ms"]["p50"]) == pytest.approx(
        results["distributions"]["ttft_ms"]["p50"]
    )
    as_md = run_cli("report", str(out), "--format", "md")
    assert "| TTFT (ms) |" in as_md.stdout
    table = run_cli("report", str(out))
    assert table.returncode == 0 and "latency" in table.stdout
    bad = run_cli("report", str(tmp_path))
    assert bad.returncode == 2 and "not an infermeter run directory" in bad.stderr


def test_out_dir_that_holds_a_run_is_refused(llama_server, tmp_path: Path) -> None:
    args = [
        "bench",
        "--url",
        llama_server.url,
        "-c",
        "1",
        "-n",
        "1",
        "--input-tokens",
        "24",
        "--output-tokens",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "r"),
    ]
    assert run_cli(*args).returncode == 0
    again = run_cli(*args)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_demo_on_the_tiny_model(tmp_path: Path, llama_binary, tiny_model) -> None:
    res = run_cli(
        "demo",
        "--model-size",
        "tiny",
        "--levels",
        "1,2",
        "--requests-per-level",
        "4",
        "--input-tokens",
        "32",
        "--output-tokens",
        "16",
        "--out",
        str(tmp_path / "d"),
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "concurrency compared" in res.stdout
    for level in (1, 2):
        results = json.loads((tmp_path / "d" / f"c{level}" / "results.json").read_text())
        assert results["summary"]["requests_completed"] == 4
        assert results["distributions"]["output_tokens"]["min"] == 16
    assert (tmp_path / "d" / "llama-server.log").exists()


def test_estimate_cli() -> None:
    res = run_cli(
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--gpu",
        "h200",
        "--batch",
        "8",
        "--json",
        "--sweep-batch",
        "1,8,64",
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["kv_bytes_per_token"] == 131072 and out["max_concurrency"] > 100
    assert [r["batch"] for r in out["batch_sweep"]] == [1, 8, 64]
    table = run_cli(
        "estimate", "--model", "mixtral-8x7b", "--gpu", "h100", "--gpus", "2", "--tp", "2"
    )
    assert table.returncode == 0 and "TPOT lower bound" in table.stdout
    listing = run_cli("estimate", "--list")
    assert "deepseek-v3" in listing.stdout and "h200-sxm" in listing.stdout
    bad = run_cli("estimate", "--model", "llama-3.1-8", "--gpu", "h200")
    assert bad.returncode == 2 and "did you mean llama-3.1-8b" in bad.stderr
    bad_tp = run_cli("estimate", "--model", "llama-3.1-8b", "--gpus", "3", "--tp", "2")
    assert bad_tp.returncode == 2 and "not a multiple" in bad_tp.stderr


def _error_line(stderr: str) -> str:
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith("error:"), stderr
    return lines[0]


def test_analyze_unknown_gpu_or_shape_is_a_usage_error(emulator, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with emulator(ttft_ms=1, itl_ms=1) as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "1", "-n", "2", "--input-tokens", "16",
            "--output-tokens", "4", "--quiet", "--out", str(run),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    before = (run / "results.json").read_text()
    # The served model ("ground-truth") has no shape: the GPU must still be checked.
    for extra in ([], ["--model-shape", "llama-2-7b"]):
        bad = run_cli("analyze", str(run), "--gpu", "foo", *extra)
        assert bad.returncode == 2, (extra, bad.stdout, bad.stderr)
        line = _error_line(bad.stderr)
        assert "--gpu" in line and "'foo'" in line and "estimate --list" in line, line
    bad = run_cli("analyze", str(run), "--gpu", "h200", "--model-shape", "llama-9z")
    assert bad.returncode == 2 and "--model-shape" in _error_line(bad.stderr)
    assert (run / "results.json").read_text() == before  # a refused analysis writes nothing
    # A known GPU with no shape for the served model: analysed, and the note says why.
    ok = run_cli("analyze", str(run), "--gpu", "h200", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    notes = json.loads(ok.stdout)["analysis"]["notes"]
    assert any("--model-shape" in n for n in notes), notes


def test_bench_checks_gpu_before_measuring(emulator, tmp_path: Path) -> None:
    with emulator(ttft_ms=1, itl_ms=1) as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "1", "-n", "2", "--quiet", "--gpu", "foo",
            "--out", str(tmp_path / "run"),
        )  # fmt: skip
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "--gpu" in _error_line(res.stderr) and not (tmp_path / "run").exists()
