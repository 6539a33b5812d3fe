"""How requests are sent and timed: transport (HTTP, SSE, arrival stamps) kept apart from API
formats (OpenAI chat and completions); one timing loop builds each RequestRecord."""

from infermeter.clients.discovery import ServerInfo, discover, normalize_base_url
from infermeter.clients.formats import ApiFormat, ChunkDelta, RequestOptions
from infermeter.clients.openai_chat import ChatCompletions
from infermeter.clients.openai_completions import Completions
from infermeter.clients.stream import StreamingClient
from infermeter.clients.transport import HttpTransport, Timeouts

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
