"""The measured requests of a run as columns: everything the run's metrics and charts need of
each record, folded a batch of records at a time (pure).

A run's summary must not hold its records: a 1,000,000-request run's records take gigabytes
as objects. :class:`TableBuilder` takes the records in batches as they are read from disk
(:class:`~infermeter.records.reader.RecordBatch`: each field a column, the chunk lists flat
arrays) and keeps of each record only its scalars (instants, counts, outcome, the server's own
times) and its chunk gaps: about 150 bytes a request plus 8 a token. Every per-chunk figure is
computed for the whole batch at once, with the same floating-point operations as the
per-record formulas of :mod:`infermeter.metrics.per_request`, so both give identical values.
"""

from __future__ import annotations

import itertools
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from infermeter.metrics.stamps import shared_first
from infermeter.records.reader import RecordBatch, records_batch
from infermeter.records.schema import RequestRecord

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Stands for "none" in an integer column (counts and instants are never negative).
MISSING = -1
_NS_PER_MS = 1e6


class FloatBuffer:
    """An append-only float64 buffer in segments of growing size, joined once at the end.

    Growing one array by doubling would hold the old and the new array at once (1.5 to 3
    times the data); segments never move, and :meth:`take` copies them into one array of the
    exact size one segment at a time, releasing each as it goes. Segments past 32 MiB are
    their own memory maps, so a released one goes back to the system at once.
    """

    __slots__ = ("_full", "_segment", "_used", "size")
    _FIRST = 1 << 12
    _LARGEST = 1 << 23

    def __init__(self) -> None:
        self._full: list[FloatArray] = []
        self._segment = np.empty(self._FIRST, dtype=np.float64)
        self._used = 0
        self.size = 0

    def extend(self, values: FloatArray) -> None:
        while values.size:
            room = self._segment.size - self._used
            if room == 0:
                self._full.append(self._segment)
                grown = min(2 * self._segment.size, self._LARGEST)
                self._segment = np.empty(grown, dtype=np.float64)
                self._used, room = 0, grown
            part = values[:room]
            self._segment[self._used : self._used + part.size] = part
            self._used += part.size
            self.size += part.size
            values = values[part.size :]

    def parts(self) -> Iterator[FloatArray]:
        yield from self._full
        yield self._segment[: self._used]

    def take(self) -> FloatArray:
        """The values as one array; the buffer is empty afterwards."""
        if not self._full:
            out = self._segment[: self._used]
            if self._used < self._segment.size // 2:
                out = out.copy()  # do not keep a mostly empty segment alive
        else:
            out = np.empty(self.size, dtype=np.float64)
            at = 0
            while self._full:
                seg = self._full.pop(0)
                out[at : at + seg.size] = seg
                at += seg.size
                del seg
            out[at:] = self._segment[: self._used]
        self.__init__()  # type: ignore[misc]
        return out


class FloatSink(Protocol):
    """Where a :class:`TableBuilder` puts its per-chunk samples as it goes: memory
    (:class:`FloatBuffer`), or a file where the table is written out rather than kept."""

    size: int

    def extend(self, values: FloatArray) -> None: ...

    def parts(self) -> Iterator[FloatArray]:
        """The values so far, in order, a block at a time (they are kept)."""
        ...

    def take(self) -> FloatArray: ...


@dataclass(frozen=True, slots=True)
class RequestTable:
    """One row per measured request (warm-up and probe records are not rows), in the order
    the records were written. Integer columns hold :data:`MISSING` where the record has no
    value; float columns hold NaN."""

    id: IntArray
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
    #: A multi-turn session's number and the request's turn in it (MISSING: none).
    session: IntArray
    turn: IntArray
    #: Reasoning tokens, and the arrival of the first chunk of answer (MISSING: none).
    n_reason: IntArray
    answer_ns: IntArray
    ok: BoolArray
    streamed: BoolArray
    #: The prompt count is the server's own (``n_in_source == "server"``).
    n_in_from_server: BoolArray
    #: Chunks that carried output tokens, and the first and last one's arrival (MISSING:
    #: none).
    n_chunks: IntArray
    first_chunk_ns: IntArray
    last_chunk_ns: IntArray
    #: Output tokens read under the first token's stamp, and the stream's own pace (ms per
    #: token, the median ITL) after that read (NaN: nothing followed it).
    shared_tokens: IntArray
    shared_pace_ms: FloatArray
    #: The server's own times (llama.cpp ``timings``), NaN where it gave none.
    server_prompt_ms: FloatArray
    server_tpot_ms: FloatArray
    #: Row i's chunk gaps are ``gaps_ms[gap_offsets[i]:gap_offsets[i + 1]]``; its ITL samples
    #: likewise in ``itl_ms`` (the same array where every chunk carried one token). Only
    #: completed, streamed requests have them.
    gap_offsets: IntArray
    gaps_ms: FloatArray
    itl_offsets: IntArray
    itl_ms: FloatArray
    #: A failed row's index into ``errors_by_kind`` (in its order); -1 for a completed one.
    error_code: IntArray
    #: Completed rows whose chunks did not all carry one token, and their chunks' tokens:
    #: row ``multi_rows[j]``'s are ``multi_k[multi_offsets[j]:multi_offsets[j + 1]]``.
    multi_rows: IntArray
    multi_offsets: IntArray
    multi_k: IntArray
    #: Completed rows of two or more chunks without gaps (answers not streamed), and their
    #: chunks' arrivals, likewise.
    loose_rows: IntArray
    loose_offsets: IntArray
    loose_chunk_ns: IntArray
    #: Failed requests by label (``http_500``, ``timeout``...), first seen first, and the
    #: first message of each.
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)
    #: Where the completed requests' token counts came from: {count: {source: requests}}.
    token_sources: dict[str, dict[str, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.t_send_ns.size)


def error_label(http_status: int | None, error_kind: str | None) -> str:
    """A failure's kind as the summary counts it: ``http_<status>`` or the error kind."""
    if error_kind == "http" and http_status is not None:
        return f"http_{http_status}"
    return error_kind or "unknown"


_INT_COLUMNS = (
    "id",
    "t_sched_ns",
    "t_send_ns",
    "connect_ns",
    "t_end_ns",
    "n_out",
    "n_reason",
)
_OPTIONAL_INT_COLUMNS = (
    "t_first_ns",
    "t_last_ns",
    "n_in",
    "n_in_target",
    "n_cached",
    "session",
    "turn",
)


def _number(timings: object, key: str) -> float:
    value = timings.get(key) if isinstance(timings, dict) else None
    return float(value) if isinstance(value, int | float) else float("nan")


def _numbers(timings: list[Any], key: str) -> FloatArray:
    """``timings[i][key]`` as floats, NaN where a record has no such number."""
    if timings.count(None) == len(timings):
        return np.full(len(timings), np.nan)
    values = [t.get(key) if type(t) is dict else None for t in timings]
    if set(map(type, values)) <= {int, float, type(None)}:
        return np.array(values, dtype=np.float64)  # None becomes NaN
    return np.array([_number(t, key) for t in timings], dtype=np.float64)


def optional_ints(values: list[Any]) -> IntArray:
    """Integers or None as an array, :data:`MISSING` for None (a column is most often all
    one or all the other)."""
    none = values.count(None)
    if none == 0:
        return np.array(values, dtype=np.int64)
    if none == len(values):
        return np.full(none, MISSING, dtype=np.int64)
    return np.array([MISSING if v is None else v for v in values], dtype=np.int64)


def _measured(b: RecordBatch) -> RecordBatch:
    """The batch's measured records only."""
    keep = [i for i, phase in enumerate(b.columns["phase"]) if phase == "measure"]
    lengths = np.diff(b.chunk_offsets)
    rows = np.zeros(len(b), dtype=np.bool_)
    rows[keep] = True
    chunks = np.repeat(rows, lengths)
    offsets = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(lengths[rows], out=offsets[1:])
    return RecordBatch(
        columns={name: [col[i] for i in keep] for name, col in b.columns.items()},
        chunk_ns=b.chunk_ns[chunks],
        chunk_offsets=offsets,
        chunk_k=b.chunk_k[chunks],
        multi_token=b.multi_token[rows],
        chunk_tokens=[b.chunk_tokens[i] for i in keep],
    )


class _Ints:
    """Append-only integer and flag columns, a batch's array at a time."""

    def __init__(self, names: Iterable[str]) -> None:
        self.parts: dict[str, list[npt.NDArray[np.generic]]] = {name: [] for name in names}

    def add(self, name: str, values: npt.NDArray[np.generic]) -> None:
        self.parts[name].append(values)

    def get(self, name: str, dtype: type = np.int64) -> npt.NDArray[np.generic]:
        parts = self.parts[name]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)


_COLUMNS = (
    *_INT_COLUMNS,
    *_OPTIONAL_INT_COLUMNS,
    "ok",
    "streamed",
    "n_in_from_server",
    "n_chunks",
    "first_chunk_ns",
    "last_chunk_ns",
    "answer_ns",
    "shared_tokens",
    "error_code",
)
_FLOAT_COLUMNS = ("shared_pace_ms", "server_prompt_ms", "server_tpot_ms")


class TableBuilder:
    """Folds records into a :class:`RequestTable`; keeps nothing of a record once added.

    ``sink(name)`` makes the store of the per-chunk samples (``gaps_ms``, and ``itl_ms`` where
    they differ from the gaps): memory unless told otherwise."""

    def __init__(self, sink: Callable[[str], FloatSink] | None = None) -> None:
        self._sink = sink or (lambda _: FloatBuffer())
        self._cols = _Ints(_COLUMNS)
        self._floats: dict[str, list[FloatArray]] = {name: [] for name in _FLOAT_COLUMNS}
        self._gaps = self._sink("gaps_ms")
        self._gap_counts: list[IntArray] = []
        #: ITL samples apart from the gaps, from the first batch with a chunk of other than
        #: one token (until then the ITL samples are the gaps).
        self._itl: FloatSink | None = None
        self._itl_counts: list[IntArray] | None = None
        self._rows = 0
        self._multi_rows: array[int] = array("q")
        self._multi_counts: array[int] = array("q")
        self._multi_k: list[IntArray] = []
        self._loose_rows: array[int] = array("q")
        self._loose_counts: array[int] = array("q")
        self._loose_ns: list[IntArray] = []
        self._errors: dict[str, int] = {}
        self._codes: dict[str, int] = {}
        self._examples: dict[str, str] = {}
        self._sources: dict[str, dict[str, int]] = {"n_in": {}, "n_out": {}, "chunk_tokens": {}}
        self._pending: list[RequestRecord] = []

    def extend(self, records: Iterable[RequestRecord]) -> TableBuilder:
        for r in records:
            self.add(r)
        return self

    def add(self, r: RequestRecord) -> None:
        """Take one record (folded with the next ones, a batch at a time)."""
        self._pending.append(r)
        if len(self._pending) >= 1024:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            batch = records_batch(self._pending)
            self._pending = []
            self.add_batch(batch)

    def add_batch(self, b: RecordBatch) -> None:
        """Take a batch of records read back; only measured ones become rows."""
        self._flush()
        cols = b.columns
        if cols["phase"].count("measure") != len(b):
            b = _measured(b)
            cols = b.columns
        n_rows = len(b)
        if n_rows == 0:
            return
        out = self._cols
        for name in _INT_COLUMNS:
            out.add(name, np.array(cols[name], dtype=np.int64))
        for name in _OPTIONAL_INT_COLUMNS:
            out.add(name, optional_ints(cols[name]))
        ok = np.array(cols["ok"], dtype=np.bool_)
        streamed = np.array(cols["streamed"], dtype=np.bool_)
        out.add("ok", ok)
        out.add("streamed", streamed)
        sources = cols["n_in_source"]
        if sources.count(sources[0]) == n_rows:  # one source for the whole batch
            from_server = np.full(n_rows, sources[0] == "server", dtype=np.bool_)
        else:
            from_server = np.array([s == "server" for s in sources], dtype=np.bool_)
        out.add("n_in_from_server", from_server)
        timings = cols["server_timings"]
        for name, key in (
            ("server_prompt_ms", "prompt_ms"),
            ("server_tpot_ms", "predicted_per_token_ms"),
        ):
            self._floats[name].append(_numbers(timings, key))

        offsets = b.chunk_offsets
        starts = offsets[:-1]
        lengths = np.diff(offsets)
        out.add("n_chunks", lengths)
        some = lengths > 0
        first = np.full(n_rows, MISSING, dtype=np.int64)
        first[some] = b.chunk_ns[starts[some]]
        out.add("first_chunk_ns", first)
        last = np.full(n_rows, MISSING, dtype=np.int64)
        last[some] = b.chunk_ns[offsets[1:][some] - 1]
        out.add("last_chunk_ns", last)
        at = optional_ints(cols["answer_chunk"])
        answered = (at >= 0) & (at < lengths)
        answer = np.full(n_rows, MISSING, dtype=np.int64)
        answer[answered] = b.chunk_ns[starts[answered] + at[answered]]
        out.add("answer_ns", answer)
        self._shared_first(b, starts, lengths, first)
        self._chunk_gaps(b, ok & streamed, starts, lengths)
        self._outcomes(b, ok, lengths)
        self._rows += n_rows

    def _shared_first(
        self, b: RecordBatch, starts: IntArray, lengths: IntArray, first: IntArray
    ) -> None:
        """Tokens read under the first chunk's stamp (metrics spec section 7): the chunks
        from the second on that carry the first one's stamp, up to the first that does not.
        Only a record whose second chunk has its first one's stamp can have any: those few
        are counted one by one."""
        n_rows = lengths.size
        shared = np.zeros(n_rows, dtype=np.int64)
        pace = np.full(n_rows, np.nan)
        two = np.flatnonzero(lengths >= 2)
        if two.size:
            maybe = two[b.chunk_ns[starts[two] + 1] == first[two]]
            for i in maybe.tolist():
                tokens, own = shared_first(b.stamps(i), b.tokens(i))
                shared[i] = tokens
                if own is not None:
                    pace[i] = own
        self._cols.add("shared_tokens", shared)
        self._floats["shared_pace_ms"].append(pace)

    def _chunk_gaps(
        self, b: RecordBatch, gapped: BoolArray, starts: IntArray, lengths: IntArray
    ) -> None:
        """Gaps and ITL samples of the completed, streamed requests (metrics spec section 3):
        a gap (t_chunk[i] - t_chunk[i-1]) / 1e6, spread over the k[i] tokens of the chunk that
        ends it; a chunk of no token adds no ITL sample."""
        n_rows = lengths.size
        with_gaps = gapped & (lengths >= 2)
        gap_counts = np.where(with_gaps, lengths - 1, 0)
        total = b.chunk_ns.size
        if total >= 2 and with_gaps.any():
            # chunk j ends a gap (the one after chunk j - 1) unless it is a record's first
            ends_gap = np.repeat(with_gaps, lengths)
            ends_gap[starts[lengths > 0]] = False
            valid = ends_gap[1:]
            gaps = np.diff(b.chunk_ns.astype(np.float64))[valid]
            gaps /= _NS_PER_MS
            ks = b.chunk_k[1:][valid] if b.multi_token.any() else np.ones(gaps.size, np.int64)
        else:
            gaps = np.empty(0, dtype=np.float64)
            ks = np.empty(0, dtype=np.int64)
        differs = bool((ks != 1).any())
        if differs and self._itl is None:
            # The first batch whose ITL samples differ from its gaps: from here on the
            # samples are kept apart, starting with a copy of the gaps so far.
            self._itl = self._sink("itl_ms")
            for part in self._gaps.parts():
                self._itl.extend(part)
            self._itl_counts = list(self._gap_counts)
        self._gaps.extend(gaps)
        self._gap_counts.append(gap_counts)
        if self._itl is not None and self._itl_counts is not None:
            keep = ks > 0
            self._itl.extend(np.repeat(gaps[keep] / ks[keep], ks[keep]))
            row_of_gap = np.repeat(np.arange(n_rows), gap_counts)
            itl_counts = np.bincount(
                row_of_gap, weights=np.where(keep, ks, 0), minlength=n_rows
            ).astype(np.int64)
            self._itl_counts.append(itl_counts)

    def _outcomes(self, b: RecordBatch, ok: BoolArray, lengths: IntArray) -> None:
        """Failures by label, token-count sources, and what the charts need of the chunks
        that the gaps do not say."""
        cols = b.columns
        codes = np.full(ok.size, -1, dtype=np.int64)
        base = self._rows
        offsets = b.chunk_offsets
        for i in np.flatnonzero(~ok).tolist():
            label = error_label(cols["http_status"][i], cols["error_kind"][i])
            self._errors[label] = self._errors.get(label, 0) + 1
            self._examples.setdefault(label, cols["error_message"][i] or "")
            codes[i] = self._codes.setdefault(label, len(self._codes))
        self._cols.add("error_code", codes)
        done = ok.tolist()
        every = bool(ok.all())
        for key, column in (
            ("n_in", cols["n_in_source"]),
            ("n_out", cols["n_out_source"]),
            ("chunk_tokens", cols["chunk_tokens_source"]),
        ):
            seen = self._sources[key]
            values = column if every else list(itertools.compress(column, done))
            if values and values.count(values[0]) == len(values):
                tally = {values[0]: len(values)}  # one source for the whole batch
            else:
                tally = Counter(values)
            for value, count in tally.items():
                if key == "n_in":
                    value = value or "none"
                seen[value] = seen.get(value, 0) + count
        for i in np.flatnonzero(ok & b.multi_token).tolist():
            self._multi_rows.append(base + i)
            self._multi_counts.append(int(lengths[i]))
            self._multi_k.append(b.chunk_k[offsets[i] : offsets[i + 1]])
        streamed = np.array(cols["streamed"], dtype=np.bool_)
        for i in np.flatnonzero(ok & ~streamed & (lengths >= 2)).tolist():
            self._loose_rows.append(base + i)
            self._loose_counts.append(int(lengths[i]))
            self._loose_ns.append(b.chunk_ns[offsets[i] : offsets[i + 1]])

    def build(self) -> RequestTable:
        self._flush()
        cols = self._cols

        def i64(name: str) -> IntArray:
            return cols.get(name)  # type: ignore[return-value]

        def flags(name: str) -> BoolArray:
            return cols.get(name, np.bool_)  # type: ignore[return-value]

        def f64(name: str) -> FloatArray:
            parts = self._floats[name]
            return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)

        def offsets(counts: list[IntArray]) -> IntArray:
            out = np.zeros(self._rows + 1, dtype=np.int64)
            if counts:
                np.cumsum(np.concatenate(counts), out=out[1:])
            return out

        def sparse(
            rows: array[int], counts: array[int], parts: list[IntArray]
        ) -> tuple[IntArray, IntArray, IntArray]:
            off = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(np.frombuffer(counts, dtype=np.int64), out=off[1:])
            values = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
            return np.frombuffer(rows, dtype=np.int64).copy(), off, values

        gap_offsets = offsets(self._gap_counts)
        gaps = self._gaps.take()
        if self._itl is not None and self._itl_counts is not None:
            itl_offsets = offsets(self._itl_counts)
            itl = self._itl.take()
        else:
            itl_offsets, itl = gap_offsets, gaps
        multi = sparse(self._multi_rows, self._multi_counts, self._multi_k)
        loose = sparse(self._loose_rows, self._loose_counts, self._loose_ns)
        return RequestTable(
            id=i64("id"),
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
            session=i64("session"),
            turn=i64("turn"),
            n_reason=i64("n_reason"),
            answer_ns=i64("answer_ns"),
            ok=flags("ok"),
            streamed=flags("streamed"),
            n_in_from_server=flags("n_in_from_server"),
            n_chunks=i64("n_chunks"),
            first_chunk_ns=i64("first_chunk_ns"),
            last_chunk_ns=i64("last_chunk_ns"),
            shared_tokens=i64("shared_tokens"),
            shared_pace_ms=f64("shared_pace_ms"),
            server_prompt_ms=f64("server_prompt_ms"),
            server_tpot_ms=f64("server_tpot_ms"),
            gap_offsets=gap_offsets,
            gaps_ms=gaps,
            itl_offsets=itl_offsets,
            itl_ms=itl,
            error_code=i64("error_code"),
            multi_rows=multi[0],
            multi_offsets=multi[1],
            multi_k=multi[2],
            loose_rows=loose[0],
            loose_offsets=loose[1],
            loose_chunk_ns=loose[2],
            errors_by_kind=dict(self._errors),
            error_examples=dict(self._examples),
            token_sources={k: dict(v) for k, v in self._sources.items()},
        )


def request_table(records: Iterable[RequestRecord]) -> RequestTable:
    """The table of ``records`` (measured ones only)."""
    return TableBuilder().extend(records).build()


def chunk_arrivals(
    t: RequestTable, block: int = 65536, rows: BoolArray | None = None
) -> Iterator[tuple[IntArray, IntArray]]:
    """The completed requests' token chunks as (arrival ns, tokens), a block of rows at a
    time, in row order (only the rows where ``rows`` is True, if given): rebuilt from each
    row's first arrival and its gaps (a gap in ms times 1e6, rounded, is its nanoseconds
    exactly, below 2^52 ns), or from the arrivals kept for rows without gaps."""
    for lo in range(0, len(t), block):
        hi = min(lo + block, len(t))
        take = t.ok[lo:hi] if rows is None else t.ok[lo:hi] & rows[lo:hi]
        if not take.any():
            continue
        n = np.where(take, t.n_chunks[lo:hi], 0)
        row_start = np.zeros(hi - lo + 1, dtype=np.int64)
        np.cumsum(n, out=row_start[1:])
        heads = row_start[:-1][n > 0]
        # within a row: 0, then one gap after another, summed; plus the first arrival
        step = np.zeros(int(row_start[-1]), dtype=np.int64)
        gap_counts = np.diff(t.gap_offsets[lo : hi + 1])
        gapped = (gap_counts > 0) & take
        if gapped.any():
            g0, g1 = int(t.gap_offsets[lo]), int(t.gap_offsets[hi])
            gaps = t.gaps_ms[g0:g1]
            if not take.all():
                gaps = gaps[np.repeat(take, gap_counts)]
            body = np.repeat(gapped, n)
            body[heads] = False
            step[body] = np.rint(gaps * _NS_PER_MS).astype(np.int64)
        times = np.cumsum(step)
        times += np.repeat(t.first_chunk_ns[lo:hi][n > 0] - times[heads], n[n > 0])
        tokens = np.ones(step.size, dtype=np.int64)
        for j in _rows_within(t.multi_rows, lo, hi):
            row = int(t.multi_rows[j]) - lo
            if take[row]:
                a, b = row_start[row], row_start[row + 1]
                tokens[a:b] = t.multi_k[t.multi_offsets[j] : t.multi_offsets[j + 1]]
        for j in _rows_within(t.loose_rows, lo, hi):
            row = int(t.loose_rows[j]) - lo
            if take[row]:
                a, b = row_start[row], row_start[row + 1]
                times[a:b] = t.loose_chunk_ns[t.loose_offsets[j] : t.loose_offsets[j + 1]]
        yield times, tokens


def row_tokens(t: RequestTable) -> IntArray:
    """Each row's output tokens as its chunks count them (k[i], 1 where not given)."""
    tokens: IntArray = t.n_chunks.copy()
    for j, row in enumerate(t.multi_rows.tolist()):
        tokens[row] = int(t.multi_k[t.multi_offsets[j] : t.multi_offsets[j + 1]].sum())
    return tokens


def _rows_within(rows: IntArray, lo: int, hi: int) -> range:
    """Positions in the sorted ``rows`` of those in [lo, hi)."""
    return range(int(np.searchsorted(rows, lo)), int(np.searchsorted(rows, hi)))
