"""A run's records.jsonl folded into its request table: in parallel for a large file, and
kept beside it as columns so that the next read takes a fraction of the time.

``records.jsonl`` stays the record of truth (every finished request is on disk the moment it
finishes; a torn last line is skipped and noted). Past :data:`PARALLEL_BYTES` it is cut at
line starts into one byte range per process; each process folds its range into a partial
table (:class:`~infermeter.metrics.table.TableBuilder`) and writes it as raw arrays; the
parent reads them, part after part, straight into the final arrays (no second copy), in file
order, so that the table is the one a single pass makes, value for value.

The parts are kept in ``records.columns/`` beside the file (where the directory is writable)
with the file's size and the CRC-32 of each part's bytes; a later read whose file still
matches (same size, same checksums, recomputed rather than trusted to a modification time)
joins them without parsing a line. Delete the directory at will: it is rebuilt.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from infermeter.errors import UsageError
from infermeter.lifetime import die_with_parent
from infermeter.metrics.table import RequestTable, TableBuilder
from infermeter.records.reader import RecordError, RecordStream
from infermeter.records.rundir import COLUMNS_DIR

#: Files below this are folded in this process and not cached.
PARALLEL_BYTES = 32 << 20
#: The most processes one fold uses, and the least bytes each gets.
MAX_PROCESSES = 8
PART_BYTES = 16 << 20
#: Bumped when the parts' layout changes: older caches are rebuilt.
CACHE_FORMAT = 1
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
    itl_is_gaps: bool
    errors_by_kind: dict[str, int]
    error_examples: dict[str, str]
    token_sources: dict[str, dict[str, int]]

    def items(self, name: str) -> int:
        for array, _, n in self.arrays:
            if array == name:
                return n
        raise KeyError(name)

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
        return _Part(**values)


def _part_file(root: Path, index: int) -> Path:
    return root / f"part-{index:03d}.bin"


# -- folding a range (in a worker process, or this one) ----------------------------------------


def fold_range(path: Path, start: int, end: int | None, out: Path) -> _Part:
    """Fold the lines of ``path`` in [start, end) (to the end of the file where ``end`` is
    None) and write the partial table's arrays to ``out``."""
    stream = RecordStream(path, start=start, end=end)
    builder = TableBuilder()
    for batch in stream.batches():
        builder.add_batch(batch)
    table = builder.build()
    itl_is_gaps = table.itl_ms is table.gaps_ms
    arrays: list[tuple[str, str, int]] = []
    with out.open("wb") as fh:
        for name in _ARRAYS:
            if itl_is_gaps and name in ("itl_ms", "itl_offsets"):
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
        itl_is_gaps=itl_is_gaps,
        errors_by_kind=table.errors_by_kind,
        error_examples=table.error_examples,
        token_sources=table.token_sources,
    )


def _worker(path: Path, start: int, end: int | None, out: Path, conn: Any, parent: int) -> None:
    die_with_parent(parent_pid=parent)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent says what happened
    try:
        part = fold_range(path, start, end, out)
        conn.send(("ok", orjson.dumps(part.to_json())))
    except RecordError as e:
        conn.send(("record", (e.line, e.problem)))
    except UsageError as e:
        conn.send(("usage", str(e)))
    except MemoryError:
        conn.send(("memory", ""))
    except BaseException as e:
        conn.send(("usage", f"reading {path} failed: {e}"))
    finally:
        conn.close()


# -- joining the parts ---------------------------------------------------------------------


def _read_into(fh: io.BufferedReader, offset: int, target: npt.NDArray[Any]) -> None:
    if target.size == 0:
        return
    fh.seek(offset)
    view = memoryview(target).cast("B")  # type: ignore[arg-type]  # a contiguous array
    if fh.readinto(view) != view.nbytes:
        raise UsageError(f"{fh.name} is cut short: delete {Path(fh.name).parent} and read again")


def join_parts(root: Path, parts: list[_Part]) -> RequestTable:
    """The table of the parts, in order, read straight into its final arrays."""
    separate_itl = not all(p.itl_is_gaps for p in parts)

    def source(p: _Part, name: str) -> str:
        """Where a part keeps ``name``: ITL samples that are its gaps are not written twice."""
        if p.itl_is_gaps and name == "itl_ms":
            return "gaps_ms"
        if p.itl_is_gaps and name == "itl_offsets":
            return "gap_offsets"
        return name

    names = [n for n in _ARRAYS if separate_itl or n not in ("itl_ms", "itl_offsets")]
    dtype = {name: d for p in parts for name, d, _ in p.arrays}
    size = {
        name: sum(p.items(source(p, name)) - (name in _OFFSETS) for p in parts) + (name in _OFFSETS)
        for name in names
    }
    out = {
        name: np.empty(size[name], dtype=np.dtype(dtype[source(parts[0], name)])) for name in names
    }
    at = dict.fromkeys(names, 0)
    codes: dict[str, int] = {}
    errors: dict[str, int] = {}
    examples: dict[str, str] = {}
    sources: dict[str, dict[str, int]] = {"n_in": {}, "n_out": {}, "chunk_tokens": {}}
    rows_before = 0
    for index, p in enumerate(parts):
        where = p.file_offsets()
        before = dict(at)
        with _part_file(root, index).open("rb") as fh:
            for name in names:
                src = source(p, name)
                n = p.items(src) - (name in _OFFSETS)  # a part's last offset is its total
                target = out[name][at[name] : at[name] + n]
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
    with ThreadPoolExecutor(max_workers=min(len(parts), _processes())) as pool:
        crcs = list(pool.map(lambda p: _range_crc(path, p.start, p.end), parts))
    if any(c != p.crc32 for c, p in zip(crcs, parts, strict=True)):
        return None
    if not all(_part_file(root, i).exists() for i in range(len(parts))):
        return None
    return parts


def _store(path: Path, parts: list[_Part], tmp: Path, root: Path) -> None:
    """Keep the parts as the cache of ``path`` (where its directory takes them)."""
    meta = {"format": CACHE_FORMAT, "size": parts[-1].end, "parts": [p.to_json() for p in parts]}
    with contextlib.suppress(OSError):
        (tmp / _META).write_bytes(orjson.dumps(meta))
        old = root.with_name(root.name + f".old-{os.getpid()}")
        if root.exists():
            root.rename(old)
        tmp.rename(root)
        shutil.rmtree(old, ignore_errors=True)


# -- the fold ----------------------------------------------------------------------------------


def _processes() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_PROCESSES))


def _cuts(path: Path, size: int, parts: int) -> list[int]:
    """Line starts cutting the file into ``parts`` ranges of about equal size."""
    cuts = [0]
    with path.open("rb") as fh:
        for i in range(1, parts):
            fh.seek(max(size * i // parts - 1, cuts[-1]))
            fh.readline()
            at = fh.tell()
            if at >= size:
                break
            if at > cuts[-1]:
                cuts.append(at)
    return cuts


def available_memory() -> int | None:
    """Bytes the system can give without swapping (Linux ``MemAvailable``), or None."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _estimate(path: Path, size: int) -> int:
    """Bytes the table of the file will take: 8 a chunk gap and ~200 a request, measured on
    the file's first lines."""
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


def check_memory(path: Path, size: int) -> None:
    """Refuse, in one line, a fold that would not fit the memory this machine has free."""
    need = _estimate(path, size) + _OVERHEAD
    free = available_memory()
    if free is not None and need > free:
        raise UsageError(
            f"{path} ({size / 2**30:.1f} GiB) needs about {need / 2**30:.1f} GiB of memory to "
            f"analyse and {free / 2**30:.1f} GiB is free: free some, or analyse it on a machine "
            "with more"
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
    root = path.parent / COLUMNS_DIR
    if cache:
        parts = _cached(path, root)
        if parts is not None:
            return FoldedRecords(
                join_parts(root, parts), parts[-1].torn_last_line, "cache", len(parts)
            )
    check_memory(path, size)
    n = processes or min(_processes(), max(1, size // PART_BYTES))
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{COLUMNS_DIR}.tmp-", dir=path.parent))
        keep = cache
    except OSError:  # a directory we may not write to: fold, keep nothing
        tmp = Path(tempfile.mkdtemp(prefix="infermeter-columns-"))
        keep = False
    try:
        parts = _fold_parallel(path, size, n, tmp)
        table = join_parts(tmp, parts)
        if keep:
            _store(path, parts, tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return FoldedRecords(table, parts[-1].torn_last_line, "parallel", len(parts))


def _fold_parallel(path: Path, size: int, n: int, tmp: Path) -> list[_Part]:
    cuts = _cuts(path, size, n)
    ranges = [(a, b) for a, b in zip(cuts, [*cuts[1:], None], strict=True)]
    if len(ranges) == 1:
        return [fold_range(path, 0, None, _part_file(tmp, 0))]
    # fork is fast and safe while this process has one thread; otherwise start afresh
    method = "fork" if threading.active_count() == 1 and sys.platform == "linux" else "spawn"
    ctx: Any = mp.get_context(method)
    pipes = []
    procs = []
    try:
        for i, (a, b) in enumerate(ranges):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker,
                args=(path, a, b, _part_file(tmp, i), send, os.getpid()),
                name=f"infermeter-fold-{i}",
                daemon=True,
            )
            proc.start()
            send.close()
            pipes.append(recv)
            procs.append(proc)
        answers = []
        for i, (conn, proc) in enumerate(zip(pipes, procs, strict=True)):
            try:
                answers.append(conn.recv())
            except EOFError:
                proc.join()
                raise UsageError(
                    f"reading {path} failed: a reader process ended ({proc.exitcode})"
                    + (", likely out of memory" if proc.exitcode == -signal.SIGKILL else "")
                ) from None
            kind = answers[-1][0]
            if kind != "ok":
                _raise(path, kind, answers[-1][1], ranges[i][0])
        return [_Part.from_json(orjson.loads(a[1])) for a in answers]
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        for proc in procs:
            proc.join()


def _raise(path: Path, kind: str, payload: Any, start: int) -> None:
    if kind == "record":
        line, problem = payload
        # the lines before this range: count them (only now that there is an error)
        before = _lines_before(path, start)
        raise RecordError(path, before + line, problem)
    if kind == "memory":
        raise UsageError(f"reading {path} ran out of memory")
    raise UsageError(str(payload))


def _lines_before(path: Path, offset: int) -> int:
    count = 0
    with path.open("rb") as fh:
        left = offset
        while left > 0:
            block = fh.read(min(left, 1 << 22))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count
