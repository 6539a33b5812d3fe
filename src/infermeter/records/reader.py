"""Read records back. A run killed mid-write can leave a torn last line: it is skipped and
counted, never fatal; a torn line anywhere else is an error naming file and line.

A run's records can be gigabytes: :meth:`RecordStream.batches` reads them as columns (each
field a list, the per-chunk lists flat integer arrays), a few thousand records a batch. Lines
are parsed a few dozen at a time and dropped at once (what stays is the columns), the batch is
checked as a whole, and line by line only where that check fails, so that the error names the
first bad line exactly as a line-by-line check would. A stream may cover a byte range of the
file (:mod:`infermeter.run.fold` reads one range per process) and keeps the CRC-32 of what it
read.
"""

from __future__ import annotations

import gc
import itertools
import operator
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from infermeter.errors import UsageError
from infermeter.records.schema import (
    COLUMN_FIELDS,
    RECORD_SCHEMA_VERSION,
    RequestRecord,
    columns_have_types,
    record_columns,
    record_problem,
    scalar_decoder,
)

IntArray = npt.NDArray[np.int64]

#: Records folded at once, and bytes read at once (they stay in the CPU's cache).
BATCH = 4096
READ = 1 << 18
_LIST_FIELDS = ("chunk_ns", "chunk_tokens")
_SCALAR_FIELDS = tuple(f for f in COLUMN_FIELDS if f not in _LIST_FIELDS)
_ALL_FIELDS = operator.itemgetter(*COLUMN_FIELDS)


class RecordError(UsageError):
    """A line that cannot be a record: the file, the line and why."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line, self.problem = path, line, problem

    def shifted(self, lines: int) -> RecordError:
        """The same error in a stream that began ``lines`` lines further into the file."""
        return RecordError(self.path, self.line + lines, self.problem)


@dataclass(frozen=True, slots=True)
class RecordsFile:
    records: list[RequestRecord]
    torn_last_line: bool


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Consecutive records of one file, checked. ``columns`` holds every scalar field of the
    schema, one entry per record (the field's default where a line leaves it out); the chunk
    lists are flat arrays."""

    columns: dict[str, list[Any]]
    #: Every record's ``chunk_ns``, concatenated; record i's are
    #: ``chunk_ns[chunk_offsets[i]:chunk_offsets[i + 1]]``.
    chunk_ns: IntArray
    chunk_offsets: IntArray
    #: The output tokens of each chunk, aligned with ``chunk_ns``: ``chunk_tokens[i]``, or 1
    #: where the record's ``chunk_tokens`` is shorter (metrics spec section 2).
    chunk_k: IntArray
    #: Records whose chunks do not all carry exactly one token.
    multi_token: npt.NDArray[np.bool_]
    #: Each record's ``chunk_tokens`` as written, or (an int) how many ones it held.
    chunk_tokens: list[list[int] | int]

    def __len__(self) -> int:
        return len(self.chunk_tokens)

    def tokens(self, i: int) -> list[int]:
        """Record i's ``chunk_tokens``."""
        ks = self.chunk_tokens[i]
        return [1] * ks if isinstance(ks, int) else ks

    def stamps(self, i: int) -> list[int]:
        """Record i's ``chunk_ns``."""
        a, b = int(self.chunk_offsets[i]), int(self.chunk_offsets[i + 1])
        return self.chunk_ns[a:b].tolist()  # type: ignore[no-any-return]

    def record(self, i: int) -> RequestRecord:
        """Record i as the dataclass."""
        values = {name: col[i] for name, col in self.columns.items()}
        return RequestRecord(**values, chunk_ns=self.stamps(i), chunk_tokens=self.tokens(i))


def read_records(path: Path) -> RecordsFile:
    """Parse ``records.jsonl`` into memory. Raises :class:`UsageError` on a corrupt or newer
    file. A summary needs none of this: :class:`RecordStream` reads a batch at a time."""
    stream = RecordStream(path)
    records = list(stream)
    return RecordsFile(records, stream.torn_last_line)


class RecordStream:
    """The records of ``records.jsonl`` in file order, one at a time or a batch at a time:
    whoever folds them needs only a few at once. ``torn_last_line`` and ``crc32`` are known
    once the stream is exhausted. A missing file holds no records.

    ``start``/``end``: a byte range whose ends are line starts (or the file's end); a torn
    line can only be the last of the file. Line numbers in errors count from ``start``.
    """

    def __init__(
        self, path: Path, batch: int = BATCH, start: int = 0, end: int | None = None
    ) -> None:
        self.path = path
        self.batch = batch
        self.start = start
        self.end = end
        self.torn_last_line = False
        self.crc32 = 0
        self.lines = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[RequestRecord]:
        for b in self.batches():
            for i in range(len(b)):
                yield b.record(i)

    def batches(self) -> Iterator[RecordBatch]:
        if not self.path.exists():
            return
        builder = _BatchBuilder(self.path)
        with self.path.open("rb", buffering=0) as fh:
            for first, lines in self._lines(fh):
                builder.add(first, lines)
                if builder.rows >= self.batch:
                    yield builder.take()
        if builder.rows:
            yield builder.take()

    def _lines(self, fh: BinaryIO) -> Iterator[tuple[int, list[bytes]]]:
        """The range's lines, a block at a time, each run with the number of its first line;
        keeps the CRC of every byte read and leaves out a torn last line. The file is read
        in blocks that stay in the CPU's cache (no buffered copy) and split at newlines in
        one call: per line, only the split's bytes object is made."""
        fh.seek(self.start)
        left = None if self.end is None else self.end - self.start
        crc = 0
        number = 1
        self.bytes_read = 0
        carry: list[bytes] = []  # the start of a line that runs past the block read
        while left is None or left > 0:
            data = fh.read(READ if left is None else min(READ, left))
            if not data:
                break
            if left is not None:
                left -= len(data)
            self.bytes_read += len(data)
            crc = zlib.crc32(data, crc)
            lines = data.split(b"\n")
            tail = lines.pop()
            if not lines:  # no newline in the block: a line longer than a block
                carry.append(tail)
                continue
            if carry:
                carry.append(lines[0])
                lines[0] = b"".join(carry)
                carry = []
            if tail:
                carry.append(tail)
            yield number, lines
            number += len(lines)
        last = b"".join(carry)
        if last:
            try:
                orjson.loads(last)
            except orjson.JSONDecodeError:
                # Only a last line with no newline can be torn (the write was cut short).
                self.torn_last_line = bool(last.strip())
            if not self.torn_last_line:
                yield number, [last]
            number += 1
        self.crc32 = crc
        self.lines = number - 1


def _int_array(values: Any, count: int) -> IntArray | None:
    """The items as an int64 array; None where one cannot be one. NumPy converts a float or a
    number written as text without complaint: :func:`_exact_ints` checks the items' types."""
    if count == 0:
        return np.empty(0, dtype=np.int64)
    try:
        arr = np.fromiter(values, dtype=np.int64, count=count)
    except (TypeError, ValueError, OverflowError):
        return None
    return arr


def _exact_ints(lists: list[list[Any]]) -> bool:
    """Every item of every list is an integer (a bool passes as one): their sum in Python is
    a float where one is a float, and a TypeError where one is text, null or a list."""
    try:
        total = sum(map(sum, lists))
    except TypeError:
        return False
    return type(total) is int


class _BatchBuilder:
    """Parses lines into the columns of a batch, a few dozen lines at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reset()

    def _reset(self) -> None:
        self.rows = 0
        self._columns: dict[str, list[Any]] = {name: [] for name in _SCALAR_FIELDS}
        #: each record's chunk_tokens, or how many ones it holds
        self._tokens: list[list[int] | int] = []
        self._numbers: list[int] = []
        self._chunks: list[IntArray] = []
        self._lengths: list[int] = []

    def add(self, first: int, lines: list[bytes]) -> None:
        """Lines numbered from ``first`` on; blank ones are skipped."""
        enabled = gc.isenabled()
        gc.disable()  # nothing parsed here can form a cycle; do not scan it
        try:
            if not self._add_cut(first, lines):
                self._add_whole(first, lines)
        finally:
            if enabled:
                gc.enable()

    def _add_cut(self, first: int, lines: list[bytes]) -> bool:
        """The fast way for lines as infermeter writes them: the chunk lists are cut out of
        each line and parsed by NumPy in one go, the rest by orjson. False (nothing added)
        where a line is written otherwise or something in it is wrong: the whole-line way
        then takes the lines and names what is wrong."""
        cut = _cut(lines)
        if cut is None:
            return False
        rests, stamp_texts, token_texts = cut
        columns = _scalar_columns(rests)
        if columns is None:
            return False
        stamps = _stamps(stamp_texts)
        if stamps is None:
            return False
        flat, counts = stamps
        tokens: list[list[int] | int] = []
        for text in token_texts:
            n = (len(text) + 1) >> 1
            if text == _ones(n):
                tokens.append(n)
                continue
            try:
                ks = orjson.loads(b"[" + text + b"]")
            except orjson.JSONDecodeError:
                return False
            if not _exact_ints([ks]):
                return False
            tokens.append(ks)
        if not self._check_versions(range(first, first + len(lines)), columns):
            return False
        self._append(columns, tokens, range(first, first + len(lines)), flat, counts)
        return True

    def _add_whole(self, first: int, lines: list[bytes]) -> None:
        try:
            parsed: list[object] = list(map(orjson.loads, lines))
            numbers: Sequence[int] = range(first, first + len(lines))
        except orjson.JSONDecodeError:
            numbers, parsed = self._parse_slowly(first, lines)
        if parsed:
            self.add_parsed(numbers, parsed)

    def _parse_slowly(self, first: int, lines: list[bytes]) -> tuple[list[int], list[object]]:
        numbers: list[int] = []
        parsed: list[object] = []
        for number, line in enumerate(lines, start=first):
            try:
                parsed.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                if line.strip():
                    raise RecordError(self.path, number, "not a JSON record") from None
                continue  # a blank line
            numbers.append(number)
        return numbers, parsed

    def add_parsed(self, numbers: Sequence[int], parsed: list[object]) -> None:
        columns = _columns(parsed)
        if columns is None:
            raise _refuse(self.path, numbers, parsed)
        self._check_versions(numbers, columns, strict=True)
        stamps: list[list[Any]] = columns.pop("chunk_ns")
        counts = list(map(len, stamps))
        flat = _int_array(itertools.chain.from_iterable(stamps), sum(counts))
        tokens: list[list[Any]] = columns.pop("chunk_tokens")
        if flat is None or not _exact_ints(stamps) or not _exact_ints(tokens):
            raise _refuse(self.path, numbers, parsed)
        self._append(columns, list(tokens), numbers, flat, counts)

    def _check_versions(
        self, numbers: Sequence[int], columns: dict[str, list[Any]], strict: bool = False
    ) -> bool:
        versions = columns["v"]
        if max(versions) <= RECORD_SCHEMA_VERSION:
            return True
        if not strict:
            return False
        i = next(i for i, v in enumerate(versions) if v > RECORD_SCHEMA_VERSION)
        raise RecordError(
            self.path,
            numbers[i],
            f"record schema v{versions[i]} is newer than this infermeter "
            f"(v{RECORD_SCHEMA_VERSION}); upgrade infermeter",
        )

    def _append(
        self,
        columns: dict[str, list[Any]],
        tokens: list[list[int] | int],
        numbers: Sequence[int],
        flat: IntArray,
        counts: list[int],
    ) -> None:
        for name, col in columns.items():
            self._columns[name].extend(col)
        self._tokens.extend(tokens)
        self._numbers.extend(numbers)
        self._chunks.append(flat)
        self._lengths.extend(counts)
        self.rows += len(counts)

    def take(self) -> RecordBatch:
        columns = self._columns
        lengths = np.array(self._lengths, dtype=np.int64)
        chunk_ns = np.concatenate(self._chunks) if self._chunks else np.empty(0, np.int64)
        offsets = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        chunk_k: IntArray = np.broadcast_to(np.int64(1), chunk_ns.shape)  # read-only ones
        multi = np.zeros(lengths.size, dtype=np.bool_)
        for i, ks in enumerate(self._tokens):
            if isinstance(ks, int) or ks.count(1) == len(ks):
                continue  # one token a chunk (beyond the list too, by the spec's default)
            if not chunk_k.flags.writeable:
                chunk_k = np.ones(chunk_ns.size, dtype=np.int64)
            n = int(lengths[i])
            given = np.array(ks[:n], dtype=np.int64)
            start = int(offsets[i])
            chunk_k[start : start + given.size] = given
            multi[i] = bool((given != 1).any())
        batch = RecordBatch(columns, chunk_ns, offsets, chunk_k, multi, self._tokens)
        self._reset()
        return batch


_STAMPS = b'"chunk_ns":['
_TOKENS = b'],"chunk_tokens":['
_I64_MAX = np.iinfo(np.int64).max
_I64_MIN = np.iinfo(np.int64).min
_SCALARS = operator.attrgetter(*_SCALAR_FIELDS)
_DECODE_SCALARS = scalar_decoder(_SCALAR_FIELDS).decode
_ONES: dict[int, bytes] = {}


def _ones(n: int) -> bytes:
    """The text of a list of ``n`` ones, as infermeter writes it."""
    text = _ONES.get(n)
    if text is None:
        text = _ONES[n] = b",".join([b"1"] * n)
    return text


def _cut(lines: list[bytes]) -> tuple[list[bytes], list[bytes], list[bytes]] | None:
    """Each line without its chunk lists (as infermeter writes them: ``chunk_ns`` then
    ``chunk_tokens``, in one piece), and the two lists' texts; None where a line is not so."""
    rests: list[bytes] = []
    stamps: list[bytes] = []
    tokens: list[bytes] = []
    rest, stamp, token = rests.append, stamps.append, tokens.append
    for line in lines:
        i = line.find(_STAMPS)
        j = line.find(_TOKENS, i)
        if i < 0 or j < 0 or line.find(b"]", i) != j:
            return None
        k = line.find(b"]", j + 18)
        if k < 0 or line[k + 1 : k + 2] != b",":
            return None
        stamp(line[i + 12 : j])
        token(line[j + 18 : k])
        rest(line[:i] + line[k + 2 :])
    return rests, stamps, tokens


def _stamps(texts: list[bytes]) -> tuple[IntArray, list[int]] | None:
    """The lines' ``chunk_ns`` texts parsed in one go, and how many each held; None where
    one is not a list of 64-bit integers. The texts are joined with a marker between them
    (-1, and -2 for an empty list) that a count of the markers proves was not in the data."""
    empty = texts.count(b"")
    joined = b",-1,".join([t or b"-2" for t in texts] if empty else texts)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            flat = np.fromstring(joined, dtype=np.int64, sep=",")
    except (ValueError, DeprecationWarning):
        return None
    ends = np.flatnonzero(flat == -1)
    if ends.size != len(texts) - 1:
        return None
    if empty and int(np.count_nonzero(flat == -2)) != empty:
        return None
    if flat.size and (flat.max() == _I64_MAX or flat.min() == _I64_MIN):
        return None  # a number past 64 bits is clamped by the parse: say so properly
    bounds = np.empty(len(texts) + 1, dtype=np.int64)
    bounds[0] = -1
    bounds[1:-1] = ends
    bounds[-1] = flat.size
    counts = np.diff(bounds) - 1
    if not empty:
        return np.delete(flat, ends), counts.tolist()
    counts[[i for i, t in enumerate(texts) if not t]] = 0
    return flat[(flat != -1) & (flat != -2)], counts.tolist()


def _scalar_columns(rests: list[bytes]) -> dict[str, list[Any]] | None:
    """The scalar fields of lines cut by :func:`_cut` as columns (None: a line is not an
    object of those fields of their types). A field a line leaves out (written by an older
    version) takes its default."""
    try:
        rows = list(map(_SCALARS, map(_DECODE_SCALARS, rests)))
    except msgspec.DecodeError:
        return None
    return dict(zip(_SCALAR_FIELDS, map(list, zip(*rows, strict=True)), strict=True))


def _columns(parsed: list[object]) -> dict[str, list[Any]] | None:
    """The fields of the parsed lines as columns: at C speed where every line has every
    field (as infermeter writes them), else field by field with defaults."""
    try:
        rows = list(map(_ALL_FIELDS, parsed))  # type: ignore[arg-type]
    except (KeyError, TypeError):
        return record_columns(parsed)
    columns = dict(zip(COLUMN_FIELDS, map(list, zip(*rows, strict=True)), strict=True))
    return columns if columns_have_types(columns) else None


def _refuse(path: Path, numbers: Sequence[int], parsed: list[object]) -> RecordError:
    """The error for the first line of the batch that cannot be a record."""
    for number, data in zip(numbers, parsed, strict=True):
        problem = record_problem(data)
        if problem is not None:
            return RecordError(path, number, problem)
    raise AssertionError("a batch was refused but no line of it is wrong")


_FIELDS = tuple(RequestRecord.__dataclass_fields__)


def records_batch(records: list[RequestRecord]) -> RecordBatch:
    """Records in memory as one batch."""
    builder = _BatchBuilder(Path("<records>"))
    for lo in range(0, len(records), 128):
        part = records[lo : lo + 128]
        rows: list[object] = [{name: getattr(r, name) for name in _FIELDS} for r in part]
        builder.add_parsed(range(lo + 1, lo + len(part) + 1), rows)
    return builder.take()
