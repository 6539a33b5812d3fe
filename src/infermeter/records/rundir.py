"""The files of a run or sweep directory: every name, and the ways they are written and read
back whole (atomically replaced JSON documents, a telemetry JSONL that may end in a torn
line, a sweep's index checked for its version). Nothing else spells a file name.

A run directory holds ``run.json`` (what was asked, written before the load), ``records.jsonl``
and ``warmup.jsonl`` (one request a line, flushed as each finishes; the warm-up's after the
pre-flight request's), ``telemetry.jsonl`` (or,
archived, ``telemetry.jsonl.gz``),
``results.json`` and, once rendered, ``report.html``. A sweep directory holds ``sweep.json``
(its index), ``report.html`` and one run directory per point under ``points/``.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import orjson

from infermeter.errors import OutputError, UsageError
from infermeter.records.schema import json_kind
from infermeter.schema.results import RunOutcome
from infermeter.schema.sweep import SWEEP_SCHEMA_VERSION, SweepIndex

#: Bumped when a field of run.json changes meaning or is removed.
RUN_SCHEMA_VERSION = 1
RUN_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
WARMUP_FILE = "warmup.jsonl"
RESULTS_FILE = "results.json"
TELEMETRY_FILE = "telemetry.jsonl"
#: The HTML report of a run or a sweep, written beside its data.
REPORT_FILE = "report.html"
SWEEP_FILE = "sweep.json"
#: Under a sweep directory: one run directory per point.
POINTS_DIR = "points"
#: Beside a large records.jsonl: the same records as columns, a cache rebuilt at will.
COLUMNS_DIR = "records.columns"


def segment_dirs(root: Path, meta: Mapping[str, Any]) -> list[Path]:
    """A proxy recording's directories, in order: the root, then ``0001/``, ``0002/``...
    (the records went on there once the root's records.jsonl passed its size). A segment of
    its own, or a benchmark's run, is one directory."""
    config = meta.get("config")
    proxy = meta.get("proxy")
    if not (isinstance(config, dict) and config.get("mode") == "proxy"):
        return [root]
    if isinstance(proxy, dict) and proxy.get("segment"):
        return [root]
    segments = sorted(
        (d for d in root.iterdir() if d.is_dir() and d.name.isdigit() and len(d.name) == 4),
        key=lambda d: int(d.name),
    )
    return [root, *(d for d in segments if (d / RECORDS_FILE).exists())]


def write_json(path: Path, data: Mapping[str, object]) -> None:
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


def read_run_status(path: Path, default: RunOutcome) -> RunOutcome:
    """How a run ended, from the ``run`` section of its results.json (``default`` where there
    is no such file). Its identity (id, start) is run.json's to say, and is left out."""
    if not path.exists():
        return RunOutcome(**default)
    stored = object_or_null(path, read_json_object(path), "run")
    if stored is None:
        return RunOutcome(**default)
    return cast(RunOutcome, {k: v for k, v in stored.items() if k not in ("id", "started_at")})


def object_or_null(path: Path, doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, dict):
        raise UsageError(f"{path}: {key!r} is {json_kind(value)}, not a JSON object")
    return value


def _packed(path: Path) -> Path:
    """Where an archived run keeps a telemetry.jsonl compressed: a server's /metrics,
    sampled for a minute, is megabytes of repeated labels."""
    return path.with_name(path.name + ".gz")


def has_telemetry(path: Path) -> bool:
    """A telemetry.jsonl, or its gzip beside it, is there."""
    return path.exists() or _packed(path).exists()


def read_telemetry(path: Path) -> list[dict[str, Any]]:
    """The samples of a telemetry.jsonl, or of its gzip beside it (``telemetry.jsonl.gz``);
    a torn (killed run) or foreign line is skipped."""
    packed = _packed(path)
    try:
        if path.exists() or not packed.exists():
            lines = path.read_bytes().splitlines()
        else:
            lines = gzip.decompress(packed.read_bytes()).splitlines()
    except (OSError, EOFError):
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


def is_run_dir(path: Path) -> bool:
    return (path / RUN_FILE).exists()


def is_sweep_dir(path: Path) -> bool:
    return (path / SWEEP_FILE).exists()


def read_sweep_index(path: Path) -> SweepIndex:
    """The index (sweep.json) of a sweep directory; a UsageError names a directory that is
    none, a file that is not a JSON object, or one written by a newer infermeter."""
    f = path / SWEEP_FILE
    if not f.exists():
        raise UsageError(f"{path} is not a sweep directory (no {SWEEP_FILE})")
    index = read_json_object(f)
    version = index.get("schema_version", 1)
    if type(version) is not int or version > SWEEP_SCHEMA_VERSION:
        raise UsageError(f"{f} was written by a newer infermeter; upgrade to read it")
    if not isinstance(index.get("points"), list):
        raise UsageError(f"{f} is not an infermeter sweep (no points)")
    return cast(SweepIndex, index)


def finished_points(path: Path) -> list[Path]:
    """The directories of a sweep's points that ran to their end (one cut off by a stop, or
    failed, is no measurement), in the sweep's order."""
    return [path / p["dir"] for p in read_sweep_index(path)["points"] if p["status"] == "ok"]
