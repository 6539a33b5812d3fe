"""``bench --trace``: a trace file or a run directory, read into requests to replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from infermeter.records.reader import read_records
from infermeter.records.rundir import RECORDS_FILE, RUN_FILE, is_run_dir, segment_dirs
from infermeter.run.rundir import read_run_meta
from infermeter.workload.traces import (
    Trace,
    TraceError,
    TraceRequest,
    collect,
    read_trace_file,
    sniff_format,
)


def load_trace(path: Path, fmt: str = "auto", *, skip_bad_rows: bool = False) -> Trace:
    """The trace at ``path``: a file of a known format (sniffed with ``auto``) or an
    infermeter run directory (a bench run, or what ``infermeter proxy`` recorded)."""
    if not path.exists():
        raise TraceError(f"--trace {path}: no such file or directory")
    kind = sniff_format(path) if fmt == "auto" else fmt
    if kind == "run":
        return _from_run(path, skip_bad_rows)
    if path.is_dir():
        raise TraceError(f"--trace {path}: a directory, not a {kind} file")
    return read_trace_file(path, kind, skip_bad_rows=skip_bad_rows)  # type: ignore[arg-type]


def _from_run(root: Path, skip_bad_rows: bool) -> Trace:
    """A run's measured requests in the order they were due: when each was sent (its
    scheduled time), its prompt as the server counted it, and the output it asked for (or,
    where it asked for none, what it got)."""
    if not is_run_dir(root):
        raise TraceError(f"--trace {root}: not a trace file or run directory (no {RUN_FILE})")
    meta = read_run_meta(root / RUN_FILE)
    records = [
        r
        for d in segment_dirs(root, meta)
        for r in read_records(d / RECORDS_FILE).records
        if r.phase == "measure"
    ]
    records.sort(key=lambda r: (r.t_sched_ns or r.t_send_ns, r.id))
    file = root / RECORDS_FILE

    def rows() -> Iterator[TraceRequest]:
        for i, r in enumerate(records, 1):
            n_in = r.n_in if r.n_in is not None else r.n_in_target
            n_out = r.n_out_target if r.n_out_target is not None else (r.n_out if r.ok else 0)
            yield TraceRequest((r.t_sched_ns or r.t_send_ns) / 1e9, n_in or 0, n_out, (), i)

    return collect(file, "run", rows(), skip_bad_rows=skip_bad_rows)
