"""In-process transformers backend: ``--url hf:MODEL_DIR`` (extra ``infermeter[hf]``).

The seeds' benchmark script times ``generate()`` as a whole and calls that TTFT. Here every
token is stamped as it is produced: a streamer receives each step's new tokens, copies them to
the host (which waits for the device, so the stamp is when the token really exists), and the
request's record gets one chunk per token, exactly like a streamed HTTP response.

Batching is static: requests that are waiting when the engine becomes free run together as one
batch (up to ``max_batch``), prompts left-padded, until every row has its tokens; a request
that arrives meanwhile waits for the next batch, and that wait is part of its TTFT, as it would
be behind a server. The engine waits up to ``GATHER_S`` after the first request for the batch
to fill (a closed loop's next requests arrive a moment apart), and with ``compile`` every batch
is padded to ``max_batch`` rows, since a compiled (CUDA-graph) decode step is captured per
batch size. Greedy decoding with EOS suppressed (``min_new_tokens``) gives exactly the
requested number of output tokens.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infermeter.clients.discovery import ServerInfo
from infermeter.errors import EngineError, UsageError
from infermeter.records.schema import ErrorKind, RequestRecord
from infermeter.workload.types import Prompt

SCHEME = "hf:"
#: How long the engine waits, after a batch's first request, for the batch to fill.
GATHER_S = 0.005


@dataclass(frozen=True)
class HFOptions:
    """How to run the model. ``cache``: dynamic (eager) or static (fixed-size KV cache, which
    lets ``compile`` capture the decode step)."""

    device: str = "auto"
    dtype: str = "auto"
    max_batch: int | None = None
    cache: str = "dynamic"
    compile: bool = False
    compile_mode: str = "auto"
    chat_template: bool = True


@dataclass
class _Job:
    rid: int
    prompt: Prompt
    rec: RequestRecord
    future: asyncio.Future[RequestRecord]
    loop: asyncio.AbstractEventLoop
    ids: list[int] = field(default_factory=list)


def model_dir(url: str) -> Path:
    path = Path(url[len(SCHEME) :]).expanduser()
    if not (path / "config.json").exists():
        raise UsageError(f"--url {url}: no config.json in {path} (a Hugging Face model folder)")
    return path


class _Stamper:
    """A transformers streamer: ``put`` is called with the prompt first, then once per step
    with the batch's new tokens (on the device)."""

    def __init__(self, on_step: Any) -> None:
        self.on_step = on_step
        self.seen_prompt = False

    def put(self, value: Any) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        tokens = value.tolist() if hasattr(value, "tolist") else list(value)  # host copy: syncs
        self.on_step(time.perf_counter_ns(), tokens)

    def end(self) -> None:
        pass


class HFInProcess:
    """Loads the model once; ``send`` has the signature of the HTTP client's."""

    def __init__(self, url: str, options: HFOptions, *, api: str, t0_ns: int) -> None:
        try:
            import torch
            import transformers
        except ImportError:
            raise UsageError(
                "--url hf:...: the in-process backend needs torch and transformers "
                "(pip install 'infermeter[hf]')"
            ) from None
        self.torch, self.api, self.t0_ns, self.options = torch, api, t0_ns, options
        self.path = model_dir(url)
        device = options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        dtype_name = options.dtype
        if dtype_name == "auto":
            dtype_name = "bfloat16" if device.startswith("cuda") else "float32"
        self.tokenizer: Any
        self.model: Any
        try:
            dtype = getattr(torch, dtype_name)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.path))
            loader: Any = transformers.AutoModelForCausalLM
            self.random_init = not any(self.path.glob("*.safetensors")) and not any(
                self.path.glob("*.bin")
            )
            if self.random_init:
                # A config without weights: initialise at random on the device (speed does not
                # depend on the weights' values; min_new_tokens keeps EOS away).
                cfg = transformers.AutoConfig.from_pretrained(str(self.path))
                with torch.device(device):
                    self.model = loader.from_config(cfg, dtype=dtype)
            else:
                self.model = loader.from_pretrained(str(self.path), dtype=dtype).to(device)
        except (OSError, ValueError, RuntimeError, AttributeError) as exc:
            raise EngineError(f"cannot load {self.path}: {exc}") from None
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "left"
        self.dtype_name = dtype_name
        self.weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self._cuda = device.startswith("cuda")
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.peak_kv_bytes = 0
        self.batches: list[int] = []
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._served = _engine_thread().submit(self._serve)

    # -- a TokenCounter, exact: the engine's own tokenizer and chat template --
    name = "transformers"

    async def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    async def count_prompt(self, text: str) -> int | None:
        return len(self._encode(Prompt(text, 1)))

    # -- the client side --
    @property
    def info(self) -> ServerInfo:
        cfg = self.model.config
        return ServerInfo(
            base_url=f"{SCHEME}{self.path}",
            origin=f"{SCHEME}{self.path}",
            kind="transformers",
            model=self.path.name,
            ctx_per_slot=getattr(cfg, "max_position_embeddings", None),
            context_limit=getattr(cfg, "max_position_embeddings", None),
            context_source="max_position_embeddings",
            slots=self.options.max_batch,
            details=self.memory(),
        )

    def memory(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "device": self.device,
            "dtype": self.dtype_name,
            "cache": self.options.cache,
            "compile": self.options.compile,
            "compile_mode": self.options.compile_mode if self.options.compile else None,
            "random_init": self.random_init,
            "max_batch": self.options.max_batch,
            "weights_bytes": self.weight_bytes,
            "batch_sizes": _histogram(self.batches),
        }
        if self._cuda:
            peak = int(self.torch.cuda.max_memory_allocated())
            out["peak_allocated_bytes"] = peak
            out["kv_and_activations_peak_bytes"] = max(peak - self.weight_bytes, 0)
            out["reserved_bytes"] = int(self.torch.cuda.memory_reserved())
        return out

    async def send(
        self,
        rid: int,
        prompt: Prompt,
        t_sched_abs_ns: int,
        *,
        phase: str = "measure",
        worker: int = 0,
    ) -> RequestRecord:
        loop = asyncio.get_running_loop()
        rec = RequestRecord(
            id=rid,
            phase=phase,
            api=self.api,
            worker=worker,
            t_sched_ns=t_sched_abs_ns - self.t0_ns,
            n_in_target=prompt.n_in_target,
            n_out_target=prompt.max_tokens,
            chunk_tokens_source="server",
        )
        rec.t_send_ns = time.perf_counter_ns() - self.t0_ns
        job = _Job(rid, prompt, rec, loop.create_future(), loop)
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        self._queue.put(None)
        self._served.wait(timeout=30)

    # -- the engine side (one thread) --
    def _serve(self) -> None:
        if self.options.compile:
            # Each run compiles afresh, in its warm-up, on the engine thread.
            self.torch._dynamo.reset()
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            limit = self.options.max_batch or 1 << 30
            deadline = time.monotonic() + GATHER_S
            while len(batch) < limit:
                try:
                    nxt = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            self._run_batch(batch)

    def _encode(self, prompt: Prompt) -> list[int]:
        tok: Any = self.tokenizer
        if self.api == "chat" and self.options.chat_template and tok.chat_template:
            messages = list(prompt.messages or ({"role": "user", "content": prompt.text},))
            ids: Any = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            return list(ids)
        return list(tok(prompt.text).input_ids)

    def _run_batch(self, batch: list[_Job]) -> None:
        torch, t0 = self.torch, self.t0_ns
        try:
            for job in batch:
                job.ids = self._encode(job.prompt)
                job.rec.n_in, job.rec.n_in_source = len(job.ids), "server"
                job.rec.n_out_source = "server"
            width = max(len(j.ids) for j in batch)
            pad = self.tokenizer.pad_token_id
            rows = [j.ids for j in batch]
            if self.options.compile and self.options.max_batch:
                # One captured shape: filler rows (copies of the first prompt, outputs unused).
                rows += [rows[0]] * (self.options.max_batch - len(rows))
            input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            n_new = max(max(j.prompt.max_tokens, 1) for j in batch)
            self.batches.append(len(batch))

            def on_step(t_abs: int, tokens: list[int]) -> None:
                t = t_abs - t0
                for job in batch:
                    rec = job.rec
                    if rec.n_out >= max(job.prompt.max_tokens, 1):
                        continue  # this row is done; the batch runs on for longer ones
                    if rec.t_first_ns is None:
                        rec.t_first_ns = t
                    rec.chunk_ns.append(t)
                    rec.chunk_tokens.append(1)
                    rec.n_out += 1
                    rec.t_last_ns = t
                    if rec.n_out == max(job.prompt.max_tokens, 1):
                        rec.t_end_ns = t
                        rec.ok, rec.finish_reason = True, "length"
                        job.loop.call_soon_threadsafe(_resolve, job.future, rec)

            kwargs: dict[str, Any] = {}
            if self.options.cache == "static":
                kwargs["cache_implementation"] = "static"
                # transformers compiles the decode step of a static cache on its own (CUDA);
                # eager unless asked.
                kwargs["disable_compile"] = not self.options.compile
                if self.options.compile and self.options.compile_mode != "auto":
                    import transformers

                    kwargs["compile_config"] = transformers.CompileConfig(
                        mode=self.options.compile_mode
                    )
            with torch.inference_mode():
                self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=n_new,
                    min_new_tokens=n_new,
                    do_sample=False,
                    pad_token_id=pad,
                    streamer=_Stamper(on_step),
                    **kwargs,
                )
            for job in batch:
                if not job.rec.ok:
                    self._fail(job, "incomplete_stream", "generation ended early")
        except Exception as exc:  # a failed batch fails its requests, as data
            where = traceback.extract_tb(exc.__traceback__)[-1:]
            at = f" (at {where[0].filename}:{where[0].lineno} in {where[0].name})" if where else ""
            for job in batch:
                if not job.rec.ok:
                    self._fail(job, "server_error", f"{type(exc).__name__}: {exc}{at}")

    def _fail(self, job: _Job, kind: ErrorKind, message: str) -> None:
        rec = job.rec
        rec.ok, rec.error_kind, rec.error_message = False, kind, message
        rec.t_end_ns = time.perf_counter_ns() - self.t0_ns
        job.loop.call_soon_threadsafe(_resolve, job.future, rec)


class _EngineThread:
    """One daemon thread for the whole process that runs every run's engine loop in turn.

    PyTorch's CUDA-graph trees keep their state in thread-local storage set up by the thread
    that first imports them: a compiled decode step called from a second thread failed on the
    H200 (``AssertionError`` in ``cudagraph_trees.get_obj``) from a sweep's second point on.
    """

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="hf-engine", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            fn, done = self.jobs.get()
            try:
                fn()
            finally:
                done.set()

    def submit(self, fn: Callable[[], None]) -> threading.Event:
        done = threading.Event()
        self.jobs.put((fn, done))
        return done


_ENGINE: _EngineThread | None = None


def _engine_thread() -> _EngineThread:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _EngineThread()
    return _ENGINE


def _resolve(future: asyncio.Future[RequestRecord], rec: RequestRecord) -> None:
    if not future.done():
        future.set_result(rec)


def _histogram(sizes: list[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in sizes:
        out[str(s)] = out.get(str(s), 0) + 1
    return out
