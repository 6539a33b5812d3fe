"""fit → simulate → report/compare/plan against the real llama-server (4 slots, tiny model,
one thread): a held-out concurrency predicted from sweep points that never ran it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from infermeter.records.rundir import finished_points

pytestmark = pytest.mark.integration

LENGTHS = ["--input-tokens", "64", "--output-tokens", "128", "--ignore-eos", "-q"]
#: On a shared 2-core machine client, server and test share the cores: a prediction this far
#: off would be a wrong model (one that ignored batching misses c=3 by 2× on this engine).
TOLERANCE = 0.35


def _tpot(run: Path) -> float:
    return float(json.loads((run / "results.json").read_text())["distributions"]["tpot_ms"]["p50"])


def _fresh_server(binary: Path, tiny: Any, log: Path) -> Any:
    from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig

    cfg = LlamaServerConfig(
        binary, tiny.gguf, alias="tiny", ctx_per_slot=1024, slots=4, threads=1, log_path=log
    )
    return LlamaServer(cfg)


def test_a_fitted_engine_predicts_a_held_out_concurrency(
    llama_binary: Path, tiny_model: Any, tmp_path: Path
) -> None:
    # c=3 is measured inside the sweep, between c=2 and c=4, and left out of the fit. The
    # sweep runs twice, each time on a fresh server, and the quieter sweep is fitted: a load
    # that other work puts on the shared cores for a while then weighs on neither the fit
    # nor the held-out point (a later c=3 once ran 1.6x faster than the sweep; a burst
    # during c=2 and c=4 of one sweep once put the fit 41 % over its c=3). One fresh server
    # a sweep, and its points fitted together: fit replays llama.cpp's slots from the runs
    # it is given, so a server that served runs it is not given (other tests, the other
    # sweep) hands out slots it cannot follow (a c=2 replayed as two passes once priced
    # the step of two at 0.7 ms where it took 1.2).
    sweeps: list[dict[int, Path]] = []
    for seed in ("3", "5"):
        sweep = tmp_path / f"sweep-{seed}"
        with _fresh_server(llama_binary, tiny_model, tmp_path / f"server-{seed}.log") as server:
            res = run_cli(
                "sweep", "--url", server.url, "-c", "1,2,3,4", "-n", "30", *LENGTHS,
                "--seed", seed, "--keep-going", "--out", str(sweep),
            )  # fmt: skip
        assert res.returncode == 0, res.stderr
        sweeps.append({json.loads((d / "results.json").read_text())["config"]["concurrency"]: d
                       for d in finished_points(sweep)})  # fmt: skip
        assert sorted(sweeps[-1]) == [1, 2, 3, 4]
    points = min(sweeps, key=lambda sw: sum(_tpot(d) for c, d in sw.items() if c != 3))
    measured = points.pop(3)
    model = tmp_path / "engine.json"
    res = run_cli("fit", *(str(d) for d in points.values()), "--out", str(model))
    assert res.returncode == 0, res.stderr
    assert "decode step by batch" in res.stdout
    fitted = json.loads(model.read_text())
    assert fitted["engine"] == "llama.cpp" and fitted["max_seqs"] == 4
    assert "total_slots" in fitted["max_seqs_source"]
    assert {p["batch"] for p in fitted["decode"]} >= {1, 2, 4}
    assert len(fitted["fitted_on"]["runs"]) == 3
    # each fitted run simulated on the model: one check a run, in the runs' order, placed by
    # its mean batch (a closed loop of c streams keeps at most c busy), with its errors
    checks = fitted["quality"]["self_check"]
    assert [c["label"] for c in checks] == fitted["fitted_on"]["runs"]
    batches = [c["mean_batch"] for c in checks]
    # (a step carrying only a prompt decodes none: one stream's mean batch is below 1)
    assert batches == sorted(batches) and batches[-1] > 2.0
    assert all(0.5 * c < b <= c for b, c in zip(batches, (1, 2, 4), strict=True))
    assert all(isinstance(c[k], float) for c in checks for k in ("tpot_p50_error", "e2e_p50_error"))
    assert "its own runs, simulated as bench drove them" in res.stdout
    real = json.loads((measured / "results.json").read_text())
    sim = tmp_path / "sim"
    res = run_cli(
        "simulate", "-e", str(model), "-c", "3", "-n", "30", "--input-tokens", "64",
        "--output-tokens", "128", "--seed", "3", "--format", "json", "--out", str(sim),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    pred = json.loads(res.stdout)
    assert pred["predicted"] is True
    assert pred["prediction"]["engine"] == "llama.cpp"
    assert pred["token_sources"]["n_out"] == {"predicted": 30}
    assert pred["summary"]["requests_completed"] == 30
    # TTFT is left out here: on this tiny model (0.5 ms steps, one server thread sharing the
    # cores with the suite) the c=3 TTFT itself swung from 11 to 20 ms between a fresh server
    # and the suite's shared one; TTFT accuracy is measured on the demo model in
    # docs/results/prediction.md.
    for metric in ("tpot_ms", "e2e_ms"):
        m, p = real["distributions"][metric]["p50"], pred["distributions"][metric]["p50"]
        assert abs(p - m) / m < TOLERANCE, (metric, m, p)

    # a simulated run is an ordinary run: report, compare and export read it
    res = run_cli("report", str(sim))
    assert res.returncode == 0, res.stderr
    assert "PREDICTED" in res.stdout and "not measured" in res.stdout
    res = run_cli("compare", str(measured), str(sim), "--format", "md")
    assert res.returncode == 0, res.stderr
    assert "sim (predicted)" in res.stdout
    res = run_cli("export", str(sim), "--format", "csv", "--out", str(tmp_path / "sim.csv"))
    assert res.returncode == 0, res.stderr

    res = run_cli(
        "plan", "-e", str(model), "--rate", "20", "--input-tokens", "64", "--output-tokens", "128",
        "--slo", f"p95_e2e_ms={3 * real['distributions']['e2e_ms']['p50']:.0f}", "--format", "json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan["replicas"] >= 1 and plan["max_rate_per_replica_rps"] > 0
    assert plan["at_replicas"]["passed"] is True
    if plan["one_fewer"] is not None:
        assert plan["one_fewer"]["passed"] is False


def test_bad_engine_models_and_flags_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "infermeter-engine-model", "engine": "x"}')
    for args in (
        ["simulate", "-e", str(bad), "-c", "1", "-n", "1", "--out", str(tmp_path / "o")],
        ["plan", "-e", str(bad), "--rate", "1", "--profile", "chat"],
        ["plan", "-e", str(bad)],
        ["fit", str(tmp_path), "--out", str(tmp_path / "m.json")],
    ):
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "Traceback" not in res.stderr
    res = run_cli(
        "simulate", "-e", str(bad), "-c", "1", "--replicas", "2", "--replicas-per-gpu", "0",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert res.returncode == 2 and "--replicas-per-gpu must be at least 1" in res.stderr
    res = run_cli("plan", "-e", str(bad), "--rate", "1", "--profile", "chat",
                  "--replicas-per-gpu", "0")  # fmt: skip
    assert res.returncode == 2 and "--replicas-per-gpu must be at least 1" in res.stderr
