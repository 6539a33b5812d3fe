"""export: records and summaries as CSV and Parquet, read back with csv and pyarrow."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from test_compare import results, sweep_doc, write_run, write_sweep

from conftest import run_cli
from infermeter.errors import UsageError
from infermeter.records.schema import RequestRecord
from infermeter.report.export import (
    PARQUET_MISSING,
    records_table,
    require_pyarrow,
    run_summary_table,
    sweep_records_table,
    sweep_summary_table,
    write_csv,
    write_parquet,
)

MS = 1_000_000


def records() -> list[RequestRecord]:
    ok = RequestRecord(
        id=0,
        t_sched_ns=0,
        t_send_ns=1 * MS,
        connect_ns=MS // 2,
        t_first_ns=21 * MS,
        t_last_ns=51 * MS,
        t_end_ns=52 * MS,
        # 3 chunks: 1 token, then 2 tokens after 10 ms, then 1 token after 20 ms
        chunk_ns=[21 * MS, 31 * MS, 51 * MS],
        chunk_tokens=[1, 2, 1],
        n_in_target=100,
        n_out_target=4,
        n_in=100,
        n_in_source="server",
        n_out=4,
        n_out_source="server",
        finish_reason="length",
        ok=True,
        usage={"prompt_tokens": 100},
    )
    failed = RequestRecord(
        id=1,
        t_sched_ns=2 * MS,
        t_send_ns=2 * MS,
        t_end_ns=5 * MS,
        ok=False,
        http_status=503,
        error_kind="http",
        error_message="overloaded, try later",
    )
    return [ok, failed]


def _arrow() -> tuple[Any, Any, Any]:
    """pyarrow (the ``parquet`` extra) or a clean skip where it is not installed."""
    pa = pytest.importorskip("pyarrow")
    pacsv = pytest.importorskip("pyarrow.csv")
    pq = pytest.importorskip("pyarrow.parquet")
    return pa, pacsv, pq


def test_record_rows_carry_fields_and_per_request_metrics() -> None:
    table = records_table(records())
    names = [n for n, _ in table.columns]
    assert names[:3] == ["id", "phase", "api"]
    assert names[-2:] == ["chunk_ns", "chunk_tokens"]  # list columns last
    assert "usage" not in names and "server_timings" not in names
    types = dict(table.columns)
    assert types["t_first_ns"] == "int" and types["ok"] == "bool" and types["ttft_ms"] == "float"
    assert types["error_kind"] == "str" and types["chunk_ns"] == "list[int]"
    ok, failed = table.rows
    assert ok["ttft_ms"] == 20.0 and ok["ttft_incl_queue_ms"] == 21.0
    assert ok["queue_delay_ms"] == 1.0 and ok["connect_ms"] == 0.5
    assert ok["e2e_ms"] == 50.0 and ok["tpot_ms"] == 10.0  # 30 ms / 3
    # ITL samples: 5, 5 (the 2-token chunk), 20
    assert ok["itl_mean_ms"] == 10.0 and ok["itl_max_ms"] == 20.0
    assert ok["prefill_tps"] == 5000.0 and ok["decode_tps"] == 100.0 and ok["request_tps"] == 80.0
    assert failed["ttft_ms"] is None and failed["itl_mean_ms"] is None
    assert failed["http_status"] == 503 and failed["ok"] is False


def test_records_round_trip_through_csv(tmp_path: Path) -> None:
    pa, pacsv, _pq = _arrow()
    buf = io.StringIO()
    assert write_csv(records_table(records()), buf) == 2
    text = buf.getvalue()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert "chunk_ns" not in rows[0] and "chunk_tokens" not in rows[0]
    assert rows[0]["ttft_ms"] == "20.0" and rows[0]["ok"] == "True"
    assert rows[1]["ttft_ms"] == "" and rows[1]["error_message"] == "overloaded, try later"
    # What pandas.read_csv does, done by pyarrow: ints, floats, bools, nulls.
    path = tmp_path / "r.csv"
    path.write_text(text)
    t = pacsv.read_csv(path)
    assert t.schema.field("id").type == pa.int64()
    assert t.schema.field("t_send_ns").type == pa.int64()
    assert t.schema.field("ttft_ms").type == pa.float64()
    assert t.schema.field("ok").type == pa.bool_()
    assert t.column("ok").to_pylist() == [True, False]
    assert t.column("ttft_ms").to_pylist() == [20.0, None]
    assert t.column("http_status").to_pylist() == [None, 503]


def test_records_round_trip_through_parquet(tmp_path: Path) -> None:
    pa, _pacsv, pq = _arrow()
    path = tmp_path / "r.parquet"
    assert write_parquet(records_table(records()), path) == 2
    t = pq.read_table(path)
    schema = t.schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("t_first_ns").type == pa.int64()
    assert schema.field("n_cached").type == pa.int64()
    assert schema.field("ok").type == pa.bool_()
    assert schema.field("ttft_ms").type == pa.float64()
    assert schema.field("error_kind").type == pa.string()
    assert schema.field("chunk_ns").type == pa.list_(pa.int64())
    rows = t.to_pylist()
    assert rows[0]["chunk_ns"] == [21 * MS, 31 * MS, 51 * MS]
    assert rows[0]["chunk_tokens"] == [1, 2, 1]
    assert rows[1]["chunk_ns"] == [] and rows[1]["t_first_ns"] is None
    assert rows[0]["tpot_ms"] == 10.0 and rows[1]["tpot_ms"] is None
    assert rows[1]["error_kind"] == "http" and rows[1]["http_status"] == 503


def test_sweep_records_lead_with_their_point() -> None:
    doc = sweep_doc([1, 4], 10.0)
    table = sweep_records_table([(doc["points"][0], records()), (doc["points"][1], records()[:1])])
    assert [n for n, _ in table.columns][:6] == [
        "point_index",
        "role",
        "concurrency",
        "rate",
        "input_tokens",
        "output_tokens",
    ]
    assert [(r["point_index"], r["concurrency"], r["id"]) for r in table.rows] == [
        (0, 1, 0),
        (0, 1, 1),
        (1, 4, 0),
    ]


def test_sweep_summary_one_row_per_point(tmp_path: Path) -> None:
    pa, _pacsv, pq = _arrow()
    doc = sweep_doc([1, 2, 4], 100.0)
    doc["points"][2]["status"] = "aborted"
    doc["points"][2]["meets_sla"] = False
    doc["points"][1]["summary"]["requests_sent"] = 24
    doc["points"][1]["summary"]["newer_figure"] = 1.5  # a key this version does not know
    table = sweep_summary_table(doc)
    path = tmp_path / "s.parquet"
    write_parquet(table, path)
    t = pq.read_table(path)
    assert t.num_rows == 3
    assert t.column("concurrency").to_pylist() == [1, 2, 4]
    assert t.schema.field("concurrency").type == pa.int64()
    assert t.schema.field("rate").type == pa.float64()
    assert t.column("rate").to_pylist() == [None, None, None]
    assert t.column("role").to_pylist() == ["point"] * 3
    assert t.column("status").to_pylist() == ["ok", "ok", "aborted"]
    assert t.column("output_token_throughput_tok_s").to_pylist() == [100.0, 200.0, 400.0]
    assert t.schema.field("requests_sent").type == pa.int64()
    assert t.column("requests_sent").to_pylist() == [None, 24, None]
    assert t.column("newer_figure").to_pylist() == [None, 1.5, None]
    assert t.column("ttft_ms_p99").to_pylist() == [13.0, 26.0, 52.0]
    assert t.schema.field("meets_sla").type == pa.bool_()
    assert t.column("meets_sla").to_pylist() == [None, None, False]
    buf = io.StringIO()
    write_csv(table, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["tpot_ms_p50"] for r in rows] == ["10.0", "20.0", "40.0"]
    assert rows[0]["meets_sla"] == "" and rows[2]["meets_sla"] == "False"


def test_run_summary_has_the_sweep_rows_columns_but_point_ones() -> None:
    res: dict[str, Any] = results(300.0, 40.0, slo={"passed": True})
    res["run"] = {"out_dir": "runs/x", "interrupted": False, "aborted": "server went away"}
    table = run_summary_table(res)
    (row,) = table.rows
    assert row["path"] == "runs/x" and row["status"] == "aborted"
    assert row["concurrency"] == 4 and row["rate"] is None
    assert row["output_token_throughput_tok_s"] == 300.0 and row["meets_sla"] is True
    assert row["ttft_ms_p95"] == 80.0
    sweep_cols = {n for n, _ in sweep_summary_table(sweep_doc([1], 1.0)).columns}
    run_cols = {n for n, _ in table.columns}
    assert sweep_cols - run_cols == {"point_index", "role", "dir"}
    assert run_cols - sweep_cols == {"path"}


def test_missing_pyarrow_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UsageError) as err:
        write_parquet(records_table(records()), tmp_path / "x.parquet")
    assert err.value.message == PARQUET_MISSING
    assert "pip install 'infermeter[parquet]'" in PARQUET_MISSING
    with pytest.raises(UsageError):
        require_pyarrow()


# -- the command ---------------------------------------------------------------------------


def test_cli_exports_a_run(tmp_path: Path) -> None:
    _pa, _pacsv, pq = _arrow()
    run = write_run(tmp_path / "run", n_out=10, gap_ms=10.0)
    res = run_cli("export", str(run))
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 4 and [r["id"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["tpot_ms"] for r in rows} == {"10.0"}
    out = tmp_path / "r.parquet"
    res = run_cli("export", str(run), "--what", "records", "--format", "parquet", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert f"wrote 4 rows to {out}" in res.stderr
    assert pq.read_table(out).column("n_out").to_pylist() == [10] * 4
    summary = tmp_path / "s.csv"
    res = run_cli("export", str(run), "--what", "summary", "-o", str(summary))
    assert res.returncode == 0, res.stderr
    (row,) = list(csv.DictReader(summary.open()))
    # 4 requests of 10 tokens, back to back, 100 ms each
    assert float(row["output_token_throughput_tok_s"]) == pytest.approx(100.0)
    assert row["requests_completed"] == "4" and row["status"] == "ok"


def test_cli_exports_a_sweep(tmp_path: Path) -> None:
    _pa, _pacsv, pq = _arrow()
    sweep = write_sweep(tmp_path / "sw", [1, 2], gap_ms=10.0)
    out = tmp_path / "r.parquet"
    res = run_cli("export", str(sweep), "-f", "parquet", "-o", str(out))
    assert res.returncode == 0, res.stderr
    t = pq.read_table(out)
    assert t.num_rows == 4 + 8
    assert t.column("concurrency").to_pylist() == [1] * 4 + [2] * 8
    res = run_cli("export", str(sweep), "--what", "summary")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [(r["point_index"], r["concurrency"], r["dir"]) for r in rows] == [
        ("0", "1", "points/00-c1"),
        ("1", "2", "points/01-c2"),
    ]
    assert json.loads((sweep / "sweep.json").read_text())["points"][0]["dir"] == "points/00-c1"


def test_cli_export_usage_errors(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", n_out=10, gap_ms=10.0)
    for args, message in [
        (("--format", "parquet"), "--format parquet writes a file: give --out FILE"),
        (("--what", "everything"), "--what must be one of records, summary"),
        (("--format", "xlsx"), "--format must be one of csv, parquet"),
    ]:
        res = run_cli("export", str(run), *args)
        assert res.returncode == 2 and message in res.stderr, res.stderr


def _as_csv_writes(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def test_float_cells_are_written_as_python_writes_them() -> None:
    """Float columns are formatted by orjson where it writes as ``repr`` does: every float,
    None, NaN, infinity, int and bool comes out of the CSV writer as before, byte for byte."""
    import random
    import struct

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from infermeter.report.export import float_texts

    cell = st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-1e-3, max_value=1e-3),
        st.floats(min_value=1e14, max_value=1e18),
        st.integers(-(2**70), 2**70),
        st.booleans(),
    )

    @given(st.lists(cell, max_size=60))
    @settings(max_examples=400, deadline=None)
    def same(values: list[Any]) -> None:
        assert _as_csv_writes(float_texts(values)) == _as_csv_writes(values)

    same()
    rng = random.Random(7)
    bits = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(20000)]
    assert _as_csv_writes(float_texts(bits)) == _as_csv_writes(bits)
    ms = [rng.uniform(0, 10) * 10.0 ** rng.randint(-8, 17) for _ in range(20000)]
    assert _as_csv_writes(float_texts(ms)) == _as_csv_writes(ms)
