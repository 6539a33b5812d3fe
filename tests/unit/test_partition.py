import numpy as np
import pytest

from infermeter.load.arrivals import arrival_offsets
from infermeter.load.partition import auto_workers, partition, split_evenly
from infermeter.load.runner import LoadPlan, slot_delays


def test_split_evenly() -> None:
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(2, 4) == [1, 1, 0, 0]


def test_closed_loop_divides_concurrency_budget_and_prompts() -> None:
    plan = LoadPlan(concurrency=10, num_requests=101, warmup=5, seed=3)
    shares = partition(plan, n_prompts=101, n_warmup=5, workers=3)
    assert [s.plan.concurrency for s in shares] == [4, 3, 3]
    assert sum(s.plan.num_requests or 0 for s in shares) == 101
    assert sum(len(s.warmup_indexes) for s in shares) == 5
    seen = sorted(i for s in shares for i in s.prompt_indexes)
    assert seen == list(range(101))  # every prompt once, no two workers share one


def test_closed_loop_never_more_workers_than_streams() -> None:
    assert len(partition(LoadPlan(concurrency=2, num_requests=10), 10, 0, 8)) == 2


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_open_loop_merged_schedule_is_the_requested_one(workers: int) -> None:
    plan = LoadPlan(
        rate=20.0, num_requests=200, arrival="gamma", burstiness=0.5, seed=7, max_concurrency=10
    )
    shares = partition(plan, n_prompts=200, n_warmup=0, workers=workers)
    merged = sorted(t for s in shares for t in (s.offsets_s or []))
    expected = arrival_offsets(20.0, 200, kind="gamma", burstiness=0.5, seed=7)
    assert np.allclose(merged, expected)
    assert sum(s.plan.num_requests or 0 for s in shares) == 200
    assert sum(s.plan.max_concurrency or 0 for s in shares) >= 10


def test_open_loop_duration_schedule_stops_at_the_duration() -> None:
    shares = partition(LoadPlan(rate=50.0, duration_s=2.0, seed=1), 100, 0, 2)
    offsets = [t for s in shares for t in (s.offsets_s or [])]
    assert offsets and max(offsets) < 2.0
    assert len(offsets) == pytest.approx(100, rel=0.3)


def test_auto_workers() -> None:
    assert auto_workers(LoadPlan(concurrency=4, num_requests=1), cores=8) == 1
    assert auto_workers(LoadPlan(concurrency=300, num_requests=1), cores=8) == 3
    assert auto_workers(LoadPlan(concurrency=5000, num_requests=1), cores=2) == 2
    assert auto_workers(LoadPlan(rate=1000.0, num_requests=1), cores=16) == 16


def test_ramp_up_staggers_streams_and_workers_interleave() -> None:
    plan = LoadPlan(concurrency=8, num_requests=80, ramp_up_s=4.0)
    assert slot_delays(plan) == (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
    assert slot_delays(LoadPlan(concurrency=8, num_requests=8)) == ()
    shares = partition(plan, n_prompts=80, n_warmup=0, workers=3)
    # worker w owns streams w, w+3, w+6: together they are the one run's ramp
    assert shares[0].plan.slot_delays_s == (0.0, 1.5, 3.0)
    assert shares[2].plan.slot_delays_s == (1.0, 2.5)
    merged = sorted(d for s in shares for d in s.plan.slot_delays_s)
    assert merged == list(slot_delays(plan))
