"""The in-process transformers backend (``--url hf:DIR``) on CPU with the generated tiny model:
its records pass the same checks as the HTTP clients', and TTFT is the first token's time."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from infermeter.api import load_run

pytestmark = pytest.mark.integration
pytest.importorskip("torch")
pytest.importorskip("transformers")


def _run(tiny_model, out: Path, *args: str):
    res = run_cli("bench", "--url", f"hf:{tiny_model.hf_dir}", "--out", str(out), "-q", *args)
    assert res.returncode == 0, res.stderr
    return load_run(out)


def test_records_are_exact_and_complete(tiny_model, tmp_path: Path) -> None:
    run = _run(
        tiny_model,
        tmp_path / "c4",
        "-c",
        "4",
        "-n",
        "12",
        "--warmup",
        "4",
        "--input-tokens",
        "48",
        "--output-tokens",
        "24",
        "--format",
        "json",
    )
    assert run.results["server"]["kind"] == "transformers"
    assert len(run.records) == 12
    for rec in run.records:
        assert rec.ok and rec.error_kind is None
        assert rec.n_in == rec.n_in_target == 48 and rec.n_in_source == "server"
        assert rec.n_out == 24 and rec.n_out_source == "server"
        assert len(rec.chunk_ns) == 24 and sum(rec.chunk_tokens) == 24
        assert rec.chunk_ns == sorted(rec.chunk_ns)
        assert rec.t_send_ns <= rec.t_first_ns == rec.chunk_ns[0]
        assert rec.t_first_ns < rec.t_last_ns == rec.t_end_ns
    s = run.results["summary"]
    assert s["requests_completed"] == 12 and s["error_rate"] == 0
    d = run.results["distributions"]
    assert d["ttft_ms"]["max"] < d["e2e_ms"]["min"] or d["ttft_ms"]["p50"] < d["e2e_ms"]["p50"]
    assert run.results["client"]["in_process"] is True
    assert not run.results["warnings"]  # the model's CPU is not the load generator's
    mem = run.results["run"]["engine_memory"]
    assert mem["device"] == "cpu" and mem["weights_bytes"] > 0
    # static batches of up to 4 (the concurrency)
    assert max(int(b) for b in mem["batch_sizes"]) <= 4


def test_ttft_is_the_first_token_not_the_whole_generation(tiny_model, tmp_path: Path) -> None:
    short = _run(
        tiny_model,
        tmp_path / "short",
        "-c",
        "1",
        "-n",
        "6",
        "--warmup",
        "2",
        "--input-tokens",
        "32",
        "--output-tokens",
        "4",
    )
    long = _run(
        tiny_model,
        tmp_path / "long",
        "-c",
        "1",
        "-n",
        "6",
        "--warmup",
        "2",
        "--input-tokens",
        "32",
        "--output-tokens",
        "96",
    )
    ttft_s = short.results["distributions"]["ttft_ms"]["p50"]
    ttft_l = long.results["distributions"]["ttft_ms"]["p50"]
    e2e_l = long.results["distributions"]["e2e_ms"]["p50"]
    # 24× more output: the end moves far out, the first token does not.
    assert e2e_l > 5 * ttft_l
    assert ttft_l < 3 * ttft_s + 20
    for rec in long.records:
        assert (rec.t_end_ns - rec.t_first_ns) > 0.5 * (rec.t_end_ns - rec.t_send_ns)


def test_inprocess_refusals(tiny_model, tmp_path: Path) -> None:
    res = run_cli(
        "bench", "--url", f"hf:{tmp_path}", "-c", "1", "-n", "1", "--out", str(tmp_path / "x")
    )
    assert res.returncode == 2 and "no config.json" in res.stderr
    res = run_cli(
        "bench",
        "--url",
        f"hf:{tiny_model.hf_dir}",
        "-c",
        "2",
        "-n",
        "2",
        "--workers",
        "2",
        "--out",
        str(tmp_path / "y"),
    )
    assert res.returncode == 2 and "runs the model in this process" in res.stderr
    res = run_cli(
        "bench",
        "--url",
        f"hf:{tiny_model.hf_dir}",
        "-c",
        "1",
        "-n",
        "1",
        "--hf-compile",
        "--out",
        str(tmp_path / "z"),
    )
    assert res.returncode == 2 and "--hf-cache static" in res.stderr


def test_runs_share_one_engine_thread_and_fill_batches(tiny_model, tmp_path: Path) -> None:
    """A sweep's points run one after another in one process: every run's engine loop runs on
    the same thread (CUDA-graph state is per thread), and closed-loop batches fill up."""
    import threading

    from infermeter.api import run_benchmark
    from infermeter.config import BenchConfig

    def run(out: str, **kw: object):
        cfg = BenchConfig.build(
            url=f"hf:{tiny_model.hf_dir}", concurrency=4, num_requests=16, warmup=4,
            input_tokens="32", output_tokens="8", out=tmp_path / out, telemetry=False, **kw,
        )  # fmt: skip
        return run_benchmark(cfg)

    first = run("a")
    second = run("b", hf_cache="static", hf_compile=True, hf_max_batch=4)
    engines = [t for t in threading.enumerate() if t.name == "hf-engine"]
    assert len(engines) == 1
    for r in (first, second):
        assert len(r.records) == 16 and all(rec.ok and rec.n_out == 8 for rec in r.records)
        sizes = r.results["run"]["engine_memory"]["batch_sizes"]
        # the engine waits a moment for the closed loop's next requests: mostly full batches
        assert max(sizes, key=lambda k: sizes[k]) == "4", sizes
    assert second.results["run"]["engine_memory"]["compile"] is True
