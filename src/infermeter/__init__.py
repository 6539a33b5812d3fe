"""infermeter: how fast your LLM inference really is, why, and how far from the hardware's limit.

The public API is small: build a :class:`BenchConfig`, call :func:`run_benchmark`, read the
returned :class:`Run`; :func:`load_run` reads a run directory back.

Names are loaded on first use (PEP 562): ``import infermeter.theory`` does not pull in the
client, the load generator and the reports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from infermeter._version import __version__

if TYPE_CHECKING:
    from infermeter.config import BenchConfig
    from infermeter.errors import (
        DatasetError,
        EngineError,
        InfermeterError,
        RunFailed,
        ServerError,
        UsageError,
    )
    from infermeter.records.schema import RequestRecord
    from infermeter.run.benchmark import run_benchmark
    from infermeter.run.rundir import Run, load_run

#: Public name -> the module that defines it.
_HOMES = {
    "BenchConfig": "infermeter.config",
    "DatasetError": "infermeter.errors",
    "EngineError": "infermeter.errors",
    "InfermeterError": "infermeter.errors",
    "RequestRecord": "infermeter.records.schema",
    "Run": "infermeter.run.rundir",
    "RunFailed": "infermeter.errors",
    "ServerError": "infermeter.errors",
    "UsageError": "infermeter.errors",
    "load_run": "infermeter.run.rundir",
    "run_benchmark": "infermeter.run.benchmark",
}

__all__ = [
    "BenchConfig",
    "DatasetError",
    "EngineError",
    "InfermeterError",
    "RequestRecord",
    "Run",
    "RunFailed",
    "ServerError",
    "UsageError",
    "__version__",
    "load_run",
    "run_benchmark",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'infermeter' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
