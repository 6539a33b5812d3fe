"""The honest-numbers rules, by hand: prefix-cache share, shared first stamps, per-request TPOT
agreement, the client's self-check (its own evidence only; a busy host is something else),
the cap that must be reached before it excuses queue delay, and the server's own batch."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from infermeter.analysis import diagnose
from infermeter.analysis.efficiency import efficiency
from infermeter.config import BenchConfig, derived_seed
from infermeter.metrics import compute_run_metrics
from infermeter.metrics.aggregate import peak_in_flight, tpot_agreement
from infermeter.metrics.cache import expected_share, judge_prompt_cache, prompt_cache_counts
from infermeter.metrics.client import client_warnings
from infermeter.metrics.stamps import first_stamp_shared, shared_first_stamps
from infermeter.metrics.table import request_table
from infermeter.records.schema import RequestRecord
from infermeter.theory import Deployment, get_hardware, resolve_model

MS = 1_000_000


def rec(i: int, chunks_ms: list[float], **kw: object) -> RequestRecord:
    ns = [int(c * MS) for c in chunks_ms]
    base: dict[str, object] = dict(
        id=i,
        ok=True,
        t_sched_ns=0,
        t_send_ns=0,
        t_first_ns=ns[0],
        t_last_ns=ns[-1],
        t_end_ns=ns[-1] + MS,
        chunk_ns=ns,
        chunk_tokens=[1] * len(ns),
        n_out=len(ns),
        n_in=100,
    )
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


# -- seeds --------------------------------------------------------------------------------


def test_a_run_without_seed_draws_one_and_a_given_seed_is_kept() -> None:
    cfg = BenchConfig.build(url="http://x", concurrency=1, num_requests=1)
    assert cfg.seed is None
    drawn = {cfg.with_seed().seed for _ in range(5)}
    assert len(drawn) == 5 and all(isinstance(s, int) and s >= 0 for s in drawn)
    given = BenchConfig.build(url="http://x", concurrency=1, num_requests=1, seed=7)
    assert given.with_seed().seed == 7


def test_sweep_point_seeds_derive_from_the_sweep_seed_and_do_not_overlap() -> None:
    assert derived_seed(5, 1) == derived_seed(5, 1)
    points = [derived_seed(5, i) for i in range(8)]
    neighbour = [derived_seed(4, i) for i in range(8)]
    assert len(set(points)) == 8 and not set(points) & set(neighbour)  # seed+i would overlap


# -- prefix cache -------------------------------------------------------------------------


def test_cached_share_from_the_servers_counts_and_its_verdict() -> None:
    recs = [
        rec(0, [10, 11], n_cached=99),
        rec(1, [40, 41], n_cached=0),
        rec(2, [12, 13], n_cached=95),
        rec(3, [50, 51]),
    ]
    t = request_table(recs)  # rec 3's server said nothing of its cache
    counts = prompt_cache_counts(t.n_in, t.n_cached, np.array([10.0, 40.0, 12.0, 50.0]))
    assert counts.requests_counted == 3 and counts.cached_share == pytest.approx(194 / 300)
    assert counts.requests_hit == 2 and counts.ttft_p50_hit_ms == 11.0
    assert counts.ttft_p50_miss_ms == 40.0
    fresh = judge_prompt_cache(counts, expected_share("synthetic", 0, 100.0))
    assert fresh.flattered and fresh.source == "usage"
    # a shared prefix of 60 tokens asks for 60 %: 65 % is within the 10-point margin
    assert not judge_prompt_cache(counts, expected_share("synthetic", 60, 100.0)).flattered
    # no per-request counts: the server's /metrics share stands in, and says so
    bare = request_table([rec(0, [1, 2])])
    none = prompt_cache_counts(bare.n_in, bare.n_cached, np.array([1.0]))
    v = judge_prompt_cache(none, 0.0, server_metrics_share=0.5)
    assert v.cached_share == 0.5 and v.source == "server_metrics" and v.flattered
    assert judge_prompt_cache(none, 0.0).cached_share is None


def test_a_flattered_run_warns_and_gets_a_finding() -> None:
    from infermeter.results.build import build_results

    recs = [rec(i, [3, 4, 5], n_cached=100) for i in range(4)]
    meta = {"config": {"concurrency": 1}, "workload": {"kind": "synthetic"}}
    res = build_results(meta, compute_run_metrics(recs), {"client": []})
    assert res["prompt_cache"]["flattered"] and res["prompt_cache"]["cached_share"] == 1.0
    assert any("prefix cache" in w for w in res["warnings"])
    res["analysis"] = {}
    found = {f["rule"]: f for f in diagnose(res, None)}
    assert "TTFT p50 3.0 ms" in found["prefix_cache_flattered"]["message"]


# -- shared first stamps ------------------------------------------------------------------


def test_first_stamp_shared_counts_the_tokens_read_with_the_first() -> None:
    assert first_stamp_shared([5, 5, 5, 9], [1, 2, 1, 1]) == 3
    assert first_stamp_shared([5, 6, 6], [1, 1, 1]) == 0
    assert first_stamp_shared([5], [1]) == 0


def test_shared_first_stamps_are_counted_and_their_error_estimated() -> None:
    clean = rec(0, [10, 12, 14, 16])
    # the client stalled: tokens 0-2 read together at 30 ms, then every 2 ms
    stalled = rec(1, [30, 30, 30, 32, 34, 36])
    t = request_table([clean, stalled])
    s = shared_first_stamps(t.shared_tokens, t.shared_pace_ms, t.n_out, run_itl_p50_ms=2.0)
    assert s.requests == 1 and s.of_requests == 2 and s.tokens_max == 2
    assert s.ttft_late_est_max_ms == pytest.approx(4.0)  # 2 tokens x 2 ms
    assert s.tpot_low_est_max_ms == pytest.approx(4.0 / 5)
    m = compute_run_metrics([clean, stalled])
    assert m.shared_first.requests == 1


def test_loop_lag_warning_quotes_the_worst_as_well_as_p99() -> None:
    w = {"worker": 0, "cpu_util": 0.1, "loop_lag_p99_ms": 103.0, "loop_lag_max_ms": 4200.0}
    (msg,) = client_warnings([w], None)
    assert "103.0 ms late at p99" in msg and "4,200.0 ms at worst" in msg


# -- TPOT against the server's, request by request ----------------------------------------


def test_tpot_agreement_is_per_request() -> None:
    # 26 of 30 match exactly; 4 are off by 50 %: the means differ by ~6 %, the requests do not
    client = np.array([10.0] * 26 + [15.0] * 4)
    a = tpot_agreement(client, np.full(30, 10.0))
    assert a.requests == 30 and a.median_ratio == 1.0
    assert a.share_within_1pct == pytest.approx(26 / 30)


# -- concurrency cap and queue delay ------------------------------------------------------


def test_peak_in_flight_from_the_records() -> None:
    a = rec(0, [1, 2], t_send_ns=0, t_end_ns=10 * MS)
    b = rec(1, [1, 2], t_send_ns=5 * MS, t_end_ns=12 * MS)
    c = rec(2, [1, 2], t_send_ns=10 * MS, t_end_ns=20 * MS)  # starts as a ends
    t = request_table([a, b, c])
    assert peak_in_flight(t.t_send_ns, t.t_end_ns) == 2


def test_queue_delay_warning_stays_when_the_cap_was_not_reached() -> None:
    from infermeter.results.build import build_results

    # due at 0, sent 20 ms late, while only one request was in flight (cap 8)
    recs = [
        rec(i, [30 + 40 * i, 31 + 40 * i], t_sched_ns=40 * i * MS, t_send_ns=(40 * i + 20) * MS)
        for i in range(5)
    ]
    meta = {"config": {"rate": 1.0, "max_concurrency": 8}, "workload": {}}
    worker = {"worker": 0, "cpu_util": 0.1, "loop_lag_p99_ms": 0.1}
    res = build_results(meta, compute_run_metrics(recs), {"client": [worker]})
    assert not res["client"]["max_concurrency_reached"]
    assert any("client queue delay" in w for w in res["warnings"])
    meta["config"]["max_concurrency"] = 1  # now the cap was reached: its waiting is by design
    res = build_results(meta, compute_run_metrics(recs), {"client": [worker]})
    assert res["client"]["max_concurrency_reached"]
    assert not any("client queue delay" in w for w in res["warnings"])


# -- client bottleneck vs a busy host -----------------------------------------------------


def analysis_input(**over: object) -> dict:
    base: dict = {
        "summary": {"requests_failed": 0, "error_rate": 0.0},
        "distributions": {"ttft_ms": {"p50": 10.0}},
        "client": {
            "per_worker": [
                {"worker": 0, "cpu_util": 0.1, "loop_lag_p99_ms": 0.2, "arrival_stamps": "kernel"}
            ]
        },
        "telemetry": {},
        "warnings": ["prompts averaged 900 input tokens as the server counted them"],
    }
    out = copy.deepcopy(base)
    out.update(over)
    return out


def rules(r: dict) -> set[str]:
    return {f["rule"] for f in diagnose(r, None)}


def test_client_bottleneck_needs_the_clients_own_evidence() -> None:
    # a workload warning is no evidence against the client
    assert "client_bottleneck" not in rules(analysis_input())
    busy = analysis_input(client={"per_worker": [{"worker": 0, "cpu_util": 0.97}]})
    (f,) = [f for f in diagnose(busy, None) if f["rule"] == "client_bottleneck"]
    assert "97 % of a core" in f["message"] and "--workers" in f["message"]
    # tokens read together while the client's loop kept time: the server sent them together
    shared = analysis_input(shared_first_stamp={"requests": 3})
    assert "client_bottleneck" not in rules(shared)
    shared["client"]["per_worker"][0]["loop_lag_max_ms"] = 120.0
    (f,) = [f for f in diagnose(shared, None) if f["rule"] == "client_bottleneck"]
    assert "3 requests had their first token read with later ones" in f["message"]
    # kernel stamps: a late loop alone did not move them
    lagged = analysis_input(
        client={
            "per_worker": [
                {"worker": 0, "cpu_util": 0.1, "loop_lag_p99_ms": 50.0, "arrival_stamps": "kernel"}
            ]
        }
    )
    assert "client_bottleneck" not in rules(lagged)
    lagged["client"]["per_worker"][0]["arrival_stamps"] = "loop"
    assert "client_bottleneck" in rules(lagged)


def test_more_workers_are_advised_only_with_an_idle_core() -> None:
    host = {
        "cpu_percent": {"mean": 99.0},
        "cpu_count": 2,
        "client_cpu_percent": {"mean": 97.0},
        "local_server_cpu_percent": {"mean": 100.0},
    }
    busy = analysis_input(
        client={"per_worker": [{"worker": 0, "cpu_util": 0.97}]}, telemetry={"host": host}
    )
    (f,) = [f for f in diagnose(busy, None) if f["rule"] == "client_bottleneck"]
    assert "use more --workers" not in f["message"] and "--cluster" in f["message"]


def test_a_host_busy_with_other_processes_is_host_saturated_not_the_client() -> None:
    host = {
        "cpu_percent": {"mean": 98.0},
        "cpu_count": 2,
        "client_cpu_percent": {"mean": 5.0},
        "local_server_cpu_percent": {"mean": 90.0},
        "busiest_other": {"pid": 42, "name": "stress", "cpu_percent_mean": 99.0},
    }
    found = {f["rule"]: f for f in diagnose(analysis_input(telemetry={"host": host}), None)}
    assert "client_bottleneck" not in found
    f = found["host_saturated"]
    assert "stress (pid 42)" in f["message"] and f["evidence"]["other_cores"] == pytest.approx(1.01)
    # the host pegged by the benchmark's own server is not "saturated by others"
    host["local_server_cpu_percent"] = {"mean": 190.0}
    assert "host_saturated" not in rules(analysis_input(telemetry={"host": host}))


def test_a_host_whose_cores_slowed_is_named_apart_from_a_busy_one() -> None:
    from infermeter.analysis.telemetry import core_speed

    # a quiet core: the probe scatters under SLOW_CORE × its fast level
    quiet = core_speed([480.0, 500.0, 490.0, 520.0, 505.0, 495.0, 510.0, 485.0, 530.0, 500.0])
    assert quiet is not None and quiet["slow_share"] == 0.0 and quiet["fast_us"] < 490
    host: dict[str, Any] = {"cpu_percent": {"mean": 7.0}, "cpu_count": 16, "core_speed": quiet}
    assert "host_slowed" not in rules(analysis_input(telemetry={"host": host}))
    # the same work taking ~1.9× as long in 4 of 10 samples (as on the tenth H100's host)
    two = core_speed([480.0, 900.0, 490.0, 910.0, 485.0, 880.0, 495.0, 905.0, 500.0, 470.0])
    assert two is not None and two["slow_share"] == pytest.approx(0.4)
    host["core_speed"] = two
    host["local_server_cpu_percent"] = {"mean": 100.0}
    found = {f["rule"]: f for f in diagnose(analysis_input(telemetry={"host": host}), None)}
    f = found["host_slowed"]
    assert "40 % of the samples" in f["message"] and "host-bound" in f["message"]
    assert "host_saturated" not in found  # nothing else was busy
    # time a hypervisor took is named on its own
    host = {"cpu_percent": {"mean": 7.0}, "cpu_count": 16, "steal_percent": {"mean": 12.0}}
    (f,) = [f for f in diagnose(analysis_input(telemetry={"host": host}), None)]
    assert f["rule"] == "host_slowed" and "12 % of the cores' time" in f["message"]
    # no local server measured: the probe and the steal were the client's machine's
    assert f["message"].startswith("this host (the client's; no server was measured on it)")
    assert "the server's cannot" in f["message"] and f["severity"] == "low"
    host["steal_percent"] = {"mean": 1.0}
    assert "host_slowed" not in rules(analysis_input(telemetry={"host": host}))
    # the server's own core, slow throughout, reads as its own fast level (0 % slow, as on
    # the eleventh H100's c = 8): its median against the moving probe's fast level names it
    slow_all = {"fast_us": 1_017.0, "p50_us": 1_068.0, "p95_us": 1_130.0, "slow_share": 0.0}
    host = {
        "cpu_percent": {"mean": 7.0},
        "cpu_count": 16,
        "local_server_cpu_percent": {"mean": 100.0},
        "server_core_speed": {**slow_all, "samples": 20},
        "core_speed": {**two, "samples": 20},
    }
    (f,) = [f for f in diagnose(analysis_input(telemetry={"host": host}), None)]
    assert "busiest thread's CPU took 2.2× as long (median)" in f["message"]
    assert "slow throughout" in f["message"] and "may be host-bound" in f["message"]
    # the server's core steady while the moving probe met slower cores (two kinds of core):
    # the server's steps did not feel them
    host["server_core_speed"] = {**quiet, "samples": 20}
    assert "host_slowed" not in rules(analysis_input(telemetry={"host": host}))
    # too few samples, or a probe the thread clock could not time: nothing
    host = {"cpu_percent": {"mean": 7.0}, "cpu_count": 16, "core_speed": {**two, "samples": 9}}
    assert "host_slowed" not in rules(analysis_input(telemetry={"host": host}))
    host["core_speed"] = {**two, "fast_us": 0.0}
    assert "host_slowed" not in rules(analysis_input(telemetry={"host": host}))
    assert core_speed([0.0, 0.0]) is None


# -- efficiency at the server's own batch -------------------------------------------------


def test_efficiency_uses_the_batch_the_server_reports() -> None:
    d = Deployment(resolve_model("llama-2-7b"), get_hardware("h100"))
    res = {
        "summary": {"achieved_concurrency": 7.0, "output_token_throughput_tok_s": 100.0},
        "distributions": {
            "input_tokens": {"mean": 512.0},
            "output_tokens": {"mean": 128.0},
            "tpot_ms": {"mean": 20.0},
            "ttft_ms": {"p50": 50.0},
        },
        "telemetry": {"server": {"requests_running": {"mean": 4.0}}},
    }
    eff = efficiency(res, d)
    assert eff is not None and eff["batch_per_replica"] == 4 and eff["batch_source"] == "server"
    res["telemetry"] = {}
    eff = efficiency(res, d)
    assert eff is not None and eff["batch_per_replica"] == 7 and eff["batch_source"] == "client"


# -- llama.cpp's slots --------------------------------------------------------------------


def test_slot_use_and_the_slot_spread_finding() -> None:
    from infermeter.analysis.telemetry import slot_spread
    from infermeter.telemetry.prometheus import slot_use

    table = [{"id": i, "is_processing": i in (1, 2, 6)} for i in range(8)]
    assert slot_use(table) == {"active": 3, "span": 6, "runs": 2, "total": 8}
    # the ids as the server lists them, in any order
    assert slot_use(table[::-1])["runs"] == 2
    assert slot_use([{"id": 0, "is_processing": False}]) == {
        "active": 0, "span": 0, "runs": 0, "total": 1,
    }  # fmt: skip
    # busy requests scattered over the slots: a forward pass per run of consecutive ids
    scattered = slot_spread([
        {"active": 3, "span": 6, "runs": 2, "total": 8},
        {"active": 3, "span": 7, "runs": 3, "total": 8},
    ])  # fmt: skip
    assert scattered["runs_mean"] == 2.5 and scattered["runs_max"] == 3.0
    assert scattered["span_mean_early"] == 6.0 and scattered["span_mean_late"] == 7.0
    (f,) = [
        f
        for f in diagnose(analysis_input(telemetry={"server": {"slots": scattered}}), None)
        if f["rule"] == "slot_spread"
    ]
    assert "2.50 runs of consecutive slot ids" in f["message"]
    assert "-np at the concurrency" in f["message"] and f["evidence"]["slot_runs_mean"] == 2.5
    # wide but in one run most of the time, on a server with far more slots than load: its
    # steps are single passes, nothing to name
    packed = slot_spread([
        {"active": 7, "span": 8, "runs": 1, "total": 64},
        {"active": 7, "span": 9, "runs": 2, "total": 64},
        {"active": 7, "span": 7, "runs": 1, "total": 64},
    ])  # fmt: skip
    assert "slot_spread" not in rules(analysis_input(telemetry={"server": {"slots": packed}}))
    # telemetry written before the runs were sampled: the span and the slot count decide
    old = slot_spread([{"active": 2, "span": 6, "total": 8}, {"active": 2, "span": 2}])
    assert old["runs_mean"] is None
    (f,) = [
        f
        for f in diagnose(analysis_input(telemetry={"server": {"slots": old}}), None)
        if f["rule"] == "slot_spread"
    ]
    assert "spread over 4.0 slot ids" in f["message"] and "slot_runs_mean" not in f["evidence"]
    many = slot_spread([{"active": 7, "span": 8, "total": 64}])
    assert "slot_spread" in rules(analysis_input(telemetry={"server": {"slots": many}}))
    for quiet in ({"active": 4, "span": 4, "total": 8}, {"active": 7, "span": 8, "total": 16}):
        calm = slot_spread([quiet])
        assert "slot_spread" not in rules(analysis_input(telemetry={"server": {"slots": calm}}))


# -- the client's scheduling priority -----------------------------------------------------


def test_the_load_runs_at_a_raised_priority_where_permitted_and_goes_back() -> None:
    import os
    import threading

    from infermeter.load.selfcheck import CLIENT_NICE, Priority

    before = os.getpriority(os.PRIO_PROCESS, 0)
    seen: dict[str, int] = {}
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)  # e.g. a queue's feeder thread
    helper.start()
    tid = helper.native_id
    assert tid is not None
    try:
        with Priority(True) as p:
            seen["main"] = os.getpriority(os.PRIO_PROCESS, 0)
            seen["helper"] = os.getpriority(os.PRIO_PROCESS, tid)
        permitted = os.geteuid() == 0  # CAP_SYS_NICE; CI runs as root
        expect = CLIENT_NICE if permitted and before > CLIENT_NICE else before
        assert seen == {"main": expect, "helper": expect} and p.nice == expect
        assert os.getpriority(os.PRIO_PROCESS, 0) == before
        assert os.getpriority(os.PRIO_PROCESS, tid) == before
        with Priority(False) as p:
            assert os.getpriority(os.PRIO_PROCESS, 0) == before == p.nice
    finally:
        stop.set()
        helper.join()


def test_the_warmup_draws_its_own_prompts() -> None:
    import asyncio

    from infermeter.workload.lengths import LengthSpec
    from infermeter.workload.plan import synthetic_plan

    plan = asyncio.run(
        synthetic_plan(
            input_spec=LengthSpec.parse("64", "--input-tokens"),
            output_spec=LengthSpec.parse("8", "--output-tokens"),
            n_warmup=4,
            n_measure=16,
            counter=None,
            overhead=0,
            shared_prefix_tokens=0,
            seed=3,
        )
    )
    warm = {p.text for p in plan.warmup}
    assert len(warm) == 4 and not warm & {p.text for p in plan.measure}
