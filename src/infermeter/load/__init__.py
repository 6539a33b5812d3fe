"""When requests start: arrival processes (pure, seeded) and the runner."""

from infermeter.load.arrivals import arrival_offsets, schedule
from infermeter.load.runner import LoadPlan, Runner, RunState

__all__ = ["LoadPlan", "RunState", "Runner", "arrival_offsets", "schedule"]
