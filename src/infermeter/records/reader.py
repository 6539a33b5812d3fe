"""Read records back. A run killed mid-write can leave a torn last line: it is skipped and
counted, never fatal; a torn line anywhere else is an error naming file and line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from infermeter.errors import UsageError
from infermeter.records.schema import RECORD_SCHEMA_VERSION, RequestRecord, record_problem


@dataclass(frozen=True, slots=True)
class RecordsFile:
    records: list[RequestRecord]
    torn_last_line: bool


def read_records(path: Path) -> RecordsFile:
    """Parse ``records.jsonl`` into memory. Raises :class:`UsageError` on a corrupt or newer
    file. A summary needs none of this: :class:`RecordStream` reads one record at a time."""
    stream = RecordStream(path)
    records = list(stream)
    return RecordsFile(records, stream.torn_last_line)


class RecordStream:
    """The records of ``records.jsonl``, one at a time, in file order: a run's records can be
    gigabytes, and whoever folds them needs only one at once. ``torn_last_line`` is known once
    the stream is exhausted. A missing file holds no records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.torn_last_line = False

    def __iter__(self) -> Iterator[RequestRecord]:
        path = self.path
        if not path.exists():
            return
        with path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    # Only a last line with no newline can be torn (the write was cut short).
                    if not line.endswith(b"\n") and not fh.read(1):
                        self.torn_last_line = True
                        continue
                    raise UsageError(f"{path}:{number}: not a JSON record") from None
                yield _record(path, number, data)


def _record(path: Path, number: int, data: object) -> RequestRecord:
    problem = record_problem(data)
    if problem is not None:
        raise UsageError(f"{path}:{number}: {problem}")
    assert isinstance(data, dict)  # record_problem said so
    version = data.get("v", 1)
    if version > RECORD_SCHEMA_VERSION:
        raise UsageError(
            f"{path}:{number}: record schema v{version} is newer than this infermeter "
            f"(v{RECORD_SCHEMA_VERSION}); upgrade infermeter"
        )
    return RequestRecord.from_dict(data)
