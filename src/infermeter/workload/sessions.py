"""Multi-turn chat sessions: what each turn's user says, how much it asks back, and how long
the user thinks before the next turn (built before any load; the answers come at run time).

A session of N turns sends, at turn k, the conversation so far (every earlier user message
and the server's real answer to it) and a new user message, ``think`` seconds after the
previous answer ended, so the server's prefix cache meets the conversation's real reuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from infermeter.errors import UsageError
from infermeter.workload.lengths import LengthSpec
from infermeter.workload.synthetic import SyntheticPromptBuilder
from infermeter.workload.tokenizer import TokenCounter
from infermeter.workload.words import WORDS

ThinkKind = Literal["fixed", "uniform", "exponential"]


@dataclass(frozen=True, slots=True)
class ThinkTime:
    """Seconds a user takes between an answer and the next turn: ``S``, ``uniform:A:B`` or
    ``exponential:MEAN``."""

    kind: ThinkKind
    a: float
    b: float = 0.0

    def sample(self, rng: np.random.Generator, n: int) -> list[float]:
        if self.kind == "fixed":
            return [self.a] * n
        if self.kind == "uniform":
            return [float(x) for x in rng.uniform(self.a, self.b, size=n)]
        return [float(x) for x in rng.exponential(self.a, size=n)]

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"{self.a:g}"
        if self.kind == "uniform":
            return f"uniform:{self.a:g}:{self.b:g}"
        return f"exponential:{self.a:g}"

    @classmethod
    def parse(cls, text: str, flag: str = "--think-time") -> ThinkTime:
        raw = str(text).strip()
        parts = raw.split(":")
        try:
            nums = [float(p) for p in parts[1:]] if len(parts) > 1 else [float(parts[0])]
        except ValueError:
            raise UsageError(
                f"{flag}: cannot read {raw!r}; use S, uniform:MIN:MAX or exponential:MEAN (seconds)"
            ) from None
        if any(not np.isfinite(x) or x < 0 for x in nums):
            raise UsageError(f"{flag}: seconds must be finite and ≥ 0, got {raw!r}")
        if len(parts) == 1:
            return cls("fixed", nums[0])
        if parts[0] == "uniform" and len(nums) == 2 and nums[0] <= nums[1]:
            return cls("uniform", nums[0], nums[1])
        if parts[0] == "exponential" and len(nums) == 1:
            return cls("exponential", nums[0])
        raise UsageError(
            f"{flag}: cannot read {raw!r}; use S, uniform:MIN:MAX (MIN ≤ MAX) or "
            "exponential:MEAN (seconds)"
        )


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn: the user's new message (its tokens, counted bare), the answer's length to
    ask for, and the user's think time before sending it (0 for a first turn)."""

    user_text: str
    user_tokens: int | None
    max_tokens: int
    think_s: float


@dataclass(frozen=True, slots=True)
class SessionScript:
    """A session's turns, in order."""

    turns: tuple[Turn, ...]


async def session_scripts(
    *,
    n_sessions: int,
    turns: LengthSpec,
    input_spec: LengthSpec,
    output_spec: LengthSpec,
    think: ThinkTime,
    counter: TokenCounter | None,
    seed: int,
) -> list[SessionScript]:
    """Synthetic sessions: each user message of exactly ``input_spec`` tokens (random words,
    so no two messages share more than chance), answers of ``output_spec`` tokens."""
    rng = np.random.default_rng([seed, 5])
    counts = turns.sample(rng, n_sessions)
    total = sum(counts)
    in_lens = input_spec.sample(rng, total)
    out_lens = output_spec.sample(rng, total)
    thinks = think.sample(rng, total)
    builder = SyntheticPromptBuilder(counter, seed=seed) if counter is not None else None
    word_rng = np.random.default_rng([seed, 6])
    scripts: list[SessionScript] = []
    k = 0
    for n in counts:
        built: list[Turn] = []
        for t in range(n):
            if builder is not None:
                text, got = await builder.build(in_lens[k])
            else:
                words = word_rng.integers(len(WORDS), size=in_lens[k])
                text, got = " ".join(WORDS[int(i)] for i in words), None
            built.append(Turn(text, got, out_lens[k], thinks[k] if t else 0.0))
            k += 1
        scripts.append(SessionScript(tuple(built)))
    return scripts
