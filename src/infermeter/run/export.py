"""Records of a run (or of every point of a sweep) as CSV, a large records.jsonl in parallel.

Each range of a large file is exported by its own process into its own file, and the files
are copied out in order after one header: the rows, byte for byte, that one process writes.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from infermeter.report.export import records_file_table, write_csv
from infermeter.run import ranges
from infermeter.run.fold import PARALLEL_BYTES, PART_BYTES

#: A records file to export, and the sweep point its rows are led by (None: a run's).
Source = tuple[Mapping[str, Any] | None, Path]


def _csv_job(
    point: Mapping[str, Any] | None, path: Path, start: int, end: int | None, out: Path
) -> bytes:
    table = records_file_table(path, lists=False, point=point, start=start, end=end)
    with out.open("w", newline="", encoding="utf-8") as fh:
        return str(write_csv(table, fh, header=False)).encode()


def _part(root: Path, index: int) -> Path:
    return root / f"part-{index:03d}.csv"


def _copy_out(part: Path, stream: TextIO) -> None:
    """Append a part's text to ``stream``: as bytes where the stream has a binary side (the
    parts are written in the stream's own UTF-8), by the kernel where both are files."""
    binary = getattr(stream, "buffer", None)
    if binary is None or (getattr(stream, "encoding", "") or "").lower() not in ("utf-8", "utf8"):
        with part.open(encoding="utf-8", newline="") as fh:
            shutil.copyfileobj(fh, stream, 1 << 20)
        return
    stream.flush()
    binary.flush()
    with part.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        sent = 0
        with contextlib.suppress(OSError, AttributeError, ValueError):  # not a file: copy
            out = binary.fileno()
            while sent < size:
                done = os.sendfile(out, fh.fileno(), sent, size - sent)
                if done == 0:
                    break
                sent += done
        if sent == size:
            return
        fh.seek(sent)
        shutil.copyfileobj(fh, binary, 1 << 20)
    binary.flush()


def write_records_csv(
    sources: list[Source],
    stream: TextIO,
    *,
    processes: int | None = None,
    parallel_bytes: int = PARALLEL_BYTES,
) -> int:
    """Write every source's records as CSV rows under one header; returns the rows."""
    lead = sources[0][0] if sources else None
    columns = records_file_table(Path(), lists=False, point=lead).columns
    csv.writer(stream, lineterminator="\n").writerow(name for name, _ in columns)
    rows = 0
    for point, path in sources:
        size = path.stat().st_size if path.exists() else 0
        if size < parallel_bytes:
            rows += write_csv(records_file_table(path, lists=False, point=point), stream, False)
            continue
        n = processes or min(ranges.processes(), max(1, size // PART_BYTES))
        tmp = Path(tempfile.mkdtemp(prefix="infermeter-export-"))
        try:
            job = functools.partial(_csv_job, point)
            part = functools.partial(_part, tmp)
            answers = ranges.run_ranges(path, n, job, part)
            for i, answer in enumerate(answers):
                _copy_out(part(i), stream)
                rows += int(answer)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows
