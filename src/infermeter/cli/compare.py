"""``infermeter compare RUN_OR_SWEEP...``: runs (or sweeps) side by side, with ratios."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import typer

from infermeter.cli.common import err_console, fail, out_console
from infermeter.errors import UsageError
from infermeter.records.rundir import (
    SWEEP_FILE,
    is_run_dir,
    is_sweep_dir,
    read_sweep_index,
)
from infermeter.report.compare import (
    Compared,
    PointWithRun,
    SweepWithRuns,
    build_comparison,
    comparison_notes,
    render_comparison_markdown,
    render_comparison_table,
)
from infermeter.report.formats import to_json
from infermeter.run.rundir import load_results, load_run
from infermeter.schema.results import Results

FORMATS = ("table", "md", "json", "html")


@dataclass
class Target:
    """A run directory's results, or a sweep directory's index with each point's results
    (a run's table is dropped once its results are built: a comparison of long runs holds
    their summaries, not their requests)."""

    path: Path
    results: Results | None = None
    sweep: SweepWithRuns | None = None

    @property
    def data(self) -> Compared:
        """What :func:`build_comparison` takes: results.json, or sweep.json with its runs'."""
        if self.results is not None:
            return self.results
        assert self.sweep is not None
        return self.sweep


def load_target(path: Path) -> Target:
    """Load a run directory, or a sweep directory (``sweep.json`` and its points' runs)."""
    if is_sweep_dir(path):
        return _load_sweep(path)
    if not path.is_dir():
        raise UsageError(f"{path}: no such directory")
    if not is_run_dir(path):
        raise UsageError(f"{path} holds neither a run (run.json) nor a sweep ({SWEEP_FILE})")
    return Target(path, results=load_run(path).results)


def _load_sweep(path: Path) -> Target:
    index = read_sweep_index(path)
    # The sweep as compare reads it: the index, its directory, and each point's results.
    points = [cast("PointWithRun", dict(entry)) for entry in index["points"]]
    dirs = [path / point["dir"] for point in points]
    # A point cut short before its run started has no run directory.
    ran = [k for k, d in enumerate(dirs) if is_run_dir(d)]
    for k, results in zip(ran, load_results([dirs[k] for k in ran]), strict=True):
        points[k]["results"] = results
    sweep: SweepWithRuns = {
        "variable": index["variable"],
        "config": index["config"],
        "points": points,
        "capacity": index.get("capacity"),
        "path": str(path),
    }
    return Target(path, sweep=sweep)


def default_labels(paths: list[Path]) -> list[str]:
    """Each directory's name; where names repeat, with as many parent names as it takes."""
    parts = [p.resolve().parts for p in paths]
    for depth in range(1, max(len(x) for x in parts) + 1):
        labels = ["/".join(x[-depth:]) for x in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def speed_cautions(items: list[tuple[str, Target]]) -> list[str]:
    """Beside each simulated run, how long each measured run's decode steps took against
    the engine model it was simulated on, where the model file is still there and the run
    tells (at batch sizes the model measured): a prediction misses by about that much for
    the engine's speed on the day, which no simulation knows, not for its scheduling. A
    model carried to other hardware or to another core speed is not the one simulated:
    left out. Each measured run is fitted once, whatever the number of simulated ones."""
    from infermeter.predict.model import SPEED_APART, read_engine_model, speed_against
    from infermeter.run.fit import fit_alone

    models = []
    for label, target in items:
        told = target.results.get("prediction") if target.results is not None else None
        if told is None or told.get("extrapolated") or "core_slow_share" in told:
            continue
        path = Path(told["engine_model"])
        try:
            models.append((label, path, read_engine_model(path)))
        except (UsageError, OSError):
            continue
    if not models:
        return []
    said: dict[str, list[str]] = {label: [] for label, _, _ in models}
    for run_label, run in items:
        if run.results is None or run.results.get("predicted"):
            continue
        own = fit_alone(run.path)
        for label, path, model in models:
            speed = None if own is None else speed_against(own, model)
            if speed is None:
                continue
            then = (
                "the engine ran at another speed than when it was fitted (its host, or a "
                "state the engine carries): predicted TPOT and E2E miss by about that much "
                "for that reason, not for the simulation's"
                if abs(speed - 1) >= SPEED_APART
                else "the engine ran at its fitted speed: a difference is the simulation's"
            )
            said[label].append(
                f"{run_label}'s decode steps took {speed:.2f}× those of the engine model "
                f"{label} was simulated on ({path.name}), at the batch sizes both measured: "
                f"{then}"
            )
    return [line for lines in said.values() for line in lines]


def _baseline_index(baseline: str | None, labels: list[str]) -> int:
    if baseline is None:
        return 0
    if baseline in labels:
        return labels.index(baseline)
    try:
        index = int(baseline)
    except ValueError:
        index = -1
    if not 0 <= index < len(labels):
        raise UsageError(
            f"--baseline {baseline!r} is neither a label ({', '.join(labels)}) "
            f"nor a position 0..{len(labels) - 1}"
        )
    return index


def compare(
    targets: list[Path] = typer.Argument(
        ...,
        metavar="RUN_OR_SWEEP",
        help="Run directories, or sweep directories (with sweep.json); two or more.",
    ),
    label: list[str] = typer.Option(
        [], "--label", "-l", help="A label per argument, in order (default: the directory name)."
    ),
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        "-b",
        help="Label or 0-based position of the baseline (default: the first).",
    ),
    allow_different: bool = typer.Option(
        False,
        "--allow-different",
        help="Compare even when the workloads differ (listed in the output).",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, md, json or html."),
    out: Path = typer.Option(
        Path("compare.html"), "--out", "-o", help="Where --format html writes the page."
    ),
) -> None:
    """Compare runs (or sweeps) side by side, with ratios to a baseline; the workloads must
    match, the engines and their settings may differ."""
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if len(targets) < 2:
        raise UsageError("compare needs two or more runs or sweeps")
    if label and len(label) != len(targets):
        raise UsageError(
            f"--label given {len(label)} times for {len(targets)} runs: give one per run, in order"
        )
    loaded = [load_target(p) for p in targets]
    labels = label or [
        # a simulated run is named as one wherever it stands beside measured ones
        f"{name} (predicted)" if t.results is not None and t.results.get("predicted") else name
        for name, t in zip(default_labels(targets), loaded, strict=True)
    ]
    if len(set(labels)) != len(labels):
        raise UsageError(f"labels must differ: {', '.join(labels)}")
    comparison = build_comparison(
        [(lab, t.data) for lab, t in zip(labels, loaded, strict=True)],
        baseline=_baseline_index(baseline, labels),
        allow_different=allow_different,
    )
    comparison["cautions"] += speed_cautions(list(zip(labels, loaded, strict=True)))
    if fmt == "json":
        typer.echo(to_json(comparison))
    elif fmt == "md":
        typer.echo(render_comparison_markdown(comparison), nl=False)
    elif fmt == "html":
        from infermeter.report.html import render_compare_html

        sweeps = [(lab, t.path) for lab, t in zip(labels, loaded, strict=True) if t.sweep]
        out.write_text(render_compare_html(comparison, sweeps), encoding="utf-8")
        err_console.print(f"wrote {out}", highlight=False, markup=False)
    else:
        console = out_console()
        console.print(render_comparison_table(comparison))
        for note in comparison_notes(comparison):
            console.print(note, style="yellow", highlight=False, markup=False)
