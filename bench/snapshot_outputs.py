"""Render every committed run and sweep in every output form, to compare code versions.

A refactor that must not change behaviour is checked by rendering the committed H200 runs
(docs/results) before and after and comparing the files byte for byte:

    python bench/snapshot_outputs.py /tmp/before          # on the old commit
    python bench/snapshot_outputs.py /tmp/after           # on the new one
    diff -r /tmp/before /tmp/after && echo identical

Each run directory gives results.json (as ``report --format json`` prints it), the Markdown,
CSV and terminal forms, the records export and the HTML page; each sweep its HTML page and
summary export. Two sweeps are also compared. Nothing here is timed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def _runs() -> list[Path]:
    return sorted(p.parent for p in RESULTS.rglob("run.json"))


def _sweeps() -> list[Path]:
    return sorted(p.parent for p in RESULTS.rglob("sweep.json"))


def _name(path: Path) -> str:
    return str(path.relative_to(RESULTS)).replace("/", "__")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the rendered files into")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    from infermeter.api import load_run
    from infermeter.report.export import records_file_table, run_summary_table, write_csv
    from infermeter.report.formats import to_csv, to_json, to_markdown
    from infermeter.report.html import render_run_html, render_sweep_html
    from infermeter.report.terminal import print_summary

    def put(name: str, text: str) -> None:
        (out / name).write_text(text, encoding="utf-8")

    for run_dir in _runs():
        run = load_run(run_dir)
        name = _name(run_dir)
        results = run.results
        put(f"{name}.json", to_json(results))
        put(f"{name}.md", to_markdown(results))
        put(f"{name}.csv", to_csv(results))
        buf = io.StringIO()
        print_summary(results, Console(file=buf, width=120, force_terminal=False))
        put(f"{name}.txt", buf.getvalue())
        put(f"{name}.html", render_run_html(run))
        for what, table in (
            ("records", records_file_table(run_dir / "records.jsonl")),
            ("summary", run_summary_table(run.results)),
        ):
            buf = io.StringIO()
            write_csv(table, buf)
            put(f"{name}.{what}.csv", buf.getvalue())
    sweeps = _sweeps()
    for sweep_dir in sweeps:
        put(f"{_name(sweep_dir)}.sweep.html", render_sweep_html(sweep_dir))
    runs = _runs()
    # two sweeps of the H200 study: both over concurrency, so compare takes them
    h200 = [s for s in sweeps if s.parent.name == "h200"]
    for what, pair in (("sweeps", h200[:2]), ("runs", runs[:2])):
        for fmt in ("json", "md", "html"):
            target = out / f"compare-{what}.{fmt}"
            cmd = [
                sys.executable,
                "-m",
                "infermeter",
                "compare",
                *map(str, pair),
                "--allow-different",
                "--format",
                fmt,
                "--out",
                str(target),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            if fmt != "html":
                target.write_text(done.stdout, encoding="utf-8")
    digest = hashlib.sha256()
    for f in sorted(out.iterdir()):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    print(f"{len(list(out.iterdir()))} files, sha256 {digest.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
