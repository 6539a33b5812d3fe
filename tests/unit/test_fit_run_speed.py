"""Fitted runs that disagree on the engine's speed (a host that slowed between a sweep and
its rerun, or mid-sweep) are named: the table holds their median, and a load may run at
either speed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_predict import KNOWN, _observed, closed, engine

from infermeter.predict.fit import Limits, ObservedRun, fit_engine, run_speeds
from infermeter.predict.model import EngineModel, RunSpeed, at_speed, speed_notes
from infermeter.predict.simulate import simulate
from infermeter.schema.plan import PlanDoc

LIMITS = Limits("continuous", 4, "given", 2048, "given", None)


def _sweep(scale: float, name: str) -> list[ObservedRun]:
    """Closed loops at 1, 2 and 4 on the known engine with every step ``scale`` times."""
    truth = engine(
        {b: step * scale for b, step in KNOWN.items()}, floor=8.0, per_token=0.05, max_seqs=4
    )
    return [_observed(simulate(truth, closed(200, 50, 60, c)), f"{name}/c{c}") for c in (1, 2, 4)]


def _fit(*sweeps: list[ObservedRun]) -> EngineModel:
    runs = [run for sweep in sweeps for run in sweep]
    return fit_engine(runs, LIMITS, engine="test", model="m", hardware=None)


def test_a_sweep_and_a_slower_rerun_are_named_with_their_speeds() -> None:
    fitted = _fit(_sweep(1.0, "fit"), _sweep(1.12, "again"))
    speeds = {r.label: r.shift for r in fitted.quality.run_speeds}
    assert set(speeds) == {f"{s}/c{c}" for s in ("fit", "again") for c in (1, 2, 4)}
    # each batch size's median sits between the two speeds: the first sweep reads fast
    # against it, the rerun slow, by about half of 12 % each
    for c in (1, 2, 4):
        assert speeds[f"fit/c{c}"] == pytest.approx(1 / 1.06 - 1, abs=0.01)
        assert speeds[f"again/c{c}"] == pytest.approx(1.12 / 1.06 - 1, abs=0.01)
    notes = [n for n in fitted.quality.notes if "decode steps sat" in n]
    assert len(notes) == 1
    assert "% faster" in notes[0] and "again/c" in notes[0] and "% slower" in notes[0]
    assert speed_notes(fitted.quality.run_speeds) == notes


def test_runs_of_one_speed_say_nothing() -> None:
    fitted = _fit(_sweep(1.0, "fit"), _sweep(1.0, "again"))
    assert all(abs(r.shift) < 0.005 for r in fitted.quality.run_speeds)
    assert not any("decode steps sat" in n for n in fitted.quality.notes)


def test_the_spread_is_the_slowest_run_over_the_fastest() -> None:
    def at(*shifts: float) -> list[RunSpeed]:
        return [RunSpeed(label=f"r{i}", shift=s, gaps=100) for i, s in enumerate(shifts)]

    # 1.029 / 0.971 is 5.97 % apart, 1.03 / 0.97 6.19 %: the line at RUN_SPREAD (6 %)
    assert speed_notes(at(-0.029, 0.0, 0.029)) == []
    assert speed_notes(at(-0.03, 0.0, 0.03)) != []
    (note,) = speed_notes(at(-0.05, 0.0, 0.02))
    assert "7.4 % apart" in note and "r0 5.0 % faster" in note and "r2 2.0 % slower" in note
    assert speed_notes(at(0.2)) == []


def test_a_run_with_too_few_steps_at_the_table_s_sizes_is_left_out() -> None:
    ratio = np.array([1.1] * 60 + [0.9] * 60 + [1.5] * 49)
    run_of = np.array([0] * 60 + [1] * 60 + [2] * 49)
    in_table = np.ones(ratio.size, dtype=bool)
    in_table[60:70] = False  # ten of run 1's steps at a size the table interpolates
    got = run_speeds(ratio, run_of, in_table, ["a", "b", "c"])
    assert [(r.label, r.gaps) for r in got] == [("a", 60), ("b", 50)]
    assert got[0].shift == pytest.approx(0.1) and got[1].shift == pytest.approx(-0.1)


def _plan_json(
    model: EngineModel, path: Path, slo: str = "p95_e2e_ms=1200", rate: str = "30"
) -> PlanDoc:
    """``plan --format json`` on ``model`` for 200 → 50-token traffic at ``rate``."""
    from typer.testing import CliRunner

    from infermeter.cli import app

    path.write_text(model.model_dump_json())
    args = ["plan", "-e", str(path), "--rate", rate, "-n", "600", "--slo", slo]
    args += ["--input-tokens", "200", "--output-tokens", "50", "--format", "json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc: PlanDoc = json.loads(res.stdout)
    return doc


def test_plan_plans_again_at_the_slower_speed_where_runs_disagree(tmp_path: Path) -> None:
    doc = _plan_json(_fit(_sweep(1.0, "fit"), _sweep(1.12, "again")), tmp_path / "m.json")
    slower = doc["at_runs_spread"]
    assert slower["spread"] == pytest.approx(0.12, abs=0.005)
    # the same traffic on an engine 12 % slower: one replica sustains less, and the count
    # is never smaller
    assert slower["max_rate_per_replica_rps"] < 0.95 * doc["max_rate_per_replica_rps"]
    assert slower["replicas"] >= doc["replicas"]
    assert any("runs' decode steps sat" in n for n in doc["notes"])
    same = _plan_json(_fit(_sweep(1.0, "fit"), _sweep(1.0, "again")), tmp_path / "s.json")
    assert "at_runs_spread" not in same
    assert not any("runs' decode steps sat" in n for n in same["notes"])


def test_at_speed_slows_every_decode_step_and_keeps_the_prompt_cost() -> None:
    model = _fit(_sweep(1.0, "fit"), _sweep(1.12, "again"))
    slow = at_speed(model, 1.12)
    assert [p.step_ms for p in slow.decode] == pytest.approx(
        [1.12 * p.step_ms for p in model.decode]
    )
    assert slow.step_floor_ms == pytest.approx(1.12 * model.step_floor_ms)
    assert slow.ctx_ms_per_token == pytest.approx(1.12 * model.ctx_ms_per_token)
    assert slow.ubatch_ms == pytest.approx(1.12 * model.ubatch_ms)
    assert slow.prefill_ms_per_token == model.prefill_ms_per_token
    assert slow.prefill == model.prefill and slow.ttft_overhead_ms == model.ttft_overhead_ms


def test_the_slower_plan_says_why_where_no_count_meets_the_limits(tmp_path: Path) -> None:
    from infermeter.config import BenchConfig
    from infermeter.predict.summary import Term
    from infermeter.run.plan import plan_at_spread

    model = _fit(_sweep(1.0, "fit"), _sweep(1.12, "again"))
    # a lone request ends in about 540 ms as fitted and 600 ms 12 % slower: a 570 ms limit
    # is met by some count as fitted and by none at the slower speed
    config = BenchConfig.build(
        url="http://x", rate=2.0, num_requests=200, input_tokens="200", output_tokens="50"
    )
    terms = [Term("e2e_ms", 95, 570.0)]
    slower = plan_at_spread(model, config, terms)
    assert slower is not None and slower["spread"] == pytest.approx(0.12, abs=0.005)
    assert slower["replicas"] is None and slower["max_rate_per_replica_rps"] is None
    assert slower["failed"] is not None and "a request alone is slower" in slower["failed"]
    doc = _plan_json(model, tmp_path / "m.json", "p95_e2e_ms=570", rate="2")
    assert doc["replicas"] >= 1 and doc["at_runs_spread"]["failed"] == slower["failed"]
    # one speed: nothing to plan again
    assert plan_at_spread(_fit(_sweep(1.0, "fit"), _sweep(1.0, "again")), config, terms) is None


def test_simulate_warns_where_the_runs_disagree(tmp_path: Path) -> None:
    from dataclasses import replace

    from typer.testing import CliRunner

    from infermeter.cli import app

    path = tmp_path / "m.json"
    # the rerun on a host whose cores slowed in a quarter of its samples
    again = [replace(r, core_probe_us=700.0, core_slow_share=0.25) for r in _sweep(1.12, "a")]
    path.write_text(_fit(_sweep(1.0, "fit"), again).model_dump_json())
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "-e",
            str(path),
            "--rate",
            "2",
            "-n",
            "40",
            "--input-tokens",
            "200",
            "--output-tokens",
            "50",
            "-o",
            str(tmp_path / "run"),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.stdout)["warnings"]
    assert any(w.startswith("runs disagree: the fitted runs' decode steps sat") for w in warnings)
    changing = [w for w in warnings if w.startswith("fitted on a changing host: the host's")]
    assert len(changing) == 1 and "3 of the 3 fitted runs with a core probe" in changing[0]


def test_the_hosts_core_probe_is_set_beside_the_runs_speeds(tmp_path: Path) -> None:
    from dataclasses import replace

    from infermeter.predict.model import host_notes

    fit, again = _sweep(1.0, "fit"), _sweep(1.12, "again")
    # the rerun's host read slow in 40 % of its probe readings, the first sweep's in 2 %
    fit = [replace(r, core_probe_us=480.0, core_slow_share=0.02) for r in fit]
    again = [replace(r, core_probe_us=870.0, core_slow_share=0.4) for r in again]
    fitted = _fit(fit, again)
    assert {r.core_probe_us for r in fitted.quality.run_speeds} == {480.0, 870.0}
    (note,) = [n for n in fitted.quality.notes if "decode steps sat" in n]
    said = "read slow in 40 % of the slower run's readings and 2 % of the faster's"
    assert f"{said}: its cores were slower too" in note
    (host,) = [n for n in fitted.quality.notes if "host's cores changed speed" in n]
    assert "3 of the 6 fitted runs with a core probe" in host
    assert "slow in 40 % of their readings" in host
    assert host_notes(fitted.quality.run_speeds) == [host]
    # a probe that read alike: the note says it was not the cores, where the probe ran
    alike = [replace(r, core_slow_share=0.02) for r in again]
    (note,) = speed_notes(_fit(fit, alike).quality.run_speeds)
    assert "and 2 % of the faster's: not its cores, where the probe ran" in note
    between = [replace(r, core_slow_share=0.15) for r in again]
    (note,) = speed_notes(_fit(fit, between).quality.run_speeds)
    assert "its cores may have been slower too" in note
    # quiet hosts, or runs sampled before the probe existed: nothing
    quiet = [replace(r, core_slow_share=0.05) for r in again]
    assert host_notes(_fit(fit, quiet).quality.run_speeds) == []
    assert host_notes(_fit(_sweep(1.0, "old")).quality.run_speeds) == []

    def at(*shares: float) -> list[RunSpeed]:
        return [
            RunSpeed(label=f"r{i}", shift=0.0, gaps=100, core_probe_us=500.0, core_slow_share=s)
            for i, s in enumerate(shares)
        ]

    (one,) = host_notes(at(0.02, 0.02, 0.4, 0.0))
    assert "1 of the 4 fitted runs with a core probe" in one and "slow in 40 % of" in one
    (two,) = host_notes(at(0.1, 0.55))
    assert "2 of the 2" in two and "slow in 10-55 % of" in two
    # plan repeats it beside its figures
    doc = _plan_json(fitted, tmp_path / "m.json")
    assert any("host's cores changed speed while 3 of the 6" in n for n in doc["notes"])
    assert not any("host's cores" in n for n in _plan_json(_fit(fit), tmp_path / "q.json")["notes"])


def test_a_runs_core_probe_is_read_from_its_telemetry() -> None:
    from infermeter.records.rundir import read_telemetry
    from infermeter.run.fit import observed_run, with_core_probe

    # runs of the tenth H100 (an unpinned probe, a local server) and the eleventh (pinned)
    results = Path(__file__).parents[2] / "docs/results"
    tenth = results / "h100-tserve-nocudnn-e/tserve-held-rate/points/00-r1.238"
    eleventh = results / "h100-tserve-nocudnn-f/tserve-fit/points/03-c8"
    runs = [observed_run("t", tenth), observed_run("e", eleventh)]
    t, e = with_core_probe(runs, [read_telemetry(d / "telemetry.jsonl") for d in (tenth, eleventh)])
    assert t.core_probe_us is not None and 600 < t.core_probe_us < 900
    assert t.core_ms is None and t.core_slow is None  # unpinned: not step by step
    # the eleventh's c = 8 read slow throughout: against its own p10 it reads 0 % slow
    # (its summary); fitted alone, the same
    assert e.core_ms is not None and e.core_slow is not None and e.core_slow.size > 10
    assert e.core_slow_share == 0.0
    # fitted beside a run of the same host that read fast at times, it reads slow
    again = results / "h100-tserve-nocudnn-f/tserve-fit/points/01-c2"
    pair = [observed_run("a", again), observed_run("e", eleventh)]
    _, e2 = with_core_probe(
        pair, [read_telemetry(d / "telemetry.jsonl") for d in (again, eleventh)]
    )
    assert e2.core_slow_share is not None and e2.core_slow_share > 0.8
    # no telemetry: nothing
    (bare,) = with_core_probe([observed_run("t", tenth)], [[]])
    assert bare.core_probe_us is None and bare.core_slow_share is None


def test_steps_are_set_against_the_speed_of_the_servers_core() -> None:
    from dataclasses import replace

    from infermeter.predict.fit import MIN_CORE_GAPS, _core_state, core_effect
    from infermeter.predict.model import CoreEffect, StepPoint, host_notes

    # a step nearest a slow sample is slow, nearest a fast one fast, far from any unknown
    run = replace(
        _sweep(1.0, "fit")[0],
        core_ms=np.array([1_000.0, 1_500.0, 2_000.0]),
        core_slow=np.array([False, True, False]),
    )
    mid = np.array([900.0, 1_240.0, 1_260.0, 1_700.0, 2_200.0, 2_300.0])
    assert _core_state(run, mid).tolist() == [0, 0, 1, 1, 0, -1]
    assert _core_state(_sweep(1.0, "old")[0], mid).tolist() == [-1] * 6

    # steps 30 % longer while the core read slow at batch 1, 10 % at batch 4; batch 2 has
    # too few slow steps to compare
    rng = np.random.default_rng(3)
    n = MIN_CORE_GAPS
    gap = np.concatenate(
        [
            20 * (1 + 0.02 * rng.standard_normal(2 * n)) * np.repeat([1.0, 1.3], n),
            30 * (1 + 0.02 * rng.standard_normal(2 * n)) * np.repeat([1.0, 1.1], n),
            25 * np.ones(n + n - 1),
        ]
    )
    batch = np.repeat([1, 4, 2], [2 * n, 2 * n, 2 * n - 1])
    core = np.concatenate([np.repeat([0, 1], n), np.repeat([0, 1], n), [0] * n + [1] * (n - 1)])
    points = [StepPoint(batch=b, step_ms=20.0, ctx_tokens=0.0, samples=n) for b in (1, 2, 4)]
    effect = core_effect(gap, batch, core, points)
    assert effect is not None and effect.batches == [1, 4]
    assert effect.ratios == pytest.approx([1.3, 1.1], abs=0.02)
    assert effect.slow_share == pytest.approx((3 * n - 1) / (6 * n - 1))
    assert core_effect(gap, batch, np.full(gap.size, -1), points) is None
    # the host note carries it
    speeds = [RunSpeed(label="r", shift=0.0, gaps=100, core_probe_us=500.0, core_slow_share=0.5)]
    (note,) = host_notes(speeds, CoreEffect(ratios=[1.3, 1.1], batches=[1, 4], slow_share=0.5))
    assert (
        "steps taken while the core of the server's busiest thread read slow took 1.20× as "
        "long as those taken while it read fast (median; 1.10-1.30× over 2 batch sizes), and "
        "50 % of the steps near a reading were taken while it read slow"
    ) in note
    assert "1.20×" not in host_notes(speeds)[0]
    assert "a host-bound engine's steps ran at the mix" in note
    # steps that did not follow the core (this VM's llama.cpp: 1.01×) are not blamed on it
    (flat,) = host_notes(
        speeds, CoreEffect(ratios=[0.9, 1.01, 1.02], batches=[1, 2, 4], slow_share=0.04)
    )
    assert flat.endswith(
        "the engine's steps hardly followed that core: its speed did not rest on it"
    )
    with pytest.raises(ValueError):
        CoreEffect(ratios=[1.3], batches=[1, 4], slow_share=0.5)
    with pytest.raises(ValueError):
        CoreEffect(ratios=[], batches=[], slow_share=0.5)


def test_a_fit_reads_the_pinned_probe_sample_by_sample() -> None:
    from infermeter.run.fit import with_core_probe

    run = _sweep(1.0, "fit")[0]  # requests from 0 to 30,480 ms
    samples: list[dict[str, object]] = [
        {"source": "host", "t_ns": int(t * 1e6), "server_core_probe_us": v}
        for t, v in [(500, 480.0), (0, 470.0), (1_000, 900.0), (1_500, 490.0), (40_000, 900.0)]
    ]
    samples += [{"source": "gpu", "t_ns": 10}, {"source": "host", "t_ns": 20}]
    (got,) = with_core_probe([run], [samples])  # type: ignore[list-item]
    assert got.core_ms is not None and got.core_slow is not None
    # sorted, and the reading after the run's last request left out
    assert got.core_ms.tolist() == [0.0, 500.0, 1_000.0, 1_500.0]
    assert got.core_slow.tolist() == [False, False, True, False]
    assert got.core_slow_share == 0.25 and got.core_probe_us == pytest.approx(485.0)
    # the unpinned probe counts only where a server on this host was measured
    unpinned: list[dict[str, object]] = [
        {"source": "host", "t_ns": int(t * 1e6), "core_probe_us": 500.0} for t in (0, 500)
    ]
    (client,) = with_core_probe([run], [unpinned])  # type: ignore[list-item]
    assert client.core_probe_us is None
    local = [{**x, "local_server_cpu_percent": 100.0} for x in unpinned]
    (server,) = with_core_probe([run], [local])  # type: ignore[list-item]
    assert server.core_probe_us == 500.0 and server.core_ms is None


def test_plan_plans_again_as_if_the_servers_core_stayed_slow(tmp_path: Path) -> None:
    from infermeter.predict.model import CORE_BOUND, CoreEffect, slow_core_factor

    model = _fit(_sweep(1.0, "fit"))
    assert slow_core_factor(model) is None  # no core effect measured
    # steps 1.5× as long while the core read slow, 40 % of them slow: the table sits near
    # 1.2× the fast step, all-slow at 1.5×, so 1.25× the table
    effect = CoreEffect(ratios=[1.4, 1.5, 1.6], batches=[1, 2, 4], slow_share=0.4)
    slow = model.model_copy(
        update={"quality": model.quality.model_copy(update={"core_effect": effect})}
    )
    assert slow_core_factor(slow) == pytest.approx(1.25)
    doc = _plan_json(slow, tmp_path / "m.json")
    bound = doc["at_slow_core"]
    assert bound["spread"] == pytest.approx(0.25) and bound["failed"] is None
    assert bound["max_rate_per_replica_rps"] < 0.9 * doc["max_rate_per_replica_rps"]
    assert bound["replicas"] >= doc["replicas"]
    assert "at_slow_core" not in _plan_json(model, tmp_path / "q.json")
    # under CORE_BOUND: no second plan
    small = CoreEffect(ratios=[1 + CORE_BOUND / 2], batches=[1], slow_share=0.0)
    quiet = model.model_copy(
        update={"quality": model.quality.model_copy(update={"core_effect": small})}
    )
    assert slow_core_factor(quiet) is None


def test_the_plan_table_says_what_a_slow_core_would_take(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from infermeter.cli import app
    from infermeter.predict.model import CoreEffect

    model = _fit(_sweep(1.0, "fit"))
    effect = CoreEffect(ratios=[1.5], batches=[1], slow_share=0.4)
    path = tmp_path / "m.json"
    path.write_text(
        model.model_copy(
            update={"quality": model.quality.model_copy(update={"core_effect": effect})}
        ).model_dump_json()
    )
    args = ["plan", "-e", str(path), "--rate", "30", "-n", "600", "--slo", "p95_e2e_ms=1200"]
    res = CliRunner().invoke(app, [*args, "--input-tokens", "200", "--output-tokens", "50"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "if the server's core stayed slow (steps about 25.0 % slower at the median" in text
    assert "replicas, one up to" in text.split("stayed slow")[1]


def _with_effect(model: EngineModel, effect: object) -> EngineModel:
    return model.model_copy(
        update={"quality": model.quality.model_copy(update={"core_effect": effect})}
    )


def test_a_core_mix_other_than_the_fits_scales_every_step() -> None:
    from infermeter.predict.model import (
        CoreEffect,
        at_core_share,
        core_factor,
        core_factors,
        slow_core_factor,
    )

    model = _fit(_sweep(1.0, "fit"))
    assert core_factor(model, 0.5) is None and at_core_share(model, 0.5) is None
    # steps at one sequence 0.8 of the table while the core read fast and 1.2 while slow;
    # at 16 the core made no difference (the GPU's share of a step is largest there)
    effect = CoreEffect(
        ratios=[1.5, 1.1 / 0.9, 1.0],
        batches=[1, 4, 16],
        slow_share=0.5,
        fast=[0.8, 0.9, 1.0],
        slow=[1.2, 1.1, 1.0],
    )
    at = _with_effect(model, effect)
    assert core_factors(at, 0.0) == ([1, 4, 16], pytest.approx([0.8, 0.9, 1.0]))
    assert core_factors(at, 1.0) == ([1, 4, 16], pytest.approx([1.2, 1.1, 1.0]))
    # half the time slow: more fast steps fit in the fast half, so less than the midpoint
    (_, half) = core_factors(at, 0.5) or ([], [])
    assert half[0] == pytest.approx(1 / (0.5 / 1.2 + 0.5 / 0.8)) and half[0] < 1.0
    assert core_factor(at, 1.0) == pytest.approx(1.1) == slow_core_factor(at)
    # each table entry by the factor at its batch size (2: a third of the way from 1 to 4)
    slow = at_core_share(at, 1.0)
    assert slow is not None
    for p, q in zip(model.decode, slow.decode, strict=True):
        want = float(np.interp(p.batch, [1, 4, 16], [1.2, 1.1, 1.0]))
        assert q.step_ms == pytest.approx(p.step_ms * want)
    assert slow.step_floor_ms == pytest.approx(model.step_floor_ms * 1.2)
    # a model fitted before fast and slow were kept: from the ratio and the fit's share of
    # slow steps, the table their mean (R 1.5, 40 % slow: the table 1.2× the fast step)
    old = _with_effect(model, CoreEffect(ratios=[1.5], batches=[1], slow_share=0.4))
    assert core_factor(old, 0.0) == pytest.approx(1 / 1.2)
    assert core_factor(old, 1.0) == pytest.approx(1.25) == slow_core_factor(old)
    with pytest.raises(ValueError):
        CoreEffect(ratios=[1.5], batches=[1], slow_share=0.4, fast=[0.8, 0.9], slow=[1.2])


def _simulate(tmp_path: Path, model_path: Path, *more: str) -> tuple[int, str]:
    """The command as a user runs it (its errors are one line through the command's own
    guard): the exit code, and what it printed (stdout and stderr)."""
    from conftest import run_cli

    res = run_cli(
        "simulate", "-e", str(model_path), "-c", "2", "-n", "30", "--input-tokens", "200",
        "--output-tokens", "50", "-o", str(tmp_path / f"run{len(more)}"), "--format", "json",
        *more,
    )  # fmt: skip
    return res.returncode, res.stdout + res.stderr


def test_simulate_runs_at_a_core_mix_asked_for(tmp_path: Path) -> None:
    from infermeter.predict.model import CoreEffect

    model = _fit(_sweep(1.0, "fit"))
    effect = CoreEffect(ratios=[1.5], batches=[1], slow_share=0.4, fast_us=480.0)
    path = tmp_path / "m.json"
    path.write_text(_with_effect(model, effect).model_dump_json())
    assert EngineModel.model_validate_json(path.read_text()).quality.core_effect == effect
    code, out = _simulate(tmp_path, path)
    assert code == 0, out
    base = json.loads(out)
    assert "core_slow_share" not in base["prediction"]
    code, out = _simulate(tmp_path, path, "--core-slow-share", "1")
    assert code == 0, out
    slow = json.loads(out)
    assert slow["prediction"]["core_slow_share"] == 1.0
    assert slow["prediction"]["core_factor"] == pytest.approx(1.25)
    said = [w for w in slow["warnings"] if w.startswith("simulated as if the server's core")]
    assert len(said) == 1 and "slow 100 % of the time: decode steps 1.250× the" in said[0]
    assert slow["prediction"]["core_factors"] == [pytest.approx(1.25)] * 2
    tpot = [d["distributions"]["tpot_ms"]["p50"] for d in (base, slow)]
    # the decode steps 1.25× as long; TPOT holds a little prompt time as well
    assert 1.15 < tpot[1] / tpot[0] < 1.26
    # a model without the effect, or a share outside 0-1: one line, exit 2
    bare = tmp_path / "bare.json"
    bare.write_text(model.model_dump_json())
    code, out = _simulate(tmp_path, bare, "--core-slow-share", "0.5")
    assert code == 2 and "holds no core effect" in out and "Traceback" not in out
    code, out = _simulate(tmp_path, path, "--core-slow-share", "1.5")
    assert code == 2 and "between 0 and 1" in out


def test_a_held_out_runs_core_mix_is_read_on_the_fits_scale() -> None:
    from infermeter.run.fit import core_slow_share_of, fit_runs

    # the twelfth H100: its fit's pinned fast level, and a rerun of c = 4 whose server core
    # read fast nearly throughout while the fit's c = 8 read slow nearly throughout
    results = Path(__file__).parents[2] / "docs/results/h100-tserve-nocudnn-g"
    effect = fit_runs([results / "tserve-fit"]).quality.core_effect
    assert effect is not None and effect.fast_us is not None
    assert 400 < effect.fast_us < 700
    fast = core_slow_share_of(results / "tserve-fit-again/points/02-c4", effect.fast_us)
    slow = core_slow_share_of(results / "tserve-fit/points/03-c8", effect.fast_us)
    assert fast is not None and slow is not None and fast < 0.2 < 0.8 < slow
    # the tenth H100 sampled the unpinned probe only: no share
    tenth = Path(__file__).parents[2] / "docs/results/h100-tserve-nocudnn-e"
    assert core_slow_share_of(tenth / "tserve-held-rate/points/00-r1.238", 500.0) is None


def test_a_core_share_on_carried_hardware_says_whose_core_effect_it_is() -> None:
    from typing import cast

    from infermeter.results.build import prediction_warnings
    from infermeter.schema.results import Prediction

    base = {
        "engine_model": "m.json",
        "extrapolated": None,
        "extrapolations": [],
        "unstable": None,
        "core_slow_share": 0.5,
        "core_factors": [0.8, 1.07],
    }
    (said,) = [w for w in prediction_warnings(cast(Prediction, base)) if "core read" in w]
    assert said.endswith("decode steps 0.800-1.070× the fitted table's, by batch size")
    carried = {**base, "extrapolated": "h100-sxm -> h200 by the roofline"}
    (said,) = [w for w in prediction_warnings(cast(Prediction, carried)) if "core read" in w]
    assert said.endswith("(the core effect measured on the fitted host, not the one carried to)")


def test_a_held_out_run_s_own_speed_is_read_against_the_fitted_runs() -> None:
    from infermeter.predict.model import speed_against

    fitted = _fit(_sweep(1.0, "fit"))
    # a run at c = 2 on an engine 8 % slower: its steps lie at a size the fit measured
    (slower,) = [r for r in _sweep(1.08, "held") if r.label == "held/c2"]
    assert speed_against(_fit([slower]), fitted) == pytest.approx(1.08, abs=0.005)
    (same,) = [r for r in _sweep(1.0, "same") if r.label == "same/c4"]
    assert speed_against(_fit([same]), fitted) == pytest.approx(1.0, abs=0.005)
    # a run whose steps lie at a size the fit never measured: untold
    truth = engine({b: 1.08 * step for b, step in KNOWN.items()}, floor=8.0, per_token=0.05)
    three = _observed(simulate(truth, closed(200, 50, 60, 3)), "held/c3")
    assert [p.batch for p in _fit([three]).decode] == [3]
    assert speed_against(_fit([three]), fitted) is None
    # another engine, model or GPU: its speed says nothing of this one (a GPU not told on
    # either side is not taken for another)
    other = _fit([slower])
    on_h200 = fitted.model_copy(update={"hardware": "h200"})
    for field, value in (("engine", "vllm"), ("model", "other"), ("hardware", "h100-sxm")):
        assert speed_against(other.model_copy(update={field: value}), on_h200) is None
    assert speed_against(other, on_h200) == pytest.approx(1.08, abs=0.005)


def test_compare_says_how_fast_a_measured_run_stepped_against_the_simulated_model(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from infermeter.cli import app

    # the tenth H100: its Poisson run at 30 % load stepped 1.61× its fit sweep's steps
    results = Path(__file__).parents[2] / "docs/results/h100-tserve-nocudnn-e"
    held = results / "tserve-held-rate/points/00-r1.238"
    fitted_c8 = results / "tserve-fit/points/03-c8"
    between = results / "tserve-held-c/points/00-c12"  # its steps lie between the sweep's
    model, sim = tmp_path / "engine.json", tmp_path / "sim"
    runner = CliRunner()
    assert (
        runner.invoke(app, ["fit", str(results / "tserve-fit"), "--out", str(model)]).exit_code == 0
    )
    args = ["simulate", "-e", str(model), "-c", "1", "-n", "4", "--out", str(sim)]
    assert runner.invoke(app, args).exit_code == 0

    def cautions() -> list[str]:
        res = runner.invoke(
            app, ["compare", str(held), str(fitted_c8), str(between), str(sim),
                  "--allow-different", "--format", "json"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        return [c for c in doc["cautions"] if "decode steps took" in c]

    said = cautions()
    assert len(said) == 2
    assert said[0].startswith("00-r1.238's decode steps took 1.61× those of the engine model sim")
    assert "at another speed than when it was fitted" in said[0]
    assert said[1].startswith("03-c8's decode steps took 1.00×")
    assert "ran at its fitted speed" in said[1]
    # the HTML page lists it among the cautions, not as a setting
    page = tmp_path / "compare.html"
    res = runner.invoke(
        app, ["compare", str(held), str(sim), "--allow-different", "--format", "html",
              "-o", str(page)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    html = page.read_text()
    assert "Differences and cautions" in html and "decode steps took 1.61×" in html
    # the model gone: nothing to read the speed against, and compare still compares
    model.unlink()
    assert cautions() == []
