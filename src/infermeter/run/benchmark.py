"""One benchmark run: discover the server, plan the workload, send the load (in this process,
in worker processes or on a Ray cluster) with telemetry beside it, and summarise.

Example (needs a server or files at hand)::

    from infermeter import BenchConfig, run_benchmark, load_run
    run = run_benchmark(BenchConfig(url="http://127.0.0.1:8080", concurrency=4,
                                    num_requests=32, input_tokens="256", output_tokens="64",
                                    out="runs/c4"))
    run.results["summary"]["output_token_throughput_tok_s"]
    load_run("runs/c4").metrics.distributions["ttft_ms"].p99
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import functools
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from rich.console import Console

from infermeter._version import __version__
from infermeter.clients import clock as stamping_loop
from infermeter.clients import inprocess
from infermeter.clients.discovery import ServerInfo, discover
from infermeter.clients.formats import ApiFormat, RequestOptions
from infermeter.clients.openai_chat import ChatCompletions
from infermeter.clients.openai_completions import Completions
from infermeter.clients.stream import StreamingClient, StreamTransport
from infermeter.clients.transport import HttpTransport, Timeouts, open_clients
from infermeter.config import BenchConfig
from infermeter.errors import ServerError, UsageError
from infermeter.load.partition import auto_workers, partition
from infermeter.load.runner import Listener, LoadPlan, Runner, RunState
from infermeter.load.sessions import SessionRunner
from infermeter.load.streams import bounded_streams
from infermeter.records.rundir import (
    RECORDS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    RUN_SCHEMA_VERSION,
    TELEMETRY_FILE,
    WARMUP_FILE,
    write_json,
)
from infermeter.records.schema import RequestRecord
from infermeter.records.sink import JsonlSink
from infermeter.report.progress import LiveProgress
from infermeter.results.build import flag_error, full_results
from infermeter.run import ray_pool
from infermeter.run.local_pool import PoolOutcome, WorkerJob, client_report, run_pool
from infermeter.run.rundir import Run, load_run, remove_empty
from infermeter.run.trace import trace_window, window_meta
from infermeter.schema.results import RunOutcome
from infermeter.telemetry import (
    HostSampler,
    NvmlSampler,
    PrometheusSampler,
    Sampler,
    TelemetryRecorder,
)
from infermeter.text import counted
from infermeter.theory import get_hardware, resolve_model
from infermeter.workload.plan import (
    WorkloadPlan,
    dataset_plan,
    sessions_plan,
    synthetic_plan,
    trace_plan,
)
from infermeter.workload.sessions import SessionScript
from infermeter.workload.synthetic import SyntheticPromptBuilder
from infermeter.workload.tokenizer import LocalTokenizer, ServerTokenizer, TokenCounter
from infermeter.workload.traces import Trace, rebased
from infermeter.workload.types import Prompt

#: The pre-flight prompt's words, in tokens. Long enough that the chat template's few
#: tokens, which every prompt shares, stay under a tenth of it: llama-server gives a prompt
#: sharing more than a tenth with an idle slot's cached one (--slot-prompt-similarity) that
#: slot instead of the least recently used, so a shorter probe (24 tokens with Llama-2's
#: template, 3 shared) landed on the lowest slot that had held a prompt, out of the order
#: the run's requests then take slots in, and split their batches into extra forward
#: passes for the whole run (docs/results/prediction.md, "What the server says").
SERVER_PROBE_TOKENS = 48


class Sender(Protocol):
    """Sends one request and returns its record: the HTTP client or an in-process engine."""

    async def send(
        self, rid: int, prompt: Prompt, t_sched_abs_ns: int, *, phase: str = ..., worker: int = ...
    ) -> RequestRecord: ...


def _check_analysis_flags(config: BenchConfig) -> None:
    """``--gpu`` and ``--model-shape`` name something known, before anything is measured."""
    if config.gpu:
        try:
            get_hardware(config.gpu)
        except UsageError as exc:
            raise flag_error("--gpu", exc) from None
    if config.model_shape:
        try:
            resolve_model(config.model_shape)
        except UsageError as exc:
            raise flag_error("--model-shape", exc) from None


def _out_dir(config: BenchConfig) -> Path:
    if config.out is not None:
        out = config.out
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / stamp
    if (out / RECORDS_FILE).exists() or (out / RUN_FILE).exists():
        raise UsageError(f"--out {out} already holds a run; choose another directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create it ({exc.strerror})") from None
    return out


async def _choose_counter(
    config: BenchConfig, transport: HttpTransport, info: ServerInfo
) -> tuple[TokenCounter | None, LocalTokenizer | None]:
    if config.tokenizer is not None:
        local = LocalTokenizer(config.tokenizer)
        return local, local
    if info.tokenize_style is not None:
        counter = ServerTokenizer(
            transport.post_json, info.origin, info.model, info.tokenize_style, config.api
        )
        try:
            await counter.count("probe")
        except Exception:  # a server without a working /tokenize is fine
            return None, None
        try:
            await counter.count_prompt("probe")
        except Exception:  # bare counts plus the probe's overhead will do
            counter.prompt_counting = False
        return counter, None
    return _model_folder_tokenizer(info.model)


def _model_folder_tokenizer(model: str | None) -> tuple[TokenCounter | None, LocalTokenizer | None]:
    """A server without a tokenize endpoint that serves a model from a local folder (as
    transformers serve and vLLM do, named by its path): that folder's tokenizer sizes prompts."""
    if not model or not (Path(model).expanduser() / "tokenizer.json").is_file():
        return None, None
    try:
        local = LocalTokenizer(Path(model).expanduser())
    except UsageError:  # no tokenizers package: prompts stay approximate, and say so
        return None, None
    return local, local


async def _probe(
    client: Sender, counter: TokenCounter | None, seed: int, url: str
) -> tuple[int, list[str], RequestRecord]:
    """One tiny request: proves the endpoint works and measures what the server adds to a
    prompt (BOS, chat template) so prompt lengths can be exact as the server counts them.
    Returns that overhead, the transient failures retried before it succeeded, and its
    record (kept with the warm-up's: it took a slot of the server, which a fit replays)."""
    if counter is not None:
        text, n = await SyntheticPromptBuilder(counter, seed=seed + 7919).build(SERVER_PROBE_TOKENS)
    else:
        text, n = "Say something about the weather in spring.", None
    failures: list[str] = []
    for delay in (*PREFLIGHT_BACKOFF_S, None):
        rec = await client.send(-1, Prompt(text, 1, None), time.perf_counter_ns(), phase="probe")
        if rec.ok:
            break
        failures.append(rec.error_message or rec.error_kind or "failed")
        if delay is None or not _transient(rec):
            tries = f" ({counted(len(failures), 'attempt')})" if len(failures) > 1 else ""
            raise ServerError(f"the pre-flight request to {url} failed{tries}: {failures[-1]}")
        await asyncio.sleep(delay)
    overhead = 0
    if n is not None and rec.n_in_source == "server" and rec.n_in is not None:
        overhead = max(rec.n_in - n, 0)
    return overhead, failures, rec


#: Waits before each retry of a failed pre-flight request: one unlucky answer from a server
#: that fails a share of its requests must not stop the run; a persistent failure does.
PREFLIGHT_BACKOFF_S = (0.5, 1.0, 2.0)


def _transient(rec: RequestRecord) -> bool:
    """A failure worth retrying: a 5xx or 429 answer, or a connection reset or refused."""
    status = rec.http_status or 0
    return status >= 500 or status == 429 or rec.error_kind == "connection"


async def _run_async(
    config: BenchConfig, out: Path, console: Console | None, seed_drawn: bool = False
) -> RunOutcome:
    headers = dict(config.headers)
    if config.api_key is not None:
        headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
    timeouts = Timeouts(config.request_timeout_s, config.connect_timeout_s, config.stall_timeout_s)
    fmt: ApiFormat = ChatCompletions() if config.api == "chat" else Completions()
    if config.url.startswith(inprocess.SCHEME):  # no HTTP at all
        return await _run_inprocess(config, out, console, fmt, headers, timeouts, seed_drawn)
    transport, raw = open_clients(headers, timeouts)
    async with transport, raw:
        info = await discover(transport, config.url, config.model)
        options = RequestOptions(
            model=info.model,
            per_chunk_usage=info.kind == "vllm",
            ignore_eos=config.ignore_eos,
            temperature=config.temperature,
            extra_body=dict(config.extra_body),
            think_tags=config.think_tags,
        )
        counter, local = await _choose_counter(config, transport, info)
        t0 = time.perf_counter_ns()
        wall0 = time.time_ns()
        streamer: StreamTransport = transport if config.transport == "aiohttp" else raw
        client = StreamingClient(
            streamer,
            info.base_url,
            fmt,
            options,
            t0_ns=t0,
            count_tokens=local.count_sync if local else None,
            secrets=config.secrets,
        )
        target = _Target(
            info, client, counter, fmt, options, headers, timeouts, t0, wall0, seed_drawn
        )
        return await _measure(config, out, console, target)


@dataclass(frozen=True)
class _Target:
    """What the run talks to, opened and discovered."""

    info: ServerInfo
    client: Sender
    counter: TokenCounter | None
    fmt: ApiFormat
    options: RequestOptions
    headers: dict[str, str]
    timeouts: Timeouts
    t0: int
    wall0: int
    #: The run's seed was drawn for it (no --seed given).
    seed_drawn: bool = False


async def _run_inprocess(
    config: BenchConfig,
    out: Path,
    console: Console | None,
    fmt: ApiFormat,
    headers: dict[str, str],
    timeouts: Timeouts,
    seed_drawn: bool,
) -> RunOutcome:
    """``--url hf:DIR``: the model runs in this process; one client, no workers."""
    if (config.workers or 1) > 1 or config.cluster:
        raise UsageError("--url hf:... runs the model in this process: no --workers or --cluster")
    t0 = time.perf_counter_ns()
    wall0 = time.time_ns()
    engine = await asyncio.to_thread(
        inprocess.HFInProcess,
        config.url,
        inprocess.HFOptions(
            device=config.hf_device,
            dtype=config.hf_dtype,
            max_batch=config.hf_max_batch or config.concurrency or config.max_concurrency,
            cache=config.hf_cache,
            compile=config.hf_compile,
            compile_mode=config.hf_compile_mode,
        ),
        api=config.api,
        t0_ns=t0,
    )
    try:
        counter: TokenCounter = (
            engine if config.tokenizer is None else LocalTokenizer(config.tokenizer)
        )
        options = RequestOptions(model=engine.path.name, ignore_eos=True)
        target = _Target(
            engine.info, engine, counter, fmt, options, headers, timeouts, t0, wall0, seed_drawn
        )
        status = await _measure(config, out, console, target)
        status["engine_memory"] = engine.memory()
        return status
    finally:
        await asyncio.to_thread(engine.close)


async def _measure(
    config: BenchConfig, out: Path, console: Console | None, target: _Target
) -> RunOutcome:
    """Probe, build the workload, write run.json, then send the load with telemetry beside."""
    info, client, counter = target.info, target.client, target.counter
    seed = config.seed
    assert seed is not None, "run_benchmark fixes the seed before the run"
    in_spec, out_spec = config.input_spec(), config.output_spec()
    # Before any request: one that cannot fit would fail, and so would every measured one.
    limit = info.context_limit
    trace = _trace(config, limit, info.context_source) if config.trace is not None else None
    if limit is not None and config.dataset is None and trace is None and not config.sessions:
        need = in_spec.upper + out_spec.upper
        if need > limit:
            raise UsageError(
                f"--input-tokens {in_spec} + --output-tokens {out_spec} need up to {need} "
                f"tokens but the server's context is {limit} tokens ({info.context_source})"
            )
    overhead, preflight_failures, probe = await _probe(client, counter, seed, info.base_url)
    plan: WorkloadPlan
    if config.sessions is not None:
        if config.dataset is None:
            _check_sessions_context(config, limit, info.context_source)
        plan = await sessions_plan(
            n_sessions=config.sessions,
            turns=config.turns_spec(),
            input_spec=in_spec,
            output_spec=out_spec,
            think=config.think_spec(),
            n_warmup=config.warmup,
            counter=counter,
            overhead=overhead,
            seed=seed,
            dataset=(config.dataset, config.dataset_format) if config.dataset else None,
            given_output="output_tokens" in config.model_fields_set,
            turns_cap="turns" in config.model_fields_set,
        )
        if config.dataset is not None and limit is not None:
            _check_conversations_context(plan, limit, info.context_source, config.dataset)
    elif trace is not None:
        plan = await trace_plan(
            trace=trace,
            n_warmup=config.warmup,
            counter=counter,
            overhead=overhead,
            seed=seed,
            window=window_meta(config),
        )
    elif config.dataset is not None:
        plan = await dataset_plan(
            path=config.dataset,
            fmt=config.dataset_format,
            output_spec=out_spec if "output_tokens" in config.model_fields_set else None,
            n_warmup=config.warmup,
            n_measure=config.pool_size(),
            counter=counter,
            overhead=overhead,
            seed=seed,
        )
    else:
        plan = await synthetic_plan(
            input_spec=in_spec,
            output_spec=out_spec,
            n_warmup=config.warmup,
            n_measure=config.pool_size(),
            counter=counter,
            overhead=overhead,
            shared_prefix_tokens=config.shared_prefix_tokens,
            seed=seed,
        )
    if limit is not None and config.dataset is not None and config.sessions is None:
        _check_dataset_context(plan, limit, info.context_source, config.dataset)
    meta = {
        "schema_version": RUN_SCHEMA_VERSION,
        "infermeter_version": __version__,
        "run_id": uuid.uuid4().hex[:12],
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "t0_wall_ns": target.wall0,
        "config": config.public_dict(),
        "seed_drawn": target.seed_drawn,
        "server": info.to_dict(),
        "workload": plan.meta,
        "preflight_failures": preflight_failures,
    }
    write_json(out / RUN_FILE, meta)
    load = _load_plan(config, plan.offsets_s)
    if plan.sessions is not None:
        # an open loop's schedule is of sessions, one arrival each
        load = dataclasses.replace(load, num_requests=len(plan.sessions))
    samplers: list[Sampler] = []
    if config.telemetry:
        samplers = [
            HostSampler(client_pid=os.getpid(), server_port=_loopback_port(info.origin)),
            NvmlSampler(),
        ]
        if not info.base_url.startswith(inprocess.SCHEME):
            samplers.append(PrometheusSampler(info.origin, info.kind, headers=target.headers))
    with TelemetryRecorder(out / TELEMETRY_FILE, samplers, target.t0) as recorder:
        prepared = _Prepared(
            config,
            load,
            plan,
            info,
            target.fmt,
            target.options,
            target.headers,
            target.timeouts,
            target.wall0,
            probe,
        )
        status = await _drive(prepared, out, console, client)
    status["telemetry_notes"] = recorder.notes
    return status


def _check_sessions_context(config: BenchConfig, limit: int | None, source: str | None) -> None:
    """A conversation grows by a message and an answer a turn: the longest must fit the
    server's context, or its last turns would fail."""
    if limit is None:
        return
    turns = config.turns_spec().upper
    need = turns * (config.input_spec().upper + config.output_spec().upper)
    if need > limit:
        raise UsageError(
            f"--sessions: a conversation of up to {turns} turns of --input-tokens "
            f"{config.input_tokens} and --output-tokens {config.output_tokens} reaches {need} "
            f"tokens, more than the server's context of {limit} ({source}); ask for fewer "
            "turns or shorter messages"
        )


def _check_conversations_context(
    plan: WorkloadPlan, limit: int, source: str | None, dataset: Path
) -> None:
    """A dataset's conversation whose messages and answers could outgrow the server's
    context: refused before any load (its last turns would fail)."""
    assert plan.sessions is not None
    overhead = int(plan.meta.get("overhead_tokens") or 0)
    longest = max(
        sum((t.user_tokens or 0) + t.max_tokens + overhead for t in s.turns) for s in plan.sessions
    )
    if longest > limit:
        raise UsageError(
            f"--dataset {dataset}: a conversation reaches {longest} tokens with its answers, "
            f"more than the server's context of {limit} ({source}); pass --turns N to keep "
            "fewer turns, or lower --output-tokens"
        )


def _trace(config: BenchConfig, limit: int | None, source: str | None) -> Trace:
    """The trace's window to replay; a request longer than the server's context is refused
    before any load (or, with --skip-bad-rows, left out and counted)."""
    trace = trace_window(config)
    if limit is None:
        return trace
    over = [r for r in trace.requests if r.input_tokens + r.output_tokens > limit]
    if not over:
        return trace
    if not config.skip_bad_rows:
        first = over[0]
        raise UsageError(
            f"{trace.path}:{first.line}: {first.input_tokens} + {first.output_tokens} tokens "
            f"(prompt and output) exceed the server's context of {limit} tokens ({source}); "
            f"{counted(len(over), 'request')} of the trace do (or pass --skip-bad-rows)"
        )
    keep = [r for r in trace.requests if r.input_tokens + r.output_tokens <= limit]
    if not keep:
        raise UsageError(
            f"--trace {trace.path}: every request exceeds the server's context of {limit} tokens"
        )
    skipped = {**trace.skipped, "over the context": len(over)}
    return dataclasses.replace(
        trace,
        requests=rebased(keep),
        skipped=skipped,
        first_skipped=trace.first_skipped
        or f"{trace.path}:{over[0].line}: longer than the server's context",
    )


def _check_dataset_context(
    plan: WorkloadPlan, limit: int, source: str | None, dataset: Path
) -> None:
    """Dataset prompts that cannot fit the server's context: refused before any load (each
    would fail with an HTTP 400 and the run would measure nothing)."""
    over = [
        p.n_in_target + p.max_tokens
        for p in (*plan.warmup, *plan.measure)
        if p.n_in_target is not None and p.n_in_target + p.max_tokens > limit
    ]
    if over:
        raise UsageError(
            f"--dataset {dataset}: {counted(len(over), 'request')} need more tokens (up to "
            f"{max(over)}, prompt and output) than the server's context of {limit} tokens "
            f"({source}); shorten them or lower --output-tokens"
        )


def _loopback_port(origin: str) -> int | None:
    """The port of a server on this machine (its process's CPU is then the server's)."""
    parts = urlsplit(origin)
    host = (parts.hostname or "").lower()
    if host == "localhost" or host == "::1" or host.startswith("127."):
        return parts.port or (443 if parts.scheme == "https" else 80)
    return None


@dataclass(frozen=True)
class _Prepared:
    """A run ready to send: everything decided before the load starts."""

    config: BenchConfig
    load: LoadPlan
    plan: WorkloadPlan
    info: ServerInfo
    fmt: ApiFormat
    options: RequestOptions
    headers: dict[str, str]
    timeouts: Timeouts
    wall0: int
    #: The pre-flight request's record, written first to the warm-up's file.
    probe: RequestRecord | None = None


async def _drive(p: _Prepared, out: Path, console: Console | None, client: Sender) -> RunOutcome:
    """Send the load: in this process, in worker processes, or on a Ray cluster."""
    config, load, plan = p.config, p.load, p.plan

    async def send(rid: int, prompt: Prompt, t_sched: int, phase: str) -> RequestRecord:
        return await client.send(rid, prompt, t_sched, phase=phase)

    progress = (
        LiveProgress(
            _planned_requests(plan, config.num_requests),
            config.duration_s,
            console,
            warmup=len(plan.warmup),
        )
        if console
        else None
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # On a cluster, "auto" is not bounded by this machine's cores.
    n_workers = config.workers or auto_workers(load, 1 << 16 if config.cluster else cores or 1)
    if p.info.base_url.startswith(inprocess.SCHEME) or plan.sessions is not None:
        n_workers = 1  # the model lives in this process; a conversation needs its answers
    with JsonlSink(out / RECORDS_FILE) as sink, JsonlSink(out / WARMUP_FILE) as warm:
        if p.probe is not None:
            warm.write(p.probe)
        if n_workers > 1 or config.cluster:
            jobs = _worker_jobs(p, n_workers)
            if not config.cluster:
                return await _run_workers(jobs, sink, warm, progress, run_pool)
            owned = ray_pool.connect(config.cluster)  # from the main thread
            try:
                pool = functools.partial(ray_pool.run_ray, address=config.cluster)
                return await _run_workers(jobs, sink, warm, progress, pool)
            finally:
                if owned:
                    ray_pool.disconnect()
        listeners: list[Listener] = [sink] if progress is None else [sink, progress]
        runner = (
            _session_runner(client, load, plan.sessions, listeners, warm)
            if plan.sessions is not None
            else Runner(send, load, listeners=listeners, warmup_listeners=[warm])
        )
        if progress is not None:
            progress.attach(runner.state)
        with progress or contextlib.nullcontext():
            state = await runner.run(plan.measure, plan.warmup)
    return {
        "complete": state.aborted is None,
        "interrupted": False,
        "aborted": state.aborted,
        "client": [report] if (report := client_report(state.client, client)) else [],
    }


def _planned_requests(plan: WorkloadPlan, num_requests: int | None) -> int | None:
    """How many measured requests the run will send, where it is known beforehand."""
    if plan.sessions is not None:
        return sum(len(s.turns) for s in plan.sessions)
    if plan.offsets_s is not None:
        return len(plan.measure)
    return num_requests


def _session_runner(
    client: Sender,
    load: LoadPlan,
    scripts: list[SessionScript],
    listeners: list[Listener],
    warm: JsonlSink,
) -> SessionRunner:
    if not isinstance(client, StreamingClient):
        raise UsageError("--sessions needs an HTTP server")

    async def send_turn(
        rid: int, prompt: Prompt, t_sched: int, phase: str, answer: list[str]
    ) -> RequestRecord:
        return await client.send(rid, prompt, t_sched, phase=phase, answer=answer)

    return SessionRunner(send_turn, load, scripts, listeners=listeners, warmup_listeners=[warm])


def _load_plan(config: BenchConfig, trace_offsets_s: list[float] | None = None) -> LoadPlan:
    return LoadPlan(
        concurrency=config.concurrency,
        rate=config.rate,
        trace_offsets_s=tuple(trace_offsets_s) if trace_offsets_s is not None else None,
        arrival=config.arrival,
        burstiness=config.burstiness,
        max_concurrency=config.max_concurrency,
        num_requests=len(trace_offsets_s) if trace_offsets_s is not None else config.num_requests,
        duration_s=config.duration_s,
        warmup=config.warmup,
        seed=config.seed or 0,
        ramp_up_s=config.ramp_up_s,
        raise_priority=config.client_priority,
    )


def _worker_jobs(p: _Prepared, n_workers: int) -> list[WorkerJob]:
    config, plan = p.config, p.plan
    shares = partition(p.load, len(plan.measure), len(plan.warmup), n_workers)
    return [
        WorkerJob(
            share=share,
            prompts=[plan.measure[i] for i in share.prompt_indexes],
            warmup=[plan.warmup[i] for i in share.warmup_indexes],
            url=p.info.base_url,
            fmt=p.fmt,
            options=p.options,
            headers=p.headers,
            timeouts=p.timeouts,
            transport=config.transport,
            wall0_ns=p.wall0,
            n_workers=len(shares),
            tokenizer_path=str(config.tokenizer) if config.tokenizer else None,
            secrets=config.secrets,
        )
        for share in shares
    ]


Pool = Callable[
    [list[WorkerJob], Callable[[str, bytes], None], RunState, threading.Event], PoolOutcome
]


async def _run_workers(
    jobs: list[WorkerJob],
    sink: JsonlSink,
    warm: JsonlSink,
    progress: LiveProgress | None,
    pool: Pool,
) -> RunOutcome:
    """Run the jobs in worker processes; records are written here as they arrive."""
    state = RunState(phase="warmup" if any(j.warmup for j in jobs) else "measure")

    def on_record(phase: str, line: bytes) -> None:
        rec = RequestRecord.from_dict(orjson.loads(line))
        if phase == "warmup":
            warm.write(rec)
            state.finished += 1  # the progress line counts warm-up as finished less measured
            return
        sink.write(rec)
        state.finished += 1
        state.sent += 1
        state.failed += 0 if rec.ok else 1
        if progress is not None:
            progress.on_record(rec)

    stop = threading.Event()
    if progress is not None:
        progress.attach(state)
    with progress or contextlib.nullcontext():
        done = asyncio.ensure_future(asyncio.to_thread(pool, jobs, on_record, state, stop))
        try:
            outcome = await asyncio.shield(done)
        except asyncio.CancelledError:
            # Interrupted: the pool stops its workers and writes what they finished; the
            # run is summarised from disk only after that, so no finished record is lost.
            stop.set()
            await done
            raise
        finally:
            stop.set()
    aborted = "; ".join(outcome.aborted + outcome.failures) or None
    return {
        "complete": aborted is None,
        "interrupted": False,
        "aborted": aborted,
        "client": sorted(outcome.clients, key=lambda c: c["worker"]),
        "worker_failures": outcome.failures,
    }


def run_benchmark(config: BenchConfig, *, console: Console | None = None) -> Run:
    """Run one benchmark and return it; every record is on disk as its request finishes.

    ``console``: where to draw live progress (None: no progress display). On Ctrl-C the run
    stops, and what finished is returned with ``run.interrupted`` set.
    """
    _check_analysis_flags(config)
    asked = config.concurrency
    streams = bounded_streams(config.concurrency, config.num_requests)
    out = _out_dir(config)
    drawn = config.seed is None
    config = config.with_seed()
    if streams != asked:
        config = config.model_copy(update={"concurrency": streams})
    status: RunOutcome
    try:
        status = stamping_loop.run(_run_async(config, out, console, drawn))
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        # Requests record their own failures; this is the set-up (discovery, /tokenize).
        if (out / RUN_FILE).exists():
            raise
        remove_empty(out)
        raise ServerError(
            f"lost the server at {config.url} while preparing the run: {type(exc).__name__}: {exc}"
        ) from None
    except KeyboardInterrupt:
        status = {"complete": False, "interrupted": True, "aborted": None}
    except BaseException:
        # Nothing was measured: leave no half-made run directory behind.
        if not (out / RUN_FILE).exists():
            remove_empty(out)
        raise
    if not (out / RUN_FILE).exists():
        remove_empty(out)
        raise KeyboardInterrupt  # interrupted before the run started: nothing to keep
    status["out_dir"] = str(out)
    if streams != asked and asked is not None:
        status["concurrency_asked"] = asked
    run = load_run(out)
    run.status.update(status)
    run.results = full_results(run.meta, run.metrics, run.status, run.telemetry)
    write_json(out / RESULTS_FILE, run.results)
    return run
