"""``bench --trace``: a trace file or a run directory, read into requests to replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from infermeter.config import BenchConfig
from infermeter.records.reader import read_records
from infermeter.records.rundir import RECORDS_FILE, RUN_FILE, is_run_dir, segment_dirs
from infermeter.records.schema import RequestRecord
from infermeter.run.rundir import read_run_meta
from infermeter.workload.prefix_hash import shared_keys
from infermeter.workload.traces import (
    PrefixBlock,
    Trace,
    TraceError,
    TraceRequest,
    collect,
    cut,
    read_trace_file,
    sniff_format,
)


def trace_window(config: BenchConfig) -> Trace:
    """The part of ``--trace`` a run replays: its window, its first ``-n`` requests, its
    gaps times ``--time-scale``."""
    assert config.trace is not None
    whole = load_trace(config.trace, config.trace_format, skip_bad_rows=config.skip_bad_rows)
    return cut(
        whole,
        start_s=config.trace_start_s,
        duration_s=config.trace_duration_s,
        time_scale=config.time_scale,
        limit=config.num_requests,
    )


def window_meta(config: BenchConfig) -> dict[str, object]:
    return {
        "time_scale": config.time_scale,
        "start_s": config.trace_start_s,
        "duration_s": config.trace_duration_s,
    }


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
    shared = shared_keys(r.prompt_blocks for r in records if r.prompt_blocks)
    per_char = _tokens_per_char(records)

    def prefix(r: RequestRecord) -> tuple[PrefixBlock, ...]:
        """The prompt's blocks that another prompt shares too, as tokens: a block's
        characters at the recording's mean tokens per character."""
        if not r.prompt_blocks or not r.prompt_block_chars or per_char is None:
            return ()
        tokens = max(round(r.prompt_block_chars * per_char), 1)
        out = []
        for h in r.prompt_blocks:
            if h not in shared:
                break
            out.append(PrefixBlock(f"p{h}", tokens))
        return tuple(out)

    def rows() -> Iterator[TraceRequest]:
        for i, r in enumerate(records, 1):
            n_in = r.n_in if r.n_in is not None else r.n_in_target
            n_out = r.n_out_target if r.n_out_target is not None else (r.n_out if r.ok else 0)
            t = (r.t_sched_ns or r.t_send_ns) / 1e9
            yield TraceRequest(t, n_in or 0, n_out, prefix(r), i)

    return collect(file, "run", rows(), skip_bad_rows=skip_bad_rows)


def _tokens_per_char(records: list[RequestRecord]) -> float | None:
    """Tokens per prompt character over the recording, as the server counted the tokens."""
    pairs = [(r.n_in, r.prompt_chars) for r in records if r.n_in and r.prompt_chars]
    chars = sum(c for _, c in pairs)
    return sum(n for n, _ in pairs) / chars if chars else None
