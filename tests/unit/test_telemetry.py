"""Prometheus mappings on the real llama.cpp exposition text, and telemetry summaries."""

from __future__ import annotations

from infermeter.analysis.telemetry import summarize_telemetry
from infermeter.telemetry.prometheus import (
    detect_kind,
    info_labels,
    map_families,
    parse_exposition,
)

LLAMA_CPP = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 6
# HELP llamacpp:prompt_tokens_cached_total Number of prompt tokens reused from the cache
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total 2
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 8
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 3
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 1
"""


def test_llama_cpp_mapping() -> None:
    fams = parse_exposition(LLAMA_CPP)
    assert detect_kind(fams) == "llama.cpp"
    m = map_families(fams, "llama.cpp")
    assert m == {
        "requests_running": 3.0,
        "requests_waiting": 1.0,
        "prefix_cache_hits": 2.0,
        "prompt_tokens": 6.0,
        "generation_tokens": 8.0,
    }


def test_summary_rates_and_histogram_means() -> None:
    def server(t: int, hits: float, prompt: float, gen: float, running: float) -> dict:
        return {
            "t_ns": t,
            "source": "server",
            "kind": "x",
            "mapped": {
                "prefix_cache_hits": hits,
                "prompt_tokens": prompt,
                "generation_tokens": gen,
                "requests_running": running,
                "ttft_seconds_sum": t / 1e9 * 0.1,
                "ttft_seconds_count": t / 1e9,
            },
        }

    samples = [
        server(0, 0, 0, 0, 1),
        server(int(1e9), 10, 30, 100, 3),
        server(int(2e9), 20, 60, 200, 5),
        server(int(9e9), 99, 99, 999, 9),
    ]
    s = summarize_telemetry(samples, 0, int(2e9))["server"]
    assert s["samples"] == 3  # the last sample is outside the window
    assert s["requests_running"]["mean"] == 3.0 and s["requests_running"]["max"] == 5.0
    assert s["prefix_cache_hit_share"] == 20 / 80  # llama.cpp: cached / (cached + processed)
    assert s["generation_tokens_per_s"] == 100.0
    assert abs(s["ttft_mean_ms"] - 100.0) < 1e-9  # Δsum / Δcount


FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "metrics"


def test_vllm_mapping() -> None:
    """A /metrics page captured from vLLM 0.32's CPU build (the header says when and how)."""
    fams = parse_exposition((FIXTURES / "vllm.txt").read_text())
    assert detect_kind(fams) == "vllm"
    m = map_families(fams, "vllm")
    assert m["requests_running"] == 0 and m["requests_waiting"] == 0
    assert m["requests_waiting_capacity"] == 0 and m["requests_waiting_deferred"] == 0
    assert m["prefix_cache_hits"] == 2048 and m["prefix_cache_queries"] == 25372
    assert m["prompt_tokens_cached"] == 2048
    # per-request TPOT, not the per-token gaps, where the server has both
    assert m["tpot_seconds_count"] == 100 and m["tpot_seconds_sum"] == 0.41415346072703224
    assert m["itl_seconds_count"] == 5280
    assert m["prefill_seconds_count"] == 100 and m["prefill_seconds_sum"] == 1.547225265000634
    assert m["decode_seconds_count"] == 100 and m["queue_seconds_count"] == 100
    assert m["preemptions"] == 0 and m["estimated_flops"] == 0
    assert m["finished_length"] == 100 and m["finished_abort"] == 0
    assert m["iteration_tokens_sum"] == 28704 and m["iteration_tokens_count"] == 5259
    info = info_labels(fams, "vllm")["cache_config"]
    assert info["block_size"] == "128" and info["enable_prefix_caching"] == "True"


def test_older_vllm_names_still_map() -> None:
    """vLLM before 0.10 named TPOT and the KV cache otherwise."""
    text = (
        "# TYPE vllm:gpu_cache_usage_perc gauge\n"
        'vllm:gpu_cache_usage_perc{model_name="m"} 0.42\n'
        "# TYPE vllm:time_per_output_token_seconds histogram\n"
        'vllm:time_per_output_token_seconds_sum{model_name="m"} 1.5\n'
        'vllm:time_per_output_token_seconds_count{model_name="m"} 30\n'
        "# TYPE vllm:num_preemptions_total counter\n"
        'vllm:num_preemptions_total{model_name="m"} 0\n'
    )
    m = map_families(parse_exposition(text), "vllm")
    assert m["kv_cache_usage"] == 0.42 and m["tpot_seconds_count"] == 30
    assert m["preemptions"] == 0


def test_a_window_of_vllm_samples_gives_its_own_times() -> None:
    def server(t_s: float, done: int, preempted: int, waiting_kv: int) -> dict:
        return {
            "source": "server",
            "t_ns": int(t_s * 1e9),
            "kind": "vllm",
            "mapped": {
                "prefill_seconds_sum": 0.02 * done, "prefill_seconds_count": done,
                "decode_seconds_sum": 0.5 * done, "decode_seconds_count": done,
                "queue_seconds_sum": 0.001 * done, "queue_seconds_count": done,
                "preemptions": preempted, "requests_waiting_capacity": waiting_kv,
                "iteration_tokens_sum": 100.0 * done, "iteration_tokens_count": 10.0 * done,
                "estimated_flops": 1e12 * done, "estimated_read_bytes": 2e9 * done,
            },
            "info": {"cache_config": {"block_size": "16"}},
        }  # fmt: skip

    samples = [server(0, 10, 1, 0), server(1, 20, 3, 2), server(2, 40, 4, 4)]
    s = summarize_telemetry(samples, 0, int(2e9))["server"]
    assert abs(s["prefill_mean_ms"] - 20.0) < 1e-9 and abs(s["decode_mean_ms"] - 500.0) < 1e-9
    assert abs(s["queue_mean_ms"] - 1.0) < 1e-9
    assert s["preemptions"] == 3  # grew by 3 inside the window
    assert s["requests_waiting_capacity"]["max"] == 4
    assert s["tokens_per_step_mean"] == 10.0 and s["steps_per_s"] == 150.0
    assert s["estimated_flops_per_s"] == 15e12 and s["estimated_read_bytes_per_s"] == 30e9
    assert s["info"] == {"cache_config": {"block_size": "16"}}


def test_sglang_mapping() -> None:
    fams = parse_exposition((FIXTURES / "sglang.txt").read_text())
    assert detect_kind(fams) == "sglang"
    m = map_families(fams, "sglang")
    assert m["requests_running"] == 7 and m["kv_cache_usage"] == 0.81
    assert m["prefix_cache_hit_rate"] == 0.25
    assert m["tpot_seconds_count"] == 2980  # inter_token_latency_seconds


def test_tgi_mapping() -> None:
    fams = parse_exposition((FIXTURES / "tgi.txt").read_text())
    assert detect_kind(fams) == "tgi"
    m = map_families(fams, "tgi")
    assert m["requests_running"] == 5 and m["requests_waiting"] == 2
    assert m["tpot_seconds_sum"] == 0.25 and m["e2e_seconds_count"] == 10
    assert "kv_cache_usage" not in m  # TGI does not expose it


def test_unknown_engine_keeps_raw_series() -> None:
    from infermeter.telemetry.prometheus import raw_series

    fams = parse_exposition('# TYPE my_queue gauge\nmy_queue{pool="a"} 4\n')
    assert detect_kind(fams) == "unknown" and map_families(fams, "unknown") == {}
    assert raw_series(fams) == {"my_queue{pool=a}": 4.0}


def test_llama_cpp_capture() -> None:
    """A /metrics page captured from the llama-server these tests build (one request done)."""
    fams = parse_exposition((FIXTURES / "llamacpp.txt").read_text())
    m = map_families(fams, detect_kind(fams))
    assert m["generation_tokens"] == 8 and m["requests_running"] == 0
    assert m["prompt_tokens"] > 0 and "prefix_cache_hits" in m


# -- whose CPU is whose (real processes) ---------------------------------------------------

_SPIN = "import time\nend = time.time() + 6\nwhile time.time() < end: pass\n"
_LISTEN_AND_SPIN = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "open(sys.argv[1], 'w').write(str(s.getsockname()[1]))\n" + _SPIN
)
#: Starts the server and exits at once: the server is then nobody's child here.
_DETACH = (
    "import subprocess, sys\n"
    "p = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], stdout=-3, stderr=-3)\n"
    "print(p.pid)\n"
)


def _measure(sampler: object) -> dict:
    import time

    sampler.start()  # type: ignore[attr-defined]
    sampler.sample()  # type: ignore[attr-defined]  # first sight of each process
    time.sleep(1.5)
    return sampler.sample()  # type: ignore[attr-defined,no-any-return]


def test_a_server_infermeter_started_is_not_counted_as_the_client() -> None:
    import os
    import subprocess
    import sys

    from infermeter.telemetry.host import HostSampler, engine_env

    server = subprocess.Popen([sys.executable, "-c", _SPIN], env=engine_env())
    try:
        s = _measure(HostSampler(client_pid=os.getpid()))
    finally:
        server.kill()
        server.wait()
    # the spinning server used most of a core; none of it is the client's
    assert s["local_server_cpu_percent"] > 30, s
    assert s["client_cpu_percent"] < s["local_server_cpu_percent"] / 2, s


def test_the_host_sampler_times_a_core_and_reads_the_stolen_time() -> None:
    import os
    import sys

    from infermeter.analysis.telemetry import summarize_telemetry as summarize
    from infermeter.telemetry.host import HostSampler, core_probe_us

    # the probe's work scales with its turns: it times work, not a clock's resolution
    short, long = core_probe_us(turns=2_000), core_probe_us(turns=40_000)
    assert 0 < short < long
    s = _measure(HostSampler(client_pid=os.getpid()))
    assert s["core_probe_us"] > 0
    if sys.platform == "linux":
        assert 0 <= s["steal_percent"] <= 100
    samples = [{"source": "host", "t_ns": i, **s} for i in range(1, 4)]
    host = summarize(samples, 0, 10)["host"]
    assert host["core_speed"]["samples"] == 3 and host["core_speed"]["slow_share"] == 0.0


def test_the_probe_runs_on_the_cpu_of_the_servers_busiest_thread() -> None:
    import os
    import subprocess
    import sys
    import threading
    import time

    import pytest

    from infermeter.telemetry.host import HostSampler, engine_env, last_cpu, pinned_probe_us

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")  # Linux runs it
    # this thread's own CPU, read from /proc: one it may run on
    assert last_cpu(os.getpid(), threading.get_native_id()) in os.sched_getaffinity(0)
    assert last_cpu(os.getpid(), 2**31 - 1) is None
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    assert pinned_probe_us(cpu) is not None and os.sched_getaffinity(0) == before
    assert pinned_probe_us(10_000) is None and os.sched_getaffinity(0) == before
    # a server with an idle thread beside its busy one, the busy one held to one CPU (the
    # idle one started before, so it may run anywhere): that CPU is the one probed
    cpu = max(before)
    spin = (
        "import os, threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        f"os.sched_setaffinity(0, {{{cpu}}})\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", spin + _SPIN], env=engine_env(), start_new_session=True
    )
    try:
        sampler = HostSampler(client_pid=os.getpid())
        first = _measure(sampler)  # the server's threads seen: no CPU time since yet
        time.sleep(0.5)
        s = sampler.sample()
    finally:
        server.kill()
        server.wait()
    assert "server_cpu" not in first
    # the busiest since the last sample, not over its life (an engine idle now that worked
    # earlier, as one a test session leaves running, would win that)
    assert s["server_cpu"] == cpu and s["server_core_probe_us"] > 0


def test_a_loopback_server_not_started_here_is_found_by_its_port() -> None:
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    from infermeter.telemetry.host import HostSampler

    path = Path(tempfile.mkdtemp()) / "port"
    pid = int(
        subprocess.run(
            [sys.executable, "-c", _DETACH, _LISTEN_AND_SPIN, str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (path.exists() and path.read_text()):
            time.sleep(0.05)
        s = _measure(HostSampler(client_pid=os.getpid(), server_port=int(path.read_text())))
    finally:
        os.kill(pid, signal.SIGKILL)
    assert s["local_server_cpu_percent"] > 30, s
    assert s["client_cpu_percent"] < s["local_server_cpu_percent"] / 2, s


#: A server process that starts its worker with an environment of its own, as a process that
#: renames itself (vLLM's engine core: setproctitle overwrites the environment block) reads.
_SPAWN_CLEAN_WORKER = (
    "import os, subprocess, sys\n"
    "env = {k: v for k, v in os.environ.items() if not k.startswith('INFERMETER')}\n"
    "p = subprocess.Popen([sys.executable, '-c', sys.argv[1]], env=env)\n"
    "p.wait()\n"
)


def test_an_engines_own_children_are_the_server_whatever_their_environment() -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    from infermeter.telemetry.host import HostSampler, engine_env

    server = subprocess.Popen(
        [sys.executable, "-c", _SPAWN_CLEAN_WORKER, _SPIN], env=engine_env(), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(server.pid).children() and time.monotonic() < deadline:
            time.sleep(0.02)  # the worker exists before the first sample sees the tree
        s = _measure(HostSampler(client_pid=os.getpid()))
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert s["local_server_cpu_percent"] > 30, s
    assert s["client_cpu_percent"] < s["local_server_cpu_percent"] / 2, s


def test_every_server_summary_key_is_in_the_results_schema() -> None:
    from typing import get_type_hints

    from infermeter.analysis.telemetry import server_summary_keys
    from infermeter.schema.results import ServerTelemetry

    assert server_summary_keys() <= set(get_type_hints(ServerTelemetry))


def test_a_run_between_two_server_samples_is_read_from_them() -> None:
    """A run shorter than the sampling period: no server sample inside it, one before (the
    recorder's, before the load) and one after (after the load): the counters' growth
    between them is the run's; the gauges, sampled nowhere inside, are left out."""

    def server(t_s: float, done: int) -> dict:
        return {
            "t_ns": int(t_s * 1e9),
            "source": "server",
            "kind": "vllm",
            "mapped": {
                "requests_running": 1.0,
                "prefill_seconds_sum": 0.05 * done,
                "prefill_seconds_count": float(done),
                "generation_tokens": 64.0 * done,
            },
        }

    samples = [server(-2.0, 0), server(-0.4, 1), server(1.3, 13), server(2.3, 13)]
    s = summarize_telemetry(samples, 0, int(1e9))["server"]
    assert s["samples"] == 0 and "requests_running" not in s
    assert abs(s["prefill_mean_ms"] - 50.0) < 1e-9  # (0.65 - 0.05) s over 12 requests
    assert abs(s["generation_tokens_per_s"] - 12 * 64 / 1.7) < 1e-9  # -0.4 s to 1.3 s
    # with samples inside the window the gauges come from them, the counters still from
    # the samples around it
    samples.insert(2, server(0.5, 7))
    s = summarize_telemetry(samples, 0, int(1e9))["server"]
    assert s["samples"] == 1 and s["requests_running"]["mean"] == 1.0
    assert abs(s["prefill_mean_ms"] - 50.0) < 1e-9
    # none before, none after: nothing to read a growth from
    assert "server" not in summarize_telemetry([server(0.5, 7)], int(1e9), int(2e9))


class _Counting:
    """A sampler that samples far less often than a short recording lasts."""

    name, period_s = "counting", 60.0

    def __init__(self) -> None:
        self.taken = 0

    def start(self) -> str | None:
        return None

    def sample(self) -> dict[str, int]:
        self.taken += 1
        return {"n": self.taken}

    def close(self) -> None:
        pass


def test_the_recorder_samples_before_the_load_and_after_it(tmp_path) -> None:
    import time

    import orjson

    from infermeter.telemetry.base import _Recorder

    sampler = _Counting()
    path = tmp_path / "telemetry.jsonl"
    with _Recorder(path, [sampler], time.perf_counter_ns()):
        # the first sample is on disk before the recorder lets the load go
        assert [orjson.loads(x)["n"] for x in path.read_bytes().splitlines()] == [1]
        time.sleep(0.05)
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [x["n"] for x in lines] == [1, 2]
    assert lines[1]["t_ns"] - lines[0]["t_ns"] >= 50_000_000


def test_host_cpu_shares_are_the_sampler_s_own_not_psutil_s_per_thread_state() -> None:
    import os
    import threading
    import time
    from collections import namedtuple

    import pytest

    from infermeter.telemetry.host import HostSampler, cpu_shares

    Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
    a = Times(100, 0, 50, 800, 50, 0, 0, 0, 10, 0)
    # +60 user (10 of it guest, already inside user), +20 system, +100 idle, +10 iowait,
    # +10 steal: 200 s of CPU time, 90 of them busy (steal counts as busy, as psutil does)
    b = Times(160, 0, 70, 900, 60, 0, 0, 10, 20, 0)
    busy, steal = cpu_shares(a, b)
    assert busy == pytest.approx(45.0) and steal == pytest.approx(5.0)
    assert cpu_shares(a, a) == (0.0, 0.0)  # no time passed
    # iowait stepping back (Linux does) is not taken for busy time
    back = b._replace(iowait=40)
    assert cpu_shares(a, back)[0] == pytest.approx(round(100 * 90 / 190, 1))
    Bare = namedtuple("Bare", "user system idle")
    assert cpu_shares(Bare(1, 1, 8), Bare(3, 1, 14)) == (pytest.approx(25.0), None)

    # started on one thread and sampled on another, as the recorder does: the first
    # sample on the sampling thread covers the time since start, not nothing
    sampler = HostSampler(client_pid=os.getpid())
    assert sampler.start() is None
    got: dict[str, float] = {}

    def spin_then_sample() -> None:
        end = time.perf_counter() + 0.4
        while time.perf_counter() < end:
            pass
        got.update(sampler.sample())

    t = threading.Thread(target=spin_then_sample)
    t.start()
    t.join()
    sampler.close()
    # this thread kept one core busy for all of it: at least 1 / cores of the host
    assert got["cpu_percent"] >= 100 / (os.cpu_count() or 1) * 0.8, got
