"""The proxy's Prometheus metrics, on a private registry (nothing global).

Latency histograms come from ``request_metrics(record)``, the benchmark's own per-request
metrics, in seconds. Label values are bounded: ``model`` by ``ModelLabels``, ``endpoint`` one
of ``ENDPOINTS``, ``status`` an HTTP status code (or ``disconnected``/``error``), ``kind`` an
error kind of ``docs/metrics.md``; never prompt text or user ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infermeter.metrics.per_request import request_metrics
from infermeter.records.schema import RequestRecord

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2)
E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class GpuCollector(Collector):
    """``infermeter_gpu_*`` gauges from an NVML sampler, read at scrape time."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        util = GaugeMetricFamily(
            "infermeter_gpu_utilization_ratio", "GPU busy fraction (NVML), 0..1", labels=["gpu"]
        )
        mem = GaugeMetricFamily(
            "infermeter_gpu_memory_used_bytes", "GPU memory in use (NVML)", labels=["gpu"]
        )
        try:
            gpus = self.sampler.sample().get("gpus", [])
        except Exception:
            gpus = []
        for g in gpus:
            util.add_metric([str(g["index"])], g["util_percent"] / 100.0)
            mem.add_metric([str(g["index"])], float(g["memory_used_bytes"]))
        yield util
        yield mem


class ProxyMetrics:
    """All the proxy's metrics. ``observe(record, ...)`` once per finished request."""

    def __init__(self, gpu_sampler: Any | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ttft = Histogram(
            "infermeter_ttft_seconds",
            "Time to first token: first token chunk at the proxy minus request sent upstream",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.ttfa = Histogram(
            "infermeter_ttfa_seconds",
            "Time to first answer token of a request that reasoned: the first chunk after its "
            "thinking minus request sent upstream",
            ["model"],
            buckets=E2E_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "infermeter_tpot_seconds",
            "Time per output token after the first, one observation per request",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "infermeter_itl_seconds",
            "Inter-token latency, one observation per output token after the first",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "infermeter_e2e_seconds",
            "End-to-end latency: last token (or body byte) minus request sent upstream",
            ["model"],
            buckets=E2E_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "infermeter_requests",
            "Requests proxied, by the status the client got",
            ["model", "endpoint", "status"],
            registry=r,
        )
        self.input_tokens = Counter(
            "infermeter_input_tokens",
            "Prompt tokens (server-reported usage)",
            ["model"],
            registry=r,
        )
        self.output_tokens = Counter(
            "infermeter_output_tokens", "Generated tokens", ["model"], registry=r
        )
        self.errors = Counter(
            "infermeter_errors", "Failed requests by error kind", ["model", "kind"], registry=r
        )
        self.disconnects = Counter(
            "infermeter_client_disconnects",
            "Clients that went away before their response ended",
            ["model"],
            registry=r,
        )
        self.in_flight = Gauge(
            "infermeter_requests_in_flight", "Requests being proxied now", ["model"], registry=r
        )
        self.upstream_requests = Counter(
            "infermeter_upstream_requests_total",
            "Requests sent to each upstream (a replica, where the proxy fronts several)",
            ["upstream"],
            registry=r,
        )
        self.gpu = gpu_sampler is not None
        if gpu_sampler is not None:
            r.register(GpuCollector(gpu_sampler))

    def count(self, model: str, endpoint: str, status: str) -> None:
        self.requests.labels(model, endpoint, status).inc()

    def observe(self, rec: RequestRecord, model: str, *, streamed: bool = True) -> None:
        """Latencies, tokens and errors of one measured (chat/completions) request; a
        non-streamed one gives E2E and tokens only."""
        if not rec.ok:
            kind = rec.error_kind or "unknown"
            self.errors.labels(model, kind).inc()
            if kind == "cancelled":
                self.disconnects.labels(model).inc()
            return
        m = request_metrics(rec)
        if rec.n_in is not None:
            self.input_tokens.labels(model).inc(rec.n_in)
        self.output_tokens.labels(model).inc(rec.n_out)
        if m.e2e_ms is not None:
            self.e2e.labels(model).observe(m.e2e_ms / 1e3)
        if not streamed:
            return
        if m.ttft_ms is not None:
            self.ttft.labels(model).observe(m.ttft_ms / 1e3)
        if m.ttfa_ms is not None and rec.n_reason > 0:
            # (a request that did not think would repeat its TTFT here)
            self.ttfa.labels(model).observe(m.ttfa_ms / 1e3)
        if m.tpot_ms is not None:
            self.tpot.labels(model).observe(m.tpot_ms / 1e3)
        itl = self.itl.labels(model)
        for v in m.itl_ms:
            itl.observe(v / 1e3)

    def names(self) -> set[str]:
        """Every series name this registry exports (to check dashboards against)."""
        out: set[str] = set()
        for fam in self.registry.collect():
            if fam.type == "counter":
                out.add(fam.name + "_total")
            elif fam.type == "histogram":
                out.update(fam.name + s for s in ("_bucket", "_sum", "_count"))
            else:
                out.add(fam.name)
        return out

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
