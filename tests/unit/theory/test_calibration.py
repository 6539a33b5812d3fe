"""Calibration: fitted factors recover a known engine; held-out error is measured honestly."""

from __future__ import annotations

import numpy as np
import pytest

from infermeter.theory import Deployment, get_hardware, resolve_model
from infermeter.theory.calibration import (
    Point,
    Profile,
    calibrate,
    decode_features,
    nnls,
    prefill_features,
)


def _deployment() -> Deployment:
    return Deployment(resolve_model("llama-2-7b"), get_hardware("h200"), weight_dtype="bf16")


def _points(noise: float = 0.0) -> list[Point]:
    d, rng, out = _deployment(), np.random.default_rng(1), []
    # prompt lengths vary (as a sweep's length points do): overhead and prefill rate separate
    for b, n_in in ((1, 128), (1, 2048), (2, 512), (4, 512), (8, 512), (16, 512), (32, 1024)):
        p = Point(f"c{b}-{n_in}", b, n_in + 64, n_in, 1, 1)
        xd, xp = decode_features(d, p), prefill_features(d, p)
        tpot = (xd[0] / 0.7 + xd[1] / 0.2) * (1 + noise * rng.standard_normal())
        ttft = (5 + xp[1] / 0.4 + 0.5 * xp[2]) * (1 + noise * rng.standard_normal())
        out.append(Point(p.label, b, n_in + 64, n_in, tpot, ttft))
    return out


def test_recovers_a_known_engine() -> None:
    prof = calibrate("synthetic", _deployment(), _points())
    assert prof.bandwidth_efficiency == pytest.approx(0.7)
    assert prof.decode_compute_efficiency == pytest.approx(0.2)
    assert prof.compute_efficiency == pytest.approx(0.4)
    assert prof.prefill_coef[0] == pytest.approx(5)
    assert prof.prefill_coef[2] == pytest.approx(0.5)  # half the other streams' prompts ahead
    assert all(abs(r["tpot_error"]) < 1e-9 and abs(r["ttft_error"]) < 1e-9 for r in prof.loo)


def test_held_out_error_shows_noise_and_round_trips() -> None:
    d = _deployment()
    prof = calibrate("noisy", d, _points(noise=0.05))
    errors = [abs(r["tpot_error"]) for r in prof.loo]
    assert 0 < max(errors) < 0.3
    again = Profile.from_dict(prof.to_dict())
    p = Point("x", 8, 576, 512, 1, 1)
    assert again.predict(d, p) == prof.predict(d, p)
    with pytest.raises(ValueError, match="calibrate again"):
        Profile.from_dict({**prof.to_dict(), "schema_version": 1})


def test_nnls_never_returns_negative_coefficients() -> None:
    x = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    y = np.array([3.0, 2.0, 1.0])  # a negative slope would fit best
    coef = nnls(x, y)
    assert np.all(coef >= 0) and coef[1] == 0 and coef[0] == pytest.approx(2.0)


def test_needs_two_points() -> None:
    with pytest.raises(ValueError):
        calibrate("x", _deployment(), _points()[:1])


def test_calibrate_cli_on_the_committed_h200_sweep(tmp_path) -> None:
    """The H200 study's own data: the CLI fits, writes a profile, and estimate reads it back."""
    import json

    from conftest import ROOT, run_cli

    sweep = ROOT / "docs" / "results" / "h200" / "llamacpp-f16-promptcache"
    out = tmp_path / "p.json"
    res = run_cli(
        "estimate",
        "--model",
        "llama-2-7b",
        "--gpu",
        "h200",
        "--calibrate",
        str(sweep),
        "--engine",
        "llama.cpp",
        "--out",
        str(out),
        "--json",
    )
    assert res.returncode == 0, res.stderr
    prof = json.loads(out.read_text())
    assert len(prof["loo"]) == 6  # the c=64 point did not finish and is left out
    assert 0.3 < prof["bandwidth_efficiency"] < 0.9
    res = run_cli(
        "estimate",
        "--model",
        "llama-2-7b",
        "--gpu",
        "h200",
        "--profile",
        str(out),
        "--batch",
        "1",
        "--input-tokens",
        "512",
        "--output-tokens",
        "128",
        "--json",
    )
    est = json.loads(res.stdout)
    # the engine's predicted step is slower than the speed of light, as measured
    assert (
        est["tpot_lower_bound_ms"] < est["calibrated"]["tpot_ms"] < 3 * est["tpot_lower_bound_ms"]
    )
    res = run_cli("estimate", "--model", "llama-2-7b", "--calibrate", str(tmp_path))
    assert res.returncode == 2 and "not an infermeter run directory" in res.stderr
    # held-out check: the profile predicts runs it never saw, here on the other model shape
    held_out = ROOT / "docs" / "results" / "h200" / "llamacpp-f16-8b-val"
    args = ("estimate", "--model", "llama-3.1-8b", "--gpu", "h200", "--dtype", "fp16")
    res = run_cli(*args, "--profile", str(out), "--check", str(held_out), "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["batch"] for r in rows] == [2, 8, 32]
    for r in rows:
        assert r["tpot_error"] == pytest.approx(r["tpot_pred_ms"] / r["tpot_ms"] - 1)
    res = run_cli(*args, "--check", str(held_out))
    assert res.returncode == 2 and "--check needs --profile" in res.stderr
