"""Sweeps and capacity searches against the real llama-server (4 slots, tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from infermeter.analysis.capacity import meets, sweep_sla
from infermeter.api import load_run
from infermeter.config import derived_seed
from infermeter.sweeps import load_sweep

pytestmark = pytest.mark.integration

# Queueing behind the 4 slots makes TTFT jump by a whole request time above concurrency 4.
SLO = "p90_ttft_ms=40"
COMMON = ["-n", "40", "--input-tokens", "64", "--output-tokens", "64", "--ignore-eos", "-q"]


def _sweep(llama_server, out: Path, *args: str) -> dict:
    res = run_cli("sweep", "--url", llama_server.url, *COMMON, "--out", str(out), *args)
    assert res.returncode == 0, res.stderr
    return load_sweep(out)


def test_sweep_then_find_max_agree(llama_server, tmp_path: Path) -> None:
    grid = _sweep(
        llama_server, tmp_path / "grid", "-c", "1,2,4,8", "--slo", SLO, "--keep-going",
        "--warmup", "2", "--seed", "7",
    )  # fmt: skip
    points = grid["points"]
    assert [p["concurrency"] for p in points] == [1, 2, 4, 8]
    assert all(p["status"] == "ok" and p["summary"]["error_rate"] == 0 for p in points)
    # each point is an ordinary run directory, and its index entry is its own results
    for i, p in enumerate(points):
        run = load_run(tmp_path / "grid" / p["dir"])
        # fresh prompts per point (no prefix-cache carry-over); every slot warmed up
        assert run.meta["config"]["seed"] == derived_seed(7, i)
        assert run.meta["config"]["warmup"] == max(2, p["concurrency"])
        warm = (tmp_path / "grid" / p["dir"] / "warmup.jsonl").read_text().splitlines()
        assert len(warm) == max(2, p["concurrency"]) + 1  # and the pre-flight request
        assert run.results["summary"]["target_concurrency"] == p["concurrency"]
        assert run.results["distributions"]["ttft_ms"]["p99"] == p["latency"]["ttft_ms"]["p99"]
        assert len(run.records) == 40
    assert points[-1]["meets_sla"] is False  # 8 streams on 4 slots: half of them queue

    search = _sweep(llama_server, tmp_path / "search", "-c", "1:16", "--slo", SLO, "--find-max")
    cap = search["capacity"]
    assert search["kind"] == "search" and cap["variable"] == "concurrency"
    assert cap["value"] is not None and cap["bounded_above"]
    tried = {p["concurrency"]: p for p in search["points"]}
    fail_value = search["points"][cap["fail_index"]]["concurrency"]
    assert search["points"][cap["pass_index"]]["concurrency"] == cap["value"]
    # bisection converged: the capacity passes and the next concurrency up fails
    assert fail_value == cap["value"] + 1
    # few runs: bracketing 1,2,4,8,16 at most, then bisection
    assert len(search["points"]) <= 8
    # checked against the sweep's own points: re-judge every run from its records on disk
    sla = sweep_sla(SLO, None, 0.9, 0.0)
    assert sla is not None
    for value, p in tried.items():
        ok, _ = meets(load_run(tmp_path / "search" / p["dir"]).results, sla)
        assert ok == p["meets_sla"]
        if value <= cap["value"]:
            assert ok, f"concurrency {value} below the capacity failed the SLA"
        else:
            assert not ok
    # and the grid sweep's points agree with the capacity found
    for p in points:
        if p["concurrency"] > fail_value:
            assert p["meets_sla"] is False
    assert 1 <= cap["value"] < 8


def test_rate_auto_sweep_probes_saturation_first(llama_server, tmp_path: Path) -> None:
    index = _sweep(
        llama_server,
        tmp_path / "auto",
        "--rate",
        "auto",
        "--points",
        "3",
        "--probe-concurrency",
        "4",
        "--format",
        "json",
    )
    probe, *rates = index["points"]
    assert probe["role"] == "probe" and probe["concurrency"] == 4
    sat = index["saturation"]["request_throughput_rps"]
    assert sat == probe["summary"]["request_throughput_rps"] > 0
    assert [p["rate"] for p in rates] == [float(f"{sat * k / 3:.3g}") for k in (1, 2, 3)]
    for p in rates:
        summary = load_run(tmp_path / "auto" / p["dir"]).results["summary"]
        assert summary["target_rate_rps"] == p["rate"]
    assert index["stopped"]["reason"] in ("done", "saturated")


def test_sweep_over_lengths_and_markdown(llama_server, tmp_path: Path) -> None:
    out = tmp_path / "lengths"
    res = run_cli(
        "sweep",
        "--url",
        llama_server.url,
        "-c",
        "2",
        "-n",
        "8",
        "--input-tokens",
        "32,128",
        "--output-tokens",
        "16",
        "--out",
        str(out),
        "--format",
        "md",
        "-q",
    )
    assert res.returncode == 0, res.stderr
    index = load_sweep(out)
    assert [(p["input_tokens"], p["output_tokens"]) for p in index["points"]] == [
        ("32", "16"),
        ("128", "16"),
    ]
    for p in index["points"]:
        dist = load_run(out / p["dir"]).results["distributions"]["input_tokens"]
        assert dist["min"] == dist["max"] == int(p["input_tokens"])
    assert res.stdout.startswith("| # | role | concurrency | in | out |")
    assert res.stdout.count("\n| ") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "1,2", "--rate", "1"], "exactly one of --concurrency"),
        (["-c", "auto"], "auto is for --rate"),
        (["-c", "1:8", "--find-max"], "--find-max needs an SLA"),
        (["-c", "1,x"], "cannot read 'x'"),
        (["--rate", "1,2", "--slo", "ttft_ms=1", "--profile", "chat"], "not both"),
    ],
)
def test_sweep_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    res = run_cli(
        "sweep", "--url", "http://127.0.0.1:9", "-n", "4", *args, "--out", str(tmp_path / "x")
    )
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


def test_interrupted_sweep_keeps_its_points(llama_server, tmp_path: Path) -> None:
    import signal
    import time

    from conftest import start_cli

    out = tmp_path / "int"
    proc = start_cli(
        [
            "sweep",
            "--url",
            llama_server.url,
            "-c",
            "1,2,3,4",
            "-n",
            "400",
            "--input-tokens",
            "32",
            "--output-tokens",
            "16",
            "--out",
            str(out),
            "-q",
        ]
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (out / "sweep.json").exists() and json.loads((out / "sweep.json").read_text())["points"]:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    index = load_sweep(out)
    assert index["stopped"]["reason"] == "interrupted"
    assert len(index["points"]) >= 1
    last = index["points"][-1]
    assert last["status"] in ("ok", "interrupted")


def test_points_on_a_fresh_server_each(llama_binary, tiny_model, tmp_path: Path) -> None:
    """Where the caller started the server, each point can have one of its own (a server that
    has run keeps its prompts cached and its slots spread): the index says which it had."""
    from infermeter.config import BenchConfig
    from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig
    from infermeter.sweeps import SweepSpec, run_sweep

    cfg = LlamaServerConfig(
        llama_binary, tiny_model.gguf, alias="tiny", ctx_per_slot=256, slots=2, threads=1
    )
    servers: list[LlamaServer] = []

    def fresh() -> str:
        if servers:
            servers.pop().stop()
        servers.append(LlamaServer(cfg).start())
        return servers[-1].url

    try:
        base = BenchConfig.build(
            url="http://127.0.0.1:1", concurrency=1, num_requests=4, input_tokens="32",
            output_tokens="8", telemetry=False,
        )  # fmt: skip
        sweep = run_sweep(
            base, SweepSpec("concurrency", (1, 2)), tmp_path / "sw", fresh_server=fresh
        )
    finally:
        for s in servers:
            s.stop()
    assert sweep.index["server_per_point"] == "fresh"
    urls = [r.meta["server"]["url"] for r in sweep.runs]
    assert len(set(urls)) == 2  # a server of its own per point
    assert all(p["status"] == "ok" for p in sweep.index["points"])
