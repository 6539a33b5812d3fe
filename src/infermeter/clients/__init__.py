"""How requests are sent and timed: transport (HTTP, SSE, arrival stamps) kept apart from API
formats (OpenAI chat and completions); one timing loop builds each RequestRecord.

Names are loaded on first use (PEP 562): the configuration needs only the formats' field
rules, and reading a stored run needs no HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infermeter._lazy import lazy_names

if TYPE_CHECKING:
    from infermeter.clients.discovery import ServerInfo, discover, normalize_base_url
    from infermeter.clients.formats import ApiFormat, ChunkDelta, RequestOptions
    from infermeter.clients.openai_chat import ChatCompletions
    from infermeter.clients.openai_completions import Completions
    from infermeter.clients.stream import StreamingClient
    from infermeter.clients.transport import HttpTransport, Timeouts

#: Public name -> the module that defines it.
_HOMES = {
    "ApiFormat": "infermeter.clients.formats",
    "ChatCompletions": "infermeter.clients.openai_chat",
    "ChunkDelta": "infermeter.clients.formats",
    "Completions": "infermeter.clients.openai_completions",
    "HttpTransport": "infermeter.clients.transport",
    "RequestOptions": "infermeter.clients.formats",
    "ServerInfo": "infermeter.clients.discovery",
    "StreamingClient": "infermeter.clients.stream",
    "Timeouts": "infermeter.clients.transport",
    "discover": "infermeter.clients.discovery",
    "normalize_base_url": "infermeter.clients.discovery",
}

__all__ = [
    "ApiFormat",
    "ChatCompletions",
    "ChunkDelta",
    "Completions",
    "HttpTransport",
    "RequestOptions",
    "ServerInfo",
    "StreamingClient",
    "Timeouts",
    "discover",
    "normalize_base_url",
]


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
