"""The small pieces shared by the OpenAI-style API formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from infermeter.workload.types import Prompt


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """Per-run request settings that every API format understands."""

    model: str
    include_usage: bool = True
    #: vLLM's ``continuous_usage_stats``: usage on every chunk (exact tokens per chunk).
    per_chunk_usage: bool = False
    ignore_eos: bool = False
    temperature: float | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    #: Read a leading ``<think>…</think>`` block in the answer's text as reasoning.
    think_tags: bool = False


@dataclass(slots=True)
class ChunkDelta:
    """What one parsed stream message means for timing and token accounting."""

    text: str = ""
    reasoning: bool = False
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    error: str | None = None


class ApiFormat(Protocol):
    """One API's request body and stream-message meaning. No I/O, no timing."""

    name: str
    path: str

    def payload(self, prompt: Prompt, options: RequestOptions) -> dict[str, Any]: ...

    def parse(self, obj: dict[str, Any]) -> ChunkDelta: ...

    def parse_full(self, obj: dict[str, Any]) -> ChunkDelta:
        """A whole non-streamed response (a server that ignored ``stream``)."""
        ...


#: Request fields infermeter sets itself, and what sets them: ``--extra-body`` giving one
#: would silently change what is measured (``max_tokens`` overriding ``--output-tokens``).
OWNED_FIELDS: dict[str, str] = {
    "model": "--model",
    "max_tokens": "--output-tokens",
    "max_completion_tokens": "--output-tokens",
    "stream": "infermeter (it always streams)",
    "stream_options": "infermeter (usage in the stream)",
    "messages": "the workload (--input-tokens, --dataset)",
    "prompt": "the workload (--input-tokens, --dataset)",
    "ignore_eos": "--ignore-eos",
    "temperature": "--temperature",
}


def owned_field_error(extra_body: dict[str, Any]) -> str | None:
    """Why ``--extra-body`` may not be sent as given, or None."""
    taken = [k for k in extra_body if k in OWNED_FIELDS]
    if not taken:
        return None
    owners = "; ".join(f"{k} is set by {OWNED_FIELDS[k]}" for k in taken)
    return f"--extra-body sets what infermeter sets itself: {owners}"


def common_payload(options: RequestOptions, max_tokens: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": options.model, "max_tokens": max_tokens, "stream": True}
    if options.include_usage:
        stream_options: dict[str, Any] = {"include_usage": True}
        if options.per_chunk_usage:
            stream_options["continuous_usage_stats"] = True
        body["stream_options"] = stream_options
    if options.ignore_eos:
        body["ignore_eos"] = True
    if options.temperature is not None:
        body["temperature"] = options.temperature
    body.update(options.extra_body)
    return body


def message_error(obj: dict[str, Any]) -> str | None:
    """An in-stream error object (``{"error": {...}}``), as some servers send mid-stream."""
    err = obj.get("error")
    if err is None:
        return None
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


def first_choice(obj: dict[str, Any]) -> dict[str, Any] | None:
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None
