"""The embedded byte-level BPE vocabulary and which of its tokens a model may emit."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

BOS_ID, EOS_ID = 0, 1
#: A plain template (no special tokens) so that chat works in llama.cpp, transformers and vLLM.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable stand-in for each byte."""
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


@dataclass(frozen=True)
class Vocab:
    tokenizer_json: dict[str, Any]
    tokens: list[str]
    merges: list[str]

    @property
    def size(self) -> int:
        return len(self.tokens)

    def emittable(self, token_id: int) -> bool:
        """True if streaming this token shows whole, printable text.

        Partial UTF-8 sequences are held back by servers until completed (several tokens in
        one chunk), control characters garble terminals, and BOS/EOS would end generation:
        the generated model never emits any of them.
        """
        if token_id in (BOS_ID, EOS_ID) or token_id >= len(self.tokens):
            return False
        dec = _byte_decoder()
        try:
            raw = bytes(dec[c] for c in self.tokens[token_id])
            text = raw.decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            return False
        return bool(text) and all(ch.isprintable() or ch in " \n\t" for ch in text)


@lru_cache(maxsize=1)
def load_vocab() -> Vocab:
    data = resources.files("infermeter.engines").joinpath("data/bpe-8k.json.gz").read_bytes()
    tj = json.loads(gzip.decompress(data))
    vocab: dict[str, int] = tj["model"]["vocab"]
    tokens = [""] * len(vocab)
    for tok, idx in vocab.items():
        tokens[idx] = tok
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    return Vocab(tj, tokens, merges)
