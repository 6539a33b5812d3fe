"""A run's records.jsonl folded into its request table: in parallel for a large file, and
kept beside it as columns so that the next read takes a fraction of the time.

``records.jsonl`` stays the record of truth (every finished request is on disk the moment it
finishes; a torn last line is skipped and noted). Past :data:`PARALLEL_BYTES` it is cut at
line starts into one byte range per process; each process folds its range into a partial
table (:class:`~infermeter.metrics.table.TableBuilder`) and writes it as raw arrays; the
parent reads them, part after part, straight into the final arrays (no second copy), in file
order, so that the table is the one a single pass makes, value for value. The chunk gaps,
most of the bytes, are joined into one file that the parent maps into memory instead: on the
2-core VM, reading a million requests' gigabyte of gaps into fresh memory took 0.5-2.2 s of
page faults, mapping it 0.02 s (``bench/RESULTS.md``).

The parts are kept in ``records.columns/`` beside the file (where the directory is writable)
with the file's size and the CRC-32 of each part's bytes; a later read whose file still
matches (same size, same checksums, recomputed rather than trusted to a modification time)
joins them without parsing a line. Delete the directory at will: it is rebuilt.
"""

from __future__ import annotations

import contextlib
import gc
import io
import mmap
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from infermeter.errors import UsageError
from infermeter.memory import available_memory, avoid_stalling_huge_pages, keep_freed_memory
from infermeter.metrics.table import FloatArray, RequestTable, TableBuilder
from infermeter.records.reader import RecordStream
from infermeter.records.rundir import COLUMNS_DIR
from infermeter.run import ranges

#: Files below this are folded in this process and not cached.
PARALLEL_BYTES = 32 << 20
#: The least bytes of the file a process folds.
PART_BYTES = 16 << 20
#: Bumped when the parts' layout changes: older caches are rebuilt.
CACHE_FORMAT = 5
_META = "meta.json"
#: Memory a fold needs beyond its arrays (interpreter, a batch being parsed), per process.
_OVERHEAD = 200 << 20

_DICTS = ("errors_by_kind", "error_examples", "token_sources")
_ARRAYS = tuple(f.name for f in fields(RequestTable) if f.name not in _DICTS)
#: Each offsets array, and the array whose items it indexes.
_OFFSETS = {
    "gap_offsets": "gaps_ms",
    "itl_offsets": "itl_ms",
    "multi_offsets": "multi_k",
    "loose_offsets": "loose_chunk_ns",
}


@dataclass(frozen=True, slots=True)
class FoldedRecords:
    table: RequestTable
    torn_last_line: bool
    #: Where the table came from: ``folded`` (this process), ``parallel`` (N processes) or
    #: ``cache`` (records.columns/).
    source: str
    processes: int = 1


@dataclass(frozen=True, slots=True)
class _Part:
    """One byte range folded: its bytes' checksum, what it held, where its arrays lie in its
    file, and its dictionaries."""

    start: int
    end: int
    crc32: int
    lines: int
    rows: int
    torn_last_line: bool
    #: (array, dtype, items), in the order they lie in the file
    arrays: tuple[tuple[str, str, int], ...]
    #: (array, items) of the float64 arrays written as the fold went: the gaps of all the
    #: parts of a file in one file, in order (:func:`_stream_file`), others each in its own
    #: (:func:`_own_file`)
    streamed: tuple[tuple[str, int], ...]
    itl_is_gaps: bool
    errors_by_kind: dict[str, int]
    error_examples: dict[str, str]
    token_sources: dict[str, dict[str, int]]

    def items(self, name: str) -> int:
        for array, _, n in self.arrays:
            if array == name:
                return n
        for array, n in self.streamed:
            if array == name:
                return n
        raise KeyError(name)

    def dtype(self, name: str) -> str:
        for array, dtype, _ in self.arrays:
            if array == name:
                return dtype
        return str(np.dtype(np.float64).str)

    def file_offsets(self) -> dict[str, int]:
        where: dict[str, int] = {}
        at = 0
        for name, dtype, n in self.arrays:
            where[name] = at
            at += np.dtype(dtype).itemsize * n
        return where

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> _Part:
        values = dict(data)
        values["arrays"] = tuple((str(a), str(d), int(n)) for a, d, n in values["arrays"])
        values["streamed"] = tuple((str(a), int(n)) for a, n in values["streamed"])
        return _Part(**values)


def _part_file(root: Path, index: int) -> Path:
    return root / f"part-{index:03d}.bin"


def _own_file(part_file: Path, name: str) -> Path:
    """Where a part keeps the array ``name`` that it wrote as it went."""
    return part_file.with_name(f"{part_file.stem}.{name}.bin")


#: The array whose parts are joined into one file: most of a table's bytes.
_JOINED = "gaps_ms"


def _stream_file(folder: Path) -> Path:
    """The gaps of all the parts in ``folder``, in order: one file that a read maps into
    memory whole (the page cache's pages, not a copy; see :func:`join_parts`)."""
    return folder / f"{_JOINED}.bin"


def _join_streams(files: list[Path]) -> None:
    """Append each part's gaps to the first part's, in the kernel where it can, and keep them
    as :func:`_stream_file`: one copy of all but the first part's gaps now, none later."""
    first = _own_file(files[0], _JOINED)
    if not first.exists():
        return
    dest = _stream_file(files[0].parent)
    first.rename(dest)
    with dest.open("r+b") as out:  # (not "ab": sendfile refuses an O_APPEND file)
        out.seek(0, os.SEEK_END)
        for file in files[1:]:
            src = _own_file(file, _JOINED)
            with src.open("rb") as fh:
                ranges.copy_rest(fh, out)
            src.unlink()


class _FileFloats:
    """A fold's per-chunk samples written to a file batch by batch, never held: in a part
    they are most of the table, and a copy in memory would be read, copied and written
    again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._fh = path.open("wb")

    def extend(self, values: FloatArray) -> None:
        np.ascontiguousarray(values, dtype=np.float64).tofile(self._fh)
        self.size += int(values.size)

    def parts(self) -> Iterator[FloatArray]:
        self._fh.flush()
        with self.path.open("rb") as fh:
            while block := fh.read(1 << 23):
                yield np.frombuffer(block, dtype=np.float64)

    def take(self) -> FloatArray:
        """Nothing: the values are in the file (an empty array stands for them)."""
        self._fh.close()
        return np.empty(0, dtype=np.float64)


# -- folding a range (in a worker process, or this one) ----------------------------------------


def fold_range(path: Path, start: int, end: int | None, out: Path) -> _Part:
    """Fold the lines of ``path`` in [start, end) (to the end of the file where ``end`` is
    None) and write the partial table's arrays to ``out``."""
    stream = RecordStream(path, start=start, end=end)
    sinks: dict[str, _FileFloats] = {}

    def sink(name: str) -> _FileFloats:
        sinks[name] = _FileFloats(_own_file(out, name))
        return sinks[name]

    builder = TableBuilder(sink)
    enabled = gc.isenabled()
    gc.disable()  # a fold makes no reference cycles: do not scan what it holds
    try:
        for batch in stream.batches():
            builder.add_batch(batch)
        table = builder.build()
    finally:
        if enabled:
            gc.enable()
    itl_is_gaps = table.itl_ms is table.gaps_ms
    arrays: list[tuple[str, str, int]] = []
    with out.open("wb") as fh:
        for name in _ARRAYS:
            if name in sinks or (itl_is_gaps and name in ("itl_ms", "itl_offsets")):
                continue
            arr = np.ascontiguousarray(getattr(table, name))
            arr.tofile(fh)
            arrays.append((name, arr.dtype.str, int(arr.size)))
    return _Part(
        start=start,
        end=start + stream.bytes_read,
        crc32=stream.crc32,
        lines=stream.lines,
        rows=len(table),
        torn_last_line=stream.torn_last_line,
        arrays=tuple(arrays),
        streamed=tuple((name, f.size) for name, f in sinks.items()),
        itl_is_gaps=itl_is_gaps,
        errors_by_kind=table.errors_by_kind,
        error_examples=table.error_examples,
        token_sources=table.token_sources,
    )


# -- joining the parts ---------------------------------------------------------------------


def _read_into(fh: io.BufferedReader, offset: int, target: npt.NDArray[Any]) -> None:
    if target.size == 0:
        return
    fh.seek(offset)
    view = memoryview(target).cast("B")  # type: ignore[arg-type]  # a contiguous array
    if fh.readinto(view) != view.nbytes:
        raise UsageError(f"{fh.name} is cut short: delete {Path(fh.name).parent} and read again")


def join_parts(pieces: list[tuple[Path, _Part]]) -> RequestTable:
    """The table of the parts (each with the file its arrays are in), in order, read straight
    into its final arrays. The gaps of parts that share one folder are in one file
    (:func:`_stream_file`); where all the parts do, that file is mapped into memory, not
    read: its pages are the page cache's, and they are not faulted in one by one."""
    parts = [p for _, p in pieces]
    separate_itl = not all(p.itl_is_gaps for p in parts)

    def source(p: _Part, name: str) -> str:
        """Where a part keeps ``name``: ITL samples that are its gaps are not written twice."""
        if p.itl_is_gaps and name == "itl_ms":
            return "gaps_ms"
        if p.itl_is_gaps and name == "itl_offsets":
            return "gap_offsets"
        return name

    # Where each part's gaps start in its file's stream file, in bytes; a file's parts are
    # consecutive, and its first begins at byte 0.
    gaps_at: list[int] = []
    folders: list[Path] = []
    at_file = 0
    for file, p in pieces:
        if not folders or folders[-1] != file.parent or p.start == 0:
            folders.append(file.parent)
            at_file = 0
        gaps_at.append(at_file)
        at_file += 8 * dict(p.streamed).get(_JOINED, 0)

    names = [n for n in _ARRAYS if separate_itl or n not in ("itl_ms", "itl_offsets")]
    size = {
        name: sum(p.items(source(p, name)) - (name in _OFFSETS) for p in parts) + (name in _OFFSETS)
        for name in names
    }
    mapped = len(folders) == 1 and all(_JOINED in dict(p.streamed) for p in parts)
    out: dict[str, npt.NDArray[Any]] = {
        name: _mapped(_stream_file(folders[0]), size[name])
        if mapped and name == _JOINED
        else np.empty(size[name], dtype=np.dtype(parts[0].dtype(source(parts[0], name))))
        for name in names
    }
    at = dict.fromkeys(names, 0)
    codes: dict[str, int] = {}
    errors: dict[str, int] = {}
    examples: dict[str, str] = {}
    sources: dict[str, dict[str, int]] = {"n_in": {}, "n_out": {}, "chunk_tokens": {}}
    rows_before = 0
    for index, (file, p) in enumerate(pieces):
        where = p.file_offsets()
        before = dict(at)
        own = dict(p.streamed)
        with file.open("rb") as fh:
            for name in names:
                src = source(p, name)
                n = p.items(src) - (name in _OFFSETS)  # a part's last offset is its total
                target = out[name][at[name] : at[name] + n]
                if src == _JOINED and src in own:
                    if not (mapped and name == _JOINED):
                        with _stream_file(file.parent).open("rb") as own_fh:
                            _read_into(own_fh, gaps_at[index], target)
                elif src in own:
                    with _own_file(file, src).open("rb") as own_fh:
                        _read_into(own_fh, 0, target)
                else:
                    _read_into(fh, where[src], target)
                if name in _OFFSETS:
                    target += before[_OFFSETS[name]]
                elif name in ("multi_rows", "loose_rows"):
                    target += rows_before
                elif name == "error_code" and n:
                    remap = np.array(
                        [codes.setdefault(label, len(codes)) for label in p.errors_by_kind] or [0],
                        dtype=np.int64,
                    )
                    failed = target >= 0
                    target[failed] = remap[target[failed]]
                at[name] += n
        for label, count in p.errors_by_kind.items():
            codes.setdefault(label, len(codes))
            errors[label] = errors.get(label, 0) + count
            examples.setdefault(label, p.error_examples.get(label, ""))
        for key, seen in p.token_sources.items():
            merged = sources.setdefault(key, {})
            for value, count in seen.items():
                merged[value] = merged.get(value, 0) + count
        rows_before += p.rows
    for name, data in _OFFSETS.items():
        if name in out:
            out[name][-1] = at[data]
    if not separate_itl:
        out["itl_ms"], out["itl_offsets"] = out["gaps_ms"], out["gap_offsets"]
    return RequestTable(
        **out, errors_by_kind=errors, error_examples=examples, token_sources=sources
    )


def _mapped(path: Path, items: int) -> FloatArray:
    """The float64 file ``path`` as an array that maps it (copy on write: a change to the
    array never reaches the file)."""
    if items == 0:
        return np.empty(0, dtype=np.float64)
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size != 8 * items:
            raise UsageError(f"{path} is cut short: delete {path.parent} and read again")
        view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    return np.frombuffer(view, dtype=np.float64)


# -- the cache ---------------------------------------------------------------------------------


def _range_crc(path: Path, start: int, end: int) -> int:
    crc = 0
    with path.open("rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(left, 1 << 22))
            if not block:
                return -1
            crc = zlib.crc32(block, crc)
            left -= len(block)
    return crc


def _cached(path: Path, root: Path) -> list[_Part] | None:
    """The cached parts, if they are of this file as it is now."""
    try:
        meta = orjson.loads((root / _META).read_bytes())
        if meta.get("format") != CACHE_FORMAT or meta.get("size") != path.stat().st_size:
            return None
        parts = [_Part.from_json(p) for p in meta["parts"]]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not parts or parts[-1].end != meta["size"]:
        return None
    needed = set(_ARRAYS) - {"itl_ms", "itl_offsets"}
    if any(needed - {name for name, _, _ in p.arrays} - dict(p.streamed).keys() for p in parts):
        return None  # written by another version of the table
    files = [
        f
        for i, p in enumerate(parts)
        for f in (
            _part_file(root, i),
            *(_own_file(_part_file(root, i), a) for a, _ in p.streamed if a != _JOINED),
        )
    ]
    if not all(f.exists() for f in files):
        return None
    gaps = sum(dict(p.streamed).get(_JOINED, 0) for p in parts)
    try:
        if _stream_file(root).stat().st_size != 8 * gaps:
            return None  # cut short
    except OSError:
        return None
    with ThreadPoolExecutor(max_workers=min(len(parts), ranges.processes())) as pool:
        crcs = list(pool.map(lambda p: _range_crc(path, p.start, p.end), parts))
    if any(c != p.crc32 for c, p in zip(crcs, parts, strict=True)):
        return None
    return parts


def _store(path: Path, parts: list[_Part], tmp: Path, root: Path) -> bool:
    """Keep the parts as the cache of ``path`` (where its directory takes them): True if
    they are now in ``root``."""
    meta = {"format": CACHE_FORMAT, "size": parts[-1].end, "parts": [p.to_json() for p in parts]}
    try:
        (tmp / _META).write_bytes(orjson.dumps(meta))
        old = root.with_name(root.name + f".old-{os.getpid()}")
        if root.exists():
            root.rename(old)
        tmp.rename(root)
    except OSError:
        return False
    shutil.rmtree(root.with_name(root.name + f".old-{os.getpid()}"), ignore_errors=True)
    return True


# -- the fold ----------------------------------------------------------------------------------


def _estimate(path: Path, size: int) -> int:
    """Bytes the table of the file will take: 8 a chunk gap and ~200 a request, measured on
    the file's first lines."""
    if not size:
        return 0
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    lines = [line for line in head.split(b"\n")[:-1] if line.strip()]
    if not lines:
        return 0
    stamps = 0
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
            stamps += len(orjson.loads(line).get("chunk_ns") or ())
    used = sum(len(line) + 1 for line in lines)
    per_byte = (8 * stamps + 200 * len(lines)) / used
    return int(size * per_byte)


def check_memory(paths: list[Path]) -> None:
    """Refuse, in one line, a fold that would not fit the memory this machine has free."""
    sizes = [p.stat().st_size if p.exists() else 0 for p in paths]
    need = sum(_estimate(p, n) for p, n in zip(paths, sizes, strict=True)) + _OVERHEAD
    free = available_memory()
    if free is not None and need > free:
        what = f"{paths[0]}" if len(paths) == 1 else f"{paths[0].parent} and its segments"
        raise UsageError(
            f"{what} ({sum(sizes) / 2**30:.1f} GiB of records) needs about "
            f"{need / 2**30:.1f} GiB of memory to analyse and {free / 2**30:.1f} GiB is free: "
            "free some, or analyse it on a machine with more"
        )


def fold_records(
    path: Path,
    *,
    processes: int | None = None,
    parallel_bytes: int = PARALLEL_BYTES,
    cache: bool = True,
) -> FoldedRecords:
    """The measured requests of ``path`` (a records.jsonl) as a table."""
    size = path.stat().st_size if path.exists() else 0
    if size < parallel_bytes:
        stream = RecordStream(path)
        builder = TableBuilder()
        for batch in stream.batches():
            builder.add_batch(batch)
        return FoldedRecords(builder.build(), stream.torn_last_line, "folded")
    return fold_files([path], processes=processes, parallel_bytes=parallel_bytes, cache=cache)


def fold_files(
    paths: list[Path],
    *,
    processes: int | None = None,
    parallel_bytes: int = PARALLEL_BYTES,
    cache: bool = True,
) -> FoldedRecords:
    """The measured requests of several records files, one after the other, as one table
    (the segments of a proxy's recording). Each large file not cached is cut into byte
    ranges; the ranges of all the files are folded by the same few processes, each taking
    a run of them in turn (a recording of 49 segments starts two processes, not 98)."""
    check_memory(paths)
    avoid_stalling_huge_pages()
    keep_freed_memory()
    scratch = Path(tempfile.mkdtemp(prefix="infermeter-columns-"))
    leftovers: list[Path] = [scratch]
    try:
        files: list[_File] = []
        tasks: list[ranges.Task] = []
        for index, path in enumerate(paths):
            found = _plan(path, scratch / str(index), leftovers, processes, parallel_bytes, cache)
            found.first = len(tasks)
            tasks.extend(found.tasks)
            files.append(found)
        workers = 1
        if sum(map(ranges.task_bytes, tasks)) >= parallel_bytes:
            workers = min(processes or ranges.processes(), len(tasks))
        if workers > 1:
            answers = ranges.run_tasks(tasks, workers, _fold_job)
        else:  # small, or one range: no process is worth starting
            answers = [_fold_job(*t) for t in tasks]
        pieces: list[tuple[Path, _Part]] = []
        for f in files:
            pieces.extend(f.pieces(answers[f.first : f.first + len(f.tasks)]))
        torn = any(p.torn_last_line for _, p in pieces)
        table = join_parts(pieces)
    finally:
        for leftover in leftovers:
            shutil.rmtree(leftover, ignore_errors=True)
    if all(f.kind == "cache" for f in files):
        source = "cache"
    else:
        source = "parallel" if workers > 1 else "folded"
    return FoldedRecords(table, torn, source, workers)


class _File:
    """One records file of a fold: its cached parts, or the ranges to fold now (and
    where their parts go)."""

    def __init__(self, path: Path, kind: str, tasks: list[ranges.Task]) -> None:
        self.path = path
        #: ``cache``, ``folded`` (whole, small) or ``parallel`` (in ranges)
        self.kind = kind
        self.tasks = tasks
        self.first = 0
        self.cached: list[tuple[Path, _Part]] = []
        #: where its folded parts are kept as the cache (None: not kept)
        self.keep: tuple[Path, Path] | None = None

    def pieces(self, answers: list[bytes]) -> list[tuple[Path, _Part]]:
        if self.kind == "cache":
            return self.cached
        parts = [_Part.from_json(orjson.loads(a)) for a in answers]
        files = [out for _, _, _, out in self.tasks]
        _join_streams(files)
        if self.keep is not None:
            tmp, root = self.keep
            if _store(self.path, parts, tmp, root):
                files = [_part_file(root, i) for i in range(len(parts))]
        return list(zip(files, parts, strict=True))


def _plan(
    path: Path,
    scratch: Path,
    leftovers: list[Path],
    processes: int | None,
    parallel_bytes: int,
    cache: bool,
) -> _File:
    """What reading one file takes: its cache, or its ranges to fold (and cache where it
    is large)."""
    scratch.mkdir()
    size = path.stat().st_size if path.exists() else 0
    if size < parallel_bytes:
        return _File(path, "folded", [(path, 0, None, scratch / "all.bin")])
    root = path.parent / COLUMNS_DIR
    if cache:
        parts = _cached(path, root)
        if parts is not None:
            found = _File(path, "cache", [])
            found.cached = [(_part_file(root, i), p) for i, p in enumerate(parts)]
            return found
    n = processes or min(ranges.processes(), max(1, size // PART_BYTES))
    tmp = scratch
    if cache:
        with contextlib.suppress(OSError):  # a directory we may not write to: keep nothing
            tmp = Path(tempfile.mkdtemp(prefix=f"{COLUMNS_DIR}.tmp-", dir=path.parent))
            leftovers.append(tmp)
    found = _File(path, "parallel", ranges.file_tasks(path, n, lambda i: _part_file(tmp, i)))
    if tmp is not scratch:
        found.keep = (tmp, root)
    return found


def _fold_job(path: Path, start: int, end: int | None, out: Path) -> bytes:
    return orjson.dumps(fold_range(path, start, end, out).to_json())
