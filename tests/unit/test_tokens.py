from hypothesis import given
from hypothesis import strategies as st

from infermeter.metrics.tokens import spread_tokens


def test_one_token_per_chunk_when_counts_match() -> None:
    assert spread_tokens(4, [3, 5, 1, 9]) == [1, 1, 1, 1]


def test_extra_tokens_follow_the_text_length() -> None:
    # " tok tok tok" chunks of 12 characters and a last one of 4: 16 tokens over 6 chunks.
    assert spread_tokens(16, [12, 12, 12, 12, 12, 4]) == [3, 3, 3, 3, 3, 1]


def test_fewer_tokens_than_chunks_keeps_the_first() -> None:
    assert spread_tokens(2, [1, 1, 1]) == [1, 1, 0]
    assert spread_tokens(0, [1, 1]) == [0, 0]
    assert spread_tokens(3, []) == []


@given(st.integers(0, 500), st.lists(st.integers(0, 50), min_size=1, max_size=60))
def test_sum_is_always_n_out(n: int, weights: list[int]) -> None:
    ks = spread_tokens(n, weights)
    assert sum(ks) == n
    assert len(ks) == len(weights)
    assert all(k >= 0 for k in ks)
    if n >= len(weights):
        assert all(k >= 1 for k in ks)
