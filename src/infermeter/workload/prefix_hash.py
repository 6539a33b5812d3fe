"""The prefix structure of a prompt without its text: salted, chained hashes of its blocks.

``infermeter proxy`` records these for every request it measures, so production traffic can
be replayed (``bench --trace RECORDING``) with the same prompt-prefix reuse, and nothing of
what users wrote is stored. A block is ``BLOCK_CHARS`` characters of the prompt (the messages'
roles and texts, in order); each block's hash covers it and every block before it, so equal
hashes mean equal prefixes, as a prefix cache sees them. The last, partial block is not
hashed. The salt is drawn when the recording starts and kept only in memory: hashes compare
within one recording, and guessing a block's text cannot confirm it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

#: Characters per hashed block: about 30 tokens of English text, fine enough for the prefix
#: caches engines keep (16-token blocks in vLLM) and small in a record (12 hex digits each).
BLOCK_CHARS = 128
#: Hex digits kept of each hash: 48 bits, no collision to expect among millions of blocks.
HASH_DIGITS = 12


def new_salt() -> bytes:
    return os.urandom(16)


def prompt_text(body: dict[str, Any]) -> str | None:
    """The text of a chat or completions request as one string (None: no prompt found):
    each message's role and text parts, in order, or the completion prompt."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = []
        for m in messages:
            if not isinstance(m, dict):
                continue
            parts.append(f"{m.get('role')}\x1f{_content_text(m.get('content'))}")
        return "\x1e".join(parts)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return "\x1e".join(prompt)
    return None


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: text kept, others named by type
        return "\x1d".join(
            str(p.get("text", "")) if p.get("type") == "text" else f"<{p.get('type')}>"
            for p in content
            if isinstance(p, dict)
        )
    return ""


def block_hashes(text: str, salt: bytes, block_chars: int = BLOCK_CHARS) -> list[str]:
    """Chained, salted hashes of the text's whole blocks of ``block_chars`` characters."""
    out: list[str] = []
    prev = b""
    for start in range(0, len(text) - block_chars + 1, block_chars):
        block = text[start : start + block_chars].encode("utf-8", "surrogatepass")
        prev = hashlib.blake2b(prev + block, digest_size=16, key=salt).digest()
        out.append(prev.hex()[:HASH_DIGITS])
    return out


def shared_keys(chains: Iterable[list[str]]) -> set[str]:
    """Block hashes that appear in more than one prompt: the only ones worth rebuilding."""
    seen: set[str] = set()
    shared: set[str] = set()
    for chain in chains:
        for h in chain:
            if h in seen:
                shared.add(h)
            else:
                seen.add(h)
    return shared
