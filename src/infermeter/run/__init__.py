"""Orchestration: one benchmark run, a sweep of them, the worker pools that send the load
(local processes or Ray actors), and a run directory read back whole. The top of the library:
it composes every layer below; only the CLI sits above it."""
