"""Words for numbers in messages, shared by every layer that speaks to the user."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun, agreeing: ``counted(1, "prompt")`` is "1 prompt", 2 is "2 prompts"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def signed_percent(share: float | None) -> str:
    """A relative error as a signed percentage: ``signed_percent(-0.095)`` is "-9.5 %"; "-"
    where there is none."""
    return "-" if share is None else f"{100 * share:+.1f} %"
