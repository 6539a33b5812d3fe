"""Pre-flight: is the server there, which model does it serve, what kind of server is it?

Answers before any load is sent, so a wrong URL, a dead server or a wrong model name ends in
one clear line instead of a run full of failures.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from infermeter.clients.transport import HttpTransport
from infermeter.errors import ServerError, UsageError


def normalize_base_url(url: str) -> tuple[str, str]:
    """``(base, origin)``: base ends in ``/v1`` (endpoints hang off it), origin is scheme+host.

    Accepts ``http://h:p``, ``http://h:p/v1`` and full endpoint URLs.
    """
    base = url.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if not base.endswith("/v1"):
        base += "/v1"
    parts = urlsplit(base)
    if not parts.scheme or not parts.netloc:
        raise UsageError(f"--url: cannot read {url!r} as a URL")
    return base, f"{parts.scheme}://{parts.netloc}"


@dataclass
class ServerInfo:
    base_url: str
    origin: str
    kind: str = "unknown"
    model: str = ""
    models: list[str] | None = None
    ctx_per_slot: int | None = None
    slots: int | None = None
    tokenize_style: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.base_url,
            "kind": self.kind,
            "model": self.model,
            "models": self.models,
            "ctx_per_slot": self.ctx_per_slot,
            "slots": self.slots,
            "details": self.details,
        }


def _reach_error(url: str, exc: BaseException) -> ServerError:
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc)
        return ServerError(f"cannot reach {url}: {reason}")
    if isinstance(exc, asyncio.TimeoutError):
        return ServerError(f"{url} did not answer within the pre-flight timeout")
    return ServerError(f"cannot reach {url}: {type(exc).__name__}: {exc}")


async def discover(transport: HttpTransport, url: str, model: str | None) -> ServerInfo:
    base, origin = normalize_base_url(url)
    info = ServerInfo(base, origin)
    try:
        status, body = await transport.get_json(f"{base}/models")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise _reach_error(url, exc) from None
    if status in (401, 403):
        raise ServerError(
            f"{url} refused the credentials (HTTP {status}); check --api-key or OPENAI_API_KEY"
        )
    if status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
        info.models = [str(m.get("id")) for m in body["data"] if isinstance(m, dict)]
        for m in body["data"]:
            meta = m.get("meta") if isinstance(m, dict) else None
            if isinstance(meta, dict):
                info.details["model_meta"] = meta
    elif status >= 500:
        raise ServerError(f"{base}/models answered HTTP {status}; is the server healthy?")
    if model is None:
        if not info.models:
            raise UsageError("--model is required: the server does not list its models")
        if len(info.models) > 1:
            raise UsageError(
                f"the server serves several models; pick one with --model: {', '.join(info.models)}"
            )
        model = info.models[0]
    elif info.models and model not in info.models:
        # An empty list means a server that loads models on demand (transformers serve).
        raise UsageError(
            f"--model {model!r} is not served at {url}; it serves: {', '.join(info.models)}"
        )
    info.model = model
    await _identify(transport, info)
    return info


async def _identify(transport: HttpTransport, info: ServerInfo) -> None:
    """Recognise llama.cpp (``/props``) and vLLM (``/version``); anything else stays unknown."""
    try:
        status, props = await transport.get_json(f"{info.origin}/props", timeout_s=5)
        if status == 200 and isinstance(props, dict) and "default_generation_settings" in props:
            info.kind = "llama.cpp"
            info.tokenize_style = "llama.cpp"
            gen = props.get("default_generation_settings") or {}
            if isinstance(gen.get("n_ctx"), int):
                info.ctx_per_slot = gen["n_ctx"]
            if isinstance(props.get("total_slots"), int):
                info.slots = props["total_slots"]
            info.details["build_info"] = props.get("build_info")
            return
        status, ver = await transport.get_json(f"{info.origin}/version", timeout_s=5)
        if status == 200 and isinstance(ver, dict) and "version" in ver:
            info.kind = "vllm"
            info.tokenize_style = "vllm"
            info.details["version"] = ver["version"]
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        pass
