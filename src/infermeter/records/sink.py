"""Append-only JSONL sink: one line per finished request, flushed as it is written, so a
run killed at any moment leaves every finished request readable."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import orjson

from infermeter.records.schema import RequestRecord


class JsonlSink:
    """Writes records to ``path`` (created or appended to). Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(path, "ab")  # noqa: SIM115 - closed in close()

    def write(self, record: RequestRecord) -> None:
        if self._fh is None:
            raise ValueError(f"sink {self.path} is closed")
        # orjson serialises slotted dataclasses natively; one write() per line keeps each
        # line whole even if the process dies right after.
        self._fh.write(orjson.dumps(record) + b"\n")
        self._fh.flush()
        self.count += 1

    #: A sink is a runner listener: every finished record is written as it arrives.
    on_record = write

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
