"""The proxy's HTTP side: aiohttp takes the requests and serves ``/metrics``; every request is
forwarded upstream by the lean HTTP client of the benchmark (``clients/rawhttp.py``), and the
response relayed from inside its ``data_received`` (``relay.py``): streams pass through chunk
by chunk with no added buffering and no task switch per chunk.

Headers (``Authorization`` included) go upstream as they came, minus hop-by-hop ones; they
are never logged or recorded, and neither are request bodies (only ``model``, ``stream`` and
``max_tokens`` are read from them). An upstream that echoes a client's credentials in an error
body has them masked in what the proxy writes (``measure.client_secrets``).

Two timeouts bound what a connection may hold: ``upstream_timeout_s`` of upstream silence (a
504, or a cut stream), and ``client_idle_timeout_s`` for a client's idle keep-alive connection
and for the head and the body of its request (aiohttp's keep-alive timer covers an idle
connection and a head that has not arrived; the body's read has its own).

Example (needs a server or files at hand)::

    async with ProxyServer(ProxyConfig(upstream="http://127.0.0.1:8000")) as proxy:
        print(proxy.url)  # point clients here; Prometheus scrapes proxy.url + "/metrics"
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web

from infermeter.clients.rawhttp import (
    ConnectFailed,
    Exchange,
    MalformedResponse,
    RawHttpClient,
    RequestTimeout,
    StaleConnection,
    TransportError,
)
from infermeter.clients.secrets import redact
from infermeter.proxy.measure import (
    ModelLabels,
    RequestMeter,
    client_secrets,
    endpoint_of,
    is_measured,
    request_info,
)
from infermeter.proxy.metrics import CONTENT_TYPE, ProxyMetrics
from infermeter.proxy.recorder import SampledRecords
from infermeter.proxy.relay import HOP_BY_HOP, ClientGone, Relay, end_to_end
from infermeter.proxy.router import Replicas, Router
from infermeter.records.schema import ErrorKind
from infermeter.workload.prefix_hash import new_salt

METRICS_PATH = "/metrics"

#: Not forwarded upstream: hop-by-hop, and what the forwarding request sets itself (aiohttp
#: has already answered any ``Expect: 100-continue``).
_NOT_UPSTREAM = HOP_BY_HOP | {"host", "content-length", "expect"}
#: The longest an upstream connect may take, whatever the upstream timeout: a host that does
#: not answer a SYN in this long is down.
CONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProxyConfig:
    upstream: str
    #: Further upstreams serving the same model: requests are spread over ``upstream`` and
    #: these by ``router`` (the replicas a ``plan`` counted, measured behind one address).
    replicas: tuple[str, ...] = ()
    router: Router = "round-robin"
    host: str = "127.0.0.1"
    port: int = 0
    max_models: int = 32
    records_dir: Path | None = None
    sample: float = 1.0
    rotate_mb: float = 64.0
    #: Fold each closed segment into its column cache (a child process at nice 19).
    cache_columns: bool = True
    #: Cache only segments at least this large (None: the reader's own threshold).
    cache_min_bytes: int | None = None
    #: Seed of the record sampling (None: random).
    seed: int | None = None
    #: Export NVML GPU gauges when a GPU is there.
    gpu: bool = True
    #: The model thinks inside its answer's text as ``<think>…</think>``: TTFA counts from
    #: the text after it (reasoning_content deltas need no flag).
    think_tags: bool = False
    #: Seconds of upstream silence (connecting, or between reads) before giving up; long
    #: enough for a long prefill, as a stream is silent until its first token.
    upstream_timeout_s: float = 300.0
    #: Seconds a client may stay idle between requests, and may take over a request's head,
    #: and again over its body.
    client_idle_timeout_s: float = 60.0


def _upstream_headers(headers: Any) -> bytes:
    """The client's end-to-end headers as header lines for the upstream request."""
    kept = end_to_end(list(headers.items()), _NOT_UPSTREAM)
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: encoding the same way
    # sends upstream exactly the bytes the client sent (latin-1 failed on "€").
    return "".join(f"{k}: {v}\r\n" for k, v in kept).encode("utf-8", "surrogateescape")


class _Failure(NamedTuple):
    """How an upstream failure is told: the record's error kind, the status of a client that
    has had no response yet, and the word for it in messages."""

    kind: ErrorKind
    status: int
    how: str


def _failure(exc: TransportError) -> _Failure:
    if isinstance(exc, RequestTimeout):
        return _Failure("timeout", 504, "timed out")
    if isinstance(exc, MalformedResponse):
        return _Failure("protocol", 502, "failed")
    if isinstance(exc, ConnectFailed):
        return _Failure("connection", 502, "unreachable")
    return _Failure("connection", 502, "failed")


def _proxy_error(message: str, status: int) -> web.Response:
    """An answer of the proxy's own, with an OpenAI-style error body."""
    return web.json_response({"error": {"message": message, "type": "proxy_error"}}, status=status)


def _gpu_sampler() -> Any | None:
    from infermeter.telemetry.gpu import NvmlSampler

    sampler = NvmlSampler()
    return None if sampler.start() is not None else sampler


class ProxyServer:
    """The proxy: an aiohttp app, its upstream session, its metrics and sampled records."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.upstream = config.upstream.rstrip("/")
        self.replicas = Replicas(
            (self.upstream, *(u.rstrip("/") for u in config.replicas)), config.router
        )
        self.t0_ns = time.perf_counter_ns()
        self.t0_wall_ns = time.time_ns()
        self._gpu = _gpu_sampler() if config.gpu else None
        self.metrics = ProxyMetrics(self._gpu)
        self.models = ModelLabels(config.max_models)
        self.records: SampledRecords | None = None
        #: Keys the prompts' block hashes of this recording (kept in memory only).
        self._salt = new_salt() if config.records_dir is not None else None
        if config.records_dir is not None:
            self.records = SampledRecords(
                config.records_dir,
                sample=config.sample,
                rotate_bytes=int(config.rotate_mb * 1024 * 1024),
                t0_wall_ns=self.t0_wall_ns,
                upstream=", ".join(self.replicas.urls),
                seed=config.seed,
                cache_columns=config.cache_columns,
                cache_min_bytes=config.cache_min_bytes,
            )
        self._next_id = 0
        self._http: RawHttpClient | None = None
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.app = web.Application(client_max_size=1 << 30)
        self.app.router.add_route("GET", METRICS_PATH, self._metrics)
        self.app.router.add_route("*", "/{tail:.*}", self._forward)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    async def start(self) -> ProxyServer:
        silence = self.config.upstream_timeout_s
        # No total timeout: how long a response may take is the client's business; only an
        # upstream gone silent is given up on.
        self._http = RawHttpClient(
            total_timeout_s=None,
            connect_timeout_s=min(silence, CONNECT_TIMEOUT_S),
            read_timeout_s=silence,
        )
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handler_cancellation=True,
            keepalive_timeout=self.config.client_idle_timeout_s,
        )
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
        if self._http is not None:
            await self._http.close()
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
        endpoint = endpoint_of(request.path)
        try:
            body = await asyncio.wait_for(request.read(), self.config.client_idle_timeout_s)
        except asyncio.TimeoutError:
            self.metrics.count(self.models.label(None), endpoint, "408")
            return await self._too_slow(request)
        info = (
            request_info(body, self._salt)
            if request.method == "POST" and endpoint != "other"
            else None
        )
        secrets = client_secrets(request.headers.items())
        model = self.models.label(redact(info.model, secrets) if info and info.model else None)
        meter: RequestMeter | None = None
        if info is not None and is_measured(endpoint):
            meter = RequestMeter(
                rid=self._next_id,
                api=endpoint,
                t0_ns=self.t0_ns,
                t_recv_ns=t_recv,
                max_tokens=info.max_tokens,
                secrets=secrets,
                prompt=info.prompt,
                think_tags=self.config.think_tags,
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
        assert self._http is not None
        clock = time.perf_counter_ns
        if meter is not None:
            meter.sent(clock())
        loop = asyncio.get_running_loop()
        relay = Relay(meter, loop.create_future())
        to = self.replicas.take()
        upstream = self.replicas.urls[to]
        self.metrics.upstream_requests.labels(upstream).inc()
        task = asyncio.ensure_future(self._upstream(upstream, request, body, relay))
        # outstanding until the upstream exchange ends, however it ends
        task.add_done_callback(lambda _: self.replicas.done(to))
        try:
            await asyncio.wait((task, relay.head_ready), return_when=asyncio.FIRST_COMPLETED)
            if not relay.head_ready.done():
                await task  # it failed before any response: raises
        except TransportError as exc:
            return self._no_response(meter, model, exc, upstream)
        except asyncio.CancelledError:
            task.cancel()  # the client went away: drop the upstream connection
            raise
        meter = relay.meter  # None when the body is compressed
        status = str(relay.status)
        if not relay.streamed:
            try:
                await task
            except TransportError as exc:
                return self._no_response(meter, model, exc, upstream)
            if meter is not None:
                self._done(meter, model, relay.t_end_ns or clock(), streamed=False)
            return status, web.Response(
                body=relay.body(), status=relay.status, reason=relay.reason, headers=relay.headers
            )
        response = web.StreamResponse(status=relay.status, reason=relay.reason)
        response.headers.extend(relay.headers)
        try:
            await response.prepare(request)  # the head goes out now (StreamResponse)
            assert request.transport is not None
            relay.go_live(request.transport)
            await task
            await response.write_eof()
        except (ClientGone, ConnectionResetError, asyncio.CancelledError):
            task.cancel()  # closes the upstream connection: the server stops generating
            raise
        except TransportError as exc:
            self._done(meter, model, clock(), _failure(exc).kind, f"upstream failed: {exc}")
            # No last chunk: a client must see the response broken, not a complete 200.
            if request.transport is not None:
                request.transport.abort()
            return status, response
        sse = relay.content_type == "text/event-stream"
        self._done(meter, model, relay.t_end_ns or clock(), streamed=sse)
        return status, response

    def _no_response(
        self, meter: RequestMeter | None, model: str, exc: TransportError, upstream: str
    ) -> tuple[str, web.StreamResponse]:
        """The upstream failed before the client got a response: a 504 when it went silent,
        else a 502, with an OpenAI-style error body."""
        failure = _failure(exc)
        message = f"upstream {upstream} {failure.how}: {exc}"
        self._done(meter, model, time.perf_counter_ns(), failure.kind, message)
        return str(failure.status), _proxy_error(message, failure.status)

    @staticmethod
    async def _too_slow(request: web.Request) -> web.StreamResponse:
        """A 408 for a client whose body did not arrive within the idle timeout, and its
        connection closed at once (no lingering over the rest of a body that is not coming)."""
        response = _proxy_error("request body not received within the client idle timeout", 408)
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
        return response

    async def _upstream(
        self, upstream: str, request: web.Request, body: bytes, relay: Relay
    ) -> None:
        """The upstream exchange; once more on a fresh connection when a pooled one turns out
        closed before any byte of the response (the request never reached the server)."""
        assert self._http is not None
        url = upstream + request.rel_url.raw_path_qs
        headers = _upstream_headers(request.headers)
        try:
            await self._http.request(request.method, url, headers, body, relay, Exchange())
        except StaleConnection:
            await self._http.request(request.method, url, headers, body, relay, Exchange())

    def _done(
        self,
        meter: RequestMeter | None,
        model: str,
        t_ns: int,
        error_kind: ErrorKind | None = None,
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
