"""Sampled per-request records of the proxy, as run directories ``infermeter report`` reads.

``DIR/run.json`` + ``DIR/records.jsonl`` first; when ``records.jsonl`` passes ``rotate_bytes``
the next records go to ``DIR/0001/``, then ``DIR/0002/``..., each with its own ``run.json``.
All segments share one clock origin (``t0_wall_ns``): the proxy's start.
"""

from __future__ import annotations

import datetime as _dt
import random
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
            self.segment += 1
            self._sink = self._open(self.root / f"{self.segment:04d}")
        self._sink.write(rec)
        self.written += 1
        return True

    def close(self) -> None:
        self._sink.close()
