"""Decode steps against the host's core probe: pinned to the server's busiest thread's CPU,
and the unpinned one read as if it were (docs/results/prediction.md, the eleventh H100).

    python bench/core_probe.py RUN_OR_SWEEP...

Fits the runs as `infermeter fit` does and prints `quality.core_effect` twice: once from
the pinned probe (what `fit` keeps), once with every unpinned reading put in its place.
Where the engine's step follows its own core, the first shows it and the second need not:
the unpinned probe runs on whatever core the telemetry thread lands on.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import infermeter.run.fit as fit
from infermeter.predict.model import CoreEffect
from infermeter.records.rundir import read_telemetry


def _unpinned_as_pinned(path: Path) -> list[dict[str, Any]]:
    samples = read_telemetry(path)
    out = []
    for s in samples:
        s = {k: v for k, v in s.items() if k != "server_core_probe_us"}
        if s.get("source") == "host" and "core_probe_us" in s:
            s["server_core_probe_us"] = s["core_probe_us"]
        out.append(s)
    return out


def _said(name: str, effect: CoreEffect | None) -> str:
    if effect is None:
        return f"{name}: too few steps each way at any batch size (or no probe)"
    pairs = ", ".join(f"{b}: {r:.2f}" for b, r in zip(effect.batches, effect.ratios, strict=True))
    above = sum(r > 1 for r in effect.ratios)
    return (
        f"{name}: slow over fast, median {effect.median:.2f}× ({above} of "
        f"{len(effect.ratios)} batch sizes above 1; {100 * effect.slow_share:.0f} % of the "
        f"steps near a reading slow)\n  by batch size: {pairs}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    args = ap.parse_args()
    pinned = fit.fit_runs(args.paths).quality.core_effect
    fit.read_telemetry = _unpinned_as_pinned  # type: ignore[assignment]
    unpinned = fit.fit_runs(args.paths).quality.core_effect
    print(_said("pinned to the server's busiest thread's CPU", pinned))
    print(_said("unpinned, read as if pinned", unpinned))


if __name__ == "__main__":
    main()
