"""The measured requests of a run as columns: everything the run's metrics need of each record,
folded one record at a time (pure).

A run's summary must not hold its records: a 1,000,000-request run's records take gigabytes
as objects. :class:`TableBuilder` takes records one by one (as they are read from disk) and
keeps of each only its scalars (instants, counts, outcome, the server's own times) in typed
arrays, and its chunk gaps in one growing float64 buffer: about 130 bytes a request plus 8 a
token. The derived per-request metrics (metrics spec section 3) are computed from the columns
in :mod:`infermeter.metrics.aggregate`, with the same floating-point operations as the
per-record formulas of :mod:`infermeter.metrics.per_request`, so both give identical values.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from infermeter.metrics.per_request import gaps_and_itl
from infermeter.metrics.stamps import shared_first
from infermeter.records.schema import RequestRecord

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Stands for "none" in an integer column (counts and instants are never negative).
MISSING = -1


class FloatBuffer:
    """An append-only float64 buffer that grows by doubling (one copy per doubling, not one
    array per request)."""

    __slots__ = ("_data", "size")

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def extend(self, values: FloatArray) -> None:
        need = self.size + values.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), dtype=np.float64)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = values
        self.size = need

    def view(self) -> FloatArray:
        return self._data[: self.size]


@dataclass(frozen=True, slots=True)
class RequestTable:
    """One row per measured request (warm-up and probe records are not rows), in the order
    the records were written. Integer columns hold :data:`MISSING` where the record has no
    value; float columns hold NaN."""

    t_sched_ns: IntArray
    t_send_ns: IntArray
    connect_ns: IntArray
    t_first_ns: IntArray
    t_last_ns: IntArray
    t_end_ns: IntArray
    n_in: IntArray
    n_in_target: IntArray
    n_cached: IntArray
    n_out: IntArray
    ok: BoolArray
    streamed: BoolArray
    #: The prompt count is the server's own (``n_in_source == "server"``).
    n_in_from_server: BoolArray
    #: Chunks that carried output tokens.
    n_chunks: IntArray
    #: Output tokens read under the first token's stamp, and the stream's own pace (ms per
    #: token, the median ITL) after that read (NaN: nothing followed it).
    shared_tokens: IntArray
    shared_pace_ms: FloatArray
    #: The server's own times (llama.cpp ``timings``), NaN where it gave none.
    server_prompt_ms: FloatArray
    server_tpot_ms: FloatArray
    #: Row i's chunk gaps are ``gaps_ms[gap_offsets[i]:gap_offsets[i + 1]]``; its ITL samples
    #: likewise in ``itl_ms`` (the same array where every chunk carried one token).
    gap_offsets: IntArray
    gaps_ms: FloatArray
    itl_offsets: IntArray
    itl_ms: FloatArray
    #: Failed requests by label (``http_500``, ``timeout``...), first seen first, and the
    #: first message of each.
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)
    #: Where the completed requests' token counts came from: {count: {source: requests}}.
    token_sources: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.t_send_ns.size)


def error_label(r: RequestRecord) -> str:
    """A failure's kind as the summary counts it: ``http_<status>`` or the error kind."""
    if r.error_kind == "http" and r.http_status is not None:
        return f"http_{r.http_status}"
    return r.error_kind or "unknown"


_INT_COLUMNS = (
    "t_sched_ns",
    "t_send_ns",
    "connect_ns",
    "t_first_ns",
    "t_last_ns",
    "t_end_ns",
    "n_in",
    "n_in_target",
    "n_cached",
    "n_out",
    "n_chunks",
    "shared_tokens",
)
_FLOAT_COLUMNS = ("shared_pace_ms", "server_prompt_ms", "server_tpot_ms")


def _number(timings: dict[str, object] | None, key: str) -> float:
    value = timings.get(key) if timings else None
    return float(value) if isinstance(value, int | float) else float("nan")


def _or_missing(value: int | None) -> int:
    return MISSING if value is None else value


class TableBuilder:
    """Folds records into a :class:`RequestTable`; keeps nothing of a record once added."""

    def __init__(self) -> None:
        self._ints = {name: array("q") for name in _INT_COLUMNS}
        self._floats = {name: array("d") for name in _FLOAT_COLUMNS}
        self._ok = array("b")
        self._streamed = array("b")
        self._in_from_server = array("b")
        self._gaps = FloatBuffer()
        self._gap_offsets = array("q", [0])
        #: ITL samples apart from the gaps, from the first request whose chunks did not all
        #: carry one token (until then the ITL samples are the gaps).
        self._itl: FloatBuffer | None = None
        self._itl_offsets: array[int] | None = None
        self._errors: dict[str, int] = {}
        self._examples: dict[str, str] = {}
        self._sources: dict[str, dict[str, int]] = {"n_in": {}, "n_out": {}, "chunk_tokens": {}}

    def extend(self, records: Iterable[RequestRecord]) -> TableBuilder:
        for r in records:
            self.add(r)
        return self

    def add(self, r: RequestRecord) -> None:
        """Take one record; only measured ones become rows."""
        if r.phase != "measure":
            return
        ints, floats = self._ints, self._floats
        ints["t_sched_ns"].append(r.t_sched_ns)
        ints["t_send_ns"].append(r.t_send_ns)
        ints["connect_ns"].append(r.connect_ns)
        ints["t_first_ns"].append(_or_missing(r.t_first_ns))
        ints["t_last_ns"].append(_or_missing(r.t_last_ns))
        ints["t_end_ns"].append(r.t_end_ns)
        ints["n_in"].append(_or_missing(r.n_in))
        ints["n_in_target"].append(_or_missing(r.n_in_target))
        ints["n_cached"].append(_or_missing(r.n_cached))
        ints["n_out"].append(r.n_out)
        ints["n_chunks"].append(len(r.chunk_ns))
        self._ok.append(r.ok)
        self._streamed.append(r.streamed)
        self._in_from_server.append(r.n_in_source == "server")
        floats["server_prompt_ms"].append(_number(r.server_timings, "prompt_ms"))
        floats["server_tpot_ms"].append(_number(r.server_timings, "predicted_per_token_ms"))
        shared, pace = shared_first(r.chunk_ns, r.chunk_tokens)
        ints["shared_tokens"].append(shared)
        floats["shared_pace_ms"].append(float("nan") if pace is None else pace)
        if r.ok:
            self._count_sources(r)
            gaps, itl = gaps_and_itl(r) if r.streamed else (_EMPTY, _EMPTY)
        else:
            label = error_label(r)
            self._errors[label] = self._errors.get(label, 0) + 1
            self._examples.setdefault(label, r.error_message or "")
            gaps = itl = _EMPTY
        self._add_gaps(gaps, itl)

    def _count_sources(self, r: RequestRecord) -> None:
        for key, value in (
            ("n_in", r.n_in_source or "none"),
            ("n_out", r.n_out_source),
            ("chunk_tokens", r.chunk_tokens_source),
        ):
            seen = self._sources[key]
            seen[value] = seen.get(value, 0) + 1

    def _add_gaps(self, gaps: FloatArray, itl: FloatArray) -> None:
        same = itl is gaps
        if not same and self._itl is None:
            # The first request whose ITL samples differ from its gaps: from here on the
            # samples are kept apart, starting with a copy of the gaps so far.
            self._itl = FloatBuffer(max(self._gaps.size, 1024))
            self._itl.extend(self._gaps.view())
            self._itl_offsets = array("q", self._gap_offsets)
        self._gaps.extend(gaps)
        self._gap_offsets.append(self._gaps.size)
        if self._itl is not None and self._itl_offsets is not None:
            self._itl.extend(itl)
            self._itl_offsets.append(self._itl.size)

    def build(self) -> RequestTable:
        def i64(name: str) -> IntArray:
            return np.frombuffer(self._ints[name], dtype=np.int64)

        def f64(name: str) -> FloatArray:
            return np.frombuffer(self._floats[name], dtype=np.float64)

        def flags(a: array[int]) -> BoolArray:
            return np.frombuffer(a, dtype=np.int8).astype(bool)

        gap_offsets = np.frombuffer(self._gap_offsets, dtype=np.int64)
        gaps = self._gaps.view()
        if self._itl is not None and self._itl_offsets is not None:
            itl_offsets = np.frombuffer(self._itl_offsets, dtype=np.int64)
            itl = self._itl.view()
        else:
            itl_offsets, itl = gap_offsets, gaps
        return RequestTable(
            t_sched_ns=i64("t_sched_ns"),
            t_send_ns=i64("t_send_ns"),
            connect_ns=i64("connect_ns"),
            t_first_ns=i64("t_first_ns"),
            t_last_ns=i64("t_last_ns"),
            t_end_ns=i64("t_end_ns"),
            n_in=i64("n_in"),
            n_in_target=i64("n_in_target"),
            n_cached=i64("n_cached"),
            n_out=i64("n_out"),
            ok=flags(self._ok),
            streamed=flags(self._streamed),
            n_in_from_server=flags(self._in_from_server),
            n_chunks=i64("n_chunks"),
            shared_tokens=i64("shared_tokens"),
            shared_pace_ms=f64("shared_pace_ms"),
            server_prompt_ms=f64("server_prompt_ms"),
            server_tpot_ms=f64("server_tpot_ms"),
            gap_offsets=gap_offsets,
            gaps_ms=gaps,
            itl_offsets=itl_offsets,
            itl_ms=itl,
            errors_by_kind=dict(self._errors),
            error_examples=dict(self._examples),
            token_sources={k: dict(v) for k, v in self._sources.items()},
        )


_EMPTY: FloatArray = np.empty(0, dtype=np.float64)
_EMPTY.flags.writeable = False


def request_table(records: Iterable[RequestRecord]) -> RequestTable:
    """The table of ``records`` (measured ones only)."""
    return TableBuilder().extend(records).build()
