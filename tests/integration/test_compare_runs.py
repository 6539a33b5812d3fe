"""compare and export on real runs: one workload against llama-server with 1 slot and 4 slots.

(Named apart from tests/unit/test_compare.py: the test folders are not packages, so two test
modules may not share a name.)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

WORKLOAD = ("-c", "4", "-n", "24", "--input-tokens", "64", "--output-tokens", "32")


@pytest.fixture(scope="module")
def one_slot_server(llama_binary: Path, tiny_model: Any, tmp_path_factory: pytest.TempPathFactory):
    from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig

    cfg = LlamaServerConfig(
        llama_binary,
        tiny_model.gguf,
        alias="tiny",
        ctx_per_slot=1024,
        slots=1,
        threads=1,
        log_path=tmp_path_factory.mktemp("llama-1slot") / "server.log",
    )
    with LlamaServer(cfg) as server:
        yield server


def bench(url: str, out: Path, *args: str) -> dict[str, Any]:
    res = run_cli("bench", "--url", url, "--quiet", "--format", "json", "--out", str(out), *args)
    assert res.returncode == 0, res.stderr
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def runs(
    one_slot_server: Any, llama_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("compare")
    bench(one_slot_server.url, root / "slot1", *WORKLOAD)
    bench(llama_server.url, root / "slot4", *WORKLOAD)
    yield {"slot1": root / "slot1", "slot4": root / "slot4"}


def test_compare_one_slot_with_four(runs: dict[str, Path]) -> None:
    a = json.loads((runs["slot1"] / "results.json").read_text())
    b = json.loads((runs["slot4"] / "results.json").read_text())
    assert a["server"]["slots"] == 1 and b["server"]["slots"] == 4  # the engine setting differs
    labels = ("-l", "1 slot", "-l", "4 slots")
    res = run_cli("compare", str(runs["slot1"]), str(runs["slot4"]), *labels, "-f", "json")
    assert res.returncode == 0, res.stderr
    cmp = json.loads(res.stdout)
    assert cmp["baseline"] == 0 and cmp["differences"] == []
    assert cmp["items"] == [
        {"label": "1 slot", "path": str(runs["slot1"]), "kind": "run"},
        {"label": "4 slots", "path": str(runs["slot4"]), "kind": "run"},
    ]
    rows = {r["metric"]: r for r in cmp["rows"]}
    # Every ratio, by hand from the two results.json files.
    by_hand = {
        "request_throughput_rps": lambda r: r["summary"]["request_throughput_rps"],
        "output_token_throughput_tok_s": lambda r: r["summary"]["output_token_throughput_tok_s"],
        "total_token_throughput_tok_s": lambda r: r["summary"]["total_token_throughput_tok_s"],
        "ttft_ms_p50": lambda r: r["distributions"]["ttft_ms"]["p50"],
        "ttft_ms_p95": lambda r: r["distributions"]["ttft_ms"]["p95"],
        "ttft_ms_p99": lambda r: r["distributions"]["ttft_ms"]["p99"],
        "tpot_ms_p50": lambda r: r["distributions"]["tpot_ms"]["p50"],
        "tpot_ms_p99": lambda r: r["distributions"]["tpot_ms"]["p99"],
        "itl_ms_p50": lambda r: r["distributions"]["itl_ms"]["p50"],
        "itl_ms_p99": lambda r: r["distributions"]["itl_ms"]["p99"],
        "e2e_ms_p50": lambda r: r["distributions"]["e2e_ms"]["p50"],
        "e2e_ms_p99": lambda r: r["distributions"]["e2e_ms"]["p99"],
    }
    for metric, get in by_hand.items():
        row = rows[metric]
        assert row["values"] == pytest.approx([get(a), get(b)]), metric
        if get(a) == 0:  # e.g. ITL p50 when most chunks arrived in the same read
            assert row["ratios"] == [None, None], metric
        else:
            assert row["ratios"] == pytest.approx([1.0, get(b) / get(a)]), metric
    assert rows["error_rate"]["values"] == [0.0, 0.0]
    # Four requests queue for one slot: each waits for the ones ahead, so the first token
    # comes far later than with a slot each.
    assert rows["ttft_ms_p50"]["ratios"][1] < 0.8

    md = run_cli("compare", str(runs["slot1"]), str(runs["slot4"]), *labels, "-f", "md")
    assert md.returncode == 0, md.stderr
    key = "output_token_throughput_tok_s"
    ratio = b["summary"][key] / a["summary"][key]
    expected = f"{ratio:.1f}×" if ratio >= 10 else f"{ratio:.2f}×"
    line = next(x for x in md.stdout.splitlines() if x.startswith("| Output throughput"))
    assert line.endswith(f"| {expected} |"), line
    table = run_cli("compare", str(runs["slot1"]), str(runs["slot4"]))
    assert table.returncode == 0 and "slot4 / slot1" in table.stdout and expected in table.stdout


def test_different_workloads_are_refused_unless_allowed(
    runs: dict[str, Path], llama_server: Any, tmp_path: Path
) -> None:
    longer = tmp_path / "in128"
    bench(llama_server.url, longer, *WORKLOAD[:4], "--input-tokens", "128", "--output-tokens", "32")
    res = run_cli("compare", str(runs["slot4"]), str(longer))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip() == (
        "error: runs differ in workload: input_tokens 64 vs 128 "
        "(pass --allow-different to compare anyway)"
    )
    allowed = run_cli("compare", str(runs["slot4"]), str(longer), "--allow-different", "-f", "json")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["differences"] == ["input_tokens: 64 vs 128"]


def test_export_a_real_run(runs: dict[str, Path], tmp_path: Path) -> None:
    results = json.loads((runs["slot4"] / "results.json").read_text())
    out = tmp_path / "records.parquet"
    res = run_cli("export", str(runs["slot4"]), "--format", "parquet", "--out", str(out))
    assert res.returncode == 0, res.stderr
    pq = pytest.importorskip("pyarrow.parquet")  # the parquet extra
    t = pq.read_table(out)
    assert t.num_rows == results["summary"]["requests_sent"] == 24
    assert t.column("n_out").to_pylist() == [32] * 24
    assert [len(c) for c in t.column("chunk_ns").to_pylist()] == [32] * 24
    ttft = sorted(t.column("ttft_ms").to_pylist())
    assert ttft[0] == pytest.approx(results["distributions"]["ttft_ms"]["min"])
    assert ttft[-1] == pytest.approx(results["distributions"]["ttft_ms"]["max"])
    res = run_cli("export", str(runs["slot4"]), "--what", "summary")
    assert res.returncode == 0, res.stderr
    (row,) = list(csv.DictReader(io.StringIO(res.stdout)))
    s = results["summary"]
    assert float(row["output_token_throughput_tok_s"]) == s["output_token_throughput_tok_s"]
    assert int(row["requests_completed"]) == s["requests_completed"]
    assert float(row["ttft_ms_p99"]) == results["distributions"]["ttft_ms"]["p99"]


def test_compare_as_html(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp.html"
    res = run_cli(
        "compare", str(runs["slot1"]), str(runs["slot4"]), "-f", "html", "--out", str(out)
    )
    assert res.returncode == 0, res.stderr
    page = out.read_text()
    assert "slot1" in page and "slot4" in page
