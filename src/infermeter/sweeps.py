"""Sweeps and capacity searches: many runs, one index. The code lives in
:mod:`infermeter.run.sweep`; this module keeps its public names where they were.

Example (needs a server or files at hand)::

    from infermeter import BenchConfig
    from infermeter.sweeps import SweepSpec, run_sweep
    base = BenchConfig(url="http://127.0.0.1:8080", concurrency=1, num_requests=64)
    sweep = run_sweep(base, SweepSpec("concurrency", (1, 2, 4, 8)), "runs/sweep")
"""

from infermeter.run.sweep import Sweep, SweepSpec, is_sweep, load_sweep, run_sweep

__all__ = ["Sweep", "SweepSpec", "is_sweep", "load_sweep", "run_sweep"]
