"""Read records back. A run killed mid-write can leave a torn last line: it is skipped and
counted, never fatal; a torn line anywhere else is an error naming file and line."""

from __future__ import annotations

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
    """Parse ``records.jsonl``. Raises :class:`UsageError` on a corrupt or newer file."""
    if not path.exists():
        return RecordsFile([], False)
    records: list[RequestRecord] = []
    torn = False
    # Line by line, not the whole file at once: a run's records can be gigabytes.
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                # Only a last line with no newline can be torn (the write was cut short).
                if not line.endswith(b"\n") and not fh.read(1):
                    torn = True
                    continue
                raise UsageError(f"{path}:{number}: not a JSON record") from None
            records.append(_record(path, number, data))
    return RecordsFile(records, torn)


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
