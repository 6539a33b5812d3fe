"""Fitted runs that disagree on the engine's speed (a host that slowed between a sweep and
its rerun, or mid-sweep) are named: the table holds their median, and a load may run at
either speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_predict import KNOWN, _observed, closed, engine

from infermeter.predict.fit import Limits, ObservedRun, fit_engine, run_speeds
from infermeter.predict.model import EngineModel, RunSpeed, speed_notes
from infermeter.predict.simulate import simulate

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


def _plan_json(model: EngineModel, path: Path) -> dict[str, Any]:
    from typer.testing import CliRunner

    from infermeter.cli import app

    path.write_text(model.model_dump_json())
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "-e",
            str(path),
            "--rate",
            "30",
            "--input-tokens",
            "200",
            "--output-tokens",
            "50",
            "-n",
            "600",
            "--slo",
            "p95_e2e_ms=1200",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.stdout)
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
