"""Token accounting per chunk (metrics spec section 2)."""

from __future__ import annotations

from collections.abc import Sequence


def spread_tokens(n_out: int, weights: Sequence[int]) -> list[int]:
    """Spread ``n_out`` tokens over chunks so that ``sum(k) == n_out``.

    Used when the server reports only a total. Each chunk carried at least one token when
    there are enough tokens to go round; the rest is spread in proportion to ``weights`` (the
    characters each chunk carried) by largest remainder, ties to the earlier chunk.

    >>> spread_tokens(5, [1, 1, 1])
    [2, 2, 1]
    >>> spread_tokens(4, [1, 2, 1])
    [1, 2, 1]
    """
    n = len(weights)
    if n == 0:
        return []
    if n_out <= 0:
        return [0] * n
    if n_out < n:
        # Fewer tokens than chunks (a server that splits a token's text): the first
        # n_out chunks get one each so the first token stays at t_first.
        return [1 if i < n_out else 0 for i in range(n)]
    base = [1] * n
    extra = n_out - n
    if extra == 0:
        return base
    total_w = sum(max(w, 0) for w in weights)
    shares = [extra * max(w, 0) / total_w for w in weights] if total_w > 0 else [extra / n] * n
    floors = [int(s) for s in shares]
    left = extra - sum(floors)
    order = sorted(range(n), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [b + f for b, f in zip(base, floors, strict=True)]
