"""The public Python API: run a benchmark, load a run back from disk.

Example (needs a server or files at hand)::

    from infermeter import BenchConfig, run_benchmark, load_run
    run = run_benchmark(BenchConfig(url="http://127.0.0.1:8080", concurrency=4,
                                    num_requests=32, input_tokens="256", output_tokens="64",
                                    out="runs/c4"))
    run.results["summary"]["output_token_throughput_tok_s"]
    load_run("runs/c4").metrics.distributions["ttft_ms"].p99

The code lives in :mod:`infermeter.run`; this module keeps its public names where they were.
"""

from infermeter.results.build import full_results
from infermeter.run.benchmark import Sender, run_benchmark
from infermeter.run.rundir import Run, load_run, save_results

__all__ = ["Run", "Sender", "full_results", "load_run", "run_benchmark", "save_results"]
