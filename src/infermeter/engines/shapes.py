"""Shapes of the models the synthetic model maker can generate (Llama architecture).

``tiny`` is for tests, ``demo`` (~100M parameters) for the demo; the others copy the published
shapes of real models so an engine sees the same matrix sizes (weights are random).
"""

from __future__ import annotations

from infermeter.errors import UsageError
from infermeter.theory.shape import ModelShape

__all__ = ["OWN_SHAPES", "SHAPES", "ModelShape", "get_shape", "llama_shape"]


def llama_shape(
    name: str,
    hidden_size: int,
    intermediate_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    vocab_size: int,
    context_length: int = 4096,
    head_dim: int | None = None,
) -> ModelShape:
    """A dense Llama shape (gated MLP, RMSNorm, untied embeddings, no biases), in the
    theory's terms: the generator builds what the theory's bounds describe."""
    return ModelShape(
        name=name,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim or hidden_size // num_heads,
        intermediate_size=intermediate_size,
        vocab_size=vocab_size,
        max_context=context_length,
    )


#: Shapes made for infermeter itself; real models' shapes come from the theory catalogue.
OWN_SHAPES: dict[str, ModelShape] = {
    s.name: s
    for s in (
        llama_shape("tiny", 256, 768, 4, 4, 2, 8192),
        llama_shape("demo", 768, 2048, 14, 12, 4, 8192),
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
    if not m.gated_mlp:
        return None
    return m


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
