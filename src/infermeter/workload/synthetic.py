"""Synthetic prompts with an exact token count, checked by a tokenizer.

Text is random common words, so no two prompts share more than a word or two of prefix and
prefix caches do not flatter results (unless a shared prefix is asked for on purpose).
Byte-level BPE and SentencePiece tokenizers split on spaces, so a word's token cost is close
to additive: we assemble words to the target from per-word costs, then count the whole text
and correct with one-token words until the count is exact.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from infermeter.errors import UsageError
from infermeter.workload._aio import gather_limited
from infermeter.workload.tokenizer import TokenCounter
from infermeter.workload.words import WORDS

_MAX_FIXES = 12


@dataclass(slots=True)
class _Vocab:
    words: list[str]
    costs: list[int]
    singles: list[str]


async def _vocab(counter: TokenCounter) -> _Vocab:
    costs = await gather_limited(counter.count(" " + w) for w in WORDS)
    singles = [w for w, c in zip(WORDS, costs, strict=True) if c == 1]
    if not singles:
        raise UsageError(
            f"tokenizer {counter.name} splits every common word into several tokens; "
            "cannot build exact-length prompts with it"
        )
    return _Vocab(list(WORDS), costs, singles)


class SyntheticPromptBuilder:
    """Builds prompt texts of exactly ``n`` tokens (as counted by ``counter``)."""

    def __init__(self, counter: TokenCounter, seed: int = 0) -> None:
        self.counter = counter
        self.rng = np.random.default_rng(seed)
        self._vocab: _Vocab | None = None

    async def _ensure_vocab(self) -> _Vocab:
        if self._vocab is None:
            self._vocab = await _vocab(self.counter)
        return self._vocab

    def _draft(self, vocab: _Vocab, n: int) -> list[str]:
        out: list[str] = []
        total = 0
        while total < n:
            i = int(self.rng.integers(len(vocab.words)))
            if total + vocab.costs[i] > n:
                out.append(vocab.singles[int(self.rng.integers(len(vocab.singles)))])
                total += 1
            else:
                out.append(vocab.words[i])
                total += vocab.costs[i]
        return out

    async def build(
        self,
        n: int,
        prefix: str = "",
        *,
        exact: bool = False,
        overhead: int = 0,
        avoid_first: Collection[str] = (),
    ) -> tuple[str, int]:
        """A text whose prompt counts ``n`` tokens, and the verified count.

        With ``exact`` the counter's ``count_prompt`` (the server's own count of the whole
        request, template included) checks the result; otherwise the bare text is counted
        and ``overhead`` (what the server adds) is added. ``prefix`` starts the text and
        counts towards ``n``. ``avoid_first``: words the text after ``prefix`` must not begin
        with (its first word is then a one-token word not among them, so texts that share
        ``prefix`` part at their first token after it). If the tokenizer will not allow ``n``
        exactly, the closest count found is returned.
        """
        vocab = await self._ensure_vocab()

        async def measure(text: str) -> int:
            if exact:
                got = await self.counter.count_prompt(text)
                assert got is not None
                return got
            return await self.counter.count(text) + overhead

        base = await self.counter.count(prefix) if prefix else 0
        words = self._draft(vocab, max(n - overhead - base, 0))
        if avoid_first and words:
            free = [w for w in vocab.singles if w not in avoid_first] or vocab.singles
            words[0] = free[int(self.rng.integers(len(free)))]
        best: tuple[str, int] | None = None
        for _ in range(_MAX_FIXES):
            text = prefix + (" " if prefix and words else "") + " ".join(words)
            got = await measure(text)
            if best is None or abs(got - n) < abs(best[1] - n):
                best = (text, got)
            if got == n:
                return text, got
            if got > n:
                drop = min(got - n, len(words))
                if drop == 0:
                    break
                del words[-drop:]
            else:
                words.extend(
                    vocab.singles[int(self.rng.integers(len(vocab.singles)))]
                    for _ in range(n - got)
                )
        assert best is not None
        return best
