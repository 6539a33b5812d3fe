"""Measure one proxied request from the bytes as they pass: a ``RequestRecord`` per
chat/completions request, built by the benchmark's own SSE parsing and token accounting
(``infermeter.clients.stream``), so the proxy's TTFT/TPOT/ITL/E2E mean exactly what a
benchmark's do (``docs/metrics.md``).

No I/O here. The server calls ``start`` when the upstream answers, ``feed`` for every chunk
(stamped on arrival) and ``finish`` once; a measuring failure never touches the traffic.

Example (needs a server or files at hand)::

    meter = RequestMeter(rid=0, api="chat", t0_ns=t0, t_recv_ns=t, max_tokens=16)
    meter.sent(time.perf_counter_ns()); meter.start(200, "text/event-stream")
    meter.feed(time.perf_counter_ns(), chunk); rec = meter.finish(time.perf_counter_ns())
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from infermeter.clients.formats import ApiFormat
from infermeter.clients.openai_chat import ChatCompletions
from infermeter.clients.openai_completions import Completions
from infermeter.clients.secrets import redact, secret_forms
from infermeter.clients.stream import (
    ChunkHandler,
    StreamAccumulator,
    StreamFailure,
    account,
)
from infermeter.records.schema import ErrorKind, RequestRecord
from infermeter.workload.prefix_hash import BLOCK_CHARS, block_hashes, prompt_text
from infermeter.workload.types import Prompt

#: Endpoint label values (bounded).
ENDPOINTS = ("chat", "completions", "embeddings", "other")
#: The model label of requests that name no model (GET /v1/models, /health, ...).
NO_MODEL = "none"
#: The model label once ``max_models`` distinct names have been seen.
OTHER_MODEL = "other"

_FORMATS: dict[str, ApiFormat] = {"chat": ChatCompletions(), "completions": Completions()}
#: A request header is a credential when its lowercase name holds one of these
#: (``Authorization``, ``X-Api-Key``, ``api-key``, ``X-Auth-Token``, ``Cookie``...).
_CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "cookie", "password")


def endpoint_of(path: str) -> str:
    """``/v1/chat/completions`` -> ``chat``; ``/v1/completions`` -> ``completions``;
    ``/v1/embeddings`` -> ``embeddings``; anything else -> ``other``."""
    p = path.rstrip("/")
    if p.endswith("/chat/completions") or p == "/chat/completions":
        return "chat"
    if p.endswith("/completions"):
        return "completions"
    if p.endswith("/embeddings"):
        return "embeddings"
    return "other"


class ModelLabels:
    """Bounded ``model`` label values: the first ``limit`` distinct names, then ``other``."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def label(self, model: str | None) -> str:
        if not model:
            return NO_MODEL
        if model in self._seen:
            return model
        if len(self._seen) < self.limit:
            self._seen.add(model)
            return model
        return OTHER_MODEL


class PromptShape:
    """A prompt's prefix structure without its text: its blocks' chained, salted hashes
    (``workload/prefix_hash.py``) and its length in characters."""

    __slots__ = ("blocks", "chars")

    def __init__(self, blocks: list[str], chars: int) -> None:
        self.blocks = blocks
        self.chars = chars


class RequestInfo:
    """What the proxy reads of a request body: the model, whether it streams, its
    ``max_tokens`` and, when recording, its prompt's shape. The body itself is never kept."""

    __slots__ = ("max_tokens", "model", "prompt", "stream")

    def __init__(
        self,
        model: str | None,
        stream: bool,
        max_tokens: int | None,
        prompt: PromptShape | None = None,
    ) -> None:
        self.model = model
        self.stream = stream
        self.max_tokens = max_tokens
        self.prompt = prompt


def request_info(body: bytes, salt: bytes | None = None) -> RequestInfo:
    """Parse a JSON request body just enough to label and measure it; with a ``salt`` (a
    recording proxy) also the prompt's shape."""
    try:
        obj = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return RequestInfo(None, False, None)
    if not isinstance(obj, dict):
        return RequestInfo(None, False, None)
    model = obj.get("model")
    limit = obj.get("max_completion_tokens") or obj.get("max_tokens")
    shape = None
    if salt is not None and (text := prompt_text(obj)) is not None:
        shape = PromptShape(block_hashes(text, salt), len(text))
    return RequestInfo(
        model if isinstance(model, str) else None,
        bool(obj.get("stream")),
        limit if isinstance(limit, int) else None,
        shape,
    )


def client_secrets(headers: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The credentials a client sent, in every form an upstream may echo them."""
    return secret_forms(
        value for name, value in headers if any(w in name.lower() for w in _CREDENTIAL_WORDS)
    )


class RequestMeter:
    """Builds the record of one proxied chat/completions request as its response passes."""

    __slots__ = (
        "_acc",
        "_failure",
        "_handler",
        "_max_tokens",
        "_secrets",
        "_t0_ns",
        "done",
        "rec",
    )

    def __init__(
        self,
        *,
        rid: int,
        api: str,
        t0_ns: int,
        t_recv_ns: int,
        max_tokens: int | None,
        secrets: Sequence[str] = (),
        prompt: PromptShape | None = None,
        think_tags: bool = False,
    ) -> None:
        fmt = _FORMATS[api]
        # The benchmark client's own SSE handling and token accounting.
        self._t0_ns = t0_ns
        self._acc = StreamAccumulator(need_text=False, think_tags=think_tags)
        self._handler = ChunkHandler(fmt, self._acc)
        self._failure: StreamFailure | None = None
        self._max_tokens = max_tokens
        #: Masked out of the record's error message (an upstream may echo credentials).
        self._secrets = secrets
        self.done = False
        self.rec = RequestRecord(
            id=rid,
            api=api,
            t_sched_ns=t_recv_ns - t0_ns,
            t_send_ns=t_recv_ns - t0_ns,
            n_out_target=max_tokens,
        )
        if prompt is not None:
            self.rec.prompt_blocks = prompt.blocks
            self.rec.prompt_block_chars = BLOCK_CHARS
            self.rec.prompt_chars = prompt.chars

    def sent(self, t_ns: int) -> None:
        """The request went upstream at ``t_ns`` (absolute perf_counter_ns)."""
        self.rec.t_send_ns = t_ns - self._t0_ns

    def start(self, status: int, content_type: str) -> None:
        """The upstream answered: its status and media type (no parameters)."""
        self.rec.http_status = status
        self._handler.start(status, content_type)

    def feed(self, t_ns: int, data: bytes) -> None:
        if self._failure is not None:
            return
        try:
            self._handler.feed(t_ns, data)
        except StreamFailure as exc:
            self._failure = exc

    def finish(
        self, t_ns: int, error_kind: ErrorKind | None = None, message: str = ""
    ) -> RequestRecord:
        """The response is over (``error_kind``: how the proxy saw it fail, e.g. ``cancelled``
        when the client went away, ``connection`` when the upstream did)."""
        rec, acc = self.rec, self._acc
        self.done = True
        if self._failure is None and error_kind is None and acc.responded:
            try:
                self._handler.finish(t_ns)
            except StreamFailure as exc:
                self._failure = exc
        if error_kind is not None:
            rec.error_kind, rec.error_message = error_kind, message or error_kind
        elif self._failure is not None:
            rec.error_kind = self._failure.kind
            rec.error_message = str(self._failure.args[0])
        elif not (acc.done or acc.finish):
            rec.error_kind = "incomplete_stream"
            rec.error_message = (
                f"stream ended after {len(acc.chunk_abs)} token chunks without "
                "finish_reason or [DONE]"
            )
        elif not acc.chunk_abs and (self._max_tokens is None or self._max_tokens > 0):
            rec.error_kind, rec.error_message = "incomplete_stream", "no output token"
        else:
            rec.ok = True
        if rec.error_message:
            # masked before it is cut, so no secret is left half shown
            rec.error_message = redact(rec.error_message, self._secrets)[:500]
        rec.t_end_ns = t_ns - self._t0_ns
        account(rec, acc, Prompt("", self._max_tokens or 0), self._t0_ns)
        return rec


def is_measured(endpoint: str) -> bool:
    """Requests that get a record and latency metrics."""
    return endpoint in _FORMATS
