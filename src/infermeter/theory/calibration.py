"""Calibrating the speed-of-light model to an engine: fitted efficiency factors (pure).

The bounds assume every byte moves at the datasheet bandwidth and every FLOP runs at peak. Real
engines reach a share of each and pay a fixed cost per step (kernel launches, scheduling,
sampling). From measured points (batch, context, TPOT, TTFT) we fit, per engine:

    TPOT = t_mem(b, ctx) / bandwidth_efficiency + t_compute(b, ctx) / decode_compute_efficiency
    TTFT = prefill_overhead + t_prefill(n_in) / compute_efficiency
           + q × (b − 1) × t_prefill(n_in) + s × t_step(b)

where ``t_mem``/``t_prefill``/``t_step`` are the bounds' own memory, one prompt's
prefill-compute and decode-step times for the point: a prompt pays for its own prefill, for
the other streams' prompts it queues behind (all of them when the streams move in lock-step,
few when their starts are spread) and for the decode step it joins. Coefficients are fitted
by least squares restricted to non-negative values (the best of all feature subsets: exact
NNLS for so few features). One prompt length alone cannot tell the overhead from the prefill
rate: calibrate with points at two or more prompt lengths.
The quality of a profile is its leave-one-out error: each point predicted by a fit that did
not see it.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from infermeter.theory.bounds import Deployment

#: 2: TTFT features are one prompt's prefill and the queue of the others' (1: b prompts at once).
PROFILE_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Point:
    """One measured load point: per-replica batch, mean context, prompt length, p50s."""

    label: str
    batch: int
    context: int
    prompt_tokens: int
    tpot_ms: float
    ttft_ms: float


def decode_features(d: Deployment, p: Point) -> list[float]:
    step = d.decode_step(p.batch, p.context)
    # No intercept: at a fixed context the memory time is nearly constant over the batch (the
    # weights dominate), so a constant overhead could not be told apart from bandwidth lost.
    # All constant cost is charged to bandwidth (an *attainable* bandwidth, launches included);
    # what grows with the batch goes to compute.
    return [1e3 * step["memory_s"], 1e3 * step["compute_s"]]


def prefill_features(d: Deployment, p: Point) -> list[float]:
    one = 1e3 * d.ttft_bound_s(p.prompt_tokens, batch=1)["compute_s"]
    step = d.decode_step(p.batch, p.context)
    return [1.0, one, (p.batch - 1) * one, 1e3 * step["bound_s"]]


def nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with coefficients >= 0, by trying every subset of columns (few columns)."""
    n = x.shape[1]
    best, best_err = np.zeros(n), float(np.sum(y**2))
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            sub = x[:, cols]
            coef, *_ = np.linalg.lstsq(sub, y, rcond=None)
            if np.any(coef < 0):
                continue
            err = float(np.sum((sub @ coef - y) ** 2))
            if err < best_err - 1e-15:
                full = np.zeros(n)
                full[list(cols)] = coef
                best, best_err = full, err
    return best


def _relative(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rows scaled by 1/y: the fit minimises relative, not absolute, error."""
    out: np.ndarray = w / y[:, None]
    return out


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    scaled = _relative(y, x)
    return nnls(scaled, np.ones_like(y))


@dataclass
class Profile:
    """Fitted factors for one engine on one deployment; ``predict`` gives TPOT and TTFT."""

    engine: str
    model: str
    gpu: str
    weight_dtype: str
    decode_coef: list[float]
    prefill_coef: list[float]
    points: list[dict[str, Any]] = field(default_factory=list)
    loo: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bandwidth_efficiency(self) -> float | None:
        """Attainable share of the datasheet bandwidth in decode (fixed costs included)."""
        return 1 / self.decode_coef[0] if self.decode_coef[0] > 0 else None

    @property
    def decode_compute_efficiency(self) -> float | None:
        return 1 / self.decode_coef[1] if self.decode_coef[1] > 0 else None

    @property
    def compute_efficiency(self) -> float | None:
        return 1 / self.prefill_coef[1] if self.prefill_coef[1] > 0 else None

    def predict(self, d: Deployment, p: Point) -> tuple[float, float]:
        tpot = float(np.dot(self.decode_coef, decode_features(d, p)))
        ttft = float(np.dot(self.prefill_coef, prefill_features(d, p)))
        return tpot, ttft

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["schema_version"] = PROFILE_SCHEMA_VERSION
        out["decode_compute_efficiency"] = self.decode_compute_efficiency
        out["bandwidth_efficiency"] = self.bandwidth_efficiency
        out["compute_efficiency"] = self.compute_efficiency
        out["prefill_overhead_ms"] = self.prefill_coef[0]
        out["prompt_queue_factor"] = self.prefill_coef[2]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        keys = ("engine", "model", "gpu", "weight_dtype", "decode_coef", "prefill_coef")
        version = data.get("schema_version")
        if version != PROFILE_SCHEMA_VERSION:
            raise ValueError(
                f"profile schema {version}, this infermeter reads {PROFILE_SCHEMA_VERSION}: "
                "calibrate again with --calibrate"
            )
        return cls(
            **{k: data[k] for k in keys},
            points=data.get("points", []),
            loo=data.get("loo", []),
        )


def calibrate(engine: str, d: Deployment, points: list[Point]) -> Profile:
    """Fit on all points; report each point's leave-one-out prediction error."""
    if len(points) < 2:
        raise ValueError("calibration needs at least two measured points")
    xd = np.array([decode_features(d, p) for p in points])
    xp = np.array([prefill_features(d, p) for p in points])
    yd = np.array([p.tpot_ms for p in points])
    yp = np.array([p.ttft_ms for p in points])
    prof = Profile(
        engine,
        d.model.name,
        d.hardware.name,
        d.weight_dtype,
        [float(c) for c in fit(xd, yd)],
        [float(c) for c in fit(xp, yp)],
        points=[asdict(p) for p in points],
    )
    for i, p in enumerate(points):
        keep = [j for j in range(len(points)) if j != i]
        cd, cp = fit(xd[keep], yd[keep]), fit(xp[keep], yp[keep])
        prof.loo.append(_error_row(p, float(np.dot(cd, xd[i])), float(np.dot(cp, xp[i]))))
    return prof


def _error_row(p: Point, tpot: float, ttft: float) -> dict[str, Any]:
    """A measured point beside its predicted TPOT and TTFT, and the relative errors."""
    return {
        "label": p.label,
        "batch": p.batch,
        "tpot_ms": p.tpot_ms,
        "tpot_pred_ms": tpot,
        "tpot_error": tpot / p.tpot_ms - 1,
        "ttft_ms": p.ttft_ms,
        "ttft_pred_ms": ttft,
        "ttft_error": ttft / p.ttft_ms - 1,
    }


def check(prof: Profile, d: Deployment, points: list[Point]) -> list[dict[str, Any]]:
    """Each measured point predicted by a profile fitted without it (runs it never saw, or
    another model shape given by ``d``): the profile's held-out error."""
    return [
        {**_error_row(p, *prof.predict(d, p)), "prompt_tokens": p.prompt_tokens} for p in points
    ]
