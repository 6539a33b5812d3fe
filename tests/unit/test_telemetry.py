"""Prometheus mappings on the real llama.cpp exposition text, and telemetry summaries."""

from __future__ import annotations

from infermeter.analysis.telemetry import summarize_telemetry
from infermeter.telemetry.prometheus import detect_kind, map_families, parse_exposition

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
