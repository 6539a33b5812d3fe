"""Sweep strategies and the capacity criterion (pure)."""

from __future__ import annotations

import pytest

from infermeter.analysis.capacity import meets, sweep_sla
from infermeter.errors import UsageError
from infermeter.load.strategies import (
    CapacitySearch,
    PointFigures,
    auto_rates,
    parse_values,
    saturation,
    too_many_errors,
)


def test_parse_values_lists_and_ranges() -> None:
    assert parse_values("4,1,2,2", "concurrency") == [1, 2, 4]
    assert parse_values("1:16", "concurrency") == [1, 2, 4, 8, 16]
    assert parse_values("1:64:x4", "concurrency") == [1, 4, 16, 64]
    assert parse_values("0.5:2:+0.5", "rate") == [0.5, 1.0, 1.5, 2.0]
    assert parse_values("1:10", "rate") == [1, 2, 4, 8]  # stops at the last step within HI


@pytest.mark.parametrize(
    ("text", "variable", "message"),
    [
        ("", "concurrency", "no values"),
        ("a,b", "rate", "cannot read 'a'"),
        ("1.5", "concurrency", "whole number"),
        ("0,1", "rate", "positive"),
        ("8:1", "rate", "does not go up"),
        ("1:8:x1", "rate", "does not go up"),
        ("1:8:*2", "rate", "cannot read the range"),
    ],
)
def test_parse_values_refuses(text: str, variable: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_values(text, variable)  # type: ignore[arg-type]


def test_auto_rates_spread_up_to_saturation() -> None:
    assert auto_rates(10.0, 4) == [2.5, 5.0, 7.5, 10.0]
    assert auto_rates(33.8761, 3) == [11.3, 22.6, 33.9]
    with pytest.raises(UsageError):
        auto_rates(0.0, 3)


def _fig(tok_s: float, ttft: float, e2e: float = 100.0, err: float = 0.0) -> PointFigures:
    return PointFigures(1, tok_s, ttft, e2e, err)


def test_saturation_fires_when_throughput_is_flat_and_latency_climbs() -> None:
    why = saturation(_fig(1000, 50), _fig(1020, 90))
    assert why is not None and "+2%" in why and "TTFT p50 rose 50.0 -> 90.0" in why
    # throughput still grows: not saturated, however latency moves
    assert saturation(_fig(1000, 50), _fig(1100, 200)) is None
    # flat throughput but flat latency too (a noisy plateau): not saturated
    assert saturation(_fig(1000, 50, 100), _fig(1010, 55, 110)) is None
    # E2E alone may show it
    assert saturation(_fig(1000, 50, 100), _fig(1000, 50, 200)) is not None


def test_too_many_errors() -> None:
    assert too_many_errors(_fig(1, 1, err=0.2), 0.1) == "20% of requests failed (limit 10%)"
    assert too_many_errors(_fig(1, 1, err=0.1), 0.1) is None


def _drive(search: CapacitySearch, capacity: float) -> list[float]:
    tried = []
    while (v := search.next_value()) is not None:
        tried.append(v)
        search.record(v, v <= capacity)
    return tried


def test_integer_search_brackets_then_bisects_to_adjacent_values() -> None:
    s = CapacitySearch(start=1, upper=256, integer=True)
    assert _drive(s, 37) == [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]
    assert s.best_pass == 37 and s.lowest_fail == 38


def test_integer_search_finds_the_top_or_nothing() -> None:
    s = CapacitySearch(start=1, upper=16, integer=True)
    assert _drive(s, 1000) == [1, 2, 4, 8, 16]
    assert s.best_pass == 16 and s.lowest_fail is None
    s = CapacitySearch(start=4, upper=16, integer=True)
    assert _drive(s, 0) == [4, 2, 1]
    assert s.best_pass is None and s.lowest_fail == 1


def test_rate_search_stops_within_tolerance() -> None:
    s = CapacitySearch(start=1.0, upper=100.0, integer=False, rel_tol=0.1)
    tried = _drive(s, 13.0)
    lo, hi = s.best_pass, s.lowest_fail
    assert lo is not None and hi is not None
    assert lo <= 13.0 < hi and hi / lo <= 1.1
    assert len(tried) <= 12


def test_search_respects_max_runs_and_non_monotone_servers() -> None:
    s = CapacitySearch(start=1, upper=1024, integer=True, max_runs=3)
    assert _drive(s, 500) == [1, 2, 4]
    s = CapacitySearch(start=1, upper=64, integer=True)
    s.record(1, True)
    s.record(2, False)
    s.record(4, True)  # a pass above a fail: noise
    assert not s.monotone and s.next_value() is None


def _results(ttft_p95: float, error_rate: float = 0.0, slo: dict | None = None) -> dict:
    return {
        "summary": {"requests_completed": 10, "error_rate": error_rate},
        "distributions": {"ttft_ms": {"p95": ttft_p95, "mean": ttft_p95 / 2}},
        "slo": slo,
    }


def test_profile_criterion_uses_latency_ceilings_only() -> None:
    sla = sweep_sla(None, "chat", 0.9, 0.0)
    assert sla is not None
    assert sla.criterion.startswith("p95 ttft_ms < 200 and error rate <= 0%")
    assert "output_tok_s > 1000" in sla.criterion  # said to be left out
    assert meets(_results(150), sla) == (True, [])
    ok, why = meets(_results(250), sla)
    assert not ok and why == ["p95 ttft_ms 250.0 >= 200"]
    ok, why = meets(_results(150, error_rate=0.05), sla)
    assert not ok and "error rate 5.0% > 0%" in why[0]


def test_slo_criterion_percentile_terms_and_attainment() -> None:
    sla = sweep_sla("p95_ttft_ms=100,tpot_ms=20", None, 0.9, 0.01)
    assert sla is not None and sla.min_attainment == 0.9
    term = {"name": "p95_ttft_ms", "threshold": 100, "attainment": 0.97, "passed": True}
    good = {"terms": [term], "attainment": 0.95}
    assert meets(_results(1, slo=good), sla) == (True, [])
    bad = {"terms": [{**term, "attainment": 0.9, "passed": False}], "attainment": 0.85}
    ok, why = meets(_results(1, slo=bad), sla)
    assert not ok and len(why) == 2 and "SLO attainment 85.0% < 90%" in why[1]


def test_criterion_refusals() -> None:
    with pytest.raises(UsageError, match="not both"):
        sweep_sla("ttft_ms=1", "chat", 0.9, 0)
    with pytest.raises(UsageError, match="min-attainment"):
        sweep_sla("ttft_ms=1", None, 1.5, 0)
    assert sweep_sla(None, None, 0.9, 0) is None
    assert (
        meets({"summary": {"requests_completed": 0}}, sweep_sla(None, "chat", 0.9, 0))[0] is False
    )  # type: ignore[arg-type]
