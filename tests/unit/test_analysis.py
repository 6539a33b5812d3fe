"""SLA verdicts, diagnosis rules (each shown to fire and not to fire) and cost, by hand."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from infermeter.analysis import cost, diagnose, evaluate_profile, load_profile, ttft_bands
from infermeter.analysis.verdicts import BUILTIN_PROFILES
from infermeter.errors import UsageError


def results(**over: object) -> dict:
    base = {
        "summary": {
            "requests_sent": 10,
            "requests_completed": 10,
            "requests_failed": 0,
            "error_rate": 0.0,
            "request_throughput_rps": 2.0,
            "output_token_throughput_tok_s": 1200.0,
            "total_token_throughput_tok_s": 3600.0,
            "achieved_concurrency": 8.0,
        },
        "distributions": {
            "ttft_ms": {"count": 10, "mean": 150.0, "p50": 120.0, "p95": 180.0},
            "tpot_ms": {"count": 10, "mean": 20.0},
            "e2e_ms": {"count": 10, "mean": 3000.0},
        },
        "telemetry": {
            "gpu": [{"index": 0, "memory_util": 0.8}],
            "server": {
                "requests_waiting": {"mean": 0.0, "max": 0.0},
                "kv_cache_usage": {"mean": 0.5, "max": 0.6},
            },
        },
        "client": {"per_worker": [{"worker": 0, "cpu_util": 0.2}]},
        "warnings": [],
        "errors": {"by_kind": {}},
    }
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = value
    return out


def test_chat_profile_passes_with_margins() -> None:
    v = evaluate_profile(results(), BUILTIN_PROFILES["chat"])
    assert v["passed"] is True
    ttft, tput, mem = v["limits"]
    assert ttft["measured"] == 180.0 and ttft["margin"] == pytest.approx(0.1)  # (200-180)/200
    assert tput["margin"] == pytest.approx(0.2)  # (1200-1000)/1000
    assert mem["margin"] == pytest.approx(0.8 / 0.7 - 1)


def test_realtime_profile_fails_and_unmeasured_memory_is_not_a_pass() -> None:
    r = results(telemetry={})
    v = evaluate_profile(r, BUILTIN_PROFILES["realtime"])
    assert v["limits"][0]["passed"] is False  # p95 TTFT 180 ms > 50 ms
    assert v["limits"][2]["passed"] is None  # no GPU telemetry: not measured
    assert v["passed"] is False


def test_profile_file(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(
        json.dumps(
            {
                "name": "mine",
                "limits": [
                    {"metric": "tpot_ms", "max": 25},
                    {"metric": "total_tok_s", "min": 3000},
                ],
            }
        )
    )
    v = evaluate_profile(results(), load_profile(str(f)))
    assert v["profile"] == "mine" and v["passed"] is True
    f.write_text(json.dumps({"limits": [{"metric": "speed", "max": 1}]}))
    with pytest.raises(UsageError, match="metric must be one of"):
        load_profile(str(f))
    with pytest.raises(UsageError, match="neither a built-in profile"):
        load_profile("gaming")


def test_ttft_bands() -> None:
    assert ttft_bands([50, 150, 250, 500, 2000]) == {
        "instant": 0.2,
        "fast": 0.4,
        "slow": 0.2,
        "sluggish": 0.2,
    }


def test_cost_by_hand() -> None:
    c = cost(results(), gpu_hourly_price=2.5, gpus=4)
    # $10/h = $0.0027778/s; 1,200 tok/s -> $2.3148 per 1M output tokens.
    assert c["per_million_output_tokens"] == pytest.approx(10 / 3600 / 1200 * 1e6)
    assert c["per_million_total_tokens"] == pytest.approx(10 / 3600 / 3600 * 1e6)
    assert c["per_request"] == pytest.approx(10 / 3600 / 2.0)


def rules(r: dict, eff: dict | None = None) -> set[str]:
    return {f["rule"] for f in diagnose(r, eff)}


def test_healthy_run_has_no_findings() -> None:
    assert rules(results(), {"mbu": 0.7, "batch_per_replica": 8, "ttft_x_bound": 1.5}) == set()


def test_queueing_fires_with_waiting_and_far_ttft() -> None:
    r = results()
    r["telemetry"]["server"]["requests_waiting"] = {"mean": 6.0, "max": 12.0}
    assert "queueing" in rules(r, {"ttft_x_bound": 40.0, "batch_per_replica": 8, "mbu": 0.7})
    assert "queueing" not in rules(r, {"ttft_x_bound": 1.2, "batch_per_replica": 8, "mbu": 0.7})


def test_launch_overhead_fires_on_low_mbu_at_small_batch() -> None:
    f = diagnose(results(), {"mbu": 0.12, "batch_per_replica": 1, "tpot_x_bound": 8.3})
    assert [x["rule"] for x in f] == ["launch_overhead"]
    assert f[0]["evidence"]["mbu"] == 0.12
    assert "launch_overhead" not in rules(results(), {"mbu": 0.12, "batch_per_replica": 64})


def test_kv_cache_full_fires_only_with_waiting() -> None:
    r = results()
    r["telemetry"]["server"]["kv_cache_usage"] = {"mean": 0.9, "max": 0.99}
    assert "kv_cache_full" not in rules(r)
    r["telemetry"]["server"]["requests_waiting"] = {"mean": 2.0, "max": 5.0}
    assert "kv_cache_full" in rules(r)


def test_client_bottleneck_and_errors() -> None:
    r = results(client={"per_worker": [{"worker": 0, "cpu_util": 0.97}]})
    assert "client_bottleneck" in rules(r)
    r = results()
    r["summary"]["requests_failed"], r["summary"]["error_rate"] = 2, 0.2
    r["errors"] = {"by_kind": {"timeout": 2}}
    found = diagnose(r, None)
    assert [x["rule"] for x in found] == ["errors"] and "timeout ×2" in found[0]["message"]


def test_unsized_prompts_far_from_the_target_are_flagged() -> None:
    from infermeter.metrics.client import workload_warnings

    unsized = {"kind": "synthetic", "verified_lengths": False, "input_tokens": "512"}
    (msg,) = workload_warnings(unsized, {"server_mean_input_tokens": 882.0})
    assert "882" in msg and "--input-tokens 512" in msg and "--tokenizer" in msg
    assert workload_warnings(unsized, {"server_mean_input_tokens": 530.0}) == []  # within 10 %
    assert (
        workload_warnings(
            {**unsized, "verified_lengths": True}, {"server_mean_input_tokens": 882.0}
        )
        == []
    )
    assert (
        workload_warnings(
            {**unsized, "input_tokens": "uniform:100:900"}, {"server_mean_input_tokens": 882.0}
        )
        == []
    )
    assert workload_warnings(unsized, {}) == []  # the server did not count


def test_ttft_outside_prompt_names_llama_cpps_prompt_cache_on_the_h200_runs() -> None:
    """The H200 study's llama.cpp runs, re-analysed from their records: as shipped (host
    prompt cache on) ~190 ms of TTFT pass before the prompt starts; with --cache-ram 0, ~4 ms."""
    from infermeter.api import full_results, load_run

    root = Path(__file__).resolve().parents[2] / "docs" / "results" / "h200"

    def findings(point: str) -> dict:
        run = load_run(root / point)
        res = full_results(run.meta, run.metrics, run.status, run.telemetry, {})
        return {f["rule"]: f for f in res["analysis"]["findings"]}, res

    shipped, res = findings("llamacpp-f16-promptcache/points/00-c1")
    gap = res["server_reported"]["ttft_outside_prompt_ms"]["p50"]
    assert 150 < gap < 250 and res["server_reported"]["prompt_ms"]["p50"] < 40
    f = shipped["ttft_outside_prompt"]
    assert "--cache-ram 0" in f["message"] and f["evidence"]["ttft_outside_prompt_p50_ms"] == gap
    tuned, res = findings("llamacpp-f16/points/00-c1")
    assert "ttft_outside_prompt" not in tuned
    assert res["server_reported"]["ttft_outside_prompt_ms"]["p50"] < 10


def test_loop_lag_warning_says_what_it_means_for_each_stamp_source() -> None:
    from infermeter.metrics.client import client_warnings

    worker = {"worker": 0, "cpu_util": 0.5, "loop_lag_p99_ms": 12.0}
    (late,) = client_warnings([worker], None)
    (kernel,) = client_warnings([{**worker, "arrival_stamps": "kernel"}], None)
    assert "12.0 ms late" in late and "may be late by as much" in late
    assert "12.0 ms late" in kernel and "kernel's receive time" in kernel
    assert client_warnings([{**worker, "loop_lag_p99_ms": 1.0}], None) == []


def test_a_reached_cap_is_named_as_the_cause_of_queue_delay() -> None:
    from infermeter.metrics.client import client_warnings

    worker = {"worker": 0, "cpu_util": 0.1, "loop_lag_p99_ms": 0.5}
    (uncapped,) = client_warnings([worker], 40.0)
    (capped,) = client_warnings([worker], 40.0, capped=True)
    assert "the client, not the server, delayed them" in uncapped
    assert "--max-concurrency was reached" in capped and "40.0 ms (p99)" in capped
    assert client_warnings([worker], 1.0, capped=True) == []


def test_preemptions_and_requests_held_for_kv_room_are_findings() -> None:
    r = results()
    r["telemetry"]["server"].update(
        {"preemptions": 12.0, "requests_waiting_capacity": {"mean": 1.0, "max": 3.0}}
    )
    (f,) = [x for x in diagnose(r, None) if x["rule"] == "kv_cache_pressure"]
    assert f["severity"] == "high" and "preempted 12 running requests" in f["message"]
    assert f["evidence"] == {
        "preemptions": 12.0,
        "waiting_for_kv_max": 3.0,
        "kv_cache_usage_max": 0.6,
    }
    r["telemetry"]["server"]["preemptions"] = 0.0
    (f,) = [x for x in diagnose(r, None) if x["rule"] == "kv_cache_pressure"]
    assert f["severity"] == "medium" and "preempted" not in f["message"]
    r["telemetry"]["server"]["requests_waiting_capacity"] = {"mean": 0.0, "max": 0.0}
    assert "kv_cache_pressure" not in rules(r)


def test_ttft_outside_vllms_own_clock_is_named() -> None:
    r = results()  # client TTFT mean 150 ms
    r["telemetry"]["server"].update({"kind": "vllm", "ttft_mean_ms": 40.0})
    (f,) = [x for x in diagnose(r, None) if x["rule"] == "ttft_outside_server"]
    assert f["message"].startswith("110 ms of the mean TTFT (150 ms)")
    r["telemetry"]["server"]["ttft_mean_ms"] = 130.0  # within 20 ms: nothing to say
    assert "ttft_outside_server" not in rules(r)
    r["telemetry"]["server"].update({"kind": "sglang", "ttft_mean_ms": 40.0})
    assert "ttft_outside_server" not in rules(r)  # whose clock starts where is vLLM's here


def test_the_servers_own_mfu_and_mbu_stand_beside_ours() -> None:
    from infermeter.analysis.efficiency import efficiency
    from infermeter.theory import Deployment, get_hardware, resolve_model

    d = Deployment(resolve_model("llama-2-7b"), get_hardware("h100"))
    res = {
        "summary": {"achieved_concurrency": 4.0, "output_token_throughput_tok_s": 100.0},
        "distributions": {
            "input_tokens": {"mean": 512.0},
            "output_tokens": {"mean": 128.0},
            "tpot_ms": {"mean": 20.0},
            "ttft_ms": {"p50": 50.0},
        },
        "telemetry": {"server": {"estimated_flops_per_s": 0.1 * d.peak_flops,
                                 "estimated_read_bytes_per_s": 0.5 * d.bandwidth}},
    }  # fmt: skip
    eff = efficiency(res, d)
    assert eff is not None
    assert eff["server_mfu"] == pytest.approx(0.1) and eff["server_mbu"] == pytest.approx(0.5)
    res["telemetry"]["server"] = {"estimated_flops_per_s": 0.0}  # vLLM on CPU counts none
    eff = efficiency(res, d)
    assert eff is not None and "server_mfu" not in eff and "server_mbu" not in eff
