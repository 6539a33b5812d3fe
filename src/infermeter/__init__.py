"""infermeter: how fast your LLM inference really is, why, and how far from the hardware's limit.

The public API is small: build a :class:`BenchConfig`, call :func:`run_benchmark`, read the
returned :class:`Run`; :func:`load_run` reads a run directory back.

Names are loaded on first use (PEP 562): ``import infermeter.theory`` does not pull in the
client, the load generator and the reports.
"""

from __future__ import annotations

from infermeter import _startup

# First of all: a Ctrl-C while the command starts is its one line (infermeter._startup).
if _startup.run_as_command():
    _startup.guard_startup()

from typing import TYPE_CHECKING

from infermeter._lazy import lazy_names
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


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
