"""Load that cannot be what it asks, and servers that answer other than asked: each ends as
one clear line or a named, excluded share, with the records counted against the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from infermeter.errors import UsageError
from infermeter.load.streams import MAX_STREAMS, bounded_streams, stream_warnings
from infermeter.records import read_records

pytestmark = pytest.mark.integration

SMALL = ["--input-tokens", "8", "--output-tokens", "4", "--quiet"]


def test_streams_are_bounded_by_the_requests() -> None:
    assert bounded_streams(1_000_000_000, 4) == 4
    assert bounded_streams(8, 100) == 8
    assert bounded_streams(None, 4) is None
    assert bounded_streams(MAX_STREAMS, None) == MAX_STREAMS
    with pytest.raises(UsageError, match="--concurrency 100,001"):
        bounded_streams(MAX_STREAMS + 1, None)
    assert stream_warnings(8, 8) == []
    assert "4 streams ran" in stream_warnings(1_000_000_000, 4)[0]


def test_absurd_concurrency_is_clamped_before_allocation(emulator, tmp_path: Path) -> None:
    out = tmp_path / "r"
    with emulator(ttft_ms=2, itl_ms=1) as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "1000000000", "-n", "4", "--workers", "2",
            *SMALL, "--out", str(out), "--format", "json", timeout=120,
        )  # fmt: skip
        completed = srv.server.completed
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert results["config"]["concurrency"] == 4
    assert results["run"]["concurrency_asked"] == 1_000_000_000
    assert any("4 streams ran" in w for w in results["warnings"])
    recs = read_records(out / "records.jsonl").records
    assert len(recs) == 4 and sum(r.ok for r in recs) == completed - 1


def test_unbounded_absurd_concurrency_is_a_usage_error(emulator, tmp_path: Path) -> None:
    out = tmp_path / "r"
    with emulator() as srv:
        res = run_cli(
            "bench", "--url", srv.url, "-c", "1000000000", "--duration", "2", *SMALL,
            "--out", str(out), timeout=60,
        )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "more streams than one run holds open" in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
