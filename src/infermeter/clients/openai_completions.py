"""OpenAI (legacy) completions (``/v1/completions``): request body and chunk meaning."""

from __future__ import annotations

from typing import Any

from infermeter.clients.formats import (
    ChunkDelta,
    RequestOptions,
    common_payload,
    first_choice,
    message_error,
)
from infermeter.workload.types import Prompt


class Completions:
    name = "completions"
    path = "/completions"

    def payload(self, prompt: Prompt, options: RequestOptions) -> dict[str, Any]:
        return {"prompt": prompt.text, **common_payload(options, prompt.max_tokens)}

    def parse(self, obj: dict[str, Any]) -> ChunkDelta:
        out = ChunkDelta(usage=obj.get("usage"), timings=obj.get("timings"))
        out.error = message_error(obj)
        choice = first_choice(obj)
        if choice is not None:
            out.text = choice.get("text") or ""
            out.finish_reason = choice.get("finish_reason")
        return out

    parse_full = parse
