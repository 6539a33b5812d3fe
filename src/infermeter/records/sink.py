"""Append-only JSONL sink: one line per finished request, flushed as it is written, so a
run killed at any moment leaves every finished request readable."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import orjson

from infermeter.errors import OutputError
from infermeter.records.schema import RequestRecord


class JsonlSink:
    """Writes records to ``path`` (created or appended to). Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[bytes] | None = open(path, "ab")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise OutputError.writing(path, exc) from None

    def write(self, record: RequestRecord) -> None:
        if self._fh is None:
            raise ValueError(f"sink {self.path} is closed")
        # orjson serialises slotted dataclasses natively; one write() per line keeps each
        # line whole even if the process dies right after.
        try:
            self._fh.write(orjson.dumps(record) + b"\n")
            self._fh.flush()
        except OSError as exc:  # a full disk: the run stops, saying where
            raise OutputError.writing(self.path, exc) from None
        self.count += 1

    #: A sink is a runner listener: every finished record is written as it arrives.
    on_record = write

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError as exc:  # what a failed write left in the buffer
                raise OutputError.writing(self.path, exc) from None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
