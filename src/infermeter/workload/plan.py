"""Turn a workload description into the concrete prompts of a run, before any load is sent
(so prompt building never competes with the measurement)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infermeter.errors import UsageError
from infermeter.workload._aio import gather_limited
from infermeter.workload.datasets import load_conversations, load_dataset
from infermeter.workload.lengths import LengthSpec
from infermeter.workload.sessions import (
    SessionScript,
    ThinkTime,
    dataset_session_scripts,
    session_scripts,
)
from infermeter.workload.synthetic import SyntheticPromptBuilder
from infermeter.workload.tokenizer import TokenCounter
from infermeter.workload.traces import PrefixBlock, Trace, TraceRequest, prefix_reuse
from infermeter.workload.types import Prompt
from infermeter.workload.words import WORDS


@dataclass
class WorkloadPlan:
    warmup: list[Prompt]
    measure: list[Prompt]
    meta: dict[str, Any] = field(default_factory=dict)
    #: A replayed trace's send times (s from the start), one per measured prompt.
    offsets_s: list[float] | None = None
    #: Multi-turn sessions: their scripts (``measure`` is then empty: turns are built as
    #: the conversations go).
    sessions: list[SessionScript] | None = None


async def synthetic_plan(
    *,
    input_spec: LengthSpec,
    output_spec: LengthSpec,
    n_warmup: int,
    n_measure: int,
    counter: TokenCounter | None,
    overhead: int,
    shared_prefix_tokens: int,
    seed: int,
) -> WorkloadPlan:
    """Random-word prompts of exact lengths. ``overhead`` is what the server adds to every
    prompt (BOS, chat template): the text gets ``n - overhead`` tokens so that the server
    counts ``n``."""
    rng = np.random.default_rng([seed, 1])
    total = n_warmup + n_measure
    in_lens = input_spec.sample(rng, total)
    out_lens = output_spec.sample(rng, total)
    too_short = [n for n in in_lens if n - overhead < 1]
    if too_short:
        raise UsageError(
            f"--input-tokens {min(too_short)} leaves no room for the prompt: the server adds "
            f"{overhead} tokens of its own (template, BOS) to every request"
        )
    prompts: list[Prompt] = []
    if counter is None:
        # No tokenizer: about one token per word of the embedded list; lengths unverified.
        word_rng = np.random.default_rng([seed, 2])
        for n_in, n_out in zip(in_lens, out_lens, strict=True):
            words = [
                WORDS[int(i)] for i in word_rng.integers(len(WORDS), size=max(n_in - overhead, 1))
            ]
            prompts.append(Prompt(" ".join(words), n_out, None))
        meta = {"kind": "synthetic", "verified_lengths": False}
    else:
        builder = SyntheticPromptBuilder(counter, seed=seed)
        # The server's own count of the whole prompt, where it can tell us (exact even
        # across the chat template's boundaries); else bare counts plus the probe's overhead.
        exact = await counter.count_prompt("probe") is not None
        prefix = ""
        if shared_prefix_tokens:
            prefix, _ = await builder.build(shared_prefix_tokens)
        built = []
        for n_in in in_lens:
            built.append(await builder.build(n_in, prefix=prefix, exact=exact, overhead=overhead))
        for (text, got), n_out in zip(built, out_lens, strict=True):
            prompts.append(Prompt(text, n_out, got))
        meta = {
            "kind": "synthetic",
            "verified_lengths": True,
            "tokenizer": counter.name,
            "verified_by": "server prompt count" if exact else "tokenizer + probe overhead",
        }
    meta.update(
        {
            "input_tokens": str(input_spec),
            "output_tokens": str(output_spec),
            "overhead_tokens": overhead,
            "shared_prefix_tokens": shared_prefix_tokens,
            "seed": seed,
        }
    )
    return WorkloadPlan(prompts[:n_warmup], prompts[n_warmup:], meta)


async def dataset_plan(
    *,
    path: Path,
    fmt: str,
    output_spec: LengthSpec | None,
    n_warmup: int,
    n_measure: int,
    counter: TokenCounter | None,
    overhead: int,
    seed: int,
) -> WorkloadPlan:
    rows = load_dataset(path, fmt)
    rng = np.random.default_rng([seed, 3])
    order = rng.permutation(len(rows))
    total = n_warmup + n_measure
    picked = [rows[int(order[i % len(rows)])] for i in range(total)]
    out_lens = output_spec.sample(rng, total) if output_spec is not None else [None] * total
    counts: list[int | None] = [None] * total
    # The server's count of the whole prompt where it can give one: bare counts plus the
    # probe's overhead miss by a token or two where the template's text merges with the
    # prompt's edge. A row of several messages is counted bare.
    exact = counter is not None and await counter.count_prompt("probe") is not None
    if counter is not None:
        counts = await gather_limited(
            [_prompt_count(counter, r.text, exact and r.messages is None) for r in picked]
        )
    ref_counts: list[int | None] = [None] * total
    if counter is not None and output_spec is None:
        ref_counts = await gather_limited(
            [counter.count(r.reference) if r.reference else _none() for r in picked]
        )
    prompts: list[Prompt] = []
    for i, row in enumerate(picked):
        n_out = row.max_tokens or out_lens[i] or ref_counts[i]
        if n_out is None:
            raise UsageError(
                f"{path}: a row gives no max_tokens; pass --output-tokens (or --tokenizer to use "
                "the reference answer's length)"
            )
        counted = counts[i]
        whole = exact and row.messages is None
        n_in = counted if whole or counted is None else counted + overhead
        prompts.append(Prompt(row.text, int(n_out), n_in, row.messages))
    meta = {
        "kind": "dataset",
        "path": str(path),
        "format": fmt,
        "rows": len(rows),
        "overhead_tokens": overhead,
        "seed": seed,
        "output_tokens": str(output_spec) if output_spec else "from dataset",
    }
    if counter is not None:
        meta["verified_by"] = "server prompt count" if exact else "tokenizer + probe overhead"
    return WorkloadPlan(prompts[:n_warmup], prompts[n_warmup:], meta)


async def trace_plan(
    *,
    trace: Trace,
    n_warmup: int,
    counter: TokenCounter | None,
    overhead: int,
    seed: int,
    window: dict[str, Any],
) -> WorkloadPlan:
    """One prompt per trace request, of the trace's lengths as the server counts them.

    A request's shared blocks come first, each block's text the same wherever it appears,
    then text of its own: requests share exactly the prefixes the trace says they share, so
    the server's prefix cache meets the trace's real reuse and no other. Warm-up prompts
    have the first requests' lengths and share nothing (they must not warm the cache).
    """
    counts = _key_counts(trace.requests)
    requests = [_shared_only(r, counts) for r in trace.requests]
    if counter is None:
        texts = _WordTexts(seed)
        measure = [
            Prompt(texts.prompt(r.prefix, r.input_tokens - overhead), r.output_tokens, None)
            for r in requests
        ]
        warm_texts = _WordTexts(seed + 1)
        warmup = [
            Prompt(warm_texts.prompt((), r.input_tokens - overhead), r.output_tokens, None)
            for r in _first(requests, n_warmup)
        ]
        meta: dict[str, Any] = {"verified_lengths": False}
    else:
        builder = SyntheticPromptBuilder(counter, seed=seed)
        exact = await counter.count_prompt("probe") is not None
        blocks: dict[str, str] = {}
        # The first words that follow each shared prefix (the block keys before them): a
        # text that follows a prefix begins with a word none of its siblings begins with,
        # so requests share the trace's blocks and not a token more.
        firsts: dict[tuple[str, ...], set[str]] = {}
        measure = []
        for r in requests:
            parts = []
            path: tuple[str, ...] = ()
            room = r.input_tokens - overhead
            for block in r.prefix:
                if block.tokens > room:
                    break  # the template's tokens leave no room for the last block
                room -= block.tokens
                taken = firsts.setdefault(path, set())
                if block.key not in blocks:
                    blocks[block.key], _ = await builder.build(block.tokens, avoid_first=taken)
                    taken.update(blocks[block.key].split()[:1])
                parts.append(blocks[block.key])
                path += (block.key,)
            prefix = " ".join(parts)
            taken = firsts.setdefault(path, set())
            text, got = await builder.build(
                r.input_tokens, prefix=prefix, exact=exact, overhead=overhead, avoid_first=taken
            )
            taken.update(text[len(prefix) :].split()[:1])
            measure.append(Prompt(text, r.output_tokens, got))
        warmup = []
        for r in _first(requests, n_warmup):
            text, got = await builder.build(r.input_tokens, exact=exact, overhead=overhead)
            warmup.append(Prompt(text, r.output_tokens, got))
        meta = {
            "verified_lengths": True,
            "tokenizer": counter.name,
            "verified_by": "server prompt count" if exact else "tokenizer + probe overhead",
        }
    meta = {
        "kind": "trace",
        **meta,
        "path": str(trace.path),
        "format": trace.format,
        "input_tokens": "from the trace",
        "output_tokens": "from the trace",
        "overhead_tokens": overhead,
        "seed": seed,
        "trace": trace_meta(trace, requests, window),
    }
    return WorkloadPlan(warmup, measure, meta, [r.offset_s for r in requests])


def trace_meta(
    trace: Trace, requests: list[TraceRequest], window: dict[str, Any]
) -> dict[str, Any]:
    """What run.json says of a replayed trace: its size, span and rate, the window replayed,
    the rows left out, and the prefix reuse ``requests`` ask of the server's cache."""
    reuse = prefix_reuse(requests)
    return {
        "requests": len(requests),
        "span_s": trace.span_s,
        "mean_rate_rps": trace.mean_rate_rps,
        **window,
        "skipped_rows": trace.skipped,
        "first_skipped": trace.first_skipped,
        "prefix_reuse_share": reuse.share,
        "prefix_reuse_tokens": reuse.reusable_tokens,
        "requests_reusing_prefix": reuse.requests_reusing,
    }


def _key_counts(requests: list[TraceRequest]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in requests:
        for b in r.prefix:
            counts[b.key] = counts.get(b.key, 0) + 1
    return counts


def _shared_only(r: TraceRequest, counts: dict[str, int]) -> TraceRequest:
    """The request with only the leading blocks another request has too: a block no other
    request has is the request's own text (and needs no building of its own)."""
    keep = 0
    for b in r.prefix:
        if counts[b.key] < 2:
            break
        keep += 1
    return r if keep == len(r.prefix) else dataclasses.replace(r, prefix=r.prefix[:keep])


def _first(requests: list[Any], n: int) -> list[Any]:
    """The first ``n`` requests, cycled where the trace has fewer."""
    return [requests[i % len(requests)] for i in range(n)] if requests else []


class _WordTexts:
    """Prompts of about one token per word (no tokenizer): shared blocks are the same words
    wherever they appear, so the prefix structure holds even where lengths are rough."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 4])
        self._blocks: dict[str, str] = {}

    def _words(self, n: int) -> str:
        return " ".join(WORDS[int(i)] for i in self._rng.integers(len(WORDS), size=max(n, 1)))

    def prompt(self, prefix: tuple[PrefixBlock, ...], n: int) -> str:
        parts = []
        for block in prefix:
            if block.tokens > n:
                break
            n -= block.tokens
            if block.key not in self._blocks:
                self._blocks[block.key] = self._words(block.tokens)
            parts.append(self._blocks[block.key])
        if n > 0 or not parts:
            parts.append(self._words(n))
        return " ".join(parts)


async def sessions_plan(
    *,
    n_sessions: int,
    turns: LengthSpec,
    input_spec: LengthSpec,
    output_spec: LengthSpec,
    think: ThinkTime,
    n_warmup: int,
    counter: TokenCounter | None,
    overhead: int,
    seed: int,
    dataset: tuple[Path, str] | None = None,
    given_output: bool = False,
    turns_cap: bool = False,
) -> WorkloadPlan:
    """Sessions, synthetic or of a dataset's conversations (``dataset``: its path and
    format; ``--output-tokens`` applies only if ``given_output``, ``--turns`` caps a
    conversation's turns only if ``turns_cap``); warm-up prompts are single first turns
    that share nothing."""
    if dataset is not None:
        path, fmt = dataset
        scripts = await dataset_session_scripts(
            conversations=load_conversations(path, fmt),
            n_sessions=n_sessions,
            max_turns=turns.upper if turns_cap else None,
            output_spec=output_spec if given_output else None,
            think=think,
            counter=counter,
            seed=seed,
            where=f"--dataset {path}",
        )
    else:
        scripts = await session_scripts(
            n_sessions=n_sessions,
            turns=turns,
            input_spec=input_spec,
            output_spec=output_spec,
            think=think,
            counter=counter,
            seed=seed,
        )
    warm = await synthetic_plan(
        input_spec=input_spec,
        output_spec=output_spec,
        n_warmup=n_warmup,
        n_measure=0,
        counter=counter,
        overhead=overhead,
        shared_prefix_tokens=0,
        seed=seed + 1,
    )
    meta = {
        "kind": "sessions",
        "verified_lengths": counter is not None,
        "input_tokens": "from the dataset" if dataset else str(input_spec),
        "output_tokens": str(output_spec)
        if dataset is None or given_output
        else "from the dataset",
        "overhead_tokens": overhead,
        "seed": seed,
        "sessions": {
            "sessions": n_sessions,
            "turns": str(turns),
            "think_time_s": str(think),
            "turns_total": sum(len(s.turns) for s in scripts),
            **({"dataset": str(dataset[0])} if dataset else {}),
        },
    }
    return WorkloadPlan(warm.warmup, [], meta, sessions=scripts)


async def _none() -> None:
    return None


async def _prompt_count(counter: TokenCounter, text: str, whole: bool) -> int:
    """Tokens the server will count for ``text``: the whole templated prompt, or bare."""
    if whole:
        n = await counter.count_prompt(text)
        if n is not None:
            return n
    return await counter.count(text)
