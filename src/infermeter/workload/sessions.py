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
from infermeter.workload.datasets import Conversation
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
    """A session's turns, in order, after its system message if it has one."""

    turns: tuple[Turn, ...]
    system: str | None = None


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


async def dataset_session_scripts(
    *,
    conversations: list[Conversation],
    n_sessions: int,
    max_turns: int | None,
    output_spec: LengthSpec | None,
    think: ThinkTime,
    counter: TokenCounter | None,
    seed: int,
    where: str,
) -> list[SessionScript]:
    """Sessions from a dataset's conversations (taken in a seeded order, again from the
    start where there are fewer than ``n_sessions``), at most ``max_turns`` turns each; a
    turn asks for ``output_spec`` tokens, else as many as the dataset's reply holds."""
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(conversations))
    scripts: list[SessionScript] = []
    for i in range(n_sessions):
        conv = conversations[int(order[i % len(conversations)])]
        n = len(conv.user) if max_turns is None else min(len(conv.user), max_turns)
        outs = output_spec.sample(rng, n) if output_spec is not None else None
        thinks = think.sample(rng, n)
        turns = []
        for k in range(n):
            if outs is not None:
                max_tokens = outs[k]
            else:
                reply = conv.replies[k]
                if reply is None or counter is None:
                    raise UsageError(
                        f"{where}: a turn has no reply to size its answer by (or no tokenizer "
                        "to count it); pass --output-tokens"
                    )
                max_tokens = max(await counter.count(reply), 1)
            user_tokens = await counter.count(conv.user[k]) if counter is not None else None
            turns.append(Turn(conv.user[k], user_tokens, max_tokens, thinks[k] if k else 0.0))
        scripts.append(SessionScript(tuple(turns), conv.system))
    return scripts
