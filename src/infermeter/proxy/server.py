"""The proxy's HTTP side (aiohttp): forward everything to the upstream, pass streams through
chunk by chunk, serve ``/metrics`` itself.

Headers (``Authorization`` included) go upstream as they came, minus hop-by-hop ones; they
are never logged or recorded, and neither are request bodies (only ``model``, ``stream`` and
``max_tokens`` are read from them).

>>> async with ProxyServer(ProxyConfig(upstream="http://127.0.0.1:8000")) as proxy:
...     print(proxy.url)  # point clients here; Prometheus scrapes proxy.url + "/metrics"
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from infermeter.proxy.measure import (
    ModelLabels,
    RequestMeter,
    endpoint_of,
    is_measured,
    request_info,
)
from infermeter.proxy.metrics import CONTENT_TYPE, ProxyMetrics
from infermeter.proxy.recorder import SampledRecords

METRICS_PATH = "/metrics"

#: RFC 9110 section 7.6.1 connection-specific headers, plus the ones aiohttp sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_UPSTREAM = _HOP_BY_HOP | {"host", "content-length"}
_NOT_DOWNSTREAM = _HOP_BY_HOP | {"content-length"}


@dataclass(frozen=True)
class ProxyConfig:
    upstream: str
    host: str = "127.0.0.1"
    port: int = 0
    max_models: int = 32
    records_dir: Path | None = None
    sample: float = 1.0
    rotate_mb: float = 64.0
    #: Seed of the record sampling (None: random).
    seed: int | None = None
    #: Export NVML GPU gauges when a GPU is there.
    gpu: bool = True


def _filter(headers: Any, drop: frozenset[str]) -> CIMultiDict[str]:
    listed = {
        h.strip().lower() for v in headers.getall("Connection", []) for h in v.split(",") if h
    }
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop | listed)


def _gpu_sampler() -> Any | None:
    from infermeter.telemetry.gpu import NvmlSampler

    sampler = NvmlSampler()
    return None if sampler.start() is not None else sampler


class ProxyServer:
    """The proxy: an aiohttp app, its upstream session, its metrics and sampled records."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.upstream = config.upstream.rstrip("/")
        self.t0_ns = time.perf_counter_ns()
        self.t0_wall_ns = time.time_ns()
        self._gpu = _gpu_sampler() if config.gpu else None
        self.metrics = ProxyMetrics(self._gpu)
        self.models = ModelLabels(config.max_models)
        self.records: SampledRecords | None = None
        if config.records_dir is not None:
            self.records = SampledRecords(
                config.records_dir,
                sample=config.sample,
                rotate_bytes=int(config.rotate_mb * 1024 * 1024),
                t0_wall_ns=self.t0_wall_ns,
                upstream=self.upstream,
                seed=config.seed,
            )
        self._next_id = 0
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.app = web.Application(client_max_size=1 << 30)
        self.app.router.add_route("GET", METRICS_PATH, self._metrics)
        self.app.router.add_route("*", "/{tail:.*}", self._forward)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> ProxyServer:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=4096)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        if self.records is not None:
            self.records.close()
        if self._gpu is not None:
            self._gpu.close()

    async def __aenter__(self) -> ProxyServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        t_recv = time.perf_counter_ns()
        body = await request.read()
        endpoint = endpoint_of(request.path)
        info = request_info(body) if request.method == "POST" and endpoint != "other" else None
        model = self.models.label(info.model if info else None)
        meter: RequestMeter | None = None
        if info is not None and is_measured(endpoint):
            meter = RequestMeter(
                rid=self._next_id,
                api=endpoint,
                t0_ns=self.t0_ns,
                t_recv_ns=t_recv,
                max_tokens=info.max_tokens,
            )
            self._next_id += 1
        in_flight = self.metrics.in_flight.labels(model)
        in_flight.inc()
        status = "error"
        try:
            status, response = await self._exchange(request, body, meter, model)
            return response
        except (ConnectionResetError, asyncio.CancelledError):
            # The client went away (aiohttp cancels the handler, or a write failed).
            status = "disconnected"
            if meter is None or not meter.done:
                self._done(meter, model, time.perf_counter_ns(), "cancelled", "client went away")
            raise
        finally:
            in_flight.dec()
            self.metrics.count(model, endpoint, status)

    async def _exchange(
        self, request: web.Request, body: bytes, meter: RequestMeter | None, model: str
    ) -> tuple[str, web.StreamResponse]:
        assert self._session is not None
        clock = time.perf_counter_ns
        if meter is not None:
            meter.sent(clock())
        try:
            upstream = await self._session.request(
                request.method,
                self.upstream + request.rel_url.raw_path_qs,
                headers=_filter(request.headers, _NOT_UPSTREAM),
                data=body if body else None,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            message = f"upstream {self.upstream} unreachable: {type(exc).__name__}"
            self._done(meter, model, clock(), "connection", message)
            return "502", web.json_response(
                {"error": {"message": message, "type": "proxy_error"}}, status=502
            )
        async with upstream:
            headers = _filter(upstream.headers, _NOT_DOWNSTREAM)
            encoded = "Content-Encoding" in upstream.headers
            if encoded:
                meter = None  # a compressed body is passed through, not measured
            elif meter is not None:
                meter.start(upstream.status, upstream.content_type)
            status = str(upstream.status)
            streamed = upstream.content_type == "text/event-stream" or (
                upstream.content_length is None and request.method != "HEAD"
            )
            if not streamed:
                data = await upstream.read()
                t = clock()
                if meter is not None:
                    meter.feed(t, data)
                    self._done(meter, model, t, streamed=False)
                return status, web.Response(body=data, status=upstream.status, headers=headers)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            response.headers.extend(headers)
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    t = clock()
                    await response.write(chunk)
                    if meter is not None:
                        meter.feed(t, chunk)
                await response.write_eof()
            except (ConnectionResetError, asyncio.CancelledError) as exc:
                client_gone = isinstance(exc, asyncio.CancelledError) or (
                    request.transport is None or request.transport.is_closing()
                )
                if client_gone:
                    # Closing the upstream response drops its connection: the upstream server
                    # sees the disconnect and stops generating.
                    upstream.close()
                    raise
                self._done(
                    meter, model, clock(), "connection", f"upstream failed: {type(exc).__name__}"
                )
                return status, response
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._done(
                    meter, model, clock(), "connection", f"upstream failed: {type(exc).__name__}"
                )
                with contextlib.suppress(Exception):
                    await response.write_eof()
                return status, response
            self._done(meter, model, clock(), streamed=upstream.content_type == "text/event-stream")
            return status, response

    def _done(
        self,
        meter: RequestMeter | None,
        model: str,
        t_ns: int,
        error_kind: str | None = None,
        message: str = "",
        *,
        streamed: bool = True,
    ) -> None:
        if meter is None:
            if error_kind is not None:
                self.metrics.errors.labels(model, error_kind).inc()
                if error_kind == "cancelled":
                    self.metrics.disconnects.labels(model).inc()
            return
        rec = meter.finish(t_ns, error_kind, message)
        self.metrics.observe(rec, model, streamed=streamed)
        if self.records is not None:
            self.records.offer(rec)


class ThreadedProxy:
    """A ProxyServer on its own event loop in a daemon thread (tests, benchmarks)."""

    def __init__(self, config: ProxyConfig) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._config = config
        self.proxy: ProxyServer | None = None

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return self.proxy.url

    def __enter__(self) -> ThreadedProxy:
        self._thread.start()

        async def make() -> ProxyServer:
            return await ProxyServer(self._config).start()

        self.proxy = asyncio.run_coroutine_threadsafe(make(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proxy is not None:
            asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
