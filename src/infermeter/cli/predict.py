"""``infermeter fit``, ``simulate`` and ``plan``: an engine model learned from measured runs,
a load run on it instead of a server, and the replicas a traffic needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from infermeter.cli import flags
from infermeter.cli.common import fail, out_console, router_named
from infermeter.config import BenchConfig

if TYPE_CHECKING:
    from infermeter.predict.hardware import Scaling
    from infermeter.predict.model import EngineModel


def _engine_model(path: Path, on_gpu: str | None, scaling: Scaling = "roofline") -> EngineModel:
    from infermeter.predict.hardware import carry_to
    from infermeter.predict.model import read_engine_model

    model = read_engine_model(path)
    return model if on_gpu is None else carry_to(model, on_gpu, scaling, str(path))


def fit(
    runs: list[Path] = typer.Argument(
        ..., help="Run or sweep directories of one engine, model and machine."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the engine model (JSON)."),
    max_seqs: int | None = typer.Option(
        None,
        "--max-seqs",
        help="Sequences the engine runs at once (default: what the server says, else the most seen in flight).",
    ),
    token_budget: int | None = typer.Option(
        None,
        "--token-budget",
        help="Tokens one step may carry (default: the engine's default, 2048).",
    ),
    gpu: str | None = typer.Option(
        None,
        "--gpu",
        help="The GPU the runs were measured on (default: the runs' --gpu), for --on-gpu later.",
    ),
    output_format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Learn an engine model from measured runs or sweeps: decode step time per batch size,
    cost per prompt token, per-request overheads and the scheduler's limits."""
    if output_format not in ("table", "json"):
        raise fail(f"--format must be table or json, got {output_format!r}")
    if max_seqs is not None and max_seqs < 1:
        raise fail("--max-seqs must be at least 1")
    if token_budget is not None and token_budget < 1:
        raise fail("--token-budget must be at least 1")
    from infermeter.predict.model import write_engine_model
    from infermeter.report.predict import print_engine_model
    from infermeter.run.fit import fit_runs
    from infermeter.theory import get_hardware

    if gpu is not None:
        gpu = get_hardware(gpu).name
    model = fit_runs(runs, max_seqs=max_seqs, token_budget=token_budget, gpu=gpu)
    write_engine_model(model, out)
    if output_format == "json":
        typer.echo(model.model_dump_json(indent=2))
    else:
        print_engine_model(out_console(), model, out)


def simulate(
    engine_model: Path = typer.Option(
        ..., "--engine-model", "-e", help="An engine model (infermeter fit)."
    ),
    on_gpu: str | None = typer.Option(
        None,
        "--on-gpu",
        help="Carry the engine model to this catalogue GPU by the roofline (an extrapolation).",
    ),
    core_slow_share: float | None = typer.Option(
        None,
        "--core-slow-share",
        help="Simulate as if the server's core read slow this share of the time (0: fast "
        "throughout, 1: slow throughout), for an engine model whose fit measured how its "
        "steps follow that core (quality.core_effect).",
    ),
    replicas: int = typer.Option(1, "--replicas", help="Copies of the engine behind a router."),
    replicas_per_gpu: int = flags.REPLICAS_PER_GPU,
    router: str = typer.Option(
        "least-outstanding", "--router", help="least-outstanding or round-robin."
    ),
    concurrency: int | None = flags.CONCURRENCY,
    rate: float | None = flags.RATE,
    arrival: str = flags.ARRIVAL,
    burstiness: float = flags.BURSTINESS,
    max_concurrency: int | None = flags.MAX_CONCURRENCY,
    num_requests: int | None = flags.NUM_REQUESTS,
    duration: float | None = flags.DURATION,
    warmup: int = flags.WARMUP,
    ramp_up: float = flags.RAMP_UP,
    input_tokens: str = flags.INPUT_TOKENS,
    output_tokens: str = typer.Option(
        "128", "--output-tokens", help="Output tokens, same forms as --input-tokens."
    ),
    trace: Path | None = typer.Option(
        None, "--trace", help="Replay a trace's times and lengths (as bench --trace)."
    ),
    trace_format: str = flags.TRACE_FORMAT,
    time_scale: float = flags.TIME_SCALE,
    trace_start: float = flags.TRACE_START,
    trace_duration: float | None = flags.TRACE_DURATION,
    seed: int = typer.Option(
        0, "--seed", help="Seed for lengths and arrivals (bench's draw for the same seed)."
    ),
    slo: str | None = flags.SLO,
    percentiles: str | None = flags.PERCENTILES,
    profile: str | None = flags.PROFILE,
    gpu_hourly_price: float | None = flags.GPU_HOURLY_PRICE,
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to write."),
    output_format: str = typer.Option(
        "table",
        "--format",
        help="Summary on stdout: table, json, csv or md; html also writes OUT/report.html.",
    ),
) -> None:
    """Run a load on an engine model instead of a server: a discrete-event simulation of the
    engine's batching, written as an ordinary run directory marked predicted."""
    if output_format not in ("table", "json", "csv", "md", "html"):
        raise fail(f"--format must be table, json, csv, md or html, got {output_format!r}")
    if replicas < 1:
        raise fail("--replicas must be at least 1")
    if replicas_per_gpu < 1:
        raise fail("--replicas-per-gpu must be at least 1")
    from infermeter.cli.bench import _percentiles
    from infermeter.cli.report import emit, write_html
    from infermeter.predict.simulate import Fleet
    from infermeter.run.predict import simulate_run

    model = _engine_model(engine_model, on_gpu)
    given = {
        "concurrency": concurrency,
        "rate": rate,
        "arrival": arrival,
        "burstiness": burstiness,
        "max_concurrency": max_concurrency,
        "num_requests": num_requests,
        "duration_s": duration,
        "warmup": warmup,
        "ramp_up_s": ramp_up,
        "trace": trace,
        "trace_format": trace_format,
        "time_scale": time_scale,
        "trace_start_s": trace_start,
        "trace_duration_s": trace_duration,
        "seed": seed,
        "slo": slo,
        "profile": profile,
        "gpu_hourly_price": gpu_hourly_price,
        "percentiles": _percentiles(percentiles),
        "gpus": 1,
        # Every simulated answer runs to its asked length, as with --ignore-eos.
        "ignore_eos": True,
    }
    if trace is None:
        given |= {"input_tokens": input_tokens, "output_tokens": output_tokens}
    config = BenchConfig.build(
        url="http://predicted.invalid",
        **{k: v for k, v in given.items() if v is not None or k in ("concurrency", "rate")},
    )
    # an impossible share or a model without a core effect: simulate_run's UsageError,
    # one line and exit 2 as every command's
    run = simulate_run(
        model,
        engine_model,
        config,
        out=out,
        fleet=Fleet(replicas, router_named(router), replicas_per_gpu),
        core_slow_share=core_slow_share,
    )
    emit(run.results, "table" if output_format == "html" else output_format)
    if output_format == "html":
        write_html(run.path)


def plan(
    engine_model: Path = typer.Option(
        ..., "--engine-model", "-e", help="An engine model (infermeter fit)."
    ),
    on_gpu: str | None = typer.Option(
        None, "--on-gpu", help="Carry the engine model to this catalogue GPU by the roofline."
    ),
    rate: float | None = typer.Option(
        None, "--rate", "-r", help="The traffic: R requests per second."
    ),
    arrival: str = typer.Option(
        "poisson", "--arrival", help="Arrivals: poisson, gamma or constant."
    ),
    burstiness: float = typer.Option(
        1.0, "--burstiness", help="Gamma shape: 1 = Poisson, < 1 burstier."
    ),
    num_requests: int | None = typer.Option(
        None,
        "--num-requests",
        "-n",
        help="Requests to simulate (default: 10 minutes of the rate, at most 20,000).",
    ),
    input_tokens: str = typer.Option("512", "--input-tokens", help="Prompt tokens, as bench's."),
    output_tokens: str = typer.Option("128", "--output-tokens", help="Output tokens, as bench's."),
    trace: Path | None = typer.Option(
        None, "--trace", help="The traffic: a trace's times and lengths."
    ),
    trace_format: str = typer.Option(
        "auto", "--trace-format", help="auto, mooncake, burstgpt, azure, jsonl or run."
    ),
    time_scale: float = typer.Option(1.0, "--time-scale", help="Multiply the trace's gaps by F."),
    seed: int = typer.Option(0, "--seed", help="Seed for lengths and arrivals."),
    slo: str | None = typer.Option(
        None, "--slo", help="Latency limits with percentiles, e.g. p95_ttft_ms=500,p99_tpot_ms=50."
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="SLA profile (its latency limits): chat, batch, realtime, or a JSON file.",
    ),
    gpu_hourly_price: float | None = typer.Option(
        None,
        "--gpu-hourly-price",
        help="Price of one GPU-hour: cost per request and per 1M tokens.",
    ),
    gpus_per_replica: int = typer.Option(
        1, "--gpus-per-replica", help="GPUs each replica takes (cost)."
    ),
    replicas_per_gpu: int = flags.REPLICAS_PER_GPU,
    router: str = typer.Option(
        "least-outstanding", "--router", help="least-outstanding or round-robin."
    ),
    output_format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """The fewest replicas that serve a traffic within latency limits, the highest rate one
    replica sustains, and the cost, all predicted by simulating the engine model."""
    if output_format not in ("table", "json"):
        raise fail(f"--format must be table or json, got {output_format!r}")
    if (rate is None) == (trace is None):
        raise fail("give exactly one of --rate R or --trace FILE (the traffic to plan for)")
    if gpus_per_replica < 1:
        raise fail("--gpus-per-replica must be at least 1")
    if replicas_per_gpu < 1:
        raise fail("--replicas-per-gpu must be at least 1")
    from infermeter.predict.model import at_core_share, slow_core_factor
    from infermeter.predict.simulate import Fleet
    from infermeter.report.predict import print_plan
    from infermeter.run.plan import (
        latency_terms,
        plan_at_spread,
        plan_capacity,
        plan_doc,
        plan_slower,
    )

    model = _engine_model(engine_model, on_gpu)
    terms, notes = latency_terms(slo, profile)
    if trace is None and num_requests is None:
        assert rate is not None
        num_requests = int(min(max(rate * 600, 200), 20_000))
    given = {
        "rate": rate,
        "arrival": arrival,
        "burstiness": burstiness,
        "num_requests": num_requests,
        "trace": trace,
        "trace_format": trace_format,
        "time_scale": time_scale,
        "seed": seed,
        "gpu_hourly_price": gpu_hourly_price,
    }
    if trace is None:
        given |= {"input_tokens": input_tokens, "output_tokens": output_tokens}
    config = BenchConfig.build(
        url="http://predicted.invalid", **{k: v for k, v in given.items() if v is not None}
    )
    fleet = Fleet(router=router_named(router), per_gpu=replicas_per_gpu)
    result = plan_capacity(
        model,
        config,
        terms,
        fleet=fleet,
        gpus_per_replica=gpus_per_replica,
        gpu_hourly_price=gpu_hourly_price,
    )
    doc = plan_doc(result, model, engine_model, notes)
    if on_gpu is not None:
        # The roofline's regimes are a model too: bracket its answer by scaling every step
        # with bandwidth alone and with compute alone.
        ends = [
            plan_capacity(
                _engine_model(engine_model, on_gpu, scaling),
                config,
                terms,
                fleet=fleet,
                gpus_per_replica=gpus_per_replica,
            )
            for scaling in ("bandwidth", "compute")
        ]
        doc["bracket"] = {
            "replicas": sorted(e.at.replicas for e in ends),
            "max_rate_per_replica_rps": sorted(e.max_rate_per_replica_rps for e in ends),
        }
    slower = plan_at_spread(model, config, terms, fleet=fleet, gpus_per_replica=gpus_per_replica)
    if slower is not None:
        doc["at_runs_spread"] = slower
    factor = slow_core_factor(model)
    slow = at_core_share(model, 1.0)
    if factor is not None and slow is not None:
        # the steps follow a core that may stay slow: plan for that too
        doc["at_slow_core"] = plan_slower(
            model,
            config,
            terms,
            factor - 1,
            fleet=fleet,
            gpus_per_replica=gpus_per_replica,
            slowed=slow,
        )
    if output_format == "json":
        typer.echo(json.dumps(doc, indent=2))
    else:
        print_plan(out_console(), doc)
