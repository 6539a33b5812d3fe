"""The input embedding is a lookup: a step reads one row per token, not the whole table.

Hand-computed for a Llama-2-7B shape (untied, vocab 32,000, hidden 4,096, 32 layers of
4·h² attention + 3·h·11,008 MLP + 2·h norms, final norm h): 6,738,415,616 parameters, of
which 131,072,000 are the input table and 131,072,000 the LM head; bf16, 2 bytes each.
"""

from __future__ import annotations

import dataclasses

import pytest

from infermeter.theory import Deployment, ModelShape, get_hardware

LLAMA2_7B = ModelShape(
    name="llama-2-7b-like",
    hidden_size=4096,
    num_layers=32,
    num_heads=32,
    num_kv_heads=32,
    head_dim=128,
    intermediate_size=11008,
    vocab_size=32000,
    tie_embeddings=False,
)
TOTAL = 6_738_415_616
TABLE = 32000 * 4096  # 131,072,000
NOT_INPUT_TABLE = TOTAL - TABLE  # 6,607,343,616: every layer, the LM head, the final norm
KV_PER_TOKEN = 32 * 2 * 32 * 128 * 2  # 524,288 bytes, all layers


def _d(shape: ModelShape = LLAMA2_7B) -> Deployment:
    return Deployment(shape, get_hardware("rtx-4090"), weight_dtype="bf16")


def test_shape_counts_are_the_hand_computed_ones() -> None:
    assert LLAMA2_7B.total_params == TOTAL
    assert _d().weights_bytes == TOTAL * 2  # what is stored: both tables, whole


def test_decode_step_reads_one_embedding_row_per_sequence() -> None:
    d = _d()
    # batch 1, context 1: (6,607,343,616 + 4,096) × 2 + 524,288 = 13,215,219,712 bytes,
    # not 13,477,355,520 (the whole 262 MB table on top: 1.98 % too high).
    assert d.decode_step(1, 1)["bytes"] == 13_215_219_712
    assert d.weights_read_per_step(1) == (NOT_INPUT_TABLE + 4096) * 2
    # batch 8, context 512: 8 rows; KV 8 × 512 × 524,288.
    assert d.decode_step(8, 512)["bytes"] == (NOT_INPUT_TABLE + 8 * 4096) * 2 + 8 * 512 * (
        KV_PER_TOKEN
    )
    assert d.decode_step(8, 512)["bytes"] == 15_362_236_416
    # The memory term and MBU use the same count.
    assert d.decode_step(1, 1)["memory_s"] == pytest.approx(13_215_219_712 / 1008e9)
    assert d.measured_mbu(0.015, 1, 1) == pytest.approx(13_215_219_712 / 0.015 / 1008e9)


def test_prefill_reads_one_row_per_prompt_token_capped_at_the_table() -> None:
    d = _d()
    # 2,048 prompt tokens: (6,607,343,616 + 2,048 × 4,096) × 2 = 13,231,464,448 bytes.
    assert d.ttft_bound_s(2048)["memory_s"] == pytest.approx(13_231_464_448 / 1008e9)
    # 2 prompts of 20,000 tokens look up 40,000 rows: never more than the whole table.
    assert d.ttft_bound_s(20000, batch=2)["memory_s"] == pytest.approx(TOTAL * 2 / 1008e9)


def test_tied_embeddings_count_the_table_once_as_the_head() -> None:
    tied = _d(dataclasses.replace(LLAMA2_7B, tie_embeddings=True))
    assert tied.model.total_params == NOT_INPUT_TABLE
    # The head reads the whole (shared) table every step; the lookup's rows are among them.
    for batch in (1, 8, 64):
        assert tied.weights_read_per_step(batch) == NOT_INPUT_TABLE * 2
    assert tied.decode_step(1, 1)["bytes"] == NOT_INPUT_TABLE * 2 + KV_PER_TOKEN
    assert tied.ttft_bound_s(2048)["memory_s"] == pytest.approx(NOT_INPUT_TABLE * 2 / 1008e9)
