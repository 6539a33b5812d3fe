"""The in-place percentiles of large samples are NumPy's percentiles, float for float."""

from __future__ import annotations

import numpy as np
import pytest

from infermeter.metrics.quantiles import order_statistics, percentiles, std

QS = [50.0, 90.0, 95.0, 99.0, 99.9, 0.0, 100.0, 12.5]


def samples(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "lognormal": rng.lognormal(2.0, 0.5, n),
        "ns gaps": np.diff(np.sort(rng.integers(0, 10**12, n + 1))).astype(np.float64) / 1e6,
        "signed": rng.normal(0.0, 5.0, n),
        "ties": rng.integers(0, 4, n).astype(np.float64),
        "one value": np.full(n, 7.25),
        "tiny and huge": np.concatenate(
            [rng.random(n // 2) * 1e-300, rng.random(n - n // 2) * 1e300]
        ),
    }


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001, 50_000])
@pytest.mark.parametrize("seed", [0, 1])
def test_percentiles_equal_numpys(n: int, seed: int) -> None:
    for name, values in samples(seed, n).items():
        want = np.percentile(values, QS, method="linear").tolist()
        before = values.copy()
        got = percentiles(values, QS, large=0)
        assert got == want, name
        assert np.array_equal(values, before), f"{name}: the sample was changed"


@pytest.mark.parametrize("threads", [1, 3])
def test_selection_narrows_over_several_passes(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """Each pass over the blocks is shared among threads; the shares' counts and members
    add up to one pass's."""
    import infermeter.metrics.quantiles as quantiles

    monkeypatch.setattr(quantiles, "THREADS", threads)
    values = samples(3, 20_000)["ns gaps"]
    ranks = [0, 1, 9_999, 10_000, 19_998, 19_999]
    want = np.sort(values)[ranks].tolist()
    # tiny blocks and a tiny gather size force every narrowing level and a full 64-bit key
    assert order_statistics(values, ranks, block=333, gather=1) == want
    assert order_statistics(values, ranks, block=4096, gather=100) == want


def test_all_equal_values_resolve_without_gathering() -> None:
    values = np.full(10_000, -3.5)
    assert order_statistics(values, [0, 5_000, 9_999], gather=1) == [-3.5, -3.5, -3.5]


def test_blockwise_std_matches_numpy_to_rounding() -> None:
    values = samples(4, 100_000)["lognormal"]
    assert std(values, large=0, block=1000) == pytest.approx(float(values.std()), rel=1e-12)
    assert std(values) == float(values.std())  # small samples: NumPy's own
