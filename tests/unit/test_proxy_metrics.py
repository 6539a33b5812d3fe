"""The proxy's measuring and metrics: pure pieces, no network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infermeter.api import load_run
from infermeter.metrics.per_request import request_metrics
from infermeter.proxy.measure import (
    ModelLabels,
    RequestMeter,
    endpoint_of,
    request_info,
)
from infermeter.proxy.metrics import ProxyMetrics
from infermeter.proxy.recorder import SampledRecords

ROOT = Path(__file__).resolve().parents[2]
MS = 1_000_000


def _chunk(
    content: str | None = None, finish: str | None = None, usage: dict | None = None
) -> bytes:
    obj: dict = {"id": "x", "choices": []}
    if content is not None or finish is not None:
        delta = {"content": content} if content is not None else {}
        obj["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class FakeGpu:
    def sample(self) -> dict:
        return {"gpus": [{"index": 0, "util_percent": 50, "memory_used_bytes": 1024}]}


def test_endpoints_and_bounded_models() -> None:
    assert endpoint_of("/v1/chat/completions") == "chat"
    assert endpoint_of("/v1/completions") == "completions"
    assert endpoint_of("/v1/embeddings") == "embeddings"
    assert endpoint_of("/v1/models") == "other"
    labels = ModelLabels(2)
    assert [labels.label(m) for m in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "none"]


def test_request_info_reads_only_what_it_needs() -> None:
    info = request_info(b'{"model":"m","stream":true,"max_tokens":7,"messages":[]}')
    assert (info.model, info.stream, info.max_tokens) == ("m", True, 7)
    assert request_info(b"not json").model is None


def _stream_record(t0: int = 1_000 * MS):
    meter = RequestMeter(rid=3, api="chat", t0_ns=t0, t_recv_ns=t0 + 1 * MS, max_tokens=3)
    meter.sent(t0 + 2 * MS)
    meter.start(200, "text/event-stream")
    meter.feed(t0 + 5 * MS, _chunk(""))  # role-only chunk
    meter.feed(t0 + 52 * MS, _chunk("a"))
    # two messages in one read, split across reads
    both = _chunk(" b") + _chunk(" c")
    meter.feed(t0 + 62 * MS, both[:10])
    meter.feed(t0 + 72 * MS, both[10:])
    meter.feed(t0 + 73 * MS, _chunk(finish="length"))
    usage = {"prompt_tokens": 5, "completion_tokens": 3}
    meter.feed(t0 + 74 * MS, _chunk(usage=usage) + b"data: [DONE]\n\n")
    return meter.finish(t0 + 75 * MS)


def test_stream_record_uses_the_benchmark_definitions() -> None:
    rec = _stream_record()
    assert rec.ok and rec.error_kind is None
    assert (rec.t_sched_ns, rec.t_send_ns, rec.t_end_ns) == (1 * MS, 2 * MS, 75 * MS)
    assert rec.chunk_ns == [52 * MS, 72 * MS, 72 * MS]  # " b" and " c" end in one read
    assert (rec.n_in, rec.n_in_source, rec.n_out, rec.n_out_source) == (5, "server", 3, "server")
    m = request_metrics(rec)
    assert m.ttft_ms == pytest.approx(50.0)
    assert m.e2e_ms == pytest.approx(70.0)
    assert m.tpot_ms == pytest.approx(10.0)


def test_non_streaming_and_errors() -> None:
    meter = RequestMeter(rid=0, api="completions", t0_ns=0, t_recv_ns=0, max_tokens=4)
    meter.sent(1 * MS)
    meter.start(200, "application/json")
    body = {"choices": [{"text": "w x y z", "finish_reason": "length"}]}
    body["usage"] = {"prompt_tokens": 2, "completion_tokens": 4}
    meter.feed(9 * MS, orjson.dumps(body))
    rec = meter.finish(10 * MS)
    assert rec.ok and rec.n_out == 4 and rec.n_out_source == "server"
    assert request_metrics(rec).e2e_ms == pytest.approx(8.0)

    meter = RequestMeter(rid=1, api="chat", t0_ns=0, t_recv_ns=0, max_tokens=4)
    meter.start(500, "application/json")
    meter.feed(1 * MS, b'{"error":{"message":"boom"}}')
    rec = meter.finish(2 * MS)
    assert (rec.ok, rec.error_kind, rec.http_status) == (False, "http", 500)
    assert "boom" in (rec.error_message or "")

    meter = RequestMeter(rid=2, api="chat", t0_ns=0, t_recv_ns=0, max_tokens=4)
    meter.start(200, "text/event-stream")
    meter.feed(1 * MS, _chunk("a"))
    rec = meter.finish(2 * MS, "cancelled", "client went away")
    assert (rec.ok, rec.error_kind, rec.n_out) == (False, "cancelled", 1)


def _scrape(metrics: ProxyMetrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(metrics.exposition().decode()):
        for s in fam.samples:
            key = s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items()) if k != "le")
            if "le" not in s.labels:
                out[key] = s.value
    return out


def test_observe_feeds_histograms_and_counters() -> None:
    metrics = ProxyMetrics(FakeGpu())
    rec = _stream_record()
    metrics.observe(rec, "m")
    metrics.count("m", "chat", "200")
    s = _scrape(metrics)
    assert s["infermeter_ttft_seconds_count,model=m"] == 1
    assert s["infermeter_ttft_seconds_sum,model=m"] == pytest.approx(0.050)
    assert s["infermeter_itl_seconds_count,model=m"] == 2  # one per token after the first
    assert s["infermeter_itl_seconds_sum,model=m"] == pytest.approx(0.020)
    assert s["infermeter_output_tokens_total,model=m"] == 3
    assert s["infermeter_input_tokens_total,model=m"] == 5
    assert s["infermeter_requests_total,endpoint=chat,model=m,status=200"] == 1
    assert s["infermeter_gpu_utilization_ratio,gpu=0"] == 0.5
    assert s["infermeter_gpu_memory_used_bytes,gpu=0"] == 1024


def test_no_gpu_no_gpu_metrics() -> None:
    assert not any("gpu" in n for n in ProxyMetrics().names())


def test_dashboard_references_only_exported_metrics() -> None:
    dash = json.loads((ROOT / "docs/grafana/infermeter-proxy.json").read_text())
    names = ProxyMetrics(FakeGpu()).names()
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    used = {n for e in exprs for n in re.findall(r"infermeter_[a-z0-9_]+", e)}
    assert used and used <= names, used - names
    assert all(p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dash["panels"])
    assert "histogram_quantile(0.99, sum by (le) (rate(infermeter_ttft_seconds_bucket" in (
        " ".join(exprs)
    )


def test_sampled_records_rotate_into_readable_runs(tmp_path: Path) -> None:
    rec = _stream_record()
    sink = SampledRecords(
        tmp_path, sample=1.0, rotate_bytes=1500, t0_wall_ns=0, upstream="http://x", seed=1
    )
    for _ in range(6):
        sink.offer(rec)
    sink.close()
    dirs = [tmp_path, *sorted(p for p in tmp_path.iterdir() if p.is_dir())]
    assert len(dirs) >= 2 and dirs[1].name == "0001"
    # each segment alone, and the recording read whole from its root
    alone = [load_run(d) for d in dirs[1:]]
    assert all(r.segments == [d] for r, d in zip(alone, dirs[1:], strict=True))
    whole = load_run(tmp_path)
    assert whole.segments == dirs
    assert whole.metrics.summary.requests_sent == len(whole.records) == 6
    assert sum(r.metrics.summary.requests_sent for r in alone) < 6
    assert whole.metrics.distributions["ttft_ms"].p50 == pytest.approx(50.0)


def test_sampling_keeps_about_the_fraction(tmp_path: Path) -> None:
    rec = _stream_record()
    sink = SampledRecords(
        tmp_path, sample=0.1, rotate_bytes=1 << 30, t0_wall_ns=0, upstream="http://x", seed=7
    )
    kept = sum(sink.offer(rec) for _ in range(2000))
    sink.close()
    assert 140 <= kept <= 260
