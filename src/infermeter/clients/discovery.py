"""Pre-flight: is the server there, which model does it serve, what kind of server is it?

Answers before any load is sent, so a wrong URL, a dead server or a wrong model name ends in
one clear line instead of a run full of failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from infermeter.clients.transport import HttpTransport
from infermeter.errors import InfermeterError, ServerError, UsageError


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
    #: The most tokens (prompt and output) one request may hold: llama.cpp's context per
    #: slot, vLLM's ``max_model_len``; None where the server does not say.
    context_limit: int | None = None
    #: Where ``context_limit`` comes from, in the server's own words.
    context_source: str | None = None
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
            "context_limit": self.context_limit,
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


#: How long a TLS handshake may take before the port is asked whether it speaks plain HTTP.
TLS_PATIENCE_S = 1.0
#: Longest wait for a port's answer to a plain-HTTP request, when its TLS handshake failed.
PLAIN_HTTP_PROBE_S = 5.0


async def check_tls(url: str, origin: str) -> None:
    """An ``https://`` URL whose port speaks plain HTTP fails at once and says so: a plain
    server may wait for a request line that a TLS hello never ends, and the pre-flight would
    only time out. A port that neither answers TLS nor plain HTTP is left to the pre-flight."""
    parts = urlsplit(origin)
    if parts.scheme != "https" or parts.hostname is None:
        return
    host, port = parts.hostname, parts.port or 443
    handshake = asyncio.ensure_future(_tls_handshake(host, port))
    try:
        done, _ = await asyncio.wait({handshake}, timeout=TLS_PATIENCE_S)
        if handshake in done and handshake.exception() is None:
            return
        plain = await _speaks_plain_http(host, port)
        # A TLS server slower than our patience has finished by now: believe the handshake.
        if plain and not (handshake.done() and handshake.exception() is None):
            raise ServerError(
                f"TLS handshake with {host}:{port} failed: is the server plain http? "
                f"try http://{url.split('://', 1)[1]}"
            )
    finally:
        handshake.cancel()
        with contextlib.suppress(BaseException):
            await handshake


async def _tls_handshake(host: str, port: int) -> None:
    """Open a TLS connection and close it. Certificates are not judged here: the question is
    only whether the port speaks TLS (the pre-flight judges the certificate)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    writer.close()


async def _speaks_plain_http(host: str, port: int) -> bool:
    """Whether the port answers a plain-HTTP request with an HTTP status line."""
    try:
        return await asyncio.wait_for(_status_line_start(host, port), PLAIN_HTTP_PROBE_S)
    except (OSError, asyncio.TimeoutError):
        return False


async def _status_line_start(host: str, port: int) -> bool:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return (await reader.readexactly(5)) == b"HTTP/"
    except asyncio.IncompleteReadError:
        return False
    finally:
        writer.close()


def _models_missing(base: str, status: int) -> InfermeterError:
    """No model named and no model list: say what answered instead, so a wrong --url path
    (a 404) is not mistaken for a server that lists nothing."""
    if status == 200:
        return UsageError(f"--model is required: {base}/models lists no models")
    return ServerError(
        f"{base}/models answered HTTP {status}: is --url right? (the server's base URL, "
        "e.g. http://HOST:PORT or http://HOST:PORT/v1); or name the model with --model"
    )


async def discover(transport: HttpTransport, url: str, model: str | None) -> ServerInfo:
    base, origin = normalize_base_url(url)
    info = ServerInfo(base, origin)
    await check_tls(url, origin)
    try:
        status, body = await transport.get_json(f"{base}/models")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise _reach_error(url, exc) from None
    if status in (401, 403):
        raise ServerError(
            f"{url} refused the credentials (HTTP {status}); check --api-key or OPENAI_API_KEY"
        )
    limits: dict[str, int] = {}
    if status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
        info.models = [str(m.get("id")) for m in body["data"] if isinstance(m, dict)]
        for m in body["data"]:
            meta = m.get("meta") if isinstance(m, dict) else None
            if isinstance(meta, dict):
                info.details["model_meta"] = meta
        limits = {
            str(m["id"]): m["max_model_len"]
            for m in body["data"]
            if isinstance(m, dict) and type(m.get("max_model_len")) is int
        }
    elif status >= 500:
        raise ServerError(f"{base}/models answered HTTP {status}; is the server healthy?")
    elif status == 429:
        # Retry-After is not waited for (docs/cli.md, "Exit codes", says why).
        raise ServerError(f"{base}/models answered HTTP 429 (rate-limited); try again later")
    if model is None:
        if not info.models:
            raise _models_missing(base, status)
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
    if model in limits:
        info.context_limit, info.context_source = limits[model], "max_model_len"
    await _identify(transport, info)
    return info


#: Routes of ``transformers serve``'s FastAPI app that no other engine has (its model loading
#: and reset), read from its ``/openapi.json`` (transformers 5.23).
TRANSFORMERS_SERVE_ROUTES = frozenset({"/load_model", "/reset", "/v1/chat/completions"})


async def _identify(transport: HttpTransport, info: ServerInfo) -> None:
    """Recognise llama.cpp (``/props``), vLLM (``/version``) and ``transformers serve`` (its
    routes in ``/openapi.json``); anything else stays unknown."""
    try:
        status, props = await transport.get_json(f"{info.origin}/props", timeout_s=5)
        if status == 200 and isinstance(props, dict) and "default_generation_settings" in props:
            info.kind = "llama.cpp"
            info.tokenize_style = "llama.cpp"
            gen = props.get("default_generation_settings") or {}
            if isinstance(gen.get("n_ctx"), int):
                info.ctx_per_slot = gen["n_ctx"]
                info.context_limit, info.context_source = gen["n_ctx"], "context per slot"
            if isinstance(props.get("total_slots"), int):
                info.slots = props["total_slots"]
            info.details["build_info"] = props.get("build_info")
            return
        status, ver = await transport.get_json(f"{info.origin}/version", timeout_s=5)
        if status == 200 and isinstance(ver, dict) and "version" in ver:
            info.kind = "vllm"
            info.tokenize_style = "vllm"
            info.details["version"] = ver["version"]
            return
        status, api = await transport.get_json(f"{info.origin}/openapi.json", timeout_s=5)
        paths = api.get("paths") if status == 200 and isinstance(api, dict) else None
        if isinstance(paths, dict) and paths.keys() >= TRANSFORMERS_SERVE_ROUTES:
            info.kind = "transformers-serve"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        pass
