"""Shapes of the models the synthetic model maker can generate (Llama architecture).

``tiny`` is for tests, ``demo`` (~100M parameters) for the demo; the others copy the published
shapes of real models so an engine sees the same matrix sizes (weights are random).
"""

from __future__ import annotations

from dataclasses import dataclass

from infermeter.errors import UsageError


@dataclass(frozen=True, slots=True)
class ModelShape:
    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    context_length: int = 4096
    head_dim: int | None = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def params(self) -> int:
        """Parameter count (untied input and output embeddings, gated MLP, RMSNorm)."""
        d, hd = self.hidden_size, self.head_size
        attn = d * self.num_heads * hd * 2 + d * self.num_kv_heads * hd * 2
        mlp = 3 * d * self.intermediate_size
        per_layer = attn + mlp + 2 * d
        return self.num_layers * per_layer + 2 * self.vocab_size * d + d


SHAPES: dict[str, ModelShape] = {
    s.name: s
    for s in (
        ModelShape("tiny", 256, 768, 4, 4, 2, 8192),
        ModelShape("demo", 768, 2048, 14, 12, 4, 8192),
        # Published configs (Hugging Face config.json of each model).
        ModelShape("llama-2-7b", 4096, 11008, 32, 32, 32, 32000, 4096),
        ModelShape("llama-2-13b", 5120, 13824, 40, 40, 40, 32000, 4096),
        ModelShape("llama-3.1-8b", 4096, 14336, 32, 32, 8, 128256, 131072, rope_theta=500000.0),
        ModelShape("llama-3.1-70b", 8192, 28672, 80, 64, 8, 128256, 131072, rope_theta=500000.0),
        ModelShape("mistral-7b", 4096, 14336, 32, 32, 8, 32000, 32768, rope_theta=1000000.0),
    )
}


def get_shape(name: str) -> ModelShape:
    try:
        return SHAPES[name.lower()]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name.lower(), SHAPES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(
            f"unknown model shape {name!r}{hint}; known: {', '.join(SHAPES)}"
        ) from None
