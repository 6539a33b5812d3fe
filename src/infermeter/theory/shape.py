"""A model's shape, read from a Hugging Face ``config.json``: what the bounds need to know.

Read, not assumed: ``head_dim`` where the config gives it (Qwen3, Gemma-2 do not use
hidden/heads), the MLP's real width (never 4h), gated MLPs by architecture, tied embeddings,
mixture-of-experts layouts (routed and shared experts, dense layers first), DeepSeek's
multi-head latent attention (the KV cache holds a compressed latent, not full K and V), and
sliding-window layers (their cache stops growing at the window).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infermeter.errors import UsageError


@dataclass(frozen=True)
class ModelShape:
    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool = False
    gated_mlp: bool = True
    attention_bias: bool = False
    max_context: int = 4096
    # -- mixture of experts --
    num_experts: int = 0
    experts_per_token: int = 0
    num_shared_experts: int = 0
    moe_intermediate_size: int = 0
    #: Layers that are dense (no experts), e.g. DeepSeek's first_k_dense_replace.
    dense_layers: tuple[int, ...] = ()
    # -- multi-head latent attention (DeepSeek-V2/V3) --
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # -- sliding-window attention --
    sliding_window: int = 0
    #: Per layer: True where the layer attends over a sliding window only.
    sliding_layers: tuple[bool, ...] = field(default=())

    # ---- derived ----
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    def is_moe_layer(self, layer: int) -> bool:
        return self.is_moe and layer not in self.dense_layers

    def attention_params(self) -> int:
        d, h, kv, hd = self.hidden_size, self.num_heads, self.num_kv_heads, self.head_dim
        if self.is_mla:
            qk_hd = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (
                d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * h * qk_hd
                if self.q_lora_rank
                else d * h * qk_hd
            )
            kv_a = d * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
            o = h * self.v_head_dim * d
            return q + kv_a + kv_b + o
        params = d * h * hd + 2 * d * kv * hd + h * hd * d
        if self.attention_bias:
            params += h * hd + 2 * kv * hd
        return params

    def mlp_params(self, width: int) -> int:
        return (3 if self.gated_mlp else 2) * self.hidden_size * width

    def layer_params(self, layer: int, active: bool) -> int:
        """Parameters of one layer; ``active``: only what one token's forward pass touches."""
        norms = 2 * self.hidden_size
        if not self.is_moe_layer(layer):
            return self.attention_params() + self.mlp_params(self.intermediate_size) + norms
        expert = self.mlp_params(self.moe_intermediate_size)
        routed = self.experts_per_token if active else self.num_experts
        router = self.hidden_size * self.num_experts
        shared = self.num_shared_experts * expert
        return self.attention_params() + routed * expert + shared + router + norms

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tie_embeddings else 2)

    @property
    def total_params(self) -> int:
        layers = sum(self.layer_params(i, active=False) for i in range(self.num_layers))
        return layers + self.embedding_params() + self.hidden_size

    @property
    def active_params(self) -> int:
        """Parameters one token's forward pass multiplies by (MoE: routed top-k + shared)."""
        layers = sum(self.layer_params(i, active=True) for i in range(self.num_layers))
        return layers + self.embedding_params() + self.hidden_size

    @property
    def matmul_params(self) -> int:
        """Active parameters that take part in matrix products: the input embedding is a
        lookup, not a product (the output projection is one)."""
        return self.active_params - self.vocab_size * self.hidden_size

    def kv_elements_per_token_per_layer(self) -> int:
        """Cached numbers per token per layer: K and V per KV head, or MLA's latent."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    def layer_is_sliding(self, layer: int) -> bool:
        return bool(self.sliding_layers) and self.sliding_layers[layer]

    def cached_tokens(self, layer: int, context: int) -> int:
        if self.sliding_window and self.layer_is_sliding(layer):
            return min(context, self.sliding_window)
        return context

    def attention_flops_per_cached_token(self) -> int:
        """FLOPs one query token spends per cached token in one layer: QK^T and AV, a
        multiply-add (2 FLOPs) per element (MLA counted in its uncompressed form)."""
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            return 2 * self.num_heads * (qk + self.v_head_dim)
        return 4 * self.num_heads * self.head_dim


_ARCH_GATED = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "MixtralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM",
    "Qwen2MoeForCausalLM",
    "DeepseekV3ForCausalLM",
    "DeepseekV2ForCausalLM",
    "Gemma2ForCausalLM",
    "GemmaForCausalLM",
    "Gemma3ForCausalLM",
    "Phi3ForCausalLM",
}
_ARCH_NOT_GATED = {"GPT2LMHeadModel", "GPTNeoXForCausalLM", "OPTForCausalLM", "FalconForCausalLM"}


def _req(cfg: dict[str, Any], key: str, where: str) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UsageError(f"{where}: field {key!r} is missing or not a positive integer")
    return value


def from_hf_config(
    cfg: dict[str, Any], name: str = "model", where: str = "config.json"
) -> ModelShape:
    """A ModelShape from a Hugging Face config dict; a malformed one names the field."""
    if not isinstance(cfg, dict):
        raise UsageError(f"{where}: not a JSON object")
    if "text_config" in cfg and "hidden_size" not in cfg:
        cfg = {**cfg["text_config"], "architectures": cfg.get("architectures")}
    arch = (cfg.get("architectures") or [""])[0] or ""
    d = _req(cfg, "hidden_size", where)
    layers = _req(cfg, "num_hidden_layers", where)
    heads = _req(cfg, "num_attention_heads", where)
    kv = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or d // heads
    inter = cfg.get("intermediate_size") or 0
    vocab = _req(cfg, "vocab_size", where)
    gated = arch not in _ARCH_NOT_GATED
    experts = int(
        cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts") or 0
    )
    dense: tuple[int, ...] = ()
    if experts:
        first_dense = int(cfg.get("first_k_dense_replace") or 0)
        only_mlp = set(cfg.get("mlp_only_layers") or [])
        step = int(cfg.get("decoder_sparse_step") or 1)
        dense = tuple(
            i
            for i in range(layers)
            if i < first_dense or i in only_mlp or (step > 1 and (i + 1) % step != 0)
        )
    elif not inter:
        raise UsageError(f"{where}: field 'intermediate_size' is missing")
    window = int(cfg.get("sliding_window") or 0) if cfg.get("use_sliding_window", True) else 0
    sliding: tuple[bool, ...] = ()
    layer_types = cfg.get("layer_types")
    if window and isinstance(layer_types, list) and len(layer_types) == layers:
        sliding = tuple(t == "sliding_attention" for t in layer_types)
    elif window and arch.startswith("Gemma2"):
        sliding = tuple(i % 2 == 0 for i in range(layers))  # Gemma-2 alternates, local first
    elif window and arch.startswith(("Mistral", "Mixtral")):
        sliding = tuple(True for _ in range(layers))
    elif window and "max_window_layers" in cfg:
        # Qwen2-style: layers from max_window_layers on use the window when enabled.
        sliding = tuple(i >= int(cfg["max_window_layers"]) for i in range(layers))
    if window and not any(sliding):
        window = 0
    return ModelShape(
        name=name,
        hidden_size=d,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=int(kv),
        head_dim=int(head_dim),
        intermediate_size=int(inter),
        vocab_size=vocab,
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        gated_mlp=gated,
        attention_bias=bool(cfg.get("attention_bias", arch.startswith("Qwen2"))),
        max_context=int(cfg.get("max_position_embeddings") or 4096),
        num_experts=experts,
        experts_per_token=int(cfg.get("num_experts_per_tok") or 0),
        num_shared_experts=int(cfg.get("n_shared_experts") or cfg.get("num_shared_experts") or 0),
        moe_intermediate_size=int(cfg.get("moe_intermediate_size") or (inter if experts else 0)),
        dense_layers=dense,
        kv_lora_rank=int(cfg.get("kv_lora_rank") or 0),
        q_lora_rank=int(cfg.get("q_lora_rank") or 0),
        qk_rope_head_dim=int(cfg.get("qk_rope_head_dim") or 0),
        qk_nope_head_dim=int(cfg.get("qk_nope_head_dim") or 0),
        v_head_dim=int(cfg.get("v_head_dim") or 0),
        sliding_window=window,
        sliding_layers=sliding,
    )


def load_config(path: Path) -> ModelShape:
    file = path / "config.json" if path.is_dir() else path
    if not file.exists():
        raise UsageError(f"--model: no config.json at {path}")
    try:
        cfg = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return from_hf_config(
        cfg, name=file.parent.name if path.is_dir() else file.stem, where=str(file)
    )
