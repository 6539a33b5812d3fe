"""Speed-of-light bounds: what no engine can beat on given hardware (docs/theory.md).

A decode step must read every weight it uses and every cached key and value once; a prefill
must do ``2 × params × tokens`` FLOPs plus the causal attention term. Each bound is the larger
of the memory time and the compute time (they overlap at best), plus tensor-parallel
all-reduce time. Everything is per model replica; replicas multiply throughput.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from infermeter.errors import UsageError
from infermeter.theory.hardware import Hardware
from infermeter.theory.precision import compute_dtype, kv_bytes, weight_bytes
from infermeter.theory.shape import ModelShape

GB = 1e9


def memory_time_s(nbytes: float, bandwidth_bytes_s: float) -> float:
    """Time to stream ``nbytes`` once at ``bandwidth`` (14.2 GB at 1008 GB/s ≈ 14.1 ms)."""
    return nbytes / bandwidth_bytes_s


def mbu(nbytes_per_step: float, step_s: float, bandwidth_bytes_s: float) -> float:
    """Model bandwidth utilisation: achieved bytes/s over peak (14 GB read in 14 ms on a
    2 TB/s part is 1 TB/s, 50 %)."""
    return nbytes_per_step / step_s / bandwidth_bytes_s


def mfu(flops_per_s: float, peak_flops: float) -> float:
    return flops_per_s / peak_flops


def compute_rate_tok_s(
    gpus: int, peak_flops: float, utilisation: float, params: float, tokens_per_item: float = 1.0
) -> float:
    """Items per second a compute-bound pass sustains: ``gpus × peak × util / (2 × params ×
    tokens_per_item)``. ``10 × 312T × 46.2 % / (2 × 70B × 1K) = 10.3`` is this with 1K-token
    items: 1K-token *prompts prefilled* per second, not generated tokens per second (decoding
    is memory-bound and far slower per GPU-FLOP)."""
    return gpus * peak_flops * utilisation / (2 * params * tokens_per_item)


def expected_distinct_experts(num_experts: int, top_k: int, tokens: int) -> float:
    """Experts a batch of ``tokens`` touches in one MoE layer, each token picking ``top_k`` of
    ``num_experts`` uniformly: E × (1 − (1 − k/E)^B). One token reads k experts, a large batch
    reads all E — not one, and not always all."""
    if num_experts <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


@dataclass(frozen=True)
class Deployment:
    """A model on some GPUs: parallelism and precisions. ``gpus`` = replicas × tp × pp."""

    model: ModelShape
    hardware: Hardware
    gpus: int = 1
    tp: int = 1
    pp: int = 1
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    act_dtype: str | None = None
    gpu_memory_utilization: float = 0.9
    runtime_overhead_gb: float = 1.5
    max_batched_tokens: int = 8192
    calibrated: bool = False

    def __post_init__(self) -> None:
        if self.tp < 1 or self.pp < 1 or self.gpus < 1:
            raise UsageError("--gpus, --tp and --pp must be at least 1")
        if self.gpus % (self.tp * self.pp):
            raise UsageError(
                f"--gpus {self.gpus} is not a multiple of --tp {self.tp} × --pp {self.pp}"
            )
        if self.model.num_heads % self.tp:
            raise UsageError(
                f"--tp {self.tp} does not divide the model's {self.model.num_heads} attention heads"
            )
        weight_bytes(self.weight_dtype)
        kv_bytes(self.kv_dtype)

    # ---- hardware figures in use ----
    @property
    def replicas(self) -> int:
        return self.gpus // (self.tp * self.pp)

    @property
    def bandwidth(self) -> float:
        f = self.hardware.attainable_bandwidth if self.calibrated else None
        return self.hardware.bandwidth * (f or 1.0)

    @property
    def compute(self) -> str:
        return compute_dtype(self.weight_dtype, self.act_dtype)

    @property
    def peak_flops(self) -> float:
        f = self.hardware.attainable_compute if self.calibrated else None
        return self.hardware.peak_flops(self.compute) * (f or 1.0)

    @property
    def act_bytes(self) -> float:
        return 1.0 if self.compute in ("fp8", "int8") else 2.0

    # ---- sizes ----
    @property
    def weights_bytes(self) -> float:
        return self.model.total_params * weight_bytes(self.weight_dtype)

    @property
    def weights_bytes_per_gpu(self) -> float:
        return self.weights_bytes / (self.tp * self.pp)

    def _kv_elements_per_gpu(self) -> float:
        m = self.model
        if m.is_mla:
            return m.kv_elements_per_token_per_layer()  # the latent is not split across ranks
        heads = max(m.num_kv_heads / self.tp, 1.0)  # fewer KV heads than ranks: replicated
        return 2 * heads * m.head_dim

    @property
    def kv_bytes_per_token(self) -> float:
        """Whole replica, all layers, one token of context (below any sliding window)."""
        m = self.model
        return m.num_layers * m.kv_elements_per_token_per_layer() * kv_bytes(self.kv_dtype)

    @property
    def kv_bytes_per_token_per_gpu(self) -> float:
        return (
            self.model.num_layers / self.pp * self._kv_elements_per_gpu() * kv_bytes(self.kv_dtype)
        )

    def kv_bytes_sequence_per_gpu(self, context: int) -> float:
        """One sequence's cache at ``context`` tokens, on one GPU (sliding layers capped)."""
        m = self.model
        cached = sum(m.cached_tokens(i, context) for i in range(m.num_layers))
        return cached / self.pp * self._kv_elements_per_gpu() * kv_bytes(self.kv_dtype)

    # ---- memory plan ----
    def activation_peak_bytes(self, batch: int, prompt_tokens: int) -> float:
        """Estimate: the largest prefill chunk's hidden states and MLP intermediates in the
        activation type, plus fp32 logits for one token per sequence."""
        m = self.model
        tokens = min(batch * max(prompt_tokens, 1), self.max_batched_tokens)
        width = m.moe_intermediate_size * m.experts_per_token if m.is_moe else m.intermediate_size
        per_token = (4 * m.hidden_size + 2 * width / self.tp) * self.act_bytes
        return tokens * per_token + batch * m.vocab_size / self.tp * 4

    def memory_plan(self, batch: int, context: int, prompt_tokens: int) -> dict[str, float]:
        usable = self.hardware.memory_gb * GB * self.gpu_memory_utilization
        weights = self.weights_bytes_per_gpu
        acts = self.activation_peak_bytes(batch, prompt_tokens)
        overhead = self.runtime_overhead_gb * GB
        per_seq = self.kv_bytes_sequence_per_gpu(context)
        free = usable - weights - acts - overhead
        max_conc = max(int(free // per_seq), 0) if per_seq > 0 else 0
        need = weights + acts + overhead + batch * per_seq
        return {
            "usable_bytes_per_gpu": usable,
            "weights_bytes_per_gpu": weights,
            "activation_peak_bytes_per_gpu": acts,
            "runtime_overhead_bytes_per_gpu": overhead,
            "kv_bytes_per_sequence_per_gpu": per_seq,
            "kv_cache_bytes_for_batch_per_gpu": batch * per_seq,
            "free_for_kv_bytes_per_gpu": max(free, 0.0),
            "max_concurrency": float(max_conc * self.replicas),
            "shortfall_bytes_per_gpu": max(need - usable, 0.0),
            "weights_fit": float(free >= 0),
        }

    # ---- compute ----
    def prefill_flops(self, prompt_tokens: int) -> float:
        """One prompt: 2 × matmul params × n (logits only for the last position) + causal
        attention, each position attending to those before it (sliding layers capped)."""
        m = self.model
        n = prompt_tokens
        lm_head = m.vocab_size * m.hidden_size
        matmul = 2 * (m.matmul_params - lm_head) * n + 2 * lm_head
        attended = 0.0
        for layer in range(m.num_layers):
            w = m.sliding_window if (m.sliding_window and m.layer_is_sliding(layer)) else 0
            if w and n > w:
                attended += w * (w + 1) / 2 + (n - w) * w
            else:
                attended += n * (n + 1) / 2
        return matmul + m.attention_flops_per_cached_token() * attended

    def decode_flops_per_token(self, context: int) -> float:
        m = self.model
        cached = sum(m.cached_tokens(i, context) for i in range(m.num_layers))
        return 2 * m.matmul_params + m.attention_flops_per_cached_token() * cached

    def embedding_bytes_read(self, tokens: int) -> float:
        """Bytes of the embedding tables a pass over ``tokens`` tokens reads (whole replica).

        The input embedding is a lookup: one row of ``hidden`` numbers per token (at most the
        whole table), not the ``vocab × hidden`` table. An untied LM head is a matrix product
        and reads all of its matrix. Tied, the head reads the one shared table whole, and the
        lookup's rows are among what it reads: the table counts once."""
        m = self.model
        table = m.vocab_size * m.hidden_size
        if m.tie_embeddings:
            return table * weight_bytes(self.weight_dtype)
        rows = min(max(tokens, 0), m.vocab_size)
        return (rows * m.hidden_size + table) * weight_bytes(self.weight_dtype)

    def weights_read_bytes(self, tokens: int) -> float:
        """Bytes of weights a pass over ``tokens`` tokens (a decode step's batch, or a
        prefill's prompts) reads, whole replica: every layer's dense parts, routed experts
        only as many as ``tokens`` are expected to touch, the embedding rows looked up and
        the LM head."""
        m = self.model
        untouched = 0.0
        if m.is_moe:
            expert = m.mlp_params(m.moe_intermediate_size)
            touched = expected_distinct_experts(m.num_experts, m.experts_per_token, tokens)
            for layer in range(m.num_layers):
                if m.is_moe_layer(layer):
                    untouched += (m.num_experts - touched) * expert
        rest = m.total_params - m.embedding_params() - untouched
        return rest * weight_bytes(self.weight_dtype) + self.embedding_bytes_read(tokens)

    def weights_read_per_step(self, batch: int) -> float:
        """Bytes of weights one decode step of ``batch`` sequences reads (whole replica)."""
        return self.weights_read_bytes(batch)

    def prefill_weights_read(self, tokens: int) -> float:
        """Bytes of weights a prefill of ``tokens`` prompt tokens reads (whole replica): as a
        decode step's, but every routed expert counted (a bound that does not rest on how
        the prompt's tokens are routed)."""
        m = self.model
        rest = m.total_params - m.embedding_params()
        return rest * weight_bytes(self.weight_dtype) + self.embedding_bytes_read(tokens)

    def allreduce_s(self, tokens: int) -> float:
        """Two ring all-reduces per layer (attention and MLP outputs) of tokens × hidden."""
        if self.tp == 1:
            return 0.0
        nbytes = tokens * self.model.hidden_size * self.act_bytes
        per = 2 * (self.tp - 1) / self.tp * nbytes / (self.hardware.interconnect_gb_s * GB)
        return 2 * self.model.num_layers * per

    # ---- bounds ----
    def ttft_bound_s(self, prompt_tokens: int, batch: int = 1) -> dict[str, float]:
        compute = batch * self.prefill_flops(prompt_tokens) / (self.tp * self.peak_flops)
        memory = self.prefill_weights_read(batch * prompt_tokens) / self.tp / self.bandwidth
        comm = self.allreduce_s(batch * prompt_tokens)
        return {
            "compute_s": compute,
            "memory_s": memory,
            "allreduce_s": comm,
            "bound_s": max(compute, memory) + comm,
        }

    def decode_step(self, batch: int, context: int) -> dict[str, float]:
        """One step with ``batch`` sequences each at ``context`` tokens."""
        kv = batch * self.kv_bytes_sequence_per_gpu(context) * self.pp  # whole replica
        nbytes = self.weights_read_per_step(batch) + kv
        flops = batch * self.decode_flops_per_token(context)
        memory = nbytes / self.tp / self.bandwidth
        compute = flops / self.tp / self.peak_flops
        comm = self.allreduce_s(batch)
        return {
            "bytes": nbytes,
            "flops": flops,
            "memory_s": memory,
            "compute_s": compute,
            "allreduce_s": comm,
            "bound_s": max(memory, compute) + comm,
        }

    def tpot_along_output(self, batch: int, prompt_tokens: int, output_tokens: int) -> np.ndarray:
        """The bound of each decode step i = 1..n_out−1, at context n_in + i."""
        return (
            np.array(
                [
                    self.decode_step(batch, prompt_tokens + i)["bound_s"]
                    for i in _steps(output_tokens)
                ]
            )
            if output_tokens > 1
            else np.zeros(0)
        )

    def compute_bound_batch(self, context: int, limit: int = 1 << 16) -> int | None:
        """Smallest batch whose decode step is compute-bound (None: never, below ``limit``)."""
        lo, hi = 1, limit
        step = self.decode_step(hi, context)
        if step["compute_s"] < step["memory_s"]:
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            s = self.decode_step(mid, context)
            if s["compute_s"] >= s["memory_s"]:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # ---- efficiency of a measurement, with the bounds' own byte and FLOP counts ----
    def measured_mbu(self, step_s: float, batch: int, context: int) -> float:
        """MBU of a measured decode step (e.g. TPOT) at ``batch`` sequences of ``context``."""
        return mbu(self.decode_step(batch, context)["bytes"] / self.tp, step_s, self.bandwidth)

    def measured_decode_mfu(self, step_s: float, batch: int, context: int) -> float:
        flops = self.decode_step(batch, context)["flops"] / self.tp
        return mfu(flops / step_s, self.peak_flops)

    def measured_prefill_mfu(self, ttft_s: float, prompt_tokens: int, batch: int = 1) -> float:
        flops = batch * self.prefill_flops(prompt_tokens) / self.tp
        return mfu(flops / ttft_s, self.peak_flops)

    def ridge_point(self) -> float:
        """FLOPs per byte at which the hardware turns compute-bound."""
        return self.peak_flops / self.bandwidth


def _steps(output_tokens: int) -> list[int]:
    """Decode steps to evaluate exactly; beyond 4,096 steps, an even sample (the bound is
    linear in context between sliding-window corners, so the mean is kept)."""
    n = output_tokens - 1
    if n <= 4096:
        return list(range(1, n + 1))
    return sorted({int(x) for x in np.linspace(1, n, 4096)})


@dataclass(frozen=True)
class Estimate:
    """Everything ``infermeter estimate`` prints, for one batch, input and output length."""

    deployment: Deployment
    batch: int
    input_tokens: int
    output_tokens: int

    def to_dict(self) -> dict[str, object]:
        d = self.deployment
        m = d.model
        ctx_end = self.input_tokens + self.output_tokens
        ctx_mid = self.input_tokens + self.output_tokens // 2
        plan = d.memory_plan(self.batch, ctx_end, self.input_tokens)
        ttft = d.ttft_bound_s(self.input_tokens, 1)
        ttft_batch = d.ttft_bound_s(self.input_tokens, self.batch)
        steps = d.tpot_along_output(self.batch, self.input_tokens, self.output_tokens)
        first = d.decode_step(self.batch, self.input_tokens + 1)
        mid = d.decode_step(self.batch, ctx_mid)
        tpot_mean = float(steps.mean()) if steps.size else first["bound_s"]
        e2e = (
            ttft["bound_s"] + float(steps.mean()) * (self.output_tokens - 1)
            if steps.size
            else ttft["bound_s"]
        )
        throughput = self.batch * d.replicas / mid["bound_s"]
        return {
            "model": m.name,
            "gpu": d.hardware.name,
            "gpus": d.gpus,
            "tp": d.tp,
            "pp": d.pp,
            "replicas": d.replicas,
            "weight_dtype": d.weight_dtype,
            "kv_dtype": d.kv_dtype,
            "compute_dtype": d.compute,
            "batch": self.batch,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_params": m.total_params,
            "active_params": m.active_params,
            "weights_bytes": d.weights_bytes,
            "weights_bytes_per_gpu": d.weights_bytes_per_gpu,
            "kv_bytes_per_token": d.kv_bytes_per_token,
            "kv_bytes_per_token_per_gpu": d.kv_bytes_per_token_per_gpu,
            "memory_plan": plan,
            "max_concurrency": int(plan["max_concurrency"]),
            "ttft_lower_bound_ms": 1e3 * ttft["bound_s"],
            "ttft_lower_bound_batch_ms": 1e3 * ttft_batch["bound_s"],
            "ttft_terms_ms": {k: 1e3 * v for k, v in ttft.items()},
            "tpot_lower_bound_ms": 1e3 * first["bound_s"],
            "tpot_lower_bound_last_ms": 1e3
            * (float(steps[-1]) if steps.size else first["bound_s"]),
            "tpot_lower_bound_mean_ms": 1e3 * tpot_mean,
            "decode_step_terms_ms": {
                k: 1e3 * first[k] for k in ("memory_s", "compute_s", "allreduce_s")
            },
            "e2e_lower_bound_ms": 1e3 * e2e,
            "seed_line": {
                "b_ms": 1e3 * ttft["bound_s"],
                "k_ms": 1e3 * tpot_mean,
                "form": "E2E ≈ b + k × (n_out − 1)",
            },
            "output_throughput_upper_bound_tok_s": throughput,
            "compute_bound_batch": d.compute_bound_batch(ctx_mid),
            "roofline": {
                "ridge_flops_per_byte": d.ridge_point(),
                "decode_intensity_flops_per_byte": mid["flops"] / mid["bytes"],
                "prefill_intensity_flops_per_byte": d.prefill_flops(self.input_tokens)
                / max(d.prefill_weights_read(self.input_tokens), 1.0),
            },
            "peak_bandwidth_gb_s": d.bandwidth / GB,
            "peak_tflops": d.peak_flops / 1e12,
        }


def batch_sweep(
    d: Deployment, batches: list[int], input_tokens: int, output_tokens: int
) -> list[dict[str, Any]]:
    """Decode bound and throughput bound against batch size, at mid-sequence context."""
    ctx = input_tokens + output_tokens // 2
    rows = []
    for b in batches:
        s = d.decode_step(b, ctx)
        rows.append(
            {
                "batch": b,
                "tpot_lower_bound_ms": 1e3 * s["bound_s"],
                "output_throughput_upper_bound_tok_s": b * d.replicas / s["bound_s"],
                "bound_by": "compute" if s["compute_s"] >= s["memory_s"] else "memory",
                "fits": b * d.kv_bytes_sequence_per_gpu(input_tokens + output_tokens)
                <= d.memory_plan(b, input_tokens + output_tokens, input_tokens)[
                    "free_for_kv_bytes_per_gpu"
                ],
            }
        )
    return rows
