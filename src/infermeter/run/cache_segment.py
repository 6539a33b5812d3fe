"""``python -m infermeter.run.cache_segment RECORDS_JSONL [--min-bytes N]``: fold a finished
records file into its column cache (``records.columns/`` beside it), so that whoever reads it
next reads columns, not JSON. The proxy runs it, at the lowest priority, on each segment of its
recording as it closes one; it dies with the process that started it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from infermeter.errors import InfermeterError
from infermeter.lifetime import die_with_parent
from infermeter.run.fold import PARALLEL_BYTES, fold_records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infermeter.run.cache_segment")
    ap.add_argument("records", type=Path)
    ap.add_argument(
        "--min-bytes",
        type=int,
        default=PARALLEL_BYTES,
        help="cache only files at least this large (smaller ones read fast as they are)",
    )
    args = ap.parse_args(argv)
    die_with_parent(parent_pid=os.getppid())
    with contextlib.suppress(OSError):
        os.nice(19)  # after whatever serves traffic beside it
    # Stopped (the proxy closing): unwind, so the half-written cache's folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.records.stat().st_size >= args.min_bytes:
            fold_records(args.records, parallel_bytes=max(args.min_bytes, 1))
    except (OSError, InfermeterError) as exc:
        # A recording is read all the same without its cache: say why, and that is all.
        print(f"cache of {args.records} not written: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
