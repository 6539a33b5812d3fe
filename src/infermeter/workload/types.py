"""What one request asks for, independent of the API format that will carry it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt and the number of tokens to generate for it.

    ``text`` is sent as the user message (chat) or the prompt (completions); ``messages``,
    when given, is a whole chat history and wins for the chat API. ``n_in_target`` is the
    prompt length the workload aimed for, as the server should count it (template included),
    or None where nobody counted.
    """

    text: str
    max_tokens: int
    n_in_target: int | None = None
    messages: tuple[dict[str, Any], ...] | None = None
