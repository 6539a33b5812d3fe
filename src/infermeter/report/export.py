"""Flat tables for pandas and friends: one row per request, or one per run or sweep point.

Example (needs a server or files at hand)::

    table = records_table(run.records)
    with open("records.csv", "w", newline="") as f:
        write_csv(table, f)
    write_parquet(sweep_summary_table(sweep_index), Path("sweep.parquet"))

Every column has a declared type (``int``, ``float``, ``bool``, ``str``, ``list[int]``), taken
from the dataclasses the values come from, so a Parquet file gets int64, float64, bool and
string columns with real nulls, and a CSV file reads back with the same dtypes wherever the
format can say it (an int column with gaps becomes float in pandas' CSV reader, not in
Parquet). Per-chunk arrival lists are Parquet-only (list<int64> columns).
"""

from __future__ import annotations

import csv
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TextIO

from infermeter.errors import UsageError
from infermeter.metrics.aggregate import Summary
from infermeter.metrics.per_request import request_metrics
from infermeter.records.schema import RequestRecord
from infermeter.schema.results import Results

ColumnType = Literal["int", "float", "bool", "str", "list[int]"]
Columns = tuple[tuple[str, ColumnType], ...]

#: Latency distributions and percentiles a summary row carries, flattened as ``ttft_ms_p99``
#: (the ones a sweep index keeps per point, so run and sweep rows have the same columns).
LATENCY_KEYS: tuple[str, ...] = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
PERCENTILE_KEYS: tuple[str, ...] = ("p50", "p90", "p95", "p99")
#: Record fields that are lists: kept in Parquet, left out of CSV.
LIST_FIELDS: tuple[str, ...] = ("chunk_ns", "chunk_tokens")

PARQUET_MISSING = (
    "--format parquet needs pyarrow, which is not installed: pip install 'infermeter[parquet]'"
)


@dataclass(frozen=True)
class ExportTable:
    """Typed columns and the rows (dicts keyed by column name; a missing key is null)."""

    columns: Columns
    rows: list[dict[str, Any]]

    def without_lists(self) -> ExportTable:
        return ExportTable(tuple(c for c in self.columns if c[1] != "list[int]"), self.rows)


def _column_type(hint: Any) -> ColumnType | None:
    """The column type of a dataclass field's annotation; None for what is not a column."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    if typing.get_origin(hint) is list and typing.get_args(hint) == (int,):
        return "list[int]"
    if typing.get_origin(hint) is typing.Literal:  # a closed set of names: text
        return "str"
    simple: dict[Any, ColumnType] = {bool: "bool", int: "int", float: "float", str: "str"}
    return simple.get(hint)


def _dataclass_columns(cls: type, skip: Iterable[str] = ()) -> Columns:
    hints = typing.get_type_hints(cls)
    out: list[tuple[str, ColumnType]] = []
    for f in fields(cls):
        kind = _column_type(hints[f.name])
        if kind is not None and f.name not in skip:
            out.append((f.name, kind))
    return tuple(out)


#: Every scalar (and int-list) field of a record, in the record's order; dicts left out.
RECORD_COLUMNS: Columns = _dataclass_columns(RequestRecord)
#: Per-request metrics beside the record (metrics spec section 3).
METRIC_COLUMNS: Columns = (
    ("ttft_ms", "float"),
    ("ttft_incl_queue_ms", "float"),
    ("queue_delay_ms", "float"),
    ("connect_ms", "float"),
    ("e2e_ms", "float"),
    ("tpot_ms", "float"),
    ("itl_mean_ms", "float"),
    ("itl_max_ms", "float"),
    ("prefill_tps", "float"),
    ("decode_tps", "float"),
    ("request_tps", "float"),
)
SUMMARY_COLUMNS: Columns = _dataclass_columns(Summary)
LATENCY_COLUMNS: Columns = tuple(
    (f"{d}_{p}", "float") for d in LATENCY_KEYS for p in PERCENTILE_KEYS
)
#: What identifies a sweep point, first in every sweep row.
POINT_COLUMNS: Columns = (
    ("point_index", "int"),
    ("role", "str"),
    ("concurrency", "int"),
    ("rate", "float"),
    ("input_tokens", "str"),
    ("output_tokens", "str"),
)


def _with_list_last(columns: Columns) -> Columns:
    return (
        *(c for c in columns if c[1] != "list[int]"),
        *(c for c in columns if c[1] == "list[int]"),
    )


# -- records -------------------------------------------------------------------------------


def record_row(record: RequestRecord) -> dict[str, Any]:
    """One request: the record's fields and its per-request metrics (None where undefined)."""
    m = request_metrics(record)
    row: dict[str, Any] = {name: getattr(record, name) for name, _ in RECORD_COLUMNS}
    row.update(
        ttft_ms=m.ttft_ms,
        ttft_incl_queue_ms=m.ttft_incl_queue_ms,
        queue_delay_ms=m.queue_delay_ms,
        connect_ms=m.connect_ms,
        e2e_ms=m.e2e_ms,
        tpot_ms=m.tpot_ms,
        itl_mean_ms=float(m.itl_ms.mean()) if m.itl_ms.size else None,
        itl_max_ms=float(m.itl_ms.max()) if m.itl_ms.size else None,
        prefill_tps=m.prefill_tps,
        decode_tps=m.decode_tps,
        request_tps=m.request_tps,
    )
    return row


def records_table(records: Sequence[RequestRecord]) -> ExportTable:
    """One row per request of a run."""
    return ExportTable(
        _with_list_last((*RECORD_COLUMNS, *METRIC_COLUMNS)), [record_row(r) for r in records]
    )


def sweep_records_table(
    points: Sequence[tuple[dict[str, Any], Sequence[RequestRecord]]],
) -> ExportTable:
    """One row per request of every point of a sweep, each led by its point's columns."""
    rows: list[dict[str, Any]] = []
    for point, records in points:
        ident = _point_ident(point)
        rows.extend({**ident, **record_row(r)} for r in records)
    columns = _with_list_last((*POINT_COLUMNS, *RECORD_COLUMNS, *METRIC_COLUMNS))
    return ExportTable(columns, rows)


def _point_ident(point: dict[str, Any]) -> dict[str, Any]:
    return {
        "point_index": point.get("index"),
        "role": point.get("role"),
        "concurrency": point.get("concurrency"),
        "rate": point.get("rate"),
        "input_tokens": point.get("input_tokens"),
        "output_tokens": point.get("output_tokens"),
    }


# -- summaries -----------------------------------------------------------------------------


def _latency_cells(distributions: Mapping[str, Any]) -> dict[str, Any]:
    return {
        f"{d}_{p}": (distributions.get(d) or {}).get(p)
        for d in LATENCY_KEYS
        for p in PERCENTILE_KEYS
    }


def _extra_summary_columns(summaries: Iterable[Mapping[str, Any]]) -> Columns:
    """Summary keys newer than this module's Summary, typed by their values."""
    known = {name for name, _ in SUMMARY_COLUMNS}
    seen: dict[str, list[Any]] = {}
    for s in summaries:
        for key, value in s.items():
            if key not in known:
                seen.setdefault(key, []).append(value)
    return tuple((key, _infer_type(values)) for key, values in seen.items())


def _infer_type(values: list[Any]) -> ColumnType:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float"
    return "str"


def run_status(run: Mapping[str, Any]) -> str:
    """ok, aborted or interrupted, from a results document's ``run`` section."""
    if run.get("interrupted"):
        return "interrupted"
    return "aborted" if run.get("aborted") else "ok"


def run_summary_table(results: Results) -> ExportTable:
    """One row: a run's load, workload, summary figures, latency percentiles and SLO verdict."""
    cfg = results.get("config") or {}
    summary: Mapping[str, Any] = results.get("summary") or {}
    run: Mapping[str, Any] = results.get("run") or {}
    slo = results.get("slo")
    row = {
        "path": run.get("out_dir"),
        "status": run_status(run),
        "concurrency": cfg.get("concurrency"),
        "rate": cfg.get("rate"),
        "input_tokens": cfg.get("input_tokens"),
        "output_tokens": cfg.get("output_tokens"),
        **summary,
        **_latency_cells(results.get("distributions") or {}),
        "meets_sla": slo["passed"] if slo else None,
    }
    columns: Columns = (
        ("path", "str"),
        ("status", "str"),
        *(c for c in POINT_COLUMNS if c[0] not in ("point_index", "role")),
        *SUMMARY_COLUMNS,
        *_extra_summary_columns([summary]),
        *LATENCY_COLUMNS,
        ("meets_sla", "bool"),
    )
    return ExportTable(columns, [row])


def sweep_summary_table(sweep: Mapping[str, Any]) -> ExportTable:
    """One row per sweep point: swept values, role, status, figures, percentiles, verdict."""
    points = sweep.get("points") or []
    rows = [
        {
            **_point_ident(p),
            "dir": p.get("dir"),
            "status": p.get("status"),
            **(p.get("summary") or {}),
            **_latency_cells(p.get("latency") or {}),
            "meets_sla": p.get("meets_sla"),
        }
        for p in points
    ]
    columns: Columns = (
        *POINT_COLUMNS,
        ("dir", "str"),
        ("status", "str"),
        *SUMMARY_COLUMNS,
        *_extra_summary_columns(p.get("summary") or {} for p in points),
        *LATENCY_COLUMNS,
        ("meets_sla", "bool"),
    )
    return ExportTable(columns, rows)


# -- writers -------------------------------------------------------------------------------


def _coerce(value: Any, kind: ColumnType) -> Any:
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if kind == "str":
        return str(value)
    return [int(x) for x in value]


def write_csv(table: ExportTable, stream: TextIO) -> int:
    """Write the table (list columns left out) as CSV; nulls are empty cells. Returns rows."""
    flat = table.without_lists()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(name for name, _ in flat.columns)
    for row in flat.rows:
        cells = (_coerce(row.get(name), kind) for name, kind in flat.columns)
        writer.writerow("" if c is None else c for c in cells)
    return len(flat.rows)


def require_pyarrow() -> None:
    """Fail early, in one line, where the optional Parquet dependency is missing."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError(PARQUET_MISSING) from None


def write_parquet(table: ExportTable, path: Path) -> int:
    """Write the table as Parquet with its declared column types. Returns rows."""
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "list[int]": pa.list_(pa.int64()),
    }
    schema = pa.schema([(name, arrow_types[kind]) for name, kind in table.columns])
    data = {
        name: [_coerce(row.get(name), kind) for row in table.rows] for name, kind in table.columns
    }
    pq.write_table(pa.Table.from_pydict(data, schema=schema), str(path))
    return len(table.rows)
