"""Token counting for exact prompt lengths: a local ``tokenizer.json`` (or HF folder) through
the ``tokenizers`` package, or the server's own ``/tokenize`` endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import orjson

from infermeter.errors import UsageError


class TokenCounter(Protocol):
    """Counts tokens of prompt text.

    ``count`` counts bare text (no special tokens). ``count_prompt`` counts a whole request's
    prompt as the server will (BOS, chat template included), or returns None where only the
    server itself could tell (then a pre-flight probe measures the difference).
    """

    name: str

    async def count(self, text: str) -> int: ...

    async def count_prompt(self, text: str) -> int | None: ...


class LocalTokenizer:
    """A Hugging Face ``tokenizer.json`` (or a folder holding one)."""

    def __init__(self, path: Path) -> None:
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.exists():
            raise UsageError(f"--tokenizer: no tokenizer.json at {path}")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise UsageError(
                "--tokenizer needs the 'tokenizers' package: pip install 'infermeter[tokenizer]'"
            ) from None
        try:
            self._tok = Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust side raises a plain Exception
            raise UsageError(f"--tokenizer: cannot load {file}: {exc}") from None
        self.name = f"local:{file}"

    def count_sync(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    async def count(self, text: str) -> int:
        return self.count_sync(text)

    async def count_prompt(self, text: str) -> int | None:
        return None


class ServerTokenizer:
    """The server's own tokenizer endpoints.

    llama.cpp: ``/tokenize`` (``content``) and ``/apply-template``; vLLM and SGLang:
    ``/tokenize`` with ``prompt`` or ``messages``. With them a prompt's length is exact as the
    server counts it, chat template included.
    """

    def __init__(self, post_json: Any, origin: str, model: str, style: str, api: str) -> None:
        self._post = post_json
        self._origin = origin.rstrip("/")
        self._model = model
        self._style = style
        self._api = api
        #: Cleared when the server cannot count whole prompts (no /apply-template, say).
        self.prompt_counting = True
        self.name = f"server:{self._origin}/tokenize"

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self._origin + path
        status, obj = await self._post(url, orjson.dumps(body))
        if status != 200 or not isinstance(obj, dict):
            raise UsageError(f"server tokenizer {url} answered HTTP {status}")
        return obj

    @staticmethod
    def _n(obj: dict[str, Any]) -> int:
        if isinstance(obj.get("count"), int):
            return int(obj["count"])
        tokens = obj.get("tokens")
        if not isinstance(tokens, list):
            raise UsageError("server tokenizer returned no tokens")
        return len(tokens)

    async def count(self, text: str) -> int:
        if self._style == "llama.cpp":
            return self._n(await self._call("/tokenize", {"content": text, "add_special": False}))
        return self._n(
            await self._call(
                "/tokenize", {"model": self._model, "prompt": text, "add_special_tokens": False}
            )
        )

    async def count_prompt(self, text: str) -> int | None:
        if not self.prompt_counting:
            return None
        messages = [{"role": "user", "content": text}]
        if self._style == "llama.cpp":
            if self._api == "chat":
                rendered = await self._call("/apply-template", {"messages": messages})
                text = str(rendered.get("prompt", ""))
            return self._n(await self._call("/tokenize", {"content": text, "add_special": True}))
        if self._api == "chat":
            body: dict[str, Any] = {
                "model": self._model,
                "messages": messages,
                "add_generation_prompt": True,
            }
        else:
            body = {"model": self._model, "prompt": text, "add_special_tokens": True}
        return self._n(await self._call("/tokenize", body))
