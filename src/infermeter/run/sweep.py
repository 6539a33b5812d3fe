"""Sweeps and capacity searches: many runs, one index.

Example (needs a server or files at hand)::

    from infermeter import BenchConfig
    from infermeter.sweeps import SweepSpec, run_sweep
    base = BenchConfig(url="http://127.0.0.1:8080", concurrency=1, num_requests=64)
    sweep = run_sweep(base, SweepSpec("concurrency", (1, 2, 4, 8)), "runs/sweep")
    sweep.index["points"][-1]["summary"]["output_token_throughput_tok_s"]

A sweep directory holds ``sweep.json`` (rewritten after every point, so an interrupted sweep
keeps what it measured) and one ordinary run directory per point under ``points/``.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from infermeter._version import __version__
from infermeter.analysis.capacity import SweepSLA, meets
from infermeter.config import BenchConfig, derived_seed, draw_seed
from infermeter.errors import InfermeterError, UsageError
from infermeter.load.strategies import (
    CapacitySearch,
    PointFigures,
    Variable,
    auto_rates,
    saturation,
    too_many_errors,
)
from infermeter.records.rundir import (
    POINTS_DIR,
    SWEEP_FILE,
    is_sweep_dir,
    read_sweep_index,
    write_json,
)
from infermeter.run.rundir import Run
from infermeter.schema.results import statistic
from infermeter.schema.sweep import (
    SWEEP_SCHEMA_VERSION,
    Capacity,
    SweepIndex,
    SweepPoint,
)

LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
PERCENTILE_KEYS = ("p50", "p90", "p95", "p99")
#: Closed-loop concurrency of the saturation probe when the server does not say its slots.
DEFAULT_PROBE_CONCURRENCY = 32


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep. ``values`` None with ``variable="rate"``: rates chosen after a
    saturation probe (closed loop at ``probe_concurrency``), ``auto_points`` of them."""

    variable: Variable
    values: tuple[float, ...] | None = None
    input_tokens: tuple[str, ...] = ()
    output_tokens: tuple[str, ...] = ()
    auto_points: int = 6
    probe_concurrency: int | None = None
    stop_on_saturation: bool = True
    stop_error_rate: float = 0.1
    sla: SweepSLA | None = None
    find_max: bool = False
    rel_tol: float = 0.1
    max_runs: int = 12

    def __post_init__(self) -> None:
        if self.values is None and self.variable == "concurrency":
            raise UsageError(
                "--concurrency needs values (e.g. 1,2,4,8 or 1:64); auto is for --rate"
            )
        if self.find_max:
            if self.sla is None:
                raise UsageError("--find-max needs an SLA: --slo ... or --profile ...")
            if len(self.input_tokens) > 1 or len(self.output_tokens) > 1:
                raise UsageError(
                    "--find-max searches one workload: give one --input-tokens "
                    "and one --output-tokens"
                )
        if self.auto_points < 1:
            raise UsageError(f"--points must be at least 1, got {self.auto_points}")


@dataclass
class Sweep:
    path: Path
    index: SweepIndex
    runs: list[Run] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return (self.index.get("stopped") or {}).get("reason") == "interrupted"


def load_sweep(path: str | Path) -> SweepIndex:
    """The index of a sweep directory (see :func:`infermeter.records.rundir.read_sweep_index`)."""
    return read_sweep_index(Path(path))


def is_sweep(path: str | Path) -> bool:
    return is_sweep_dir(Path(path))


class _Sweeper:
    def __init__(
        self,
        base: BenchConfig,
        spec: SweepSpec,
        out: Path,
        console: Console | None,
        on_run: Callable[[Run], None] | None,
        fresh_server: Callable[[], str] | None = None,
    ) -> None:
        self.base, self.spec, self.out, self.console = base, spec, out, console
        self.on_run = on_run
        self.fresh_server = fresh_server
        #: The sweep's seed (given or drawn); point i runs on a seed derived from it.
        self.seed = base.seed if base.seed is not None else draw_seed()
        self.runs: list[Run] = []
        self.index: SweepIndex = {
            "schema_version": SWEEP_SCHEMA_VERSION,
            "kind": "search" if spec.find_max else "sweep",
            "infermeter_version": __version__,
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "variable": spec.variable,
            "config": base.public_dict() | {"out": str(out), "seed": self.seed},
            "seed_drawn": base.seed is None,
            # "fresh": each point on a server started (or reset) for it; "shared": one server
            # for all, whose state (prefix cache, slot history) carries from point to point.
            "server_per_point": "fresh" if fresh_server is not None else "shared",
            "sla": spec.sla.to_dict() if spec.sla else None,
            "points": [],
            "stopped": {"reason": None, "detail": None},
            "capacity": None,
        }

    # -- one point --
    def run_point(
        self, role: str, concurrency: int | None, rate: float | None, inp: str, outp: str
    ) -> SweepPoint:
        i = len(self.index["points"])
        label = f"c{concurrency}" if concurrency is not None else f"r{rate:g}"
        if role == "probe":
            label = f"probe-{label}"
        if len(self.spec.input_tokens) > 1 or len(self.spec.output_tokens) > 1:
            label += f"-in{inp}-out{outp}".replace(":", "_")
        rel = f"{POINTS_DIR}/{i:02d}-{label}"
        url = self.fresh_server() if self.fresh_server is not None else self.base.url
        cfg = _with(
            self.base,
            url=url,
            concurrency=concurrency,
            rate=rate,
            input_tokens=inp,
            output_tokens=outp,
            out=self.out / rel,
            max_concurrency=self.base.max_concurrency if rate is not None else None,
            arrival=self.base.arrival if rate is not None else "poisson",
            # Fresh prompts at every point: a server's prefix cache must not carry one point's
            # prompts into the next and flatter its TTFT.
            seed=derived_seed(self.seed, i),
            # Warm-up fills every concurrent slot at least once (a static-batch engine compiles
            # per batch size; a server warms each slot).
            warmup=max(self.base.warmup, concurrency or 0) if self.base.warmup else 0,
        )
        if self.console is not None:
            what = f"concurrency {concurrency}" if concurrency is not None else f"rate {rate:g}/s"
            # The caller's console may render markup and emoji codes; the lengths are the
            # user's text (``normal:100:20`` is not a 💯).
            line = Text.assemble((f"point {i}", "bold"), f" ({role}): {what}, in {inp}, out {outp}")
            self.console.print(line)
        # Imported here so that loading a stored sweep needs no load generator.
        from infermeter.run.benchmark import run_benchmark

        run = run_benchmark(cfg, console=self.console)
        self.runs.append(run)
        if self.on_run is not None:
            self.on_run(run)
        point = _point(i, rel, role, concurrency, rate, inp, outp, run)
        if self.spec.sla is not None:
            ok, misses = meets(run.results, self.spec.sla)
            point["meets_sla"], point["sla_misses"] = ok, misses
        self.index["points"].append(point)
        self.save()
        if self.console is not None:
            self.console.print(_point_line(point), highlight=False, emoji=False)
        if run.interrupted:
            raise KeyboardInterrupt
        return point

    def save(self) -> None:
        write_json(self.out / SWEEP_FILE, self.index)

    def stop(self, reason: str, detail: str | None) -> None:
        self.index["stopped"] = {"reason": reason, "detail": detail}
        self.save()

    # -- strategies --
    def probe(self, inp: str, outp: str) -> float:
        conc = self.spec.probe_concurrency or DEFAULT_PROBE_CONCURRENCY
        point = self.run_point("probe", conc, None, inp, outp)
        rps = float(point["summary"]["request_throughput_rps"] or 0.0)
        self.index["saturation"] = {
            "concurrency": conc,
            "request_throughput_rps": rps,
            "output_token_throughput_tok_s": point["summary"]["output_token_throughput_tok_s"],
        }
        return rps

    def grid(self) -> None:
        spec = self.spec
        for inp, outp in itertools.product(spec.input_tokens, spec.output_tokens):
            values = spec.values
            if values is None:
                values = tuple(auto_rates(self.probe(inp, outp), spec.auto_points))
            prev: PointFigures | None = None
            for v in values:
                conc, rate = (int(v), None) if spec.variable == "concurrency" else (None, v)
                point = self.run_point("point", conc, rate, inp, outp)
                cur = _figures(v, point)
                why = too_many_errors(cur, spec.stop_error_rate)
                if why is not None:
                    self.stop("errors", f"at {spec.variable} {v:g}: {why}")
                    return
                if spec.stop_on_saturation and prev is not None:
                    why = saturation(prev, cur)
                    if why is not None:
                        self.index.setdefault("saturated", []).append(
                            {"input_tokens": inp, "output_tokens": outp, "at": v, "detail": why}
                        )
                        self.stop("saturated", f"at {spec.variable} {v:g}: {why}")
                        break  # the next lengths pair still gets its walk
                prev = cur
        if spec.sla is not None and len(spec.input_tokens) == len(spec.output_tokens) == 1:
            self.index["capacity"] = _grid_capacity(self.index["points"], spec)
            self.save()

    def search(self) -> None:
        spec = self.spec
        assert spec.sla is not None
        inp, outp = spec.input_tokens[0], spec.output_tokens[0]
        integer = spec.variable == "concurrency"
        if spec.values is None:
            sat = self.probe(inp, outp)
            if sat <= 0:
                self.stop("errors", "the saturation probe finished no requests")
                return
            start, upper = sat / 2, sat
        else:
            start, upper = min(spec.values), max(spec.values)
        finder = CapacitySearch(
            start=start,
            upper=upper,
            integer=integer,
            rel_tol=spec.rel_tol,
            max_runs=spec.max_runs,
        )
        by_value: dict[float, int] = {}
        while (v := finder.next_value()) is not None:
            conc, rate = (int(v), None) if integer else (None, v)
            point = self.run_point("search", conc, rate, inp, outp)
            finder.record(v, bool(point["meets_sla"]))
            by_value[v] = point["index"]
        lo, hi = finder.best_pass, finder.lowest_fail
        self.index["capacity"] = {
            "variable": spec.variable,
            "value": lo,
            "pass_index": by_value.get(lo) if lo is not None else None,
            "fail_index": by_value.get(hi) if hi is not None else None,
            "criterion": spec.sla.criterion,
            "bounded_above": hi is not None,
            "monotone": finder.monotone,
            "runs": len(finder.tried),
            "note": _capacity_note(spec.variable, lo, hi, finder.monotone, upper),
        }
        self.save()


def _grid_capacity(points: list[SweepPoint], spec: SweepSpec) -> Capacity:
    """The highest swept value below which every point met the SLA."""
    assert spec.sla is not None
    measured = [p for p in points if p["role"] == "point"]
    key = spec.variable
    lo_i = hi_i = None
    for p in sorted(measured, key=lambda p: p[key] or 0):
        if p["meets_sla"]:
            lo_i = p["index"]
        else:
            hi_i = p["index"]
            break
    lo = points[lo_i][key] if lo_i is not None else None
    hi = points[hi_i][key] if hi_i is not None else None
    return {
        "variable": key,
        "value": lo,
        "pass_index": lo_i,
        "fail_index": hi_i,
        "criterion": spec.sla.criterion,
        "bounded_above": hi is not None,
        "monotone": True,
        "runs": len(measured),
        "note": _capacity_note(key, lo, hi, True, 0.0),
    }


def _capacity_note(
    variable: str, lo: float | None, hi: float | None, monotone: bool, upper: float
) -> str:
    unit = "" if variable == "concurrency" else " req/s"
    if lo is None and hi is None:
        return "no load point was measured"
    if lo is None:
        return f"no tested {variable} met the SLA (lowest tried {hi:g}{unit})"
    if hi is None:
        return (
            f"every measured {variable} up to {lo:g}{unit} met the SLA; the capacity may be higher"
        )
    note = f"highest passing {variable} {lo:g}{unit}; {hi:g}{unit} fails"
    if not monotone:
        note += " (not monotone: a higher load passed after a lower one failed; noisy server?)"
    return note


def run_sweep(
    base: BenchConfig,
    spec: SweepSpec,
    out: str | Path | None = None,
    *,
    console: Console | None = None,
    on_run: Callable[[Run], None] | None = None,
    fresh_server: Callable[[], str] | None = None,
) -> Sweep:
    """Run a sweep (or, with ``spec.find_max``, a capacity search) and return its index.

    ``base`` gives everything but the swept values. ``on_run`` is called with each finished
    point's run (e.g. to write its HTML report). ``fresh_server``, where the caller started
    the server: called before each point to start (or reset) it, returning its URL; the index
    says which the points had. On Ctrl-C the sweep stops, keeping its points.
    """
    spec = _with_lengths(spec, base)
    root = (
        Path(out)
        if out is not None
        else Path("runs") / ("sweep-" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    )
    if (root / SWEEP_FILE).exists():
        raise UsageError(f"--out {root} already holds a sweep; choose another directory")
    try:
        (root / POINTS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {root}: cannot create it ({exc.strerror})") from None
    sw = _Sweeper(base, spec, root, console, on_run, fresh_server)
    sw.save()
    try:
        sw.search() if spec.find_max else sw.grid()
    except KeyboardInterrupt:
        sw.stop("interrupted", f"after {len(sw.index['points'])} points")
    except InfermeterError as exc:
        sw.stop("errors", exc.message)
        raise
    else:
        if sw.index["stopped"]["reason"] is None:
            sw.stop("done", None)
    return Sweep(root, sw.index, sw.runs)


def _with_lengths(spec: SweepSpec, base: BenchConfig) -> SweepSpec:
    from dataclasses import replace

    return replace(
        spec,
        input_tokens=spec.input_tokens or (base.input_tokens,),
        output_tokens=spec.output_tokens or (base.output_tokens,),
    )


def _with(base: BenchConfig, **update: Any) -> BenchConfig:
    data = dict(base)
    data.update(update)
    return BenchConfig.build(**data)


def _point(
    i: int,
    rel: str,
    role: str,
    concurrency: int | None,
    rate: float | None,
    inp: str,
    outp: str,
    run: Run,
) -> SweepPoint:
    res = run.results
    dists = res["distributions"]
    telemetry_server = res["telemetry"].get("server")
    stats = telemetry_server.get("requests_waiting") if telemetry_server else None
    waiting = stats["mean"] if stats else None
    status: Literal["ok", "aborted", "interrupted"] = (
        "interrupted" if run.interrupted else "aborted" if run.aborted else "ok"
    )
    point: SweepPoint = {
        "index": i,
        "dir": rel,
        "role": role,
        "concurrency": concurrency,
        "rate": rate,
        "input_tokens": inp,
        "output_tokens": outp,
        "status": status,
        "summary": res["summary"],
        "latency": {
            k: {p: statistic(dists.get(k), p) for p in PERCENTILE_KEYS} for k in LATENCY_KEYS
        },
        "waiting_mean": waiting,
        "slo": res.get("slo"),
        "meets_sla": None,
    }
    host = res["telemetry"].get("host")
    core = host and (host.get("server_core_speed") or host.get("core_speed"))
    if core:
        point["core_speed"] = core
    return point


def _figures(value: float, point: SweepPoint) -> PointFigures:
    s = point["summary"]
    return PointFigures(
        value=value,
        output_tok_s=float(s["output_token_throughput_tok_s"] or 0.0),
        ttft_p50_ms=point["latency"]["ttft_ms"]["p50"],
        e2e_p50_ms=point["latency"]["e2e_ms"]["p50"],
        error_rate=float(s["error_rate"] or 0.0),
        waiting_mean=point.get("waiting_mean"),
    )


def _point_line(point: SweepPoint) -> str:
    s, lat = point["summary"], point["latency"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f}"

    verdict = ""
    if point.get("meets_sla") is not None:
        verdict = (
            "  SLA [green]met[/]"
            if point["meets_sla"]
            else ("  SLA [red]missed[/]: " + "; ".join(point.get("sla_misses") or []))
        )
    return (
        f"  -> {s['request_throughput_rps']:.2f} req/s, "
        f"{s['output_token_throughput_tok_s']:,.0f} out tok/s, "
        f"TTFT p50/p99 {ms(lat['ttft_ms']['p50'])}/{ms(lat['ttft_ms']['p99'])} ms, "
        f"TPOT p50 {ms(lat['tpot_ms']['p50'])} ms, errors {s['error_rate']:.0%}{verdict}"
    )
