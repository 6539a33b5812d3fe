"""infermeter: how fast your LLM inference really is, why, and how far from the hardware's limit.

The public API is small: build a :class:`BenchConfig`, call :func:`run_benchmark`, read the
returned :class:`Run`; :func:`load_run` reads a run directory back.
"""

from infermeter._version import __version__
from infermeter.api import Run, load_run, run_benchmark
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
