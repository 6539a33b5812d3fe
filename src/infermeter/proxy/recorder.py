"""Sampled per-request records of the proxy, as run directories ``infermeter report`` reads.

``DIR/run.json`` + ``DIR/records.jsonl`` first; when ``records.jsonl`` passes ``rotate_bytes``
the next records go to ``DIR/0001/``, then ``DIR/0002/``..., each with its own ``run.json``.
All segments share one clock origin (``t0_wall_ns``): the proxy's start. Each segment closed
is folded into its column cache by a child process at the lowest priority
(``infermeter.run.cache_segment``), so a report of days of recording reads columns for all
but the last segment.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from infermeter._version import __version__
from infermeter.records.rundir import RECORDS_FILE, RUN_FILE, RUN_SCHEMA_VERSION, write_json
from infermeter.records.schema import RequestRecord
from infermeter.records.sink import JsonlSink


class SampledRecords:
    """Keeps a ``sample`` fraction of records (seeded for tests), rotating by size."""

    def __init__(
        self,
        root: Path,
        *,
        sample: float,
        rotate_bytes: int,
        t0_wall_ns: int,
        upstream: str,
        seed: int | None = None,
        cache_columns: bool = True,
        cache_min_bytes: int | None = None,
    ) -> None:
        self.root = root
        self.sample = sample
        self.rotate_bytes = rotate_bytes
        self.t0_wall_ns = t0_wall_ns
        self.upstream = upstream
        self.segment = 0
        self.written = 0
        self._rng = random.Random(seed)
        self._sink = self._open(root)
        self.cache_columns = cache_columns
        #: Files smaller than this are read fast without a cache (None: the reader's rule).
        self.cache_min_bytes = cache_min_bytes
        self._jobs: list[subprocess.Popen[bytes]] = []

    def _open(self, path: Path) -> JsonlSink:
        path.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "schema_version": RUN_SCHEMA_VERSION,
            "infermeter_version": __version__,
            "run_id": uuid.uuid4().hex[:12],
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "t0_wall_ns": self.t0_wall_ns,
            "config": {"mode": "proxy", "sample": self.sample},
            "server": {"kind": "proxy", "model": "live traffic", "url": self.upstream},
            "workload": {"source": "live traffic (infermeter proxy)"},
            "proxy": {"segment": self.segment},
        }
        write_json(path / RUN_FILE, meta)
        return JsonlSink(path / RECORDS_FILE)

    def offer(self, rec: RequestRecord) -> bool:
        """Write ``rec`` if it is sampled; True if it was."""
        if self.sample < 1.0 and self._rng.random() >= self.sample:
            return False
        if self._sink.path.stat().st_size >= self.rotate_bytes:
            self._sink.close()
            self._cache(self._sink.path)
            self.segment += 1
            self._sink = self._open(self.root / f"{self.segment:04d}")
        self._sink.write(rec)
        self.written += 1
        return True

    def _cache(self, records: Path) -> None:
        """Fold a closed segment into its column cache, in a child process at nice 19 (a
        reader would fold it anyway; the proxy's own loop must not)."""
        self._jobs = [job for job in self._jobs if job.poll() is None]
        if not self.cache_columns:
            return
        cmd = [sys.executable, "-m", "infermeter.run.cache_segment", str(records)]
        if self.cache_min_bytes is not None:
            cmd += ["--min-bytes", str(self.cache_min_bytes)]
        with contextlib.suppress(OSError):  # no cache is no loss: the records are whole
            self._jobs.append(
                subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def close(self) -> None:
        self._sink.close()
        for job in self._jobs:  # a cache half written is a temporary folder, never read
            if job.poll() is None:
                job.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                job.wait(timeout=5)
