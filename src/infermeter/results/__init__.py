"""``results.json``: a run's metrics, telemetry summary and analysis joined into one versioned,
secret-free document (built here; rendered by :mod:`infermeter.report`)."""

from infermeter.results.build import build_results, full_results
from infermeter.schema.results import RESULTS_SCHEMA_VERSION

__all__ = ["RESULTS_SCHEMA_VERSION", "build_results", "full_results"]
