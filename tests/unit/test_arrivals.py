import numpy as np
import pytest

from infermeter.load.arrivals import arrival_offsets, schedule


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


@pytest.mark.parametrize("rate, duration", [(3.0, 25.0), (9.0, 10.0), (0.7, 30.0), (50.0, 2.5)])
def test_a_duration_bounded_schedule_runs_at_exactly_the_rate(rate: float, duration: float) -> None:
    # Seen before: --rate 3 --duration 25 sent 3.63 req/s, --rate 9 sent 8.40
    for seed in range(20):
        off = schedule(rate, None, duration, seed=seed)
        assert len(off) == int(np.ceil(rate * duration))
        assert off[-1] < duration
        if len(off) > 1:
            assert (len(off) - 1) / off[-1] == pytest.approx(rate)


def test_count_and_duration_together_stop_at_whichever_comes_first() -> None:
    assert len(schedule(4.0, 10, 60.0, seed=1)) == 10
    short = schedule(4.0, 1000, 5.0, seed=1)
    assert len(short) == 20 and (len(short) - 1) / short[-1] == pytest.approx(4.0)
    with pytest.raises(ValueError):
        schedule(4.0, None, None)
