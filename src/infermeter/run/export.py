"""Records of a run (or of every point of a sweep) as CSV, a large records.jsonl in parallel.

Each range of a large file is exported by its own process into its own file, and the files
are copied out in order after one header: the rows, byte for byte, that one process writes.
"""

from __future__ import annotations

import csv
import functools
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


def _part_after(root: Path, before: int, index: int) -> Path:
    return _part(root, before + index)


def _copy_out(part: Path, stream: TextIO) -> None:
    """Append a part's text to ``stream``: as bytes where the stream has a binary side (the
    parts are written in the stream's own UTF-8), by the kernel where both are files."""
    binary = getattr(stream, "buffer", None)
    if binary is None or (getattr(stream, "encoding", "") or "").lower() not in ("utf-8", "utf8"):
        with part.open(encoding="utf-8", newline="") as fh:
            shutil.copyfileobj(fh, stream, 1 << 20)
        return
    stream.flush()
    with part.open("rb") as fh:
        ranges.copy_rest(fh, binary)
    binary.flush()


def write_records_csv(
    sources: list[Source],
    stream: TextIO,
    *,
    processes: int | None = None,
    parallel_bytes: int = PARALLEL_BYTES,
) -> int:
    """Write every source's records as CSV rows under one header; returns the rows. The
    byte ranges of all the sources' files are exported by the same few processes, each
    taking a run of them in turn (a sweep of 50 points starts two processes, not 100)."""
    lead = sources[0][0] if sources else None
    columns = records_file_table(Path(), lists=False, point=lead).columns
    csv.writer(stream, lineterminator="\n").writerow(name for name, _ in columns)
    sizes = [path.stat().st_size if path.exists() else 0 for _, path in sources]
    if sum(sizes) < parallel_bytes:
        return sum(
            write_csv(records_file_table(path, lists=False, point=point), stream, False)
            for point, path in sources
        )
    tmp = Path(tempfile.mkdtemp(prefix="infermeter-export-"))
    try:
        tasks: list[ranges.Task] = []
        lead_by_part: dict[str, Mapping[str, Any] | None] = {}
        for (point, path), size in zip(sources, sizes, strict=True):
            n = processes or min(ranges.processes(), max(1, size // PART_BYTES))
            numbered = functools.partial(_part_after, tmp, len(tasks))
            for task in ranges.file_tasks(path, n, numbered):
                tasks.append(task)
                lead_by_part[str(task[3])] = point
        job = functools.partial(_csv_task, lead_by_part)
        workers = min(processes or ranges.processes(), len(tasks))
        answers = ranges.run_tasks(tasks, workers, job) if workers > 1 else [job(*t) for t in tasks]
        for i in range(len(answers)):
            _copy_out(_part(tmp, i), stream)
        return sum(int(a) for a in answers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _csv_task(
    lead_by_part: dict[str, Mapping[str, Any] | None],
    path: Path,
    start: int,
    end: int | None,
    out: Path,
) -> bytes:
    """A task of :func:`write_records_csv`, its rows led by its sweep point's columns."""
    return _csv_job(lead_by_part[str(out)], path, start, end, out)
