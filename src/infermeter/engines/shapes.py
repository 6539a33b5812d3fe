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


#: Shapes made for infermeter itself; real models' shapes come from the theory catalogue.
OWN_SHAPES: dict[str, ModelShape] = {
    s.name: s
    for s in (
        ModelShape("tiny", 256, 768, 4, 4, 2, 8192),
        ModelShape("demo", 768, 2048, 14, 12, 4, 8192),
    )
}


def _from_catalogue(name: str) -> ModelShape | None:
    """A catalogue model the generator can build: a dense, gated, untied Llama-style one."""
    from infermeter.theory.catalogue import MODELS, get_model

    if name not in MODELS:
        return None
    m = get_model(name)
    if m.is_moe or m.is_mla or m.sliding_window or m.tie_embeddings or m.attention_bias:
        return None
    return ModelShape(
        name,
        m.hidden_size,
        m.intermediate_size,
        m.num_layers,
        m.num_heads,
        m.num_kv_heads,
        m.vocab_size,
        context_length=m.max_context,
        head_dim=m.head_dim,
    )


def _all_shapes() -> dict[str, ModelShape]:
    from infermeter.theory.catalogue import MODELS

    shapes = dict(OWN_SHAPES)
    for name in MODELS:
        shape = _from_catalogue(name)
        if shape is not None:
            shapes[name] = shape
    return shapes


SHAPES: dict[str, ModelShape] = _all_shapes()


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
