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
    lines = path.read_bytes().split(b"\n")
    # A file written whole ends with a newline, giving one empty trailing element.
    last_index = len(lines) - 1
    records: list[RequestRecord] = []
    torn = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            if number - 1 == last_index:
                torn = True
                continue
            raise UsageError(f"{path}:{number}: not a JSON record") from None
        problem = record_problem(data)
        if problem is not None:
            raise UsageError(f"{path}:{number}: {problem}")
        version = data.get("v", 1)
        if version > RECORD_SCHEMA_VERSION:
            raise UsageError(
                f"{path}:{number}: record schema v{version} is newer than this infermeter "
                f"(v{RECORD_SCHEMA_VERSION}); upgrade infermeter"
            )
        records.append(RequestRecord.from_dict(data))
    return RecordsFile(records, torn)
