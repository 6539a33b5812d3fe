"""The files of a run directory, and the two ways they are written and read back whole:
atomically replaced JSON documents, and a telemetry JSONL that may end in a torn line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from infermeter.config import stored_config_problem
from infermeter.errors import OutputError, UsageError
from infermeter.records.schema import json_kind

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
    try:
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # half a document is no use to anyone
        raise OutputError.writing(path, exc) from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON document that must be an object (run.json, results.json), or a UsageError
    naming the file."""
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise UsageError(f"{path} is not valid JSON") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} holds {json_kind(data)}, not a JSON object")
    return data


def read_run_meta(path: Path) -> dict[str, Any]:
    """run.json, checked as far as reading a run back relies on it."""
    meta = read_json_object(path)
    version = meta.get("schema_version", 1)
    if type(version) is not int:
        raise UsageError(f"{path}: 'schema_version' is {json_kind(version)}, not an integer")
    if version > RUN_SCHEMA_VERSION:
        raise UsageError(f"{path} was written by a newer infermeter; upgrade to read it")
    for section in ("config", "server", "workload"):
        _object_or_null(path, meta, section)
    problem = stored_config_problem(meta.get("config") or {})
    if problem is not None:
        raise UsageError(f"{path}: {problem}")
    return meta


def read_run_status(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    """The ``run`` status kept in results.json (``default`` where there is no such file)."""
    if not path.exists():
        return dict(default)
    results = read_json_object(path)
    return dict(_object_or_null(path, results, "run") or default)


def _object_or_null(path: Path, doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, dict):
        raise UsageError(f"{path}: {key!r} is {json_kind(value)}, not a JSON object")
    return value


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
