"""Engine calibration from measured runs: the runs (or sweeps' points) a profile is fitted on,
the fit, a stored profile read back, and its predictions (the theory's ``calibration`` does
the math; this module finds the runs and reads the files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infermeter.analysis.efficiency import calibration_point
from infermeter.errors import UsageError
from infermeter.records.rundir import finished_points, is_sweep_dir
from infermeter.run.rundir import load_run
from infermeter.theory import Deployment
from infermeter.theory.calibration import Point
from infermeter.theory.calibration import Profile as CalibrationProfile
from infermeter.theory.calibration import calibrate as calibrate_engine


def calibration_points(paths: list[Path]) -> list[Point]:
    points: list[Point] = []
    for path in paths:
        if is_sweep_dir(path):
            dirs = [(f"{path.name}/{d.relative_to(path)}", d) for d in finished_points(path)]
        else:
            dirs = [(path.name, path)]
        for label, run_dir in dirs:
            point = calibration_point(label, load_run(run_dir).results)
            if point is not None:
                points.append(point)
    return points


def calibrate_from_runs(d: Deployment, engine: str, paths: list[Path]) -> CalibrationProfile:
    points = calibration_points(paths)
    if len(points) < 3:
        raise UsageError(
            f"--calibrate: {len(points)} usable runs; at least 3 with completed requests are needed"
        )
    return calibrate_engine(engine, d, points)


def load_calibration_profile(path: Path) -> CalibrationProfile:
    try:
        return CalibrationProfile.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--profile {path}: not a calibration profile ({exc})") from None


def predict_from_profile(
    d: Deployment, path: Path, batch: int, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    prof = load_calibration_profile(path)
    point = Point("estimate", batch, input_tokens + output_tokens // 2, input_tokens, 1.0, 1.0)
    tpot, ttft = prof.predict(d, point)
    return {
        "engine": prof.engine,
        "fitted_points": len(prof.points),
        "fitted_on": {"model": prof.model, "gpu": prof.gpu, "weight_dtype": prof.weight_dtype},
        "tpot_ms": tpot,
        "ttft_ms": ttft,
        "e2e_ms": ttft + tpot * (output_tokens - 1),
        "bandwidth_efficiency": prof.bandwidth_efficiency,
        "compute_efficiency": prof.compute_efficiency,
        "decode_compute_efficiency": prof.decode_compute_efficiency,
    }
