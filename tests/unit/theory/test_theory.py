"""The speed-of-light model against hand-checked arithmetic and published figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infermeter.errors import UsageError
from infermeter.theory import (
    Deployment,
    Estimate,
    compute_rate_tok_s,
    expected_distinct_experts,
    from_hf_config,
    get_hardware,
    get_model,
    load_config,
    load_hardware,
    mbu,
    memory_time_s,
)

GB = 1e9


# ---- the seeds' worked examples ----
def test_seed_002_rtx4090_per_token_floors() -> None:
    bw = get_hardware("rtx-4090").bandwidth
    assert bw == 1008e9
    assert 1e3 * memory_time_s(14.2 * GB, bw) == pytest.approx(14.09, abs=0.01)  # fp16
    assert 1e3 * memory_time_s(7.1 * GB, bw) == pytest.approx(7.04, abs=0.01)  # 8-bit
    # The same floor from the model itself: Llama-2-7B (6.74B params) in fp16 at batch 1,
    # less the input embedding table but the one row looked up (32,000 × 4,096 - 4,096).
    d = Deployment(get_model("llama-2-7b"), get_hardware("rtx-4090"), weight_dtype="fp16")
    step = d.decode_step(1, 1)
    read = 6.738e9 - 32000 * 4096 + 4096
    assert step["memory_s"] == pytest.approx(read * 2 / 1008e9, rel=1e-3)  # 13.1 ms
    assert step["compute_s"] < step["memory_s"]


def test_seed_003_databricks_mbu() -> None:
    # 7B in fp16 (14 GB) at 14 ms per token moves 1 TB/s: 50 % of a 2 TB/s part.
    assert mbu(14 * GB, 0.014, 2e12) == pytest.approx(0.5)


def test_measured_efficiency_uses_the_bound_counts() -> None:
    d = Deployment(get_model("llama-2-7b"), get_hardware("a100-80gb-sxm"), weight_dtype="fp16")
    bound = d.decode_step(1, 512)["bound_s"]
    # A step measured at exactly the memory bound is 100 % MBU; twice as slow, 50 %.
    assert d.measured_mbu(bound, 1, 512) == pytest.approx(1.0, rel=1e-6)
    assert d.measured_mbu(2 * bound, 1, 512) == pytest.approx(0.5, rel=1e-6)
    ttft = d.ttft_bound_s(2048)
    if ttft["compute_s"] > ttft["memory_s"]:
        assert d.measured_prefill_mfu(ttft["compute_s"], 2048) == pytest.approx(1.0, rel=1e-6)


def test_seed_004_is_a_prefill_rate() -> None:
    rate = compute_rate_tok_s(10, 312e12, 0.462, 70e9, tokens_per_item=1000)
    assert rate == pytest.approx(10.3, abs=0.01)


# ---- KV cache bytes per token ----
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("llama-2-7b", 2 * 32 * 32 * 128 * 2),  # MHA: 512 KiB
        ("llama-3.1-8b", 2 * 32 * 8 * 128 * 2),  # GQA, 8 KV heads: 128 KiB
        ("deepseek-v3", 61 * (512 + 64) * 2),  # MLA latent + rope key: 68.6 KiB
        ("gemma-2-9b", 2 * 42 * 8 * 256 * 2),  # below the window every layer grows
    ],
)
def test_kv_bytes_per_token(model: str, expected: int) -> None:
    d = Deployment(get_model(model), get_hardware("h100"))
    assert d.kv_bytes_per_token == expected


def test_sliding_window_caps_half_the_layers() -> None:
    d = Deployment(get_model("gemma-2-9b"), get_hardware("h100"))
    per_layer = 2 * 8 * 256 * 2
    # 21 global layers hold all 8,192 tokens, 21 sliding layers only the last 4,096.
    assert d.kv_bytes_sequence_per_gpu(8192) == 21 * per_layer * 8192 + 21 * per_layer * 4096
    assert d.kv_bytes_sequence_per_gpu(1000) == 42 * per_layer * 1000


def test_kv_split_across_tensor_parallel_ranks() -> None:
    m = get_model("llama-3.1-8b")
    one = Deployment(m, get_hardware("h100"), gpus=1)
    tp8 = Deployment(m, get_hardware("h100"), gpus=8, tp=8)
    assert tp8.kv_bytes_per_token_per_gpu == one.kv_bytes_per_token_per_gpu / 8
    # 8 KV heads cannot be split 16 ways: each rank keeps (a copy of) one head.
    tp16 = Deployment(get_model("llama-3.1-405b"), get_hardware("h100"), gpus=16, tp=16)
    assert tp16.kv_bytes_per_token_per_gpu == 126 * 2 * 1 * 128 * 2


# ---- parameters against published figures ----
@pytest.mark.parametrize(
    ("model", "total_b", "active_b"),
    [
        ("mixtral-8x7b", 46.7, 12.9),
        ("qwen3-30b-a3b", 30.5, 3.3),
        ("qwen3-235b-a22b", 235.0, 22.0),
        ("deepseek-v3", 671.0, 37.0),
        ("llama-3.1-8b", 8.03, 8.03),
        ("llama-2-70b", 69.0, 69.0),
    ],
)
def test_params_match_published(model: str, total_b: float, active_b: float) -> None:
    m = get_model(model)
    assert m.total_params / 1e9 == pytest.approx(total_b, rel=0.02)
    assert m.active_params / 1e9 == pytest.approx(active_b, rel=0.03)


def test_head_dim_read_not_assumed() -> None:
    m = get_model("qwen3-8b")  # 4096 / 32 = 128, but Gemma-2-9B: 3584 / 16 = 224, not 256
    assert get_model("gemma-2-9b").head_dim == 256 and m.head_dim == 128


def test_moe_reads_the_experts_a_batch_touches() -> None:
    assert expected_distinct_experts(8, 2, 1) == pytest.approx(2)
    assert expected_distinct_experts(128, 8, 1) == pytest.approx(8)
    assert expected_distinct_experts(8, 2, 1000) == pytest.approx(8)
    d = Deployment(get_model("mixtral-8x7b"), get_hardware("h100"), gpus=2, tp=2)
    one, many = d.weights_read_per_step(1), d.weights_read_per_step(256)
    # A large batch reads every expert, and 256 of the input embedding's 32,000 rows.
    everything = d.weights_bytes - (32000 - 256) * 4096 * 2
    assert one < 0.4 * d.weights_bytes and many == pytest.approx(everything, rel=1e-3)


# ---- properties ----
models = st.sampled_from(
    ["llama-3.1-8b", "mixtral-8x7b", "gemma-2-9b", "deepseek-v3", "qwen3-30b-a3b"]
)


@settings(max_examples=40, deadline=None)
@given(models, st.integers(1, 256), st.integers(1, 32768), st.integers(1, 8))
def test_bounds_monotone_and_positive(name: str, batch: int, ctx: int, extra: int) -> None:
    d = Deployment(get_model(name), get_hardware("h200"), gpus=8, tp=8)
    a = d.decode_step(batch, ctx)["bound_s"]
    assert a > 0
    assert d.decode_step(batch, ctx + extra)["bound_s"] >= a
    assert d.decode_step(batch + extra, ctx)["bound_s"] >= a
    assert d.ttft_bound_s(ctx + extra)["bound_s"] >= d.ttft_bound_s(ctx)["bound_s"] > 0


@given(models, st.sampled_from([1, 2, 4, 8]))
def test_tp_never_grows_weights_per_gpu(name: str, tp: int) -> None:
    m = get_model(name)
    base = Deployment(m, get_hardware("h200")).weights_bytes_per_gpu
    assert Deployment(m, get_hardware("h200"), gpus=tp, tp=tp).weights_bytes_per_gpu <= base


@given(models, st.integers(1, 16), st.integers(1, 4096))
def test_fp8_weights_never_slower_when_memory_bound(name: str, batch: int, ctx: int) -> None:
    m = get_model(name)
    bf16 = Deployment(m, get_hardware("h100"), gpus=8, tp=8).decode_step(batch, ctx)
    fp8 = Deployment(m, get_hardware("h100"), gpus=8, tp=8, weight_dtype="fp8").decode_step(
        batch, ctx
    )
    if bf16["memory_s"] >= bf16["compute_s"]:
        assert fp8["bound_s"] <= bf16["bound_s"]


# ---- memory plan, estimate, inputs ----
def test_memory_plan_says_what_does_not_fit() -> None:
    d = Deployment(get_model("llama-3.1-70b"), get_hardware("h100"))
    plan = d.memory_plan(1, 2048, 1024)
    assert plan["weights_fit"] == 0 and plan["shortfall_bytes_per_gpu"] > 60 * GB
    ok = Deployment(get_model("llama-3.1-70b"), get_hardware("h100"), gpus=4, tp=4)
    assert ok.memory_plan(1, 2048, 1024)["max_concurrency"] > 10


def test_estimate_json_fields() -> None:
    e = Estimate(Deployment(get_model("llama-3.1-8b"), get_hardware("h200")), 8, 1024, 128)
    out = e.to_dict()
    for key in (
        "weights_bytes",
        "kv_bytes_per_token",
        "max_concurrency",
        "ttft_lower_bound_ms",
        "tpot_lower_bound_ms",
        "output_throughput_upper_bound_tok_s",
        "compute_bound_batch",
    ):
        assert key in out
    assert out["e2e_lower_bound_ms"] == pytest.approx(
        out["ttft_lower_bound_ms"] + out["tpot_lower_bound_mean_ms"] * 127, rel=1e-6
    )


def test_config_json_file_and_bad_ones(tmp_path: Path) -> None:
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert load_config(tmp_path).total_params == get_model("llama-3.1-8b").total_params
    bad = dict(cfg)
    del bad["num_hidden_layers"]
    with pytest.raises(UsageError, match="num_hidden_layers"):
        from_hf_config(bad)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_config(tmp_path / "broken.json")


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(UsageError, match=r"did you mean llama-3\.1-8b"):
        get_model("llama-3.1-8")
    with pytest.raises(UsageError, match="did you mean h100-sxm"):
        get_hardware("h100-sx")


def test_user_hardware_file(tmp_path: Path) -> None:
    f = tmp_path / "gpu.json"
    f.write_text(
        json.dumps(
            {
                "name": "lab-x",
                "memory_bandwidth_gb_s": 1000,
                "bf16_tflops": 100,
                "memory_gb": 32,
                "attainable_bandwidth": 0.8,
            }
        )
    )
    hw = load_hardware(f)
    d = Deployment(get_model("llama-2-7b"), hw, calibrated=True)
    assert d.bandwidth == pytest.approx(0.8e12) and hw.bandwidth == 1e12
    f.write_text(
        json.dumps(
            {
                "name": "x",
                "memory_bandwidth_gb_s": 1,
                "bf16_tflops": 1,
                "memory_gb": 1,
                "colour": "red",
            }
        )
    )
    with pytest.raises(UsageError, match="colour"):
        load_hardware(f)


def test_sparse_figures_are_not_used() -> None:
    h100 = get_hardware("h100-sxm")
    assert h100.bf16_tflops == 989 and h100.fp8_tflops == 1979  # dense, not 1979 / 3958


def test_theory_depends_on_nothing_else_in_the_package() -> None:
    import re

    root = Path(__file__).resolve().parents[3] / "src" / "infermeter" / "theory"
    for file in root.glob("*.py"):
        for mod in re.findall(r"^(?:from|import) (infermeter[\w.]*)", file.read_text(), re.M):
            assert mod.startswith(("infermeter.theory", "infermeter.errors")), (file.name, mod)
