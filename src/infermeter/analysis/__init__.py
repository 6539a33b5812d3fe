"""Joining a run's metrics with its telemetry (and, later, theory): pure functions."""

from infermeter.analysis.telemetry import summarize_telemetry

__all__ = ["summarize_telemetry"]
