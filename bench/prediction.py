"""Held-out accuracy of ``infermeter fit`` + ``simulate``: an engine model fitted on one
closed-loop sweep predicts runs it never saw, and each prediction is set beside the
measurement, metric by metric.

Committed H200 runs (no GPU needed; docs/results/h200)::

    python bench/prediction.py committed

A live engine on this machine (llama.cpp's llama-server, vLLM's CPU build, or ``transformers
serve`` run by a Python given with ``--serve-python``): a sweep to
fit on, then held-out runs (Poisson at 30/60/90 % of the sweep's highest throughput, a
concurrency between two swept ones, another length mix), each simulated with the same
flags and seed::

    python bench/prediction.py live --engine llama.cpp --shape demo --slots 4

``--bracket`` runs the fit sweep again after the held-out runs (another seed: the same
prompts would come from the server's prompt cache), prints each of its points before and
after (how far the host moved meanwhile) and a second table fitted on both sweeps.

``plan``'s replica count checked by measurement: two llama-server replicas on their own CPU
cores behind ``infermeter proxy --router round-robin``. One replica is swept and fitted; an
SLO is set at the p95 E2E of the sweep's busiest point; ``plan`` finds the highest rate one replica
sustains and is asked for a rate past it; that rate is then measured through the proxy on
the replicas plan says and on one fewer::

    python bench/prediction.py replicas --cores 2,3 --client-core 0 --proxy-core 1

or on one GPU, both replicas offloading every layer to it (a built server and a written model
given; ``bench/gpu_study.sh replicas`` does this)::

    python bench/prediction.py replicas --binary B --gguf M --shape llama-2-7b \
        --gpu-layers 99 --cores 4-9,10-15 --client-core 0-1 --proxy-core 2-3 --gpu h100-sxm

The what-if checked: fitted on one GPU, carried to another by the roofline (``simulate
--on-gpu``), set beside runs measured there::

    python bench/prediction.py table --fit docs/results/h100-dense/predict-fit \
        --held docs/results/h200/llamacpp-f16-val --on-gpu h200

``table --given-speed`` adds a second table: each held-out run simulated with its decode
steps at the speed they ran at against the fit's sweep, at the batch sizes both measured
(read off the run, so not a prediction: what is left is the model's error, the host's
drift between runs taken out). ``--given-core`` likewise, at the share of the time the
run's own server core read slow.

Prints Markdown tables: per held-out run the measured figure, the predicted one and the
error ((predicted - measured) / measured), then the median absolute error per metric. Each
held-out run is simulated after the runs that went before it on its server, the fitted ones
included where one server ran both (``live`` does), so that llama.cpp's slots start where
the measured server's did.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path

from infermeter.api import load_run
from infermeter.engines.process import ServerProcess
from infermeter.errors import UsageError
from infermeter.predict.model import (
    EngineModel,
    at_speed,
    host_notes,
    speed_notes,
)
from infermeter.records.rundir import (
    RUN_FILE,
    TELEMETRY_FILE,
    finished_points,
    is_sweep_dir,
    read_telemetry,
)
from infermeter.run.fit import core_slow_share_of, fit_runs, measured_speed, server_keys
from infermeter.run.predict import ServerHistory, replay_config, simulate_run
from infermeter.run.rundir import read_run_meta
from infermeter.schema.results import Results

ROOT = Path(__file__).resolve().parent.parent
H200 = ROOT / "docs" / "results" / "h200"
IM = [sys.executable, "-m", "infermeter"]

#: (label, results.json path)
METRICS = (
    ("TTFT p50", ("distributions", "ttft_ms", "p50")),
    ("TTFT p99", ("distributions", "ttft_ms", "p99")),
    ("TPOT p50", ("distributions", "tpot_ms", "p50")),
    ("E2E p50", ("distributions", "e2e_ms", "p50")),
    ("E2E p99", ("distributions", "e2e_ms", "p99")),
    ("output tok/s", ("summary", "output_token_throughput_tok_s")),
)
#: The issue's targets: |error| at most this, per metric.
TARGETS = {"TTFT p50": 0.10, "TTFT p99": 0.20, "TPOT p50": 0.05, "E2E p50": 0.05,
           "E2E p99": 0.20, "output tok/s": 0.05}  # fmt: skip


def dig(doc: dict, path: tuple[str, ...]) -> float:
    for key in path:
        doc = doc[key]
    return float(doc)  # type: ignore[arg-type]


def inside(recomputed: dict, path: tuple[str, ...], value: float) -> bool | None:
    """Whether ``value`` lies inside the measured percentile's 95 % interval (the run's
    results recomputed from its records: runs older than the intervals lack them in
    results.json); None for figures without one (throughput)."""
    if path[0] != "distributions":
        return None
    bounds = (recomputed["distributions"][path[1]].get("interval95") or {}).get(path[2])
    if not bounds:
        return None
    lo, hi = bounds
    return (lo is None or lo <= value) and (hi is None or value <= hi)


def predict_like(
    model: EngineModel,
    model_path: Path,
    measured: Path,
    work: Path,
    servers: ServerHistory,
    given_core: bool = False,
    speed: float | None = None,
) -> dict:
    """Simulate the load a measured run was driven with (same flags, same seed), on a server
    with the history ``servers`` holds (the loads simulated before on it). ``given_core``:
    at the share of the time the run's own server core read slow (against the fit's fast
    level), where the run and the fit both have it; that reads the run's host, so it is not
    a prediction but tells the model's error apart from the host's. ``speed``: every decode
    step that many times the table's (:func:`~infermeter.run.fit.measured_speed`), likewise
    read off the run."""
    if speed is not None:
        model = at_speed(model, speed)
    config = replay_config(read_run_meta(measured / RUN_FILE))
    effect = model.quality.core_effect
    share = (
        core_slow_share_of(measured, effect.fast_us)
        if given_core and effect is not None and effect.fast_us is not None
        else None
    )
    run = simulate_run(
        model, model_path, config, out=work / measured.name, servers=servers,
        core_slow_share=share,
    )  # fmt: skip
    return dict(run.results)


def predicted_in_order(
    model: EngineModel,
    model_path: Path,
    held_out: list[Path],
    work: Path,
    before: list[Path] | None = None,
    given_core: bool = False,
    speeds: dict[Path, float] | None = None,
) -> list[dict]:
    """Each held-out run simulated after the ones that ran before it on its server (its
    slots as they left them), as they ran; the results in the order given. ``before``: the
    fitted runs, simulated first where they ran on a held-out run's server (one server
    measured both), so that its slots start where the measured server's did."""
    runs = [*(before or []), *held_out]
    metas = [read_run_meta(p / RUN_FILE) for p in runs]
    starts = [int(m.get("t0_wall_ns") or 0) for m in metas]
    telemetry = [read_telemetry(p / TELEMETRY_FILE) for p in runs]
    keys = server_keys([m.get("server") or {} for m in metas], starts, telemetry)
    first = len(runs) - len(held_out)
    held_keys = set(keys[first:])
    histories = {key: ServerHistory() for key in keys}
    out: dict[int, dict] = {}
    for k in sorted(range(len(runs)), key=lambda k: starts[k]):
        if k >= first or keys[k] in held_keys:
            out[k] = predict_like(
                model, model_path, runs[k], work / f"{k:03d}", histories[keys[k]], given_core,
                (speeds or {}).get(runs[k]),
            )  # fmt: skip
    return [out[k] for k in range(first, len(runs))]


def table(
    title: str,
    model: EngineModel,
    model_path: Path,
    held_out: list[Path],
    fitted: list[Path] | None = None,
    given_core: bool = False,
    speeds: dict[Path, float] | None = None,
) -> dict:
    errors: dict[str, list[float]] = {m: [] for m, _ in METRICS}
    within: dict[str, list[bool]] = {m: [] for m, _ in METRICS}
    # per run: whether the fit's self-check flagged its load, and whether TPOT or E2E p50
    # then missed the 5 % target
    flagged: list[tuple[bool, bool]] = []
    print(f"\n**{title}**\n")
    print("| run | " + " | ".join(m for m, _ in METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    with tempfile.TemporaryDirectory() as tmp:
        predictions = predicted_in_order(
            model, model_path, held_out, Path(tmp), fitted, given_core, speeds
        )
        for path, predicted in zip(held_out, predictions, strict=True):
            measured = json.loads((path / "results.json").read_text())
            recomputed = dict(load_run(path).results)
            cells = []
            for name, key in METRICS:
                m, p = dig(measured, key), dig(predicted, key)
                err = (p - m) / m
                errors[name].append(err)
                ok = inside(recomputed, key, p)
                if ok is not None:
                    within[name].append(ok)
                mark = " ≈" if ok else ""
                cells.append(f"{m:,.1f} → {p:,.1f} ({100 * err:+.1f} %){mark}")
            label = (
                f"{path.parent.parent.name}/{path.name}"
                if path.parent.name == "points"
                else path.name
            )
            told = predicted.get("prediction") or {}
            flag = bool(told.get("self_check"))
            if "core_slow_share" in told:
                label += f" (core slow {100 * told['core_slow_share']:.0f} %)"
            elif given_core:
                label += " (no pinned probe: the fit's mix)"
            if speeds is not None:
                told_speed = speeds.get(path)
                label += (
                    f" (steps {told_speed:.3f}×)"
                    if told_speed is not None
                    else " (speed not told: too few steps at the fit's sizes; as predicted)"
                )
            missed = any(abs(errors[name][-1]) > TARGETS[name] for name in ("TPOT p50", "E2E p50"))
            flagged.append((flag, missed))
            print(f"| {label}{' ⚑' if flag else ''} | " + " | ".join(cells) + " |")
    print("\nmedian |error| per metric (target):\n")
    for name, errs in errors.items():
        med = statistics.median(abs(e) for e in errs)
        worst = max(abs(e) for e in errs)
        held = within[name]
        noise = f"; inside the measured 95 % interval: {sum(held)} of {len(held)}" if held else ""
        print(
            f"- {name}: {100 * med:.1f} % ({100 * TARGETS[name]:.0f} %), "
            f"worst {100 * worst:.1f} %{noise}"
        )
    print(
        "\n≈: the prediction lies inside the 95 % interval of the measured percentile "
        "(from that run's requests alone, taken as random draws): its requests cannot tell "
        "the two apart."
    )
    hit = sum(f and m for f, m in flagged)
    print(
        f"⚑: the simulation warned that the fit does not hold its own runs near this load "
        f"({sum(f for f, _ in flagged)} of {len(flagged)} runs; TPOT or E2E p50 then missed "
        f"the 5 % target in {hit} of them, and in {sum(m and not f for f, m in flagged)} "
        f"of the {sum(not f for f, _ in flagged)} not flagged)."
    )
    q = model.quality
    for note in speed_notes(q.run_speeds) + host_notes(q.run_speeds, q.core_effect):
        print(f"\nthe fit: {note}.")
    return errors


def committed() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for fit_on, held, title in (
            (["llamacpp-f16-steady"], ["llamacpp-f16-val"],
             "H200, llama.cpp CUDA, Llama-2-7B f16: fitted on the c = 1…64 sweep, held out: c = 3, 6, 12, 24, 48"),
            (["llamacpp-f16-8b-steady", "llamacpp-f16-8b-steady-b"], ["llamacpp-f16-8b-val"],
             "H200, llama.cpp CUDA, Llama-3-8B f16: fitted on c = 1, 4, 8, 16, held out: c = 2, 8, 32"),
        ):  # fmt: skip
            path = Path(tmp) / f"{fit_on[0]}.json"
            model = fit_runs([H200 / s for s in fit_on])
            path.write_text(model.model_dump_json())
            fitted = [p for s in fit_on for p in finished_points(H200 / s)]
            table(title, model, path, [p for s in held for p in finished_points(H200 / s)], fitted)


def pin(pid: int, cores: str) -> None:
    """Every thread of ``pid`` onto ``cores`` (the server apart from the client)."""
    subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)], check=True, capture_output=True)


def bench(
    url: str,
    out: Path,
    *args: str,
    sweep: bool = False,
    pin_to: list[str] | None = None,
    ignore_eos: bool = True,
) -> Path:
    where = pin_to if pin_to is not None else ["taskset", "-c", "0"]
    eos = ["--ignore-eos"] if ignore_eos else []
    cmd = [*where, *IM, "sweep" if sweep else "bench", "--url", url, "--out", str(out),
           *eos, "-q", "--format", "json", *args]  # fmt: skip
    _run(cmd)
    return out


def _run(cmd: list[str]) -> str:
    """The command's output; the script stops with its error where it fails."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {res.stderr.strip()[-400:]}")
    return res.stdout


class TransformersServe(ServerProcess):
    """``transformers serve --continuous-batching`` on this machine's CPU (core 1), from a
    Python that has transformers 5 and its serving extras (``--serve-python``)."""

    name = "transformers serve"

    def __init__(self, python: str, hf_dir: Path, work: Path) -> None:
        super().__init__("127.0.0.1", None, work / "server.log", startup_timeout_s=120.0)
        self.python, self.hf_dir = python, hf_dir
        self.cpus = (1,)

    def command(self, port: int) -> list[str]:
        return [self.python, "-m", "transformers.cli.transformers", "serve", str(self.hf_dir),
                "--port", str(port), "--device", "cpu", "--continuous-batching"]  # fmt: skip

    def env(self) -> dict[str, str]:
        return dict(os.environ)


def live(args: argparse.Namespace) -> None:
    from contextlib import ExitStack

    from infermeter.cli.common import default_cache_dir
    from infermeter.engines.model import make_model, model_key
    from infermeter.engines.shapes import get_shape

    cache = default_cache_dir()
    shape = get_shape(args.shape)
    made = make_model(shape, cache / "models" / model_key(shape, 0, "f16"))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if args.engine == "llama.cpp":
            from infermeter.engines.llama_cpp import build_llama_server
            from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig

            cfg = LlamaServerConfig(build_llama_server(cache), made.gguf, alias=args.shape,
                                    ctx_per_slot=2048, slots=args.slots, threads=1,
                                    log_path=work / "server.log")  # fmt: skip
            server = stack.enter_context(LlamaServer(cfg))
            pin(server.proc.pid, "1")
        elif args.engine == "vllm":
            from infermeter.engines.vllm_cpu import VllmServer, install_vllm, vllm_config

            python = install_vllm(cache, say=lambda line: print(line, file=sys.stderr))
            cfg = vllm_config(python, made.hf_dir, served_name=args.shape, max_model_len=2048,
                              max_num_seqs=args.slots, log_path=work / "server.log")  # fmt: skip
            server = stack.enter_context(VllmServer(cfg))
        else:
            server = stack.enter_context(TransformersServe(args.serve_python, made.hf_dir, work))
        url = server.url
        # transformers serve refuses ignore_eos; a random-weight model rarely ends early
        run = partial(bench, ignore_eos=args.engine != "transformers-serve")
        if args.engine == "transformers-serve":
            # it serves the model by its path and loads it on the first request
            model_flag = ["--model", str(made.hf_dir)]
            run(url, work / "load", "-c", "1", "-n", "1", *model_flag, "--output-tokens", "4")
        else:
            model_flag = []
        lengths = [
            "--input-tokens",
            str(args.input_tokens),
            "--output-tokens",
            str(args.output_tokens),
        ]
        n = ["-n", str(args.requests), *model_flag]
        conc = ",".join(str(c) for c in args.fit_concurrency)
        sweep = run(url, work / "fit", "-c", conc, *n, *lengths, "--seed", "1", "--keep-going",
                      sweep=True)  # fmt: skip
        model_path = work / "engine.json"
        model = fit_runs([sweep])
        model_path.write_text(model.model_dump_json(indent=2))
        top = max(
            load_run(p).results["summary"]["request_throughput_rps"] for p in finished_points(sweep)
        )
        held: list[Path] = []
        for share in (0.3, 0.6, 0.9):
            held.append(run(url, work / f"rate-{int(share * 100)}", "--rate", f"{share * top:.4f}",
                              *n, *lengths, "--seed", str(10 + int(share * 10))))  # fmt: skip
        between = args.between
        held.append(
            run(url, work / f"c{between}", "-c", str(between), *n, *lengths, "--seed", "21")
        )
        mix = ["--input-tokens", f"uniform:{args.input_tokens // 2}:{args.input_tokens * 3 // 2}",
               "--output-tokens", f"uniform:{args.output_tokens // 2}:{args.output_tokens * 3 // 2}"]  # fmt: skip
        held.append(run(url, work / "mix-c4", "-c", "4", *n, *mix, "--seed", "22"))
        if args.bracket:
            # other prompts than the first sweep's: the same ones would be served from the
            # server's prompt cache
            again = run(url, work / "fit-again", "-c", conc, *n, *lengths, "--seed", "2",
                          "--keep-going", sweep=True)  # fmt: skip
    seqs = (
        "continuous batching" if args.engine == "transformers-serve" else f"{args.slots} sequences"
    )
    title = (f"{args.engine} on this machine's CPU ({args.shape}, {seqs}): fitted on "
             f"c = {conc}, held out: Poisson at 30/60/90 % of {top:.2f} req/s, c = {between}, "
             "another length mix at c = 4")  # fmt: skip
    table(title, model, model_path, held, finished_points(sweep))
    if args.bracket:
        # The same sweep before and after the held-out runs, fitted together: a fit that
        # spans the minutes the held-out runs were measured in, so that the host's drift
        # over them (a few % on a shared VM) is told apart from the model's own error.
        both = work / "engine-bracket.json"
        bracket = fit_runs([sweep, again])
        both.write_text(bracket.model_dump_json(indent=2))
        fitted = [*finished_points(sweep), *finished_points(again)]
        print("\nthe fit sweep before the held-out runs and after them (the host's drift):\n")
        print("| point | TPOT p50 before → after | E2E p50 before → after |")
        print("|---|---|---|")
        for a, b in zip(finished_points(sweep), finished_points(again), strict=False):
            ra, rb = (json.loads((p / "results.json").read_text()) for p in (a, b))
            cells = []
            for key in ("tpot_ms", "e2e_ms"):
                path = ("distributions", key, "p50")
                x, y = dig(ra, path), dig(rb, path)
                cells.append(f"{x:,.2f} → {y:,.2f} ({100 * (y - x) / x:+.1f} %)")
            print(f"| {a.name} | " + " | ".join(cells) + " |")
        table(f"{title}; fitted on that sweep and on the same sweep run again after them",
              bracket, both, held, fitted)  # fmt: skip


def _plan(model_path: Path, rate: float, slo: str, lengths: list[str], n: int) -> dict:
    cmd = [*IM, "plan", "-e", str(model_path), "--rate", f"{rate:.4f}", "--slo", slo,
           "--router", "round-robin", "-n", str(n), "--seed", "7", *lengths, "--format", "json"]  # fmt: skip
    return json.loads(_run(cmd))  # type: ignore[no-any-return]


def replicas(args: argparse.Namespace) -> None:
    from contextlib import ExitStack

    from infermeter.cli.common import default_cache_dir
    from infermeter.engines.llama_cpp import build_llama_server
    from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig
    from infermeter.engines.model import make_model, model_key
    from infermeter.engines.shapes import get_shape

    cache = Path(args.cache) if args.cache else default_cache_dir()
    if args.gguf:
        gguf = Path(args.gguf)
    else:
        shape = get_shape(args.shape)
        gguf = make_model(shape, cache / "models" / model_key(shape, 0, "f16")).gguf
    binary = (
        Path(args.binary)
        if args.binary
        else build_llama_server(cache, source=Path(args.source) if args.source else None)
    )
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cores = args.cores.split(",")
    lengths = ["--input-tokens", str(args.input_tokens), "--output-tokens", str(args.output_tokens)]
    # what the analysis (and the fit's floor on a pass) is told, where given
    told = [a for flag, v in (("--gpu", args.gpu), ("--model-shape", args.model_shape),
                              ("--weight-dtype", args.weight_dtype)) if v for a in (flag, v)]  # fmt: skip
    n = ["-n", str(args.requests), *told]
    # no host-RAM prompt cache: its save of the last prompt's KV, GPU to host, holds every
    # new request back (~135 ms a request for the 7B on an H100), a cost the fit would learn
    # as queueing, and the random prompts never share a prefix for it to serve
    offload = (*(("-ngl", str(args.gpu_layers)) if args.gpu_layers else ()), "--cache-ram", "0")

    def start(stack: ExitStack, count: int, label: str) -> list[LlamaServer]:
        """Fresh servers (no prompt of an earlier run in their slots' caches), each on its own
        cores (and all on the one GPU, with --gpu-layers)."""
        servers = []
        for i, core in enumerate(cores[:count]):
            cfg = LlamaServerConfig(binary, gguf, alias=args.shape, ctx_per_slot=2048,
                                    slots=args.slots, threads=args.threads, extra_args=offload,
                                    log_path=work / f"server-{label}-{i}.log")  # fmt: skip
            server = stack.enter_context(LlamaServer(cfg))
            pin(server.proc.pid, core)
            servers.append(server)
        return servers

    with ExitStack() as stack:
        servers = start(stack, 1, "fit")
        client = ["taskset", "-c", args.client_core]
        conc = ",".join(str(c) for c in args.fit_concurrency)
        sweep = bench(servers[0].url, work / "fit", "-c", conc, *n, *lengths, "--seed", "1",
                      "--keep-going", sweep=True, pin_to=client)  # fmt: skip
        model_path = work / "engine.json"
        model_path.write_text(fit_runs([sweep]).model_dump_json(indent=2))
        # the limit: the p95 E2E the sweep's busiest point measured (a replica kept as busy
        # as a closed loop of that many streams keeps it)
        last = load_run(finished_points(sweep)[-1]).results["distributions"]["e2e_ms"]
        slo = f"p95_e2e_ms={last['p95']:.1f}"
        one = _plan(model_path, 0.01, slo, lengths, args.requests)["max_rate_per_replica_rps"]
        rate = args.past * one
        plan = _plan(model_path, rate, slo, lengths, args.requests)
        k = int(plan["replicas"])
        print(f"SLO {slo}; one replica sustains {one:.3f} req/s (predicted); asked {rate:.3f} "
              f"req/s; plan: {k} replicas", flush=True)  # fmt: skip
        rows = []
        for count in sorted({max(1, k - 1), k}):
            if count > len(cores):
                print(f"plan asks {count} replicas: only {len(cores)} cores given", flush=True)
                continue
            stack.close()
            servers = start(stack, count, f"r{count}")
            port = 18300 + count
            ups = [a for s in servers for a in ("--upstream", s.url)]
            proxy = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    args.proxy_core,
                    *IM,
                    "proxy",
                    *ups,
                    "--router",
                    "round-robin",
                    "--listen",
                    f"127.0.0.1:{port}",
                ],
                stderr=subprocess.DEVNULL,
            )
            stack.callback(proxy.terminate)
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            run = bench(f"http://127.0.0.1:{port}", work / f"replicas-{count}", "--rate",
                        f"{rate:.4f}", *n, *lengths, "--seed", "7", "--slo", slo,
                        pin_to=client)  # fmt: skip
            proxy.terminate()
            proxy.wait()
            got = load_run(run).results
            predicted = plan["at_replicas"] if count == k else plan["one_fewer"]
            rows.append((count, predicted, got))
    # the replicas all shared the one GPU: its simulation with them packed onto it (the
    # servers are down by now: it needs only the engine model)
    packed: dict[int, Results] = {
        count: _shared_gpu(model_path, count, rate, slo, lengths, args.requests)
        for count, _, _ in rows
        if args.gpu_layers and count > 1
    }
    print("\n| replicas | p95 E2E predicted (ms) | p95 E2E measured (ms) | p50 TTFT predicted / "
          "measured (ms) | SLO predicted | SLO measured |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for count, predicted, got in rows:
        d = got["distributions"]
        lat = predicted["latency_ms"]
        met = (got.get("slo") or {}).get("passed")
        print(f"| {count} | {lat['e2e_ms']['p95']:,.1f} | {d['e2e_ms']['p95']:,.1f} | "
              f"{lat['ttft_ms']['p50']:,.1f} / {d['ttft_ms']['p50']:,.1f} | "
              f"{'pass' if predicted['passed'] else 'fail'} | {'pass' if met else 'fail'} |")  # fmt: skip
        if count in packed:
            sd = packed[count]["distributions"]
            ok = (packed[count].get("slo") or {}).get("passed")
            print(f"| {count}, `--replicas-per-gpu {count}` | {sd['e2e_ms']['p95']:,.1f} | "
                  f"{d['e2e_ms']['p95']:,.1f} | {sd['ttft_ms']['p50']:,.1f} / "
                  f"{d['ttft_ms']['p50']:,.1f} | {'pass' if ok else 'fail'} | "
                  f"{'pass' if met else 'fail'} |")  # fmt: skip


def _shared_gpu(
    model_path: Path, count: int, rate: float, slo: str, lengths: list[str], requests: int
) -> Results:
    """The simulated run of ``count`` replicas packed onto one GPU at the measured run's
    rate, seed and limit."""
    with tempfile.TemporaryDirectory() as tmp:
        out = _run([*IM, "simulate", "-e", str(model_path), "--rate", f"{rate:.4f}",
                    "-n", str(requests),
                    *lengths, "--seed", "7", "--replicas", str(count), "--router",
                    "round-robin", "--replicas-per-gpu", str(count), "--slo", slo, "--out",
                    f"{tmp}/run", "--format", "json"])  # fmt: skip
    doc: Results = json.loads(out)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="mode", required=True)
    sub.add_parser("committed")
    tb = sub.add_parser("table", help="fit on --fit, predict --held (run or sweep directories)")
    tb.add_argument("--fit", nargs="+", type=Path, required=True)
    tb.add_argument("--held", nargs="+", type=Path, required=True)
    tb.add_argument("--title", default="held-out runs")
    tb.add_argument("--max-seqs", type=int, default=None, help="as fit's (the server's limit)")
    tb.add_argument(
        "--on-gpu",
        default=None,
        help="carry the fitted model to this catalogue GPU first, as simulate --on-gpu does "
        "(the held-out runs measured there: the what-if checked)",
    )
    tb.add_argument("--scaling", choices=("roofline", "bandwidth", "compute"), default="roofline")
    tb.add_argument(
        "--given-core",
        action="store_true",
        help="a second table: each held-out run simulated at the share of the time its own "
        "server core read slow (simulate --core-slow-share), which the host decided, not "
        "the load: the model's error apart from the host's (a share of time, each step "
        "by its batch size's own fast and slow measures)",
    )
    tb.add_argument(
        "--given-speed",
        action="store_true",
        help="a second table: each held-out run simulated with its decode steps at the "
        "speed they ran at against the fitted runs' (read off a fit of the run alone, at "
        "the batch sizes both measured): not a "
        "prediction, the host's drift between runs taken out, so what is left is the "
        "model's",
    )
    lv = sub.add_parser("live")
    lv.add_argument(
        "--engine", choices=("llama.cpp", "vllm", "transformers-serve"), default="llama.cpp"
    )
    lv.add_argument(
        "--serve-python",
        default=sys.executable,
        help="for transformers-serve: a Python with transformers 5 and its serving extras",
    )
    lv.add_argument("--shape", default="demo")
    lv.add_argument("--slots", type=int, default=4)
    lv.add_argument("--requests", type=int, default=60)
    lv.add_argument("--input-tokens", type=int, default=128)
    lv.add_argument("--output-tokens", type=int, default=64)
    lv.add_argument("--fit-concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    lv.add_argument("--between", type=int, default=3)
    lv.add_argument(
        "--bracket",
        action="store_true",
        help="run the fit sweep again after the held-out runs; a second table fitted on both",
    )
    lv.add_argument("--work", default="/tmp/prediction-live")
    rp = sub.add_parser("replicas", help="plan's replica count, measured behind the proxy")
    rp.add_argument("--shape", default="demo")
    rp.add_argument("--slots", type=int, default=4)
    rp.add_argument("--requests", type=int, default=120)
    rp.add_argument("--input-tokens", type=int, default=128)
    rp.add_argument("--output-tokens", type=int, default=64)
    rp.add_argument("--fit-concurrency", type=int, nargs="+", default=[1, 2, 4])
    rp.add_argument("--cores", default="0,1", help="a core per replica, comma-separated")
    rp.add_argument("--client-core", default="0")
    rp.add_argument("--proxy-core", default="1")
    rp.add_argument("--past", type=float, default=1.6, help="rate asked, × one replica's")
    rp.add_argument("--source", default="", help="engine pack-source tarball (offline build)")
    rp.add_argument("--binary", default="", help="a llama-server already built (no build)")
    rp.add_argument("--gguf", default="", help="a model already written (--shape: its alias)")
    rp.add_argument("--gpu-layers", type=int, default=0, help="layers each replica offloads")
    rp.add_argument("--threads", type=int, default=1, help="threads of each replica")
    rp.add_argument("--gpu", default="", help="as bench's, for the analysis and the fit")
    rp.add_argument("--model-shape", default="", help="as bench's")
    rp.add_argument("--weight-dtype", default="", help="as bench's")
    rp.add_argument("--cache", default="")
    rp.add_argument("--work", default="/tmp/prediction-replicas")
    args = ap.parse_args()
    if args.mode == "table" and args.given_core and args.on_gpu:
        # the held-out runs' probe would be read against another machine's cores
        sys.exit("--given-core: not with --on-gpu (the held-out runs ran on another host)")
    if args.mode == "table" and args.given_speed and args.on_gpu:
        sys.exit("--given-speed: not with --on-gpu (the held-out runs ran on another GPU)")
    if args.mode == "committed":
        committed()
    elif args.mode == "table":
        held = [p for h in args.held for p in (finished_points(h) if is_sweep_dir(h) else [h])]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "engine.json"
            model = fit_runs(args.fit, max_seqs=args.max_seqs)
            if args.on_gpu:
                from infermeter.predict.hardware import carry_to

                try:
                    model = carry_to(model, args.on_gpu, args.scaling)
                except UsageError as exc:
                    sys.exit(str(exc))
            path.write_text(model.model_dump_json())
            fitted = [p for f in args.fit for p in (finished_points(f) if is_sweep_dir(f) else [f])]
            table(args.title, model, path, held, fitted)
            if args.given_core:
                effect = model.quality.core_effect
                if effect is None:
                    sys.exit("--given-core: the fit measured no core effect")
                if effect.fast_us is None:
                    sys.exit("--given-core: the fit predates the probe's fast level (fast_us)")
                table(
                    f"{args.title}, each at the share of the time its own server core read "
                    f"slow (fit: {100 * effect.slow_share:.0f} %, slow steps "
                    f"{effect.median:.2f}× fast): not a prediction, the host's state read "
                    "off the run",
                    model, path, held, fitted, given_core=True,
                )  # fmt: skip
            if args.given_speed:
                speeds = {
                    h: f for h in held if (f := measured_speed(h, model)) is not None
                }  # fmt: skip
                table(
                    f"{args.title}, each with its decode steps at its own speed against the "
                    "fitted runs' (read off the run): not a prediction, the host's drift "
                    "between runs taken out",
                    model, path, held, fitted, speeds=speeds,
                )  # fmt: skip
    elif args.mode == "replicas":
        replicas(args)
    else:
        live(args)


if __name__ == "__main__":
    main()
