"""A bounded gather: servers (llama.cpp's HTTP pool among them) drop connections when a
client opens hundreds at once for small look-ups such as /tokenize."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather_limited(coros: Iterable[Awaitable[T]], limit: int = 8) -> list[T]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Awaitable[T]) -> T:
        async with sem:
            return await c

    return list(await asyncio.gather(*(one(c) for c in coros)))
