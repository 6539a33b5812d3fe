"""The configuration of one benchmark run, validated once and passed down.

Field names are the CLI flags' names with underscores; an invalid value raises
:class:`UsageError` naming the flag.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Any, Literal, get_origin

import numpy as np
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from infermeter.clients.formats import owned_field_error
from infermeter.clients.secrets import secret_forms
from infermeter.errors import UsageError
from infermeter.metrics.slo import SLO, parse_slo
from infermeter.workload.datasets import check_dataset_path
from infermeter.workload.lengths import LengthSpec
from infermeter.workload.sessions import ThinkTime

#: Seeds are drawn below this (and a given one must be), so every seed is a plain JSON int.
SEED_MAX = 2**53 - 1


class BenchConfig(BaseModel):
    """Everything that defines a run. Secrets (``api_key``, ``headers``) are never written."""

    # No flag means anything at infinity or NaN: no arrival schedule, duration or timeout
    # can be built from one, so it is refused here, naming the flag.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    url: str
    model: str | None = None
    api: Literal["chat", "completions"] = "chat"
    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # -- load --
    concurrency: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0)
    arrival: Literal["poisson", "gamma", "constant"] = "poisson"
    burstiness: float = Field(default=1.0, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    num_requests: int | None = Field(default=None, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    warmup: int = Field(default=0, ge=0)
    #: Closed loop: start the streams evenly over this many seconds (not all at once).
    ramp_up_s: float = Field(default=0.0, ge=0)
    # -- workload --
    input_tokens: str = "512"
    output_tokens: str = "128"
    dataset: Path | None = None
    dataset_format: Literal["auto", "jsonl", "sharegpt"] = "auto"
    tokenizer: Path | None = None
    shared_prefix_tokens: int = Field(default=0, ge=0)
    prompt_pool: int = Field(default=1000, ge=1)
    #: Replay a trace: a Mooncake/BurstGPT/Azure/plain-JSONL file or a run directory.
    trace: Path | None = None
    trace_format: Literal["auto", "mooncake", "burstgpt", "azure", "jsonl", "run"] = "auto"
    #: The trace's gaps multiplied by this (0.5 replays twice as fast).
    time_scale: float = Field(default=1.0, gt=0)
    #: The window of the trace to replay, in the trace's own seconds.
    trace_start_s: float = Field(default=0.0, ge=0)
    trace_duration_s: float | None = Field(default=None, gt=0)
    #: Leave out (and count) trace rows that cannot be replayed instead of refusing the trace.
    skip_bad_rows: bool = False
    #: Multi-turn chat: this many sessions (the run's end), of ``turns`` turns each; a user
    #: thinks ``think_time`` seconds between an answer and the next turn.
    sessions: int | None = Field(default=None, ge=1)
    turns: str = "4"
    think_time: str = "0"
    #: Prompts, lengths and arrivals; None draws a fresh one per run (so a rerun never meets
    #: its own prompts in the server's prefix cache), recorded in run.json to repeat it.
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    # -- requests --
    ignore_eos: bool = False
    temperature: float | None = Field(default=None, ge=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    #: A reasoning model's thinking inside the answer's text as ``<think>…</think>``.
    think_tags: bool = False
    request_timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=30.0, gt=0)
    stall_timeout_s: float = Field(default=120.0, gt=0)
    #: HTTP client for the streams: the lean asyncio one, or aiohttp (for comparison).
    transport: Literal["raw", "aiohttp"] = "raw"
    #: Run the load at a raised scheduling priority where permitted (nice -10), so a busy
    #: host does not keep the client from reading its streams.
    client_priority: bool = True
    #: Client processes; None picks one per 128 streams, up to the cores available.
    workers: int | None = Field(default=None, ge=1)
    #: Run the workers as Ray actors: a Ray address ("auto", "ray://host:port", "host:port")
    #: or "local" (start a Ray instance on this machine).
    cluster: str | None = None
    #: Sample the host, NVIDIA GPUs and the server's /metrics during the run.
    telemetry: bool = True
    # -- in-process transformers backend (--url hf:MODEL_DIR) --
    hf_device: str = "auto"
    hf_dtype: str = "auto"
    #: Largest static batch; default: the concurrency (or --max-concurrency).
    hf_max_batch: int | None = Field(default=None, ge=1)
    hf_cache: Literal["dynamic", "static"] = "dynamic"
    hf_compile: bool = False
    hf_compile_mode: Literal["auto", "default", "reduce-overhead", "max-autotune"] = "auto"
    # -- analysis (speed of light, SLA, cost) --
    gpu: str | None = None
    model_shape: str | None = None
    gpus: int = Field(default=1, ge=1)
    tp: int = Field(default=1, ge=1)
    weight_dtype: str = "bf16"
    profile: str | None = None
    gpu_hourly_price: float | None = Field(default=None, gt=0)
    # -- judging and output --
    slo: str | None = None
    percentiles: tuple[float, ...] = ()
    max_error_rate: float = Field(default=0.0, ge=0, le=1)
    out: Path | None = None

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            _check_header(name, value)
        return headers

    @field_validator("dataset")
    @classmethod
    def _dataset_file(cls, path: Path | None) -> Path | None:
        if path is not None:
            check_dataset_path(path)
        return path

    @model_validator(mode="after")
    def _consistent(self) -> BenchConfig:
        if self.trace is not None:
            self._trace_consistent()
        elif (self.concurrency is None) == (self.rate is None):
            raise ValueError(
                "give exactly one of --concurrency N (closed loop), --rate R (open loop) or "
                "--trace FILE (a replay)"
            )
        elif self.sessions is not None:
            self._sessions_consistent()
        elif self.num_requests is None and self.duration_s is None:
            raise ValueError("give --num-requests K or --duration S (or both) to say when to stop")
        if self.max_concurrency is not None and self.rate is None and self.trace is None:
            raise ValueError(
                "--max-concurrency caps an open-loop --rate or --trace run; with --concurrency "
                "it is redundant"
            )
        if self.ramp_up_s and self.rate is not None:
            raise ValueError(
                "--ramp-up staggers a closed loop's streams; an open-loop --rate has its own "
                "schedule"
            )
        if self.arrival == "gamma" and self.rate is None:
            raise ValueError("--arrival gamma needs --rate")
        if not self.url.startswith(("http://", "https://", "hf:")):
            raise ValueError(
                f"--url must start with http:// or https:// (or be hf:MODEL_DIR), got {self.url!r}"
            )
        if self.hf_compile and self.hf_cache != "static":
            raise ValueError("--hf-compile needs --hf-cache static")
        for p in self.percentiles:
            if not 0 < p < 100:
                raise ValueError(f"--percentiles: {p} is not between 0 and 100")
        if error := owned_field_error(self.extra_body):
            raise ValueError(error)
        if self.shared_prefix_tokens and self.dataset is not None:
            raise ValueError("--shared-prefix-tokens applies to synthetic prompts, not --dataset")
        self.input_spec()
        self.output_spec()
        inp = self.input_spec()
        if self.shared_prefix_tokens and inp.kind == "fixed" and self.shared_prefix_tokens >= inp.a:
            raise ValueError(
                f"--shared-prefix-tokens {self.shared_prefix_tokens} leaves no room in "
                f"--input-tokens {self.input_tokens}"
            )
        self.slo_spec()
        return self

    def _sessions_consistent(self) -> None:
        """Sessions: concurrent sessions (closed loop) or session arrivals (open loop), in
        one client process, over the chat API."""
        for name, flag in (
            ("num_requests", "-n/--num-requests (--sessions K says how many)"),
            ("max_concurrency", "--max-concurrency"),
            ("shared_prefix_tokens", "--shared-prefix-tokens"),
        ):
            if getattr(self, name):
                raise ValueError(f"--sessions runs conversations; drop {flag}")
        if self.api != "chat":
            raise ValueError("--sessions needs --api chat: a conversation is a list of messages")
        if (self.workers is not None and self.workers > 1) or self.cluster:
            raise ValueError(
                "--sessions runs in one client process (each conversation needs its own "
                "answers); drop --workers/--cluster"
            )
        if self.url.startswith("hf:"):
            raise ValueError("--sessions needs an HTTP server, not an in-process hf: model")
        if self.ramp_up_s:
            raise ValueError("--ramp-up staggers single requests; sessions start as they end")
        self.turns_spec()
        self.think_spec()

    def turns_spec(self) -> LengthSpec:
        return LengthSpec.parse(self.turns, "--turns")

    def think_spec(self) -> ThinkTime:
        return ThinkTime.parse(self.think_time, "--think-time")

    def _trace_consistent(self) -> None:
        """A trace says when each request comes and how long it is: the flags that would
        say it too are refused rather than silently ignored."""
        given = self.model_fields_set
        clash = [
            flag
            for name, flag in (
                ("concurrency", "--concurrency"),
                ("rate", "--rate"),
                ("ramp_up_s", "--ramp-up"),
                ("arrival", "--arrival"),
                ("burstiness", "--burstiness"),
                ("input_tokens", "--input-tokens"),
                ("output_tokens", "--output-tokens"),
                ("dataset", "--dataset"),
                ("shared_prefix_tokens", "--shared-prefix-tokens"),
                ("sessions", "--sessions"),
            )
            if name in given and getattr(self, name) != BenchConfig.model_fields[name].default
        ]
        if clash:
            raise ValueError(
                f"--trace says when each request is sent and how long it is; drop {clash[0]}"
            )

    def with_seed(self) -> BenchConfig:
        """This config with its seed fixed: the given one, or a fresh draw."""
        if self.seed is not None:
            return self
        return self.model_copy(update={"seed": draw_seed()})

    def pool_size(self) -> int:
        """Distinct prompts to build: one per request when the count alone ends the run; with
        a --duration too, at most --prompt-pool (``-n 100000 --duration 30`` must not build
        100,000). A longer run cycles through them."""
        if self.num_requests is not None and self.duration_s is None:
            return self.num_requests
        if self.num_requests is not None:
            return min(self.num_requests, self.prompt_pool)
        if self.rate is not None and self.duration_s is not None:
            return min(max(int(self.rate * self.duration_s * 1.2) + 16, 1), self.prompt_pool)
        return self.prompt_pool

    def input_spec(self) -> LengthSpec:
        return LengthSpec.parse(self.input_tokens, "--input-tokens")

    def output_spec(self) -> LengthSpec:
        return LengthSpec.parse(self.output_tokens, "--output-tokens")

    def slo_spec(self) -> SLO | None:
        return parse_slo(self.slo) if self.slo else None

    @property
    def secrets(self) -> tuple[str, ...]:
        values = [v for v in self.headers.values() if v]
        if self.api_key is not None:
            values.append(self.api_key.get_secret_value())
        return secret_forms(values)

    def public_dict(self) -> dict[str, Any]:
        """The config as written to run.json: no API key, header values masked."""
        data = self.model_dump(mode="json", exclude={"api_key", "headers"})
        data["api_key_set"] = self.api_key is not None
        data["headers"] = {k: "***" for k in self.headers}
        return data

    @classmethod
    def build(cls, **values: Any) -> BenchConfig:
        """Validate, turning pydantic's report into one line that names the flag."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise UsageError(_one_line(exc)) from None


def _check_header(name: str, value: str) -> None:
    """Refuse a header that would not stay one header line: a CR or LF in it would let the
    value start new headers (or end the head) in every request sent."""
    if any(c in name for c in _HEADER_NAME_BREAKS) or not name:
        raise UsageError(f"--header: {name!r} is not a header name")
    if any(c in value for c in "\r\n\0"):
        raise UsageError(
            f"--header {name}: the value holds a line break (CR/LF) or NUL; give one line"
        )


#: Characters no header name may hold (RFC 9110 token): separators, space and controls.
_HEADER_NAME_BREAKS = frozenset('\r\n\0\t (),/:;<=>?@[\\]{}"')


def stored_config_problem(config: dict[str, Any]) -> str | None:
    """Why a config read back from run.json cannot be used (None: it can): the first field
    whose JSON value is not of the field's type. Values are not re-judged (a run stays
    readable whatever the limits were when it was made); fields this version does not know
    are left alone."""
    for name, value in config.items():
        adapter = _stored_type(name)
        if adapter is None:
            continue
        try:
            adapter.validate_json(orjson.dumps(value), strict=True)
        except ValidationError as exc:
            return f"config field {name!r}: {exc.errors()[0]['msg']}"
    return None


@functools.cache
def _stored_type(name: str) -> TypeAdapter[Any] | None:
    """How a config field's value is checked when read back; the choices of a Literal are
    loosened to any string, so a run of a version with other choices still reads."""
    info = BenchConfig.model_fields.get(name)
    if info is None or info.annotation is None or name == "api_key":
        return None
    kind: Any = str if get_origin(info.annotation) is Literal else info.annotation
    return TypeAdapter(kind)


def draw_seed() -> int:
    """A fresh seed from the OS's entropy."""
    return secrets.randbelow(SEED_MAX)


def derived_seed(seed: int, index: int) -> int:
    """The seed of part ``index`` of a seeded whole (a sweep's points): reproducible from
    the whole's seed, and unrelated to ``seed + index`` so that no two points share prompts."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 21 ^ int(state[1])) % SEED_MAX)


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = [str(x) for x in err.get("loc", ()) if isinstance(x, str)]
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), UsageError):
        return str(ctx["error"])
    if loc:
        name = loc[0][:-2] if loc[0].endswith("_s") else loc[0]
        return f"--{name.replace('_', '-')}: {msg}"
    return msg
