"""OpenAI chat completions (``/v1/chat/completions``): request body and chunk meaning."""

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

_PLAIN_DELTA = frozenset({"role", "content"})


class ChatCompletions:
    name = "chat"
    path = "/chat/completions"

    def payload(self, prompt: Prompt, options: RequestOptions) -> dict[str, Any]:
        body = common_payload(options, prompt.max_tokens)
        messages = (
            list(prompt.messages) if prompt.messages else [{"role": "user", "content": prompt.text}]
        )
        return {"messages": messages, **body}

    def parse(self, obj: dict[str, Any]) -> ChunkDelta:
        # Hot path (once per stream message): plain lookups, one object.
        get = obj.get
        out = ChunkDelta(usage=get("usage"), timings=get("timings"))
        if "error" in obj:
            out.error = message_error(obj)
        choices = get("choices")
        if not choices or not isinstance(choices, list):
            return out
        choice = choices[0]
        out.finish_reason = choice.get("finish_reason")
        delta = choice.get("delta")
        if not delta:
            return out
        content = delta.get("content") or ""
        if delta.keys() <= _PLAIN_DELTA:
            out.text = content  # only role and content: nothing else to look at
            return out
        # Reasoning text is output text: vLLM/SGLang/DeepSeek say reasoning_content,
        # some servers say reasoning.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
        tools = ""
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            tools += (fn.get("name") or "") + (fn.get("arguments") or "")
        out.text = content + reasoning + tools
        out.reasoning = bool(reasoning) and not content
        return out

    def parse_full(self, obj: dict[str, Any]) -> ChunkDelta:
        out = ChunkDelta(usage=obj.get("usage"), timings=obj.get("timings"))
        out.error = message_error(obj)
        choice = first_choice(obj)
        if choice is not None:
            msg = choice.get("message") or {}
            out.text = (msg.get("content") or "") + (msg.get("reasoning_content") or "")
            out.finish_reason = choice.get("finish_reason")
        return out
