"""Renderers: terminal summary, JSON (results.json), CSV, Markdown, live progress."""

from infermeter.report.formats import to_csv, to_json, to_markdown
from infermeter.report.terminal import print_summary, render_summary
from infermeter.results.build import build_results
from infermeter.schema.results import RESULTS_SCHEMA_VERSION

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "build_results",
    "print_summary",
    "render_summary",
    "to_csv",
    "to_json",
    "to_markdown",
]
