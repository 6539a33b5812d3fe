from pathlib import Path

import pytest

from infermeter.errors import UsageError
from infermeter.records import JsonlSink, RequestRecord, read_records


def test_round_trip_and_flush_per_record(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    sink = JsonlSink(path)
    sink.write(RequestRecord(id=0, ok=True, n_out=3, chunk_ns=[1, 2, 3], chunk_tokens=[1, 1, 1]))
    # Readable before the sink is closed: each record is flushed as it is written.
    assert [r.id for r in read_records(path).records] == [0]
    sink.write(RequestRecord(id=1, error_kind="timeout", error_message="x"))
    sink.close()
    recs = read_records(path).records
    assert recs[1].error_kind == "timeout" and recs[0].chunk_ns == [1, 2, 3]


def test_torn_last_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    with JsonlSink(path) as sink:
        sink.write(RequestRecord(id=0, ok=True))
    with open(path, "ab") as fh:
        fh.write(b'{"id": 1, "ok": tr')
    got = read_records(path)
    assert got.torn_last_line and len(got.records) == 1


def test_corrupt_middle_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"id": 0}\nnot json\n{"id": 2}\n')
    with pytest.raises(UsageError, match=r"records\.jsonl:2"):
        read_records(path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"id": 0, "v": 99}\n')
    with pytest.raises(UsageError, match="newer"):
        read_records(path)
