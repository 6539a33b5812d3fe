"""records.jsonl read back as a table: the fast reader, the parallel fold and the column cache
give the table a plain fold of the records gives, array for array; a change to the file is
seen; errors name the file's own line, whichever process met it."""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_series import records

from infermeter.errors import UsageError
from infermeter.metrics.table import RequestTable, request_table
from infermeter.records.reader import RecordStream
from infermeter.records.rundir import COLUMNS_DIR
from infermeter.records.schema import RequestRecord
from infermeter.records.sink import JsonlSink
from infermeter.report.export import record_row, records_file_table, records_table
from infermeter.run.fold import fold_files, fold_records


def same_table(a: RequestTable, b: RequestTable) -> None:
    for name in RequestTable.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
        else:
            assert x == y and list(x) == list(y), name  # dicts: equal and in the same order


def write(path: Path, recs: list[RequestRecord]) -> Path:
    with JsonlSink(path) as sink:
        for r in recs:
            sink.write(r)
    return path


def run(n: int, tokens: int = 8, fail_every: int = 0, multi_at: int = -1) -> list[RequestRecord]:
    out = []
    for i in range(n):
        send = 10**9 + i * 7_000_000
        chunks = [send + 20_000_000 + 3_000_000 * k + (i % 5) for k in range(tokens)]
        ks = [1] * tokens
        if i == multi_at:
            ks[2] = 3
        ok = not (fail_every and i % fail_every == 3)
        out.append(
            RequestRecord(
                id=i, t_sched_ns=send, t_send_ns=send, t_first_ns=chunks[0] if ok else None,
                t_last_ns=chunks[-1] if ok else None, t_end_ns=chunks[-1] + 1,
                chunk_ns=chunks if ok else [], chunk_tokens=ks if ok else [], n_in=100,
                n_in_source="server", n_out=sum(ks) if ok else 0, ok=ok,
                error_kind=None if ok else ("timeout" if i % 2 else "http"),
                http_status=None if ok else 503,
                error_message=None if ok else f"failure {i}",
                server_timings={"prompt_ms": 5.5, "predicted_per_token_ms": 3},
            )
        )  # fmt: skip
    return out


@given(recs=st.lists(records(), max_size=30), processes=st.integers(1, 4))
@settings(max_examples=150, deadline=None)
def test_the_file_read_back_is_the_records_table(
    recs: list[RequestRecord], processes: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = write(tmp_path_factory.mktemp("run") / "records.jsonl", recs)
    want = request_table(recs)
    same_table(fold_records(path, parallel_bytes=1 << 40).table, want)
    folded = fold_records(path, processes=processes, parallel_bytes=0, cache=False)
    same_table(folded.table, want)


@pytest.mark.parametrize("multi_at", [-1, 5, 590])
def test_parallel_parts_and_the_cache_join_into_one_table(tmp_path: Path, multi_at: int) -> None:
    recs = run(600, fail_every=7, multi_at=multi_at)
    path = write(tmp_path / "records.jsonl", recs)
    want = request_table(recs)
    first = fold_records(path, processes=3, parallel_bytes=0)
    assert first.source == "parallel" and first.processes == 3
    same_table(first.table, want)
    assert (tmp_path / COLUMNS_DIR).is_dir()
    again = fold_records(path, processes=3, parallel_bytes=0)
    assert again.source == "cache"
    same_table(again.table, want)


def test_a_files_gaps_are_kept_in_one_file_and_mapped(tmp_path: Path) -> None:
    """The parts' gaps are joined into one file, which a cached read maps, not copies; the
    mapping is copy on write, and a cut file is folded again."""
    recs = run(600)
    path = write(tmp_path / "records.jsonl", recs)
    want = request_table(recs)
    same_table(fold_records(path, processes=3, parallel_bytes=0).table, want)
    cache = tmp_path / COLUMNS_DIR
    assert sorted(p.name for p in cache.iterdir()) == [
        "gaps_ms.bin", "meta.json", "part-000.bin", "part-001.bin", "part-002.bin"
    ]  # fmt: skip
    again = fold_records(path, processes=3, parallel_bytes=0)
    base = again.table.gaps_ms.base
    assert again.source == "cache" and isinstance(getattr(base, "obj", base), mmap.mmap)
    same_table(again.table, want)
    again.table.gaps_ms[:] = -1.0
    same_table(fold_records(path, processes=3, parallel_bytes=0).table, want)
    gaps = cache / "gaps_ms.bin"
    gaps.write_bytes(gaps.read_bytes()[:-8])
    cut = fold_records(path, processes=3, parallel_bytes=0)
    assert cut.source == "parallel"
    same_table(cut.table, want)


def test_one_file_read_twice_joins_as_two(tmp_path: Path) -> None:
    """The same file twice in one fold (cached or not): each copy's gaps are found in its
    own stream, not past the end of the first."""
    recs = run(300, fail_every=5)
    path = write(tmp_path / "records.jsonl", recs)
    want = request_table(recs + recs)
    for _ in range(2):  # folded, then from the cache
        same_table(fold_files([path, path], processes=2, parallel_bytes=0).table, want)


def test_a_changed_file_is_folded_again(tmp_path: Path) -> None:
    recs = run(300)
    path = write(tmp_path / "records.jsonl", recs)
    fold_records(path, processes=2, parallel_bytes=0)
    # same size, other bytes: a different TTFT for request 0
    data = path.read_bytes()
    changed = data.replace(b'"t_first_ns":1020000000', b'"t_first_ns":1020000001', 1)
    assert len(changed) == len(data) and changed != data
    stat = path.stat()
    path.write_bytes(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even the same mtime
    folded = fold_records(path, processes=2, parallel_bytes=0)
    assert folded.source == "parallel"
    assert int(folded.table.t_first_ns[0]) == 1_020_000_001
    # more records: folded again, all of them
    with JsonlSink(path) as sink:
        sink.write(run(301)[-1])
    assert len(fold_records(path, processes=2, parallel_bytes=0).table) == 301


def test_a_bad_line_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "records.jsonl", run(400))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[350] = b'{"id": 350, "n_out": "many"}\n'
    path.write_bytes(b"".join(lines))
    for processes in (1, 2, 4):
        with pytest.raises(UsageError, match=r"records\.jsonl:351: field 'n_out' is a string"):
            fold_records(path, processes=processes, parallel_bytes=0)
    lines[350] = b"not json\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(UsageError, match=r"records\.jsonl:351: not a JSON record"):
        fold_records(path, processes=3, parallel_bytes=0)


def test_a_torn_last_line_is_left_out_by_the_last_part(tmp_path: Path) -> None:
    recs = run(200)
    path = write(tmp_path / "records.jsonl", recs)
    with open(path, "ab") as fh:
        fh.write(b'{"id": 200, "ok": tr')
    folded = fold_records(path, processes=3, parallel_bytes=0)
    assert folded.torn_last_line and len(folded.table) == 200
    same_table(folded.table, request_table(recs))


def test_lines_written_otherwise_take_the_whole_line_way(tmp_path: Path) -> None:
    """JSON with spaces, fields in another order, a field left out: read all the same."""
    import json

    recs = run(50, multi_at=3)
    path = tmp_path / "records.jsonl"
    with path.open("w") as fh:
        for r in recs:
            d = r.to_dict()
            d.pop("n_reason")
            fh.write(json.dumps(dict(reversed(list(d.items())))) + "\n\n")
    same_table(fold_records(path).table, request_table(recs))


def test_lines_of_an_older_version_keep_the_fast_way(tmp_path: Path) -> None:
    """Records written before fields were added (answer_chunk, prompt_blocks...) take the
    added fields' defaults and are still cut and parsed a batch at a time."""
    from infermeter.records.reader import _cut, _scalar_columns

    recs = run(40, multi_at=3)
    added = ("answer_chunk", "prompt_blocks", "prompt_block_chars", "prompt_chars")
    lines = []
    for r in recs:
        d = r.to_dict()
        for name in added:
            d.pop(name)
        lines.append(orjson.dumps(d))
    cut = _cut(lines)
    assert cut is not None
    columns = _scalar_columns(cut[0])
    assert columns is not None and columns["answer_chunk"] == [None] * 40
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    same_table(fold_records(path).table, request_table(recs))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'"chunk_ns":[1,2.5],', "field 'chunk_ns' holds something other than integers"),
        (b'"chunk_ns":[1,"2"],', "field 'chunk_ns' holds something other than integers"),
        (b'"chunk_ns":[1,99999999999999999999],', "field 'chunk_ns'"),
    ],
)
def test_chunk_lists_are_checked_item_by_item(tmp_path: Path, text: bytes, problem: str) -> None:
    path = write(tmp_path / "records.jsonl", run(10))
    lines = path.read_bytes().splitlines(keepends=True)
    start = lines[4].index(b'"chunk_ns":[')
    end = lines[4].index(b"]", start) + 2
    lines[4] = lines[4][:start] + text + lines[4][end:]
    path.write_bytes(b"".join(lines))
    with pytest.raises(UsageError, match=rf"records\.jsonl:5: {problem}"):
        list(RecordStream(path).batches())


@given(recs=st.lists(records(), max_size=20))
@settings(max_examples=150, deadline=None)
def test_exported_rows_are_the_per_record_rows(
    recs: list[RequestRecord], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Export computes each row's metrics for a whole batch at once: the values (and their
    types) are the per-record formulas', read from memory or streamed from the file."""
    want = [record_row(r) for r in recs]
    for table in (
        records_table(recs),
        records_file_table(write(tmp_path_factory.mktemp("run") / "records.jsonl", recs)),
    ):
        got = table.rows
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert {k: (v, type(v)) for k, v in g.items()} == {
                k: (v, type(v)) for k, v in w.items()
            }


def test_parallel_csv_export_is_the_sequential_one(tmp_path: Path) -> None:
    import io

    from infermeter.run.export import write_records_csv

    a = write(tmp_path / "a.jsonl", run(500, fail_every=9, multi_at=7))
    b = write(tmp_path / "b.jsonl", run(120))
    for sources in ([(None, a)], [({"index": 0, "concurrency": 4}, a), ({"index": 1}, b)]):
        one, many = io.StringIO(), io.StringIO()
        rows = write_records_csv(sources, one, parallel_bytes=1 << 40)
        assert write_records_csv(sources, many, processes=3, parallel_bytes=0) == rows
        assert many.getvalue() == one.getvalue()
        assert one.getvalue().count("\n") == rows + 1
        # to a file, the parts are copied as bytes, after what the stream held already
        with (tmp_path / "out.csv").open("w", newline="", encoding="utf-8") as fh:
            fh.write("before\n")
            write_records_csv(sources, fh, processes=3, parallel_bytes=0)
            fh.write("after\n")
        text = (tmp_path / "out.csv").read_text(encoding="utf-8")
        assert text == "before\n" + one.getvalue() + "after\n"


def test_a_run_too_large_for_free_memory_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import infermeter.run.fold as fold

    path = write(tmp_path / "records.jsonl", run(300, tokens=64))
    monkeypatch.setattr(fold, "available_memory", lambda: 50 << 20)
    with pytest.raises(UsageError) as err:
        fold_records(path, processes=2, parallel_bytes=0)
    message = str(err.value)
    assert "\n" not in message and "needs about" in message and "GiB is free" in message
    assert not list(tmp_path.glob("records.columns*"))  # nothing begun


def test_no_cache_is_left_where_the_directory_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    recs = run(200)
    path = write(tmp_path / "records.jsonl", recs)
    real = tempfile.mkdtemp

    def refuse_the_run_dir(*args: object, dir: object = None, **kw: object) -> str:
        if dir is not None and Path(str(dir)) == tmp_path:
            raise PermissionError(13, "Permission denied")  # as a read-only directory says
        return real(*args, dir=dir, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(tempfile, "mkdtemp", refuse_the_run_dir)
    folded = fold_records(path, processes=2, parallel_bytes=0)
    same_table(folded.table, request_table(recs))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]


def test_a_fold_leaves_only_its_cache(tmp_path: Path) -> None:
    path = write(tmp_path / "records.jsonl", run(200))
    fold_records(path, processes=2, parallel_bytes=0)
    fold_records(path, processes=2, parallel_bytes=0, cache=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [COLUMNS_DIR, "records.jsonl"]


@pytest.mark.parametrize("read", [7, 64, 1000])
def test_blocks_that_cut_lines_anywhere_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: int
) -> None:
    """The file is read a block at a time: lines longer than a block, lines cut by a block's
    end, blank lines and a last line without its newline read as they do in one block."""
    import infermeter.records.reader as reader

    recs = run(40, tokens=30, fail_every=6, multi_at=11)
    path = write(tmp_path / "records.jsonl", recs)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(9, b"\n")
    path.write_bytes(b"".join(lines).rstrip(b"\n"))  # the last record without its newline
    monkeypatch.setattr(reader, "READ", read)
    stream = RecordStream(path)
    same_table(request_table(list(stream)), request_table(recs))
    assert not stream.torn_last_line and stream.lines == len(lines)
    path.write_bytes(b"".join(lines) + b'{"id": 99, "t_se')  # torn as a killed write leaves it
    stream = RecordStream(path)
    same_table(request_table(list(stream)), request_table(recs))
    assert stream.torn_last_line and stream.lines == len(lines) + 1


def test_chunk_lists_of_any_length_and_sign_are_cut_exactly(tmp_path: Path) -> None:
    """The stamps of a batch are parsed in one go with markers between lines (-1, and -2 for
    an empty list): stamps that are themselves -1 or -2, and empty lists, still read exactly
    (such lines take the whole-line way)."""
    recs = run(30, fail_every=4)
    for r, stamps in zip(recs[:4], ([-1, 5], [-2], [7, -2, -1], [-5, -3]), strict=True):
        r.chunk_ns, r.chunk_tokens, r.ok = stamps, [1] * len(stamps), True
        r.t_first_ns, r.t_last_ns, r.n_out = stamps[0], stamps[-1], len(stamps)
        r.error_kind = r.http_status = r.error_message = None
    path = write(tmp_path / "records.jsonl", recs)
    got = [b.record(i) for b in RecordStream(path).batches() for i in range(len(b))]
    assert [g.chunk_ns for g in got] == [r.chunk_ns for r in recs]
    assert [g.chunk_tokens for g in got] == [r.chunk_tokens for r in recs]


@pytest.mark.parametrize("into", ["file", "append-only file", "memory"])
def test_the_rest_of_a_file_is_copied_where_the_output_stands(tmp_path: Path, into: str) -> None:
    """ranges.copy_rest: from the source's position to the output's, by the kernel into a
    file, by hand into an append-only file (sendfile refuses one) or memory."""
    import io

    from infermeter.run import ranges

    src_path = tmp_path / "src.bin"
    src_path.write_bytes(bytes(range(256)) * 4000)
    dst_path = tmp_path / "dst.bin"
    dst_path.write_bytes(b"head")
    if into == "memory":
        out: Any = io.BytesIO()
        out.write(b"head")
    else:
        out = dst_path.open("ab" if into == "append-only file" else "r+b")
        out.seek(0, os.SEEK_END)
    out.write(b"+buffered")
    with src_path.open("rb") as src:
        src.seek(1000)
        ranges.copy_rest(src, out)
    out.write(b"+tail")
    out.flush()
    got = out.getvalue() if into == "memory" else dst_path.read_bytes()
    out.close()
    assert got == b"head+buffered" + src_path.read_bytes()[1000:] + b"+tail"
