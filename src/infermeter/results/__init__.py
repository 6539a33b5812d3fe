"""``results.json``: a run's metrics, telemetry summary and analysis joined into one versioned,
secret-free document (built here; rendered by :mod:`infermeter.report`)."""

from infermeter.results.build import RESULTS_SCHEMA_VERSION, build_results, full_results

__all__ = ["RESULTS_SCHEMA_VERSION", "build_results", "full_results"]
