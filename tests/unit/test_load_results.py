"""A sweep's points read back together: the results each point's own load gives, whether
its directories go through a few reading processes or one after another."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import infermeter.run.rundir as rundir
from infermeter.errors import UsageError
from infermeter.run.rundir import load_results, load_run

POINTS = Path(__file__).resolve().parents[2] / "docs/results/h100-dense/predict-fit/points"


def _copies(tmp_path: Path) -> list[Path]:
    dirs = []
    for src in sorted(p for p in POINTS.iterdir() if (p / "records.jsonl").stat().st_size):
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        dirs.append(dst)
    return dirs


def test_points_read_in_processes_give_each_points_own_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = _copies(tmp_path)
    one_by_one = [load_run(d).results for d in dirs]
    monkeypatch.setattr(rundir, "PARALLEL_BYTES", 0)  # every sweep counts as large
    monkeypatch.setattr(rundir.ranges, "processes", lambda: 2)
    assert load_results(dirs) == one_by_one


def test_a_bad_record_in_a_point_is_named_by_its_own_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = _copies(tmp_path)
    bad = dirs[2] / "records.jsonl"
    lines = bad.read_bytes().splitlines(keepends=True)
    bad.write_bytes(b"".join(lines[:3]) + b'{"id": "x"}\n' + b"".join(lines[3:]))
    monkeypatch.setattr(rundir, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(rundir.ranges, "processes", lambda: 2)
    with pytest.raises(UsageError, match=rf"{bad}:4: "):
        load_results(dirs)
