import numpy as np
import pytest

from infermeter.load.arrivals import arrival_offsets, arrival_stream


@pytest.mark.parametrize("kind", ["poisson", "gamma", "constant"])
def test_exact_rate_schedule_hits_the_target(kind: str) -> None:
    off = arrival_offsets(8.0, 41, kind=kind, burstiness=0.5, seed=3)  # type: ignore[arg-type]
    assert off[0] == 0.0
    assert np.all(np.diff(off) >= 0)
    assert (len(off) - 1) / off[-1] == pytest.approx(8.0)


def test_seeded_and_reproducible() -> None:
    a = arrival_offsets(5.0, 100, seed=1)
    b = arrival_offsets(5.0, 100, seed=1)
    c = arrival_offsets(5.0, 100, seed=2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_burstiness_changes_the_spread_not_the_mean() -> None:
    bursty = np.diff(arrival_offsets(10.0, 20001, kind="gamma", burstiness=0.25, seed=0))
    smooth = np.diff(arrival_offsets(10.0, 20001, kind="gamma", burstiness=4.0, seed=0))
    poisson = np.diff(arrival_offsets(10.0, 20001, kind="poisson", seed=0))
    cv = lambda x: x.std() / x.mean()  # noqa: E731
    assert cv(bursty) == pytest.approx(2.0, rel=0.1)  # CV of gamma = 1/sqrt(shape)
    assert cv(poisson) == pytest.approx(1.0, rel=0.05)
    assert cv(smooth) == pytest.approx(0.5, rel=0.05)


def test_unbounded_stream_has_the_target_rate() -> None:
    gen = arrival_stream(20.0, seed=5)
    offs = [next(gen) for _ in range(20001)]
    assert 20000 / offs[-1] == pytest.approx(20.0, rel=0.03)
