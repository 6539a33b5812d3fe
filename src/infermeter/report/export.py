"""Flat tables for pandas and friends: one row per request, or one per run or sweep point.

Example (needs a server or files at hand)::

    table = records_file_table(run.path / "records.jsonl")
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import numpy.typing as npt
import orjson

from infermeter.errors import UsageError
from infermeter.metrics.aggregate import Summary
from infermeter.metrics.per_request import NS_PER_MS, gaps_and_itl_of, request_metrics
from infermeter.metrics.table import MISSING, optional_ints
from infermeter.records.reader import RecordBatch, RecordStream, records_batch
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


#: A run of rows as columns: name -> one value per row (a missing name is null throughout).
Chunk = dict[str, list[Any]]


@dataclass(frozen=True)
class ExportTable:
    """Typed columns and the rows, a chunk of rows at a time (a large run's records are
    read, exported and dropped a batch at a time: none is held). ``typed``: the values are
    of their columns' types already (records, checked as they were read)."""

    columns: Columns
    chunks: Iterable[Chunk]
    typed: bool = False

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict (for small tables; a missing key is null)."""
        out: list[dict[str, Any]] = []
        for chunk in self.chunks:
            names = list(chunk)
            out.extend(
                dict(zip(names, values, strict=True))
                for values in zip(*chunk.values(), strict=True)
            )
        return out

    def without_lists(self) -> ExportTable:
        columns = tuple(c for c in self.columns if c[1] != "list[int]")
        return ExportTable(columns, self.chunks, self.typed)


def _rows_table(columns: Columns, rows: list[dict[str, Any]]) -> ExportTable:
    """A table of rows given as dicts (summaries: a few rows)."""
    chunk = {name: [row.get(name) for row in rows] for name, _ in columns}
    return ExportTable(columns, [chunk] if rows else [])


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


#: Every scalar (and int-list) field of a record, in the record's order; dicts left out, and
#: the prompt's block hashes (there for replaying a recording, not for reading).
RECORD_COLUMNS: Columns = _dataclass_columns(
    RequestRecord, skip=("prompt_block_chars", "prompt_chars")
)
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
    ("ttfa_ms", "float"),
    ("reasoning_ms", "float"),
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
        ttfa_ms=m.ttfa_ms,
        reasoning_ms=m.reasoning_ms,
    )
    return row


_RECORD_EXPORT_COLUMNS = _with_list_last((*RECORD_COLUMNS, *METRIC_COLUMNS))


def batch_chunk(b: RecordBatch, lists: bool = True) -> Chunk:
    """A batch of records as export columns: every field (the chunk lists where ``lists``),
    and the metrics of :func:`record_row`, computed for the whole batch with the same
    operations."""
    chunk: Chunk = {}
    for name, _ in RECORD_COLUMNS:
        if name == "chunk_ns":
            if lists:
                chunk[name] = [b.stamps(i) for i in range(len(b))]
        elif name == "chunk_tokens":
            if lists:
                chunk[name] = [b.tokens(i) for i in range(len(b))]
        else:
            chunk[name] = b.columns[name]
    chunk.update(_metric_columns(b))
    return chunk


def _nan_none(values: npt.NDArray[np.float64], defined: npt.NDArray[np.bool_]) -> list[Any]:
    if defined.all():
        return values.tolist()  # type: ignore[no-any-return]
    return [v if d else None for v, d in zip(values.tolist(), defined.tolist(), strict=True)]


def _metric_columns(b: RecordBatch) -> Chunk:
    cols = b.columns

    def ints(name: str) -> npt.NDArray[np.int64]:
        return optional_ints(cols[name])

    sched, send, connect = ints("t_sched_ns"), ints("t_send_ns"), ints("connect_ns")
    first, last, n_in, n_out = ints("t_first_ns"), ints("t_last_ns"), ints("n_in"), ints("n_out")
    streamed = np.array(cols["streamed"], dtype=np.bool_)
    timed = (first != MISSING) & (last != MISSING)
    live = timed & streamed
    with np.errstate(divide="ignore", invalid="ignore"):
        e2e = (last - send) / NS_PER_MS
        ttft = (first - send) / NS_PER_MS
        ttft_q = (first - sched) / NS_PER_MS
        per_token = live & (n_out >= 2)
        tpot = (last - first) / NS_PER_MS / (n_out - 1)
        has_e2e_rate = timed & (e2e > 0)
        req_tps = n_out / (e2e / 1e3)
        has_prefill = live & (n_in != MISSING) & (n_in != 0) & (ttft > 0)
        prefill = n_in / (ttft / 1e3)
        has_decode = per_token & (tpot > 0)
        decode = 1e3 / tpot
    mean, peak = _itl_mean_max(b, live)
    at = ints("answer_chunk")
    lengths = np.diff(b.chunk_offsets)
    answered = live & (at >= 0) & (at < lengths)
    answer = np.full(len(b), MISSING, dtype=np.int64)
    answer[answered] = b.chunk_ns[b.chunk_offsets[:-1][answered] + at[answered]]
    reasoned = live & (ints("n_reason") > 0)
    with np.errstate(invalid="ignore"):
        ttfa = (answer - send) / NS_PER_MS
        thought = np.where(answered, answer - first, last - first) / NS_PER_MS
    return {
        "ttft_ms": _nan_none(ttft, live),
        "ttft_incl_queue_ms": _nan_none(ttft_q, live),
        "queue_delay_ms": ((send - sched) / NS_PER_MS).tolist(),
        "connect_ms": (connect / NS_PER_MS).tolist(),
        "e2e_ms": _nan_none(e2e, timed),
        "tpot_ms": _nan_none(tpot, per_token),
        "itl_mean_ms": mean,
        "itl_max_ms": peak,
        "prefill_tps": _nan_none(prefill, has_prefill),
        "decode_tps": _nan_none(decode, has_decode),
        "request_tps": _nan_none(req_tps, has_e2e_rate),
        "ttfa_ms": _nan_none(ttfa, answered),
        "reasoning_ms": _nan_none(thought, reasoned),
    }


def _itl_mean_max(
    b: RecordBatch, live: npt.NDArray[np.bool_]
) -> tuple[list[float | None], list[float | None]]:
    """Each streamed record's mean and largest ITL sample (None: it has none). Records of
    one token a chunk and the same number of gaps are taken as the rows of one 2-D array:
    NumPy's mean along a row sums it exactly as it sums the row alone."""
    n = len(b)
    mean = np.zeros(n)
    peak = np.zeros(n)
    has = np.zeros(n, dtype=np.bool_)
    offsets = b.chunk_offsets
    lengths = np.diff(offsets)
    wanted = live & (lengths >= 2)
    as_float = b.chunk_ns.astype(np.float64)
    for m in np.unique(lengths[wanted & ~b.multi_token]).tolist():
        rows = np.flatnonzero(wanted & ~b.multi_token & (lengths == m))
        stamps = as_float[offsets[rows][:, None] + np.arange(m)[None, :]]
        itl = np.diff(stamps, axis=1) / NS_PER_MS
        mean[rows] = itl.mean(axis=1)
        peak[rows] = itl.max(axis=1)
        has[rows] = True
    for i in np.flatnonzero(wanted & b.multi_token).tolist():
        _, itl = gaps_and_itl_of(b.chunk_ns[offsets[i] : offsets[i + 1]], b.tokens(i))
        if itl.size:
            mean[i] = float(itl.mean())
            peak[i] = float(itl.max())
            has[i] = True
    return _nan_none(mean, has), _nan_none(peak, has)


def records_table(records: Sequence[RequestRecord]) -> ExportTable:
    """One row per request of a run."""
    chunks = [batch_chunk(records_batch(list(records)))] if records else []
    return ExportTable(_RECORD_EXPORT_COLUMNS, chunks, typed=True)


def records_file_table(
    path: Path,
    lists: bool = True,
    *,
    point: Mapping[str, Any] | None = None,
    start: int = 0,
    end: int | None = None,
) -> ExportTable:
    """One row per request of a records.jsonl (of its bytes [start, end)), read a batch at a
    time as it is written; without the chunk lists unless ``lists`` (CSV leaves them out);
    each row led by its sweep point's columns where ``point`` is given."""
    columns = _RECORD_EXPORT_COLUMNS
    if point is not None:
        columns = _with_list_last((*POINT_COLUMNS, *columns))
    if not lists:
        columns = tuple(c for c in columns if c[1] != "list[int]")
    ident = _point_ident(point) if point is not None else None

    def chunks() -> Iterator[Chunk]:
        for b in RecordStream(path, start=start, end=end).batches():
            chunk = batch_chunk(b, lists)
            if ident is not None:
                chunk = {**{k: [v] * len(b) for k, v in ident.items()}, **chunk}
            yield chunk

    return ExportTable(columns, _Reiterable(chunks), typed=True)


def sweep_records_table(
    points: Sequence[tuple[dict[str, Any], Sequence[RequestRecord] | Path]],
    lists: bool = True,
) -> ExportTable:
    """One row per request of every point of a sweep, each led by its point's columns
    (a point's records in memory, or its records.jsonl; the chunk lists where ``lists``)."""
    columns = _with_list_last((*POINT_COLUMNS, *RECORD_COLUMNS, *METRIC_COLUMNS))
    if not lists:
        columns = tuple(c for c in columns if c[1] != "list[int]")

    def chunks() -> Iterator[Chunk]:
        for point, records in points:
            ident = _point_ident(point)
            table = (
                records_file_table(records, lists)
                if isinstance(records, Path)
                else records_table(records)
            )
            for chunk in table.chunks:
                size = len(chunk["id"])
                yield {**{k: [v] * size for k, v in ident.items()}, **chunk}

    return ExportTable(columns, _Reiterable(chunks), typed=True)


class _Reiterable:
    """Chunks made afresh on each pass (a table may be read more than once)."""

    def __init__(self, make: Any) -> None:
        self._make = make

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._make())


def _point_ident(point: Mapping[str, Any]) -> dict[str, Any]:
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
    return _rows_table(columns, [row])


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
    return _rows_table(columns, rows)


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


def write_csv(table: ExportTable, stream: TextIO, header: bool = True) -> int:
    """Write the table (list columns left out) as CSV; nulls are empty cells. Returns rows."""
    flat = table.without_lists()
    writer = csv.writer(stream, lineterminator="\n")
    if header:
        writer.writerow(name for name, _ in flat.columns)
    rows = 0
    for chunk in flat.chunks:
        size = len(next(iter(chunk.values()))) if chunk else 0
        cells = [_cells(chunk.get(name), kind, size, flat.typed) for name, kind in flat.columns]
        cells = [
            float_texts(c) if kind == "float" else c
            for c, (_, kind) in zip(cells, flat.columns, strict=True)
        ]
        writer.writerows(zip(*cells, strict=True))  # None is written as an empty cell
        rows += size
    return rows


def _cells(values: list[Any] | None, kind: ColumnType, size: int, typed: bool) -> list[Any]:
    if values is None:
        return [None] * size
    return values if typed else [_coerce(v, kind) for v in values]


#: How orjson begins a number under 1e-4 that Python writes with an exponent (5e-05 is
#: 0.00005 there).
_NOT_AS_PYTHON = ("0.0000", "-0.0000")


def float_texts(values: list[Any]) -> list[Any]:
    """A float column's cells as the CSV writer would write them (``repr``; None stays None,
    an empty cell), formatted in C: orjson writes a float's shortest round-trip digits as
    Python does, in the same notation for every magnitude from 1e-4 up to 1e16; the others
    (and NaN and infinities, which it writes as null) are written by ``repr``. Writing the
    rows was a third of a 1M-record export's CPU, mostly float ``repr``; the export takes
    about 4 % less time for it (bench/RESULTS.md)."""
    try:
        joined = orjson.dumps(values).decode()
    except TypeError:  # not all floats, ints, bools and None: the writer's own way
        return values
    if '"' in joined:  # text in a float column
        return values
    texts: list[Any] = joined[1:-1].split(",")
    if len(texts) != len(values) or not values:
        return values
    if "null" in joined:
        texts = [None if t == "null" else t for t in texts]
        for i in [i for i, t in enumerate(texts) if t is None and values[i] is not None]:
            texts[i] = repr(values[i])  # NaN and infinities, which orjson writes as null
    if "e" in joined or "0.0000" in joined:  # rare: look at each
        for i, t in enumerate(texts):
            if t is not None and ("e" in t or t.startswith(_NOT_AS_PYTHON)):
                v = values[i]
                texts[i] = repr(v) if isinstance(v, float) else str(v)
    return texts


def require_pyarrow() -> None:
    """Fail early, in one line, where the optional Parquet dependency is missing."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError(PARQUET_MISSING) from None


def write_parquet(table: ExportTable, path: Path) -> int:
    """Write the table as Parquet with its declared column types, a chunk of rows at a time.
    Returns rows."""
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
    rows = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for chunk in table.chunks:
            size = len(next(iter(chunk.values()))) if chunk else 0
            data = {
                name: _cells(chunk.get(name), kind, size, table.typed)
                for name, kind in table.columns
            }
            writer.write_table(pa.Table.from_pydict(data, schema=schema))
            rows += size
        if rows == 0:
            writer.write_table(schema.empty_table())
    return rows
