"""The files of a run directory, and the two ways they are written and read back whole:
atomically replaced JSON documents, and a telemetry JSONL that may end in a torn line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

#: Bumped when a field of run.json changes meaning or is removed.
RUN_SCHEMA_VERSION = 1
RUN_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
WARMUP_FILE = "warmup.jsonl"
RESULTS_FILE = "results.json"
TELEMETRY_FILE = "telemetry.jsonl"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: a reader never sees
    half a document, even if the process dies mid-write."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def read_telemetry(path: Path) -> list[dict[str, Any]]:
    """The samples of a telemetry.jsonl; a torn (killed run) or foreign line is skipped."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for line in lines:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(item, dict) and isinstance(item.get("t_ns"), (int, float)):
            out.append(item)
    return out
