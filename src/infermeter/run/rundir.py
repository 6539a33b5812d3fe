"""A run directory read back as a whole: run.json checked against the config it was made
with, the records folded into metrics one at a time, the telemetry of the measured window,
and results.json rebuilt. File names and formats are :mod:`infermeter.records.rundir`'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from infermeter.analysis.telemetry import summarize_telemetry
from infermeter.config import stored_config_problem
from infermeter.errors import UsageError
from infermeter.metrics.aggregate import RunMetrics, table_metrics
from infermeter.metrics.slo import parse_slo
from infermeter.metrics.table import RequestTable
from infermeter.records.reader import read_records
from infermeter.records.rundir import (
    RECORDS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    RUN_SCHEMA_VERSION,
    TELEMETRY_FILE,
    WARMUP_FILE,
    has_telemetry,
    object_or_null,
    read_json_object,
    read_run_status,
    read_telemetry,
    segment_dirs,
    write_json,
)
from infermeter.records.schema import RequestRecord, json_kind
from infermeter.results.build import full_results
from infermeter.run import ranges
from infermeter.run.fold import PARALLEL_BYTES, fold_files
from infermeter.schema.results import Results, RunOutcome, Telemetry


@dataclass
class Run:
    """A finished (or interrupted) run: its directory, metadata and metrics. Its records stay
    on disk: :attr:`records` reads them on demand."""

    path: Path
    meta: dict[str, Any]
    metrics: RunMetrics
    results: Results
    status: RunOutcome = field(default_factory=lambda: RunOutcome())
    telemetry: Telemetry = field(default_factory=lambda: Telemetry())
    #: The directories whose records were read: the run's own, or a proxy recording's
    #: segments (the root, then 0001/, 0002/...).
    segments: list[Path] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return bool(self.status.get("interrupted"))

    @property
    def aborted(self) -> str | None:
        return self.status.get("aborted")

    @property
    def records(self) -> list[RequestRecord]:
        """Every record, read now (a large run's take gigabytes: read
        :class:`~infermeter.records.reader.RecordStream` batches where a few at a time do)."""
        out: list[RequestRecord] = []
        for d in self.segments or [self.path]:
            out.extend(read_records(d / RECORDS_FILE).records)
        return out


def _metrics_for(meta: dict[str, Any], table: RequestTable) -> RunMetrics:
    cfg = meta.get("config") or {}
    return table_metrics(
        table,
        slo=parse_slo(cfg["slo"]) if cfg.get("slo") else None,
        target_concurrency=cfg.get("concurrency"),
        target_rate_rps=cfg.get("rate"),
        extra_percentiles=tuple(cfg.get("percentiles") or ()),
    )


def load_run(path: str | Path, *, processes: int | None = None) -> Run:
    """Load a run directory (finished or interrupted) and recompute its metrics, reading
    its records one at a time (a large file in ranges over up to ``processes`` processes)."""
    root = Path(path)
    run_file = root / RUN_FILE
    if not run_file.exists():
        raise UsageError(f"{root} is not an infermeter run directory (no {RUN_FILE})")
    meta = read_run_meta(run_file)
    segments = segment_dirs(root, meta)
    folded = fold_files([d / RECORDS_FILE for d in segments], processes=processes)
    metrics = _metrics_for(meta, folded.table)
    # No results.json: the run was stopped before its end.
    status = read_run_status(root / RESULTS_FILE, {"complete": False, "interrupted": True})
    status["out_dir"] = str(root)
    status["torn_last_record"] = folded.torn_last_line
    telemetry = window_telemetry(root / TELEMETRY_FILE, metrics)
    results = full_results(meta, metrics, status, telemetry)
    return Run(root, meta, metrics, results, status, telemetry, segments)


def load_results(paths: list[Path]) -> list[Results]:
    """The results of several run directories (a sweep's points), each as :func:`load_run`
    recomputes them. Where their records are large, a few processes each take a run of
    whole directories in turn (every directory folded and summarised in one process), so
    that one directory's summary overlaps the next one's reading instead of leaving the
    other cores idle between the ranges of one directory after another."""
    sizes = [_records_bytes(p) for p in paths]
    workers = min(ranges.processes(), len(paths))
    if workers < 2 or sum(sizes) < PARALLEL_BYTES:
        return [load_run(p).results for p in paths]
    tasks: list[ranges.Task] = [
        (p / RUN_FILE, 0, size, p) for p, size in zip(paths, sizes, strict=True)
    ]
    return [orjson.loads(a) for a in ranges.run_tasks(tasks, workers, _results_job)]


def _records_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob(RECORDS_FILE) if f.is_file())


def _results_job(run_file: Path, start: int, end: int | None, out: Path) -> bytes:
    """One directory's results, in a reading process (which starts none of its own)."""
    del start, end, out
    try:
        return orjson.dumps(load_run(run_file.parent, processes=1).results)
    except UsageError as e:  # its own file and line, not the run.json the task names
        raise UsageError(str(e)) from None


def read_run_meta(path: Path) -> dict[str, Any]:
    """run.json, checked as far as reading a run back relies on it."""
    meta = read_json_object(path)
    version = meta.get("schema_version", 1)
    if type(version) is not int:
        raise UsageError(f"{path}: 'schema_version' is {json_kind(version)}, not an integer")
    if version > RUN_SCHEMA_VERSION:
        raise UsageError(f"{path} was written by a newer infermeter; upgrade to read it")
    for section in ("config", "server", "workload"):
        object_or_null(path, meta, section)
    problem = stored_config_problem(meta.get("config") or {})
    if problem is not None:
        raise UsageError(f"{path}: {problem}")
    return meta


def window_telemetry(path: Path, metrics: RunMetrics) -> Telemetry:
    """The telemetry samples taken inside the measured window, summarised."""
    window = metrics.window_ns
    if not has_telemetry(path) or window is None:
        return {}
    return summarize_telemetry(read_telemetry(path), *window)


def save_results(run: Run) -> None:
    """Write ``run.results`` back to the run's results.json."""
    write_json(run.path / RESULTS_FILE, run.results)


def remove_empty(out: Path) -> None:
    for name in (RECORDS_FILE, WARMUP_FILE):
        p = out / name
        if p.exists() and p.stat().st_size == 0:
            p.unlink()
    try:
        out.rmdir()
    except OSError:
        pass
