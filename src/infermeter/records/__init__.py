"""Per-request records: the single per-request truth, and their JSONL sink and reader."""

from infermeter.records.reader import read_records
from infermeter.records.schema import RECORD_SCHEMA_VERSION, ErrorKind, RequestRecord, TokenSource
from infermeter.records.sink import JsonlSink

__all__ = [
    "RECORD_SCHEMA_VERSION",
    "ErrorKind",
    "JsonlSink",
    "RequestRecord",
    "TokenSource",
    "read_records",
]
