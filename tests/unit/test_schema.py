"""The typed documents describe exactly what is written: every committed run's results, rebuilt
from its records, and every committed sweep index validate against their TypedDicts, and
nothing is dropped on the way (a key the schema does not declare would be)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import TypeAdapter

from infermeter.api import load_run
from infermeter.schema.results import Results
from infermeter.schema.sweep import SweepIndex

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
RUNS = sorted(p.parent for p in RESULTS.rglob("run.json"))
SWEEPS = sorted(RESULTS.rglob("sweep.json"))


def _same(a: object, b: object) -> bool:
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        b, option=orjson.OPT_SORT_KEYS
    )


def test_there_is_something_to_check() -> None:
    assert len(RUNS) >= 50 and len(SWEEPS) >= 8


@pytest.mark.parametrize("run_dir", RUNS[::7], ids=lambda p: str(p.relative_to(RESULTS)))
def test_rebuilt_results_are_what_the_schema_says(run_dir: Path) -> None:
    results = load_run(run_dir).results
    typed = TypeAdapter(Results).validate_python(results, strict=True)
    assert _same(typed, results)
    # and back through JSON, as a reader of results.json gets it
    again = TypeAdapter(Results).validate_json(orjson.dumps(results), strict=True)
    assert _same(again, results)


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: str(p.parent.relative_to(RESULTS)))
def test_committed_sweep_indexes_are_what_the_schema_says(sweep: Path) -> None:
    index = orjson.loads(sweep.read_bytes())
    typed = TypeAdapter(SweepIndex).validate_python(index, strict=True)
    assert _same(typed, index)
